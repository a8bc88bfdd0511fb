// The trainer over the IR: minibatch gradient descent on a model's parameters with our own autodiff.
// Each step:
//   1. a seeded batch of training samples (augmented if asked) and the teacher's targets for it;
//   2. the student's forward pass in float32 (Evaluator<float>) with the parameters' current values as
//      initializer overrides, keeping the outputs and the named features;
//   3. loss = distillation term (KL on the first output, or MSE on every output) + feature MSEs
//      + label cross-entropy (when asked) + the parameters' own penalties; its gradient seeds the
//      backward pass, which returns dL/d(initializer) for every initializer a parameter produces;
//   4. each parameter maps those to its own gradient; the optimizer clips, updates and constrains.
// Every EvalEvery steps (and before the first and after the last) the student is scored on the held-out
// set: accuracy with labels, else top-1 agreement with the teacher (cosine x 100 for non-classifiers);
// the best parameters are kept (the starting point included, so training never returns a worse model
// than it was given on that set) and Patience evaluations without improvement stop the run.
// Data parallel: when the model treats the samples of a batch independently (checked once, on the first
// batch: the second half's outputs alone equal the whole batch's rows), each step splits the batch into two
// halves, each run forward and backward on its own thread with its own evaluator and arena and the kernels
// limited to their share of the threads (no fork and join per op, and the small ops run in parallel too);
//   L = (n0 * L(half 0) + n1 * L(half 1)) / n,  dL/dp = the same weighted sum of the halves' gradients.
// Deterministic: one seeded stream draws batches and augmentations; kernels split work by output, and the
// halves are summed in order whether they ran in parallel or not, so the same seed gives the same bytes on
// any thread count.
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using OnnxOpt.Autodiff;
using OnnxOpt.Autodiff.Kernels;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Training;

/// <summary>One point of the training curve.</summary>
public sealed record TrainPoint(int Step, double Loss, double? Score, double LearningRate);

public sealed record TrainResult(int Steps, int BestStep, string ScoreMetric, double? InitialScore, double? BestScore,
    double FirstLoss, double FinalLoss, double Seconds, bool StoppedEarly, bool TeacherCached,
    IReadOnlyList<TrainPoint> History)
{
    public double StepsPerSecond => Seconds > 0 ? Steps / Seconds : 0;
    /// <summary>Training stopped at TrainSettings.Deadline before its steps were done.</summary>
    public bool StoppedAtDeadline { get; init; }
}

public sealed class Trainer
{
    private readonly string? _mask;
    private readonly LossKind _loss;
    private readonly Model _student;
    private readonly IReadOnlyList<Parameter> _params;
    private readonly TrainSettings _s;
    // One evaluator and arena per half of a batch (the first also runs whole batches). Every step makes the same
    // arrays: they come from the arenas and go back after the step.
    private const int Parts = 2;
    private readonly Evaluator<float>[] _evs;
    private readonly BufferArena<float>[] _arenas;
    // Whether batches are split into halves (decided on the first batch).
    private bool? _split;

    /// <summary>The loss trained on (loss=auto resolved for the student's first output).</summary>
    public LossKind Loss => _loss;

    public Trainer(Model student, IReadOnlyList<Parameter> parameters, TrainSettings settings)
    {
        settings.Check();
        if (parameters.Count == 0) throw new OnnxModelException("training: no trainable parameters were selected");
        _student = student; _params = parameters; _s = settings;
        _arenas = Enumerable.Range(0, Parts).Select(_ => new BufferArena<float>()).ToArray();
        _evs = _arenas.Select(a => new Evaluator<float>(student) { Arena = a }).ToArray();
        var g = student.Graph;
        // loss=cosine pools over the attention mask: an integer [batch, sequence] input named like one.
        _mask = g.Inputs.FirstOrDefault(i => !i.IsInitializer && !i.ElementType.IsFloatingPoint()
            && i.Shape?.Rank == 2 && i.Name.Contains("mask", StringComparison.OrdinalIgnoreCase))?.Name;
        // auto: a sentence encoder's pooled cosine when the first output is [batch, sequence, hidden] and an attention
        // mask exists; Hinton's KL over the last axis of [batch, classes] or [batch, positions, classes] logits; the
        // MSE on a map of rank 4 or more (a detector's probability map, a segmentation: KL over its last axis would
        // compare rows of pixels as if they were classes).
        var rank = g.Outputs[0].Shape?.Rank;
        _loss = settings.Loss != LossKind.Auto ? settings.Loss
            : _mask is not null && rank == 3 ? LossKind.Cosine
            : rank is null or <= 3 ? LossKind.Kl : LossKind.Mse;
        if (_loss == LossKind.Cosine && g.Outputs[0].Shape?.Rank is not (3 or null))
            throw new OnnxModelException($"training: loss=cosine needs a [batch, sequence, hidden] first output; "
                + $"'{g.Outputs[0].Name}' is not one");
        foreach (var f in settings.Features)
            if (g.Find(f) is null) throw new OnnxModelException($"training: feature '{f}' is not a value of the model");
    }

    /// <summary>Called with a short line of progress every few steps (the passes send it to their log).</summary>
    public ProgressSink? Progress { get; init; }

    /// <summary>When set, milliseconds per op (forward "Op", backward "Op'") of every step are added here (of the
    /// first half of each batch when batches are split).</summary>
    public Dictionary<string, double>? Profile { get => _evs[0].Profile; set => _evs[0].Profile = value; }

    /// <summary>Whether steps split their batch into halves run in parallel (known after the first step).</summary>
    internal bool SplitsBatches => _split == true;

    /// <summary>The targets the teacher must give, in order: the outputs the loss uses, then the features.</summary>
    public IReadOnlyList<string> TeacherTargets => LossOutputs().Concat(_s.Features).ToList();

    private IEnumerable<string> LossOutputs() => _loss switch
    {
        LossKind.Kl or LossKind.Cosine => [_student.Graph.Outputs[0].Name],
        LossKind.Mse => _student.Graph.Outputs.Select(o => o.Name),
        _ => [],
    };

    /// <summary>Tokens per step of the automatic batch for token models (16 sentences of 128, 64 of 32).</summary>
    public const long TokensPerBatch = 2048;

    /// <summary>The batch when none is given: 64 samples, or for a token model as many sentences as make about
    /// <see cref="TokensPerBatch"/> tokens, 8 to 64 (activations grow with the tokens: at 64 x 128 a BERT-style step of
    /// 192 wide took 9.4 s and 11 GB, at 16 x 128 1.7 s and 2.8 GB).</summary>
    public static int AutoBatch(TrainingData train) =>
        train.SequenceLength is long s && s > 0 ? (int)Math.Clamp(TokensPerBatch / s, 8, 64) : 64;

    /// <summary>Trains in place: the parameters' values end at the best point found.</summary>
    public TrainResult Fit(TrainingData train, Teacher teacher, TrainingData? eval = null, Teacher? evalTeacher = null)
    {
        var clock = Stopwatch.StartNew();
        if (_loss == LossKind.CrossEntropy && train.Labels is null)
            throw new OnnxModelException("training: loss=ce needs labels (labels.npy) in the training data");
        var rng = new SplitMix64(_s.Seed);
        var sampler = new BatchSampler(train.Count, _s.Batch > 0 ? _s.Batch : AutoBatch(train), rng);
        bool augment = (_s.Flip || _s.Shift != 0 || _s.Mixup > 0) && train.HasFloatInputs
            || _s.TokenSwap > 0 && train.TokenInput is not null;
        bool cached = !augment && teacher.TryCache(train, _s.CacheBytes);
        var evalTargets = eval is null ? null : new EvalSet(eval, evalTeacher ?? teacher);

        var lossOutputs = LossOutputs().ToList();
        var seedNames = lossOutputs.Concat(_s.Features).Distinct().ToList();
        if (_loss == LossKind.CrossEntropy && !seedNames.Contains(_student.Graph.Outputs[0].Name))
            seedNames.Insert(0, _student.Graph.Outputs[0].Name);
        var wrt = _params.SelectMany(p => p.Initializers).Distinct().ToList();
        var grads = _params.Select(p => new float[p.Values.Length]).ToArray();
        var opt = new ParameterOptimizer(_s, _params);
        var history = new List<TrainPoint>();

        string metric = evalTargets?.Metric ?? "";
        double? initial = evalTargets?.Score(this), best = initial;
        int bestStep = 0, sinceBest = 0;
        var bestValues = _params.Select(p => p.Values.ToArray()).ToArray();
        double first = double.NaN, last = double.NaN, running = 0;
        bool early = false;
        int step = 0;
        bool deadline = false;
        for (; step < _s.Steps; step++)
        {
            if (step > 0 && _s.Deadline is { } end && DateTime.UtcNow >= end)
            {
                deadline = true;
                // The weights reached count like a last evaluation.
                if (evalTargets is not null && evalTargets.Score(this) is var s && s > best + 1e-9)
                {
                    best = s; bestStep = step;
                    for (int k = 0; k < _params.Count; k++) Array.Copy(_params[k].Values, bestValues[k],
                        bestValues[k].Length);
                }
                break;
            }
            var idx = sampler.Next();
            var batch = train.Gather(idx, augment ? rng : null, _s.Flip, _s.Shift, _s.Mixup, _s.TokenSwap);
            var targets = NarrowFeatures(teacher.For(train, idx, batch), lossOutputs.Count);
            long[]? labels = train.Labels is { } l ? idx.Select(i => l[i]).ToArray() : null;
            double loss = LossAndGradients(batch, targets, labels, seedNames, wrt, grads);
            if (!double.IsFinite(loss))
                throw new OnnxModelException($"training diverged at step {step + 1} (loss {loss}); lower lr (now "
                    + $"{_s.LearningRate})");
            if (step == 0) first = loss;
            running = step == 0 ? loss : 0.9 * running + 0.1 * loss;
            last = loss;
            opt.Step(grads, step);
            bool evalNow = evalTargets is not null && _s.EvalEvery > 0 && (step + 1) % _s.EvalEvery == 0;
            double? score = null;
            if (evalNow || (evalTargets is not null && step + 1 == _s.Steps))
            {
                score = evalTargets!.Score(this);
                if (score > best + 1e-9)
                {
                    best = score; bestStep = step + 1; sinceBest = 0;
                    for (int k = 0; k < _params.Count; k++) Array.Copy(_params[k].Values, bestValues[k],
                        bestValues[k].Length);
                }
                else if (_s.Patience > 0 && ++sinceBest >= _s.Patience) early = true;
            }
            if (score is not null || (step + 1) % 10 == 0 || step == 0)
                history.Add(new TrainPoint(step + 1, running, score, ParameterOptimizer.Rate(_s, step)));
            Progress?.Invoke("training", step + 1, _s.Steps);
            if (early) { step++; break; }
        }
        _featureScale = null;
        if (evalTargets is not null)
            for (int k = 0; k < _params.Count; k++) Array.Copy(bestValues[k], _params[k].Values, bestValues[k].Length);
        else bestStep = step;
        return new TrainResult(step, bestStep, metric, initial, best, first, last, clock.Elapsed.TotalSeconds, early,
            cached, history)
        { StoppedAtDeadline = deadline };
    }

    /// <summary>The loss of one batch; the parameters' gradients are written to <paramref name="grads"/>.</summary>
    internal double LossAndGradients(IReadOnlyDictionary<string, NdArray<float>> batch, NdArray<float>[] targets,
        long[]? labels, IReadOnlyList<string> seedNames, IReadOnlyList<string> wrt, float[][] grads)
    {
        var overrides = Overrides();
        int n = batch.Values.First().Shape[0];
        _split ??= n >= Parts && Separable(batch, overrides, seedNames);
        foreach (var a in _arenas) a.Recycle();
        int count = _split == true && n >= Parts ? Parts : 1;
        var parts = new (double Loss, Dictionary<string, NdArray<float>> Grads)[count];
        if (parts.Length == 1) parts[0] = HalfLoss(_evs[0], batch, targets, labels, 1, overrides, wrt);
        else
        {
            int per = Math.Max(1, Parallelism.Threads / Parts);
            void Run(int p)
            {
                using var limit = Parallelism.Limit(per);
                int lo = p * n / Parts, hi = (p + 1) * n / Parts;
                parts[p] = HalfLoss(_evs[p], batch.ToDictionary(kv => kv.Key, kv => Rows(kv.Value, lo, hi)),
                    targets.Select(t => Rows(t, lo, hi)).ToArray(), labels?[lo..hi], (double)(hi - lo) / n,
                    overrides, wrt);
            }
            if (Parallelism.Threads < 2) for (int p = 0; p < Parts; p++) Run(p);
            else
            {
                var others = Enumerable.Range(1, Parts - 1).Select(p => Task.Run(() => Run(p))).ToArray();
                Exception? first = null;
                try { Run(0); }
                catch (Exception e) { first = e; }
                foreach (var t in others)
                    try { t.GetAwaiter().GetResult(); }
                    catch (Exception e) { first ??= e; }
                if (first is not null) ExceptionDispatchInfo.Throw(first);
            }
        }
        double loss = 0;
        foreach (var part in parts) loss += part.Loss;
        for (int k = 0; k < _params.Count; k++)
        {
            Array.Clear(grads[k]);
            foreach (var part in parts) _params[k].Gradient(part.Grads, grads[k]);
            if (_params[k].Penalty is { } pen) loss += pen(_params[k].Values, grads[k]);
        }
        return loss;
    }

    /// <summary>The loss of (a part of) a batch times <paramref name="weight"/> and the gradients of the initializers
    /// in <paramref name="wrt"/> (arrays of the evaluator's arena, valid until its next recycle).</summary>
    private (double Loss, Dictionary<string, NdArray<float>> Grads) HalfLoss(Evaluator<float> ev,
        IReadOnlyDictionary<string, NdArray<float>> batch, NdArray<float>[] targets, long[]? labels, double weight,
        IReadOnlyDictionary<string, NdArray<float>> overrides, IReadOnlyList<string> wrt)
    {
        var trace = ev.Forward(batch, overrides);
        var seeds = new Dictionary<string, NdArray<float>>(StringComparer.Ordinal);
        NdArray<float> Seed(string name)
        {
            if (!seeds.TryGetValue(name, out var s)) seeds[name] = s = NdArray<float>.Zeros(trace[name].Shape);
            return s;
        }
        double loss = 0;
        var lossOutputs = LossOutputs().ToList();
        for (int k = 0; k < lossOutputs.Count; k++)
        {
            var s = trace[lossOutputs[k]]; var t = targets[k];
            CheckShape(lossOutputs[k], s, t);
            loss += _loss switch
            {
                LossKind.Kl => Losses.KlDivergence(s.R, t.R, s.Shape[^1], _s.Temperature, Seed(lossOutputs[k]).R,
                    weight),
                LossKind.Cosine => Losses.PooledCosine(s.R, t.R, s.Shape, MaskOf(batch), Seed(lossOutputs[k]).R,
                    weight),
                _ => Losses.MeanSquared(s.R, t.R, Seed(lossOutputs[k]).R, weight),
            };
        }
        for (int f = 0; f < _s.Features.Count; f++)
        {
            var s = trace[_s.Features[f]]; var t = targets[lossOutputs.Count + f];
            CheckShape(_s.Features[f], s, t);
            double w = _s.FeatureWeight * weight;
            if (_s.NormalizeFeatures) w /= _featureScale?[f] ?? Math.Max(MeanSquare(t.R), 1e-12);
            loss += Losses.MeanSquared(s.R, t.R, Seed(_s.Features[f]).R, w);
        }
        double ceWeight = _loss == LossKind.CrossEntropy ? 1 : _s.LabelWeight;
        if (ceWeight > 0 && labels is not null)
        {
            var name = _student.Graph.Outputs[0].Name;
            var s = trace[name];
            loss += Losses.CrossEntropy(s.R, labels, s.Shape[^1], Seed(name).R, ceWeight * weight);
        }
        return (loss, ev.Backward(trace, seeds, wrt));
    }

    /// <summary>loss=cosine: the attention mask of the batch as floats (empty: pool over every token).</summary>
    private float[]? MaskOf(IReadOnlyDictionary<string, NdArray<float>> batch) =>
        _mask is null || !batch.TryGetValue(_mask, out var m) ? null
            : m.IsInt ? m.I.Select(v => (float)v).ToArray() : m.R;

    /// <summary>Whether the second half of the batch alone gives the same rows of the loss's values as the whole
    /// batch (the model treats samples independently, so batches may be split).</summary>
    private bool Separable(IReadOnlyDictionary<string, NdArray<float>> batch,
        IReadOnlyDictionary<string, NdArray<float>> overrides, IReadOnlyList<string> names)
    {
        int n = batch.Values.First().Shape[0], lo = n / Parts;
        if (batch.Values.Any(v => v.Rank == 0 || v.Shape[0] != n)) return false;
        try
        {
            var whole = _evs[0].Forward(batch, overrides);
            var half = _evs[1].Forward(batch.ToDictionary(kv => kv.Key, kv => Rows(kv.Value, lo, n)), overrides);
            foreach (var name in names)
            {
                var w = whole[name]; var h = half[name];
                if (w.Rank == 0 || w.Shape[0] != n || !h.Shape.AsSpan(1).SequenceEqual(w.Shape.AsSpan(1))
                    || h.Shape[0] != n - lo) return false;
                int inner = w.Length / n;
                var wr = w.R.AsSpan(lo * inner, (n - lo) * inner); var hr = h.R.AsSpan(0, (n - lo) * inner);
                double scale = 0;
                foreach (var v in wr) scale = Math.Max(scale, Math.Abs(v));
                for (int i = 0; i < wr.Length; i++)
                    if (!(Math.Abs(wr[i] - hr[i]) <= 1e-4 * (1 + scale))) return false;
            }
            return true;
        }
        catch (OnnxModelException) { return false; }
        finally { foreach (var a in _arenas) a.Recycle(); }
    }

    /// <summary>Rows [lo, hi) of an array along its first axis (a copy).</summary>
    private static NdArray<float> Rows(NdArray<float> a, int lo, int hi)
    {
        int inner = a.Length / a.Shape[0];
        var shape = (int[])a.Shape.Clone();
        shape[0] = hi - lo;
        // Token ids and masks are integer arrays.
        if (a.IsInt)
            return new NdArray<float>(shape, a.I.AsSpan(lo * inner, (hi - lo) * inner).ToArray(), a.ElementType);
        return new NdArray<float>(shape, a.R.AsSpan(lo * inner, (hi - lo) * inner).ToArray());
    }

    /// <summary>The teacher's features cut to the channels a pruned student kept, and (NormalizeFeatures) each
    /// feature's mean square over the whole batch: once per batch, before it is split, so the halves share one
    /// normalizer.</summary>
    private NdArray<float>[] NarrowFeatures(NdArray<float>[] targets, int first)
    {
        for (int f = 0; f < _s.Features.Count; f++)
            if (_s.FeatureChannels.TryGetValue(_s.Features[f], out var kept))
                targets[first + f] = TakeChannels(targets[first + f], kept.Axis, kept.Kept);
        _featureScale = _s.NormalizeFeatures
            ? Enumerable.Range(0, _s.Features.Count).Select(f => Math.Max(MeanSquare(targets[first + f].R), 1e-12))
                .ToArray()
            : null;
        return targets;
    }

    // NormalizeFeatures: this batch's mean square of each teacher feature (NarrowFeatures); null outside Fit.
    private double[]? _featureScale;

    /// <summary>The channels <paramref name="kept"/> of <paramref name="a"/> on <paramref name="axis"/> (a copy).
    /// </summary>
    internal static NdArray<float> TakeChannels(NdArray<float> a, int axis, int[] kept)
    {
        if (axis <= 0 || axis >= a.Rank || kept.Any(k => k < 0 || k >= a.Shape[axis]))
            throw new OnnxModelException($"training: a kept-channel map on axis {axis} does not fit the teacher's {a}");
        int outer = 1, inner = 1, c = a.Shape[axis];
        for (int i = 0; i < axis; i++) outer *= a.Shape[i];
        for (int i = axis + 1; i < a.Rank; i++) inner *= a.Shape[i];
        var shape = (int[])a.Shape.Clone();
        shape[axis] = kept.Length;
        var r = new float[outer * kept.Length * inner];
        var src = a.R;
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < kept.Length; j++)
                Array.Copy(src, ((long)o * c + kept[j]) * inner, r, ((long)o * kept.Length + j) * inner, inner);
        return new NdArray<float>(shape, r);
    }

    private static double MeanSquare(ReadOnlySpan<float> v)
    {
        if (v.Length == 0) return 0;
        int width = System.Numerics.Vector<float>.Count, i = 0;
        double sum = 0;
        while (i + width <= v.Length)
        {
            var acc = System.Numerics.Vector<float>.Zero;
            for (int end = Math.Min(v.Length - width + 1, i + 256 * width); i < end; i += width)
            {
                var x = new System.Numerics.Vector<float>(v[i..]);
                acc += x * x;
            }
            sum += System.Numerics.Vector.Sum(acc);
        }
        for (; i < v.Length; i++) sum += (double)v[i] * v[i];
        return sum / v.Length;
    }

    private static void CheckShape(string name, NdArray<float> s, NdArray<float> t)
    {
        if (!s.Shape.AsSpan().SequenceEqual(t.Shape))
            throw new OnnxModelException($"training: the student's '{name}' is {s}, the teacher's is {t}; "
                + "distill features whose shapes the rewrite kept");
    }

    internal Dictionary<string, NdArray<float>> Overrides()
    {
        var o = new Dictionary<string, NdArray<float>>(StringComparer.Ordinal);
        foreach (var p in _params) p.Materialize(o);
        return o;
    }

    /// <summary>The student's first output on a batch with the current parameters.</summary>
    internal float[] Predict(IReadOnlyDictionary<string, NdArray<float>> batch)
    {
        _arenas[0].Recycle();
        return _evs[0].Forward(batch, Overrides())[_student.Graph.Outputs[0].Name].R.ToArray();
    }

    /// <summary>Writes the parameters' current values into the model's initializers.</summary>
    public static void WriteBack(Model model, IEnumerable<Parameter> parameters, Action<Value, Tensor> set)
    {
        foreach (var p in parameters)
            foreach (var t in p.Tensors(model)) set(model.Graph.Find(t.Name)!, t);
    }

    /// <summary>The held-out set with the teacher's first output on it, scored against the student.</summary>
    private sealed class EvalSet
    {
        private readonly TrainingData _data;
        private readonly float[][] _teacher;
        private readonly bool _classifier;

        public EvalSet(TrainingData data, Teacher teacher)
        {
            _data = data;
            var outs = Batches().Select(idx => teacher.Run(data, data.Gather(idx))[0]).ToList();
            _teacher = outs.Select(o => o.R).ToArray();
            _classifier = outs[0].Rank == 2 && outs[0].Shape[1] > 1;
            Metric = _classifier ? data.Labels is not null ? "accuracy" : "top1_agreement" : "cosine_x100";
        }

        public string Metric { get; }

        private IEnumerable<int[]> Batches()
        {
            for (int s = 0; s < _data.Count; s += 64)
                yield return Enumerable.Range(s, Math.Min(64, _data.Count - s)).ToArray();
        }

        public double Score(Trainer t)
        {
            long hit = 0, total = 0;
            double dot = 0, ss = 0, tt = 0;
            int b = 0;
            foreach (var idx in Batches())
            {
                var y = t.Predict(_data.Gather(idx));
                var want = _teacher[b++];
                if (!_classifier)
                {
                    for (int i = 0; i < y.Length; i++)
                    {
                        dot += y[i] * want[i]; ss += y[i] * y[i]; tt += want[i] * want[i];
                    }
                    continue;
                }
                int c = y.Length / idx.Length;
                for (int i = 0; i < idx.Length; i++)
                {
                    int am = ArgMax(y.AsSpan(i * c, c));
                    long target = _data.Labels is { } l ? l[idx[i]] : ArgMax(want.AsSpan(i * c, c));
                    total++;
                    if (am == target) hit++;
                }
            }
            return _classifier ? 100.0 * hit / Math.Max(1, total)
                : ss == 0 || tt == 0 ? (ss == tt ? 100 : 0) : 100 * dot / Math.Sqrt(ss * tt);
        }

        private static int ArgMax(ReadOnlySpan<float> x)
        {
            int best = 0;
            for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
            return best;
        }
    }
}
