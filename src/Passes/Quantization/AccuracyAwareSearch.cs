// Accuracy-aware quantization (as Intel Neural Compressor's tuning, searched by op class first): quantize
// everything, measure on held-out data in ONNX Runtime with its optimizations on (the int8 kernels that
// will run); while the drop (accuracy points with labels; else top-1 agreement points with fp32; else
// cosine x 100) exceeds the budget, keep parts of the model in float:
//   1. whole classes where int8 error typically enters (search=class, the default), each measured for its
//      drop (and its ORT latency, 1 thread, reported):
//        element-wise   the quantized Add/Mul (residual sums, gates such as x * HardSigmoid(x))
//        concat-pools   Concat, AveragePool, GlobalAveragePool (one scale shared by many inputs)
//        only-matmuls   both of the above: only Conv/ConvTranspose/Gemm/MatMul stay int8
//        output-head    every quantized op between the graph outputs and the last conv/matmul, inclusive
//        input-stem     the ops from the graph inputs to the first conv/matmul, inclusive
//      the fastest class within the budget is taken, by a deterministic estimate (fewest MACs left in
//      float, then fewest float<->int8 conversions), and its ops are then put back in int8 one at a time,
//      least harmful first, while the budget holds and the estimate does not get worse;
//   2. when no class meets the budget, from the class with the least drop, one op at a time, the op whose
//      own error is largest first (search=op does only this), together with the quantized ops that read its
//      output (else that output is still quantized, as their input). An op's own error is the model output's
//      SQNR, 10 log10(sum y^2 / sum (y - y')^2), with that op alone in int8: the SQNR of an activation
//      inside the all-int8 model would mostly measure the ops before it. With more than 32 such ops (a text
//      detector has 200: an hour of model runs on 640x480 pages) the ops are ranked instead by the error
//      trace's jump at their output (the SQNR lost across the op), which one run of both models gives.
// Before keeping anything in float, the preparations the pass allows are tried on the all-int8 model and kept
// when they lower the drop: bias correction (BiasCorrection), cross-layer equalization (Equalize, with the
// ranges calibrated again on the equalized model) and both.
// Before searching, ErrorTrace says where the error enters (each quantized activation's SQNR along the
// graph). Every trial (drop, latency), every op's own SQNR and what stays float and why are reported; the
// best model seen is kept when the budget cannot be met within max-trials.
using System.Globalization;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

internal static class AccuracyAwareSearch
{
    // Ops whose weights are quantized too (QuantClass.WeightedCompute): Conv, ConvTranspose, Gemm, MatMul.
    private static readonly HashSet<string> MatMuls = OpRegistry.All
        .Where(o => o.Domain.Length == 0 && o.Quant == QuantClass.WeightedCompute).Select(o => o.OpType)
        .ToHashSet(StringComparer.Ordinal);

    public static (HashSet<string> Fallback, Dictionary<string, RangeCalibrator> Ranges) Run(PassContext ctx,
        Model model, Dictionary<string, RangeCalibrator> ranges, QuantizeOptions qo,
        bool qoperator, CalibrationSource eval, double maxDrop, int maxTrials, bool byClass = true)
    {
        var r = Run(ctx, model, ranges, qo, qoperator, eval, maxDrop, maxTrials, new Preparations(), byClass);
        return (r.Fallback, r.Ranges);
    }

    public static SearchResult Run(PassContext ctx, Model model, Dictionary<string, RangeCalibrator> ranges,
        QuantizeOptions qo, bool qoperator, CalibrationSource eval, double maxDrop, int maxTrials,
        Preparations prep, bool byClass = true, double confidence = 0) =>
        new Search(ctx, model, ranges, qo, qoperator, eval, maxDrop, maxTrials, prep) { Confidence = confidence }
            .Run(byClass);

    /// <summary>What the search may do to the float model before keeping ops in float: bias corrections measured
    /// on a model (null: never; Always: from the first trial), and the model equalized with its ranges (null:
    /// never; built only when the all-int8 model misses the budget).</summary>
    public sealed record Preparations
    {
        public Func<Model, Dictionary<string, float[]>>? MeasureCorrections { get; init; }
        public bool AlwaysCorrect { get; init; }
        public Func<(Model Model, Dictionary<string, RangeCalibrator> Ranges)>? Equalized { get; init; }
    }

    /// <summary>What the search chose: ops in float, ranges, whether the float model is to be equalized first and
    /// which bias corrections (by layer key, measured on that model) the quantized layers take.</summary>
    public sealed record SearchResult(HashSet<string> Fallback, Dictionary<string, RangeCalibrator> Ranges,
        bool Equalized, Dictionary<string, float[]>? Corrections);

    /// <summary>One search: the stages of the header in order, sharing the best model seen, the ranges in use,
    /// the calibration method chosen per tensor and the trial count.</summary>
    private sealed class Search
    {
        private readonly PassContext _ctx;
        private readonly QuantizeOptions _qo;
        private readonly bool _qoperator;
        private readonly CalibrationSource _eval;
        private readonly double _maxDrop;
        /// <summary>Candidates are judged by the upper bound of their drop at this confidence (0: the drop).</summary>
        public double Confidence { get; init; }
        private readonly int _maxTrials;
        private byte[] _fp32;
        private Model _model;
        private Dictionary<string, RangeCalibrator> _ranges;
        private readonly Preparations _prep;
        private bool _equalized;
        // The bias corrections in use (applied to the quantized layers of every build), or null.
        private Dictionary<string, float[]>? _corrections;
        private readonly CalibrationSource _deployed;
        private readonly Reference _reference;
        // The speed of a candidate, deterministically: MACs left in float, then float<->int8 conversions
        // (measured latency is reported with each class trial, but noise must not pick the model).
        private readonly Dictionary<string, long> _macs;
        // Whether every tensor was calibrated by all methods at once (the search may then choose per tensor).
        private readonly bool _every;
        private readonly Dictionary<string, string> _chosen;
        private Dictionary<string, RangeCalibrator> _current;
        private (double Drop, HashSet<string> Fallback) _best;
        private int _trial;
        // Trials this pass recorded before the search (quantize's dynamic trial): the search numbers after them.
        private readonly int _firstTrial;
        private QdqResult _firstResult = null!;
        private readonly Dictionary<string, double> _sqnr = new(StringComparer.Ordinal);
        private List<TensorError> _trace = [];
        /// <summary>Most ops whose own error is measured by a model run each; beyond, the trace ranks them.</summary>
        private const int OwnErrorLimit = 32;
        private List<string> _worstFirst = [];

        public Search(PassContext ctx, Model model, Dictionary<string, RangeCalibrator> ranges, QuantizeOptions qo,
            bool qoperator, CalibrationSource eval, double maxDrop, int maxTrials, Preparations prep)
        {
            (_ctx, _model, _ranges, _qo, _qoperator, _eval, _maxDrop, _maxTrials, _prep) =
                (ctx, model, ranges, qo, qoperator, eval, maxDrop, maxTrials, prep);
            if (prep.AlwaysCorrect && prep.MeasureCorrections is { } measure) _corrections = measure(model);
            _current = new Dictionary<string, RangeCalibrator>(ranges, StringComparer.Ordinal);
            _firstTrial = ctx.Stats.Decisions.OfType<QuantizeTrial>().Count();
            _fp32 = OnnxExporter.ToBytes(model);
            _deployed = eval.With(new SessionSettings
            {
                Optimization = GraphOptimization.All,
                IntraOpThreads = Environment.ProcessorCount
            });
            _reference = Reference.Capture(_deployed, OnnxImporter.Parse(_fp32), ctx.Metric);
            _macs = model.Graph.Nodes.ToDictionary(QdqEmitter.Key, n => ModelStats.Macs(n, out _) ?? 0,
                StringComparer.Ordinal);
            _every = ranges.Values.All(r => r is EveryMethodCalibrator) && ranges.Count > 0;
            _chosen = ranges.Keys.ToDictionary(k => k, k => _every ? ((EveryMethodCalibrator)ranges[k]).Selected
                : "", StringComparer.Ordinal);
        }

        public SearchResult Run(bool byClass)
        {
            var (first, firstResult) = Build(new HashSet<string>(), _qoperator);
            _firstResult = firstResult;
            var f0 = _reference.Measure(_deployed, first);
            Trial(_ctx, _reference, _firstTrial, _corrections is null ? null : "bias-correct", f0, [], null,
                Confidence);
            _best = (_reference.UpperDrop(f0, Confidence), new HashSet<string>(StringComparer.Ordinal));
            if (Within(_best.Drop)) return Result(_best.Fallback);
            if (Prepare()) return Result(_best.Fallback);

            TraceWhereErrorEnters();
            if (_every && TuneEveryTensor()) return Result(_best.Fallback);
            MeasureOwnErrors();
            if (_every) TuneWorstOutputs();
            if (Within(_best.Drop)) return Result(_best.Fallback);
            if (byClass && SearchClasses() is { } byClassResult) return Result(byClassResult);
            return Result(SearchOps(byClass));
        }

        private SearchResult Result(HashSet<string> fallback) => new(fallback, _current, _equalized, _corrections);

        /// <summary>Bias correction, equalization and both, each on the all-int8 model; the best kept when it
        /// lowers the drop. True when the budget is met.</summary>
        private bool Prepare()
        {
            var (fp32, model, ranges, current, chosen) = (_fp32, _model, _ranges, _current,
                new Dictionary<string, string>(_chosen, StringComparer.Ordinal));
            var options = new List<(string What, bool Equalized, bool Correct)>();
            if (_prep.MeasureCorrections is not null && _corrections is null)
                options.Add(("bias-correct", false, true));
            if (_prep.Equalized is not null)
            {
                options.Add(("equalize", true, _corrections is not null));
                if (_prep.MeasureCorrections is not null && _corrections is null)
                    options.Add(("equalize+bias-correct", true, true));
            }
            var bias = (Plain: _corrections, Equalized: (Dictionary<string, float[]>?)null);
            (byte[] Fp32, Model Model, Dictionary<string, RangeCalibrator> Ranges)? eq = null;
            (string What, bool Equalized, bool Correct)? kept = null;
            foreach (var (what, equalize, correct) in options)
            {
                if (++_trial > _maxTrials) break;
                if (equalize && eq is null)
                {
                    var (m, r) = _prep.Equalized!();
                    eq = (OnnxExporter.ToBytes(m), m, r);
                }
                (_fp32, _model, _ranges) = equalize ? eq!.Value : (fp32, model, ranges);
                _current = equalize ? new Dictionary<string, RangeCalibrator>(_ranges, StringComparer.Ordinal)
                    : current;
                if (equalize && _every)
                {
                    // The method chosen per tensor so far carries over to the equalized model's calibrators.
                    _current = View(k => chosen.GetValueOrDefault(k, ((EveryMethodCalibrator)_ranges[k]).Selected));
                }
                if (correct && equalize) bias.Equalized ??= _prep.MeasureCorrections!(OnnxImporter.Parse(_fp32));
                if (correct && !equalize) bias.Plain ??= _prep.MeasureCorrections!(OnnxImporter.Parse(_fp32));
                _corrections = !correct ? null : equalize ? bias.Equalized : bias.Plain;
                var (drop, _) = Try([], what, false);
                if (drop < _best.Drop - 1e-9)
                {
                    _best = (drop, []);
                    kept = (what, equalize, correct);
                    (fp32, model, ranges, current) = (_fp32, _model, _ranges, _current);
                    if (equalize) _equalized = true;
                    if (Within(drop)) break;
                }
            }
            // The best preparation (or none) stays in use for the rest of the search.
            (_fp32, _model, _ranges, _current) = (fp32, model, ranges, current);
            _equalized = kept?.Equalized ?? false;
            _corrections = kept is { } k ? (k.Correct ? (k.Equalized ? bias.Equalized : bias.Plain) : null)
                : _prep.AlwaysCorrect ? bias.Plain : null;
            if (kept is { } chosenPrep)
            {
                _firstResult = Build(new HashSet<string>(), false).Result;
                _ctx.Stats.Notes.Add($"accuracy-aware: {chosenPrep.What} lowered the all-int8 drop to "
                    + _best.Drop.ToString("F2", CultureInfo.InvariantCulture));
            }
            return Within(_best.Drop);
        }

        private bool Within(double drop) => drop <= _maxDrop + 1e-9;

        private (Model Model, QdqResult Result) Build(IReadOnlySet<string> fallback, bool lower,
            Dictionary<string, RangeCalibrator>? with = null)
        {
            var m = OnnxImporter.Parse(_fp32);
            var rw = new Rewriter(m);
            if (_corrections is { } c)
                BiasCorrection.Apply(m, rw, c, n => QdqEmitter.Selected(n, _qo, fallback));
            var r = QdqEmitter.Emit(m, rw, with ?? _current, _qo, fallback);
            if (lower) QOperatorLowering.Run(new PassContext(m));
            return (m, r);
        }

        /// <summary>qdq: the candidate in QDQ form (Build(fallback, false)).</summary>
        private (long FloatMacs, int Conversions) Cost(HashSet<string> fallback, Model qdq) =>
            (fallback.Sum(k => _macs.GetValueOrDefault(k)), qdq.Graph.Nodes.Count(n => n.OpType is "QuantizeLinear"
                or "DequantizeLinear" && Rewriter.ConstantOf(n.Input(0)) is null));

        private (double Drop, double? Ms) Try(HashSet<string> fallback, string? what, bool timed,
            Dictionary<string, RangeCalibrator>? with = null, Model? built = null)
        {
            _eval.Progress?.Invoke("quantize: accuracy trials", Math.Min(_trial, _maxTrials), _maxTrials);
            var m = built ?? Build(fallback, _qoperator, with).Model;
            var f = _reference.Measure(_deployed, m);
            double? ms = timed ? Benchmark.Run(OnnxExporter.ToBytes(m), null,
                new BenchOptions { Iterations = 60, Warmup = 5 }).Model.MedianMs : null;
            Trial(_ctx, _reference, _firstTrial + _trial, what, f, fallback, ms, Confidence);
            return (_reference.UpperDrop(f, Confidence), ms);
        }

        /// <summary>Every quantized activation's SQNR in the all-int8 model, in graph order; the three largest
        /// jumps are named in a note.</summary>
        private void TraceWhereErrorEnters()
        {
            var trace = ErrorTrace.Run(OnnxImporter.Parse(_fp32), Build(new HashSet<string>(), false).Model, _eval);
            _trace = trace;
            foreach (var t in trace) _ctx.Stats.Decide(t);
            var entry = trace.Where(t => t.JumpDb is not null).OrderByDescending(t => t.JumpDb).Take(3).ToList();
            if (entry.Count > 0)
                _ctx.Stats.Notes.Add("accuracy-aware: int8 error enters most at " + string.Join(", ", entry.Select(t =>
                    string.Create(CultureInfo.InvariantCulture,
                        $"{t.Tensor} ({t.Op}, {t.SqnrDb:F1} dB, -{t.JumpDb:F1} dB)"))));
        }

        private Dictionary<string, RangeCalibrator> View(Func<string, string> method) => _ranges.ToDictionary(
            kv => kv.Key, kv => ((EveryMethodCalibrator)kv.Value).Method(method(kv.Key)), StringComparer.Ordinal);

        /// <summary>The other calibration methods, for every tensor at once; true when one met the budget.</summary>
        private bool TuneEveryTensor()
        {
            var start = _chosen.Values.First();
            foreach (var method in RangeCalibrator.Methods.Where(m => m != start))
            {
                if (++_trial > _maxTrials) break;
                var view = View(_ => method);
                var (drop, _) = Try([], $"calibrate={method} for every tensor", false, view);
                if (drop >= _best.Drop - 1e-9) continue;
                _best = (drop, []);
                _current = view;
                foreach (var k in _ranges.Keys) _chosen[k] = method;
            }
            if (!Within(_best.Drop)) return false;
            _ctx.Stats.Notes.Add(
                $"accuracy-aware: calibrate={_chosen.Values.First()} for every tensor met the budget");
            return true;
        }

        /// <summary>Each op's own error: the output SQNR with only that op in int8; worst first.</summary>
        private void MeasureOwnErrors()
        {
            var computeKeys = _firstResult.Quantized.Where(q => QdqEmitter.ComputeOps.Contains(q.Op))
                .Select(q => q.Key).ToList();
            if (computeKeys.Count > OwnErrorLimit)
            {
                // The SQNR lost across each op in the all-int8 model: the larger, the worse.
                var jump = _trace.Where(t => t.JumpDb is not null).GroupBy(t => t.Tensor)
                    .ToDictionary(g => g.Key, g => g.Max(t => t.JumpDb!.Value), StringComparer.Ordinal);
                double JumpOf(string key) => _firstResult.Outputs.TryGetValue(key, out var o)
                    && jump.TryGetValue(o.Reference, out var j) ? j : 0;
                _worstFirst = computeKeys.OrderByDescending(JumpOf).ThenBy(k => k, StringComparer.Ordinal).ToList();
                _ctx.Stats.Notes.Add($"accuracy-aware: {computeKeys.Count} ops ranked by where the error enters (the "
                    + $"SQNR lost across each in the all-int8 model), not by {computeKeys.Count} model runs");
                return;
            }
            foreach (var key in computeKeys)
            {
                var others = computeKeys.Where(k => k != key).ToHashSet(StringComparer.Ordinal);
                _sqnr[key] = _reference.Measure(_deployed, Build(others, false).Model).SqnrDb;
            }
            _worstFirst = _sqnr.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => kv.Key).ToList();
            foreach (var key in _worstFirst)
                _ctx.Stats.Decide(new OpSensitivity(key,
                    double.IsFinite(_sqnr[key]) ? Math.Round(_sqnr[key], 3) : null));
        }

        /// <summary>The calibration method per tensor, for the outputs of the ops with the largest own error.</summary>
        private void TuneWorstOutputs()
        {
            foreach (var key in _worstFirst.Take(3))
            {
                if (!_firstResult.Outputs.TryGetValue(key, out var t) || !_ranges.ContainsKey(t.Reference)) continue;
                foreach (var method in RangeCalibrator.Methods.Where(m => m != _chosen[t.Reference]))
                {
                    if (++_trial > _maxTrials) break;
                    var view = View(k => k == t.Reference ? method : _chosen[k]);
                    var (drop, _) = Try([], $"calibrate={method} for {t.Reference}", false, view);
                    if (drop >= _best.Drop - 1e-9) continue;
                    _best = (drop, []);
                    _current = view;
                    _chosen[t.Reference] = method;
                }
                if (Within(_best.Drop)) break;
            }
            var retuned = _chosen.Where(kv => kv.Value != ((EveryMethodCalibrator)_ranges[kv.Key]).Selected).ToList();
            if (retuned.Count > 0)
                _ctx.Stats.Notes.Add($"accuracy-aware: calibration method changed for {retuned.Count} tensors ("
                    + string.Join(", ", retuned.Take(6).Select(kv => $"{kv.Key}: {kv.Value}"))
                    + (retuned.Count > 6 ? ", ..." : "") + ")");
        }

        /// <summary>Stage 1: whole classes in float; the fastest within the budget, then its ops back to int8 one
        /// at a time while the budget holds. Null when no class meets the budget.</summary>
        private HashSet<string>? SearchClasses()
        {
            var tried = new List<(string Name, HashSet<string> Keys, double Drop, (long, int) Cost)>();
            foreach (var (name, keys) in Classes(_model, _firstResult))
            {
                if (++_trial > _maxTrials) break;
                var qdq = Build(keys, false).Model;
                var (drop, _) = Try(keys, $"class {name}", true, built: _qoperator ? null : qdq);
                tried.Add((name, keys, drop, Cost(keys, qdq)));
                if (drop < _best.Drop - 1e-9) _best = (drop, new HashSet<string>(keys));
            }
            var fits = tried.Where(t => Within(t.Drop)).OrderBy(t => t.Cost).ThenBy(t => t.Drop).ToList();
            if (fits.Count == 0) return null;
            var pick = fits[0];
            var fallback = new HashSet<string>(pick.Keys, StringComparer.Ordinal);
            var cost = pick.Cost;
            // Back to int8, least harmful first (ops without an own SQNR, e.g. shared-scale ones, last).
            var order = fallback.OrderByDescending(k => _sqnr.GetValueOrDefault(k, double.NegativeInfinity))
                .ThenBy(k => k, StringComparer.Ordinal).ToList();
            foreach (var key in order)
            {
                if (++_trial > _maxTrials) break;
                var fewer = new HashSet<string>(fallback, StringComparer.Ordinal);
                fewer.Remove(key);
                var qdq = Build(fewer, false).Model;
                var c = Cost(fewer, qdq);
                if (c.CompareTo(cost) > 0) continue;
                var (drop, _) = Try(fewer, $"back to int8 {key}", true, built: _qoperator ? null : qdq);
                if (!Within(drop)) continue;
                fallback = fewer;
                cost = c;
            }
            Explain(_ctx, fallback, $"class {pick.Name} kept in float: the fastest class within the budget");
            return fallback;
        }

        /// <summary>Stage 2: from the best class seen (or nothing), one op at a time, largest own error first;
        /// the best model seen when the budget is not met within max-trials.</summary>
        /// <summary>An op and the quantized compute ops that read its output (directly or through ops that share
        /// its scale): keeping only the op in float would leave its output quantized as their input, the very
        /// tensor whose error put it first.</summary>
        private HashSet<string> WithReaders(string key)
        {
            var unit = new HashSet<string>(StringComparer.Ordinal) { key };
            var quantized = _firstResult.Quantized.Where(q => QdqEmitter.ComputeOps.Contains(q.Op)).Select(q => q.Key)
                .ToHashSet(StringComparer.Ordinal);
            var node = _model.Graph.Nodes.FirstOrDefault(n => QdqEmitter.Key(n) == key);
            var stack = new Stack<Value>(node?.Outputs.OfType<Value>() ?? []);
            var seen = new HashSet<Value>();
            while (stack.Count > 0)
            {
                var v = stack.Pop();
                if (!seen.Add(v)) continue;
                foreach (var u in v.Uses.Select(u => u.Node))
                {
                    var k = QdqEmitter.Key(u);
                    if (quantized.Contains(k)) unit.Add(k);
                    else if (u.IsStandard && QdqEmitter.SharedOps.Contains(u.OpType))
                        foreach (var o in u.Outputs.OfType<Value>()) stack.Push(o);
                }
            }
            return unit;
        }

        private HashSet<string> SearchOps(bool afterClasses)
        {
            var fallback = afterClasses ? new HashSet<string>(_best.Fallback, StringComparer.Ordinal)
                : new HashSet<string>(StringComparer.Ordinal);
            foreach (var key in _worstFirst.Where(k => !fallback.Contains(k)))
            {
                if (++_trial > _maxTrials) break;
                var unit = WithReaders(key);
                fallback.UnionWith(unit);
                var (drop, _) = Try(fallback, unit.Count > 1 ? $"{key} with its readers" : key, false);
                if (drop < _best.Drop - 1e-9) _best = (drop, new HashSet<string>(fallback));
                if (Within(drop))
                {
                    Explain(_ctx, fallback, "kept in float, largest own error first, until the budget held");
                    return fallback;
                }
            }
            var c = CultureInfo.InvariantCulture;
            _ctx.Stats.Notes.Add($"accuracy budget {_maxDrop.ToString(c)} not met within {_maxTrials} fallbacks; kept "
                + $"the best model seen ({_reference.DropMetric} drop {(Confidence > 0 ? "upper bound at "
                    + (Confidence * 100).ToString("G3", c) + "% " : "")}{_best.Drop.ToString("F2", c)})");
            _ctx.Stats.Count(Counters.Quantize.BudgetNotMet);
            Explain(_ctx, _best.Fallback, "kept in float: the best model seen");
            return _best.Fallback;
        }
    }

    /// <summary>The op classes the search tries to keep in float, each as the keys of its quantized ops
    /// (empty and repeated sets left out).</summary>
    internal static List<(string Name, HashSet<string> Keys)> Classes(Model model, QdqResult r)
    {
        HashSet<string> Of(Func<string, bool> op) =>
            r.Quantized.Where(q => op(q.Op)).Select(q => q.Key).ToHashSet(StringComparer.Ordinal);
        var quantized = r.Quantized.Select(q => q.Key).ToHashSet(StringComparer.Ordinal);
        var list = new List<(string, HashSet<string>)>
        {
            ("element-wise", Of(op => op is "Add" or "Mul")),
            ("concat-pools", Of(op => op is "Concat" or "AveragePool" or "GlobalAveragePool")),
            ("only-matmuls", Of(op => !MatMuls.Contains(op))),
            ("output-head", Walk(model, quantized, backward: true)),
            ("input-stem", Walk(model, quantized, backward: false)),
        };
        var seen = new List<HashSet<string>>();
        return list.Where(c => c.Item2.Count > 0 && !seen.Any(s => s.SetEquals(c.Item2)) && Add(seen, c.Item2))
            .ToList();
        static bool Add(List<HashSet<string>> seen, HashSet<string> s) { seen.Add(s); return true; }
    }

    /// <summary>The quantized ops between the graph outputs (backward) or inputs (forward) and the nearest
    /// conv/matmul on each path, inclusive.</summary>
    private static HashSet<string> Walk(Model model, HashSet<string> quantized, bool backward)
    {
        var g = model.Graph;
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<Node>();
        var stack = new Stack<Node>(backward
            ? g.Outputs.Select(o => o.Producer).OfType<Node>()
            : g.Inputs.Where(v => !v.IsInitializer).SelectMany(v => v.Uses.Select(u => u.Node)));
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (!seen.Add(n)) continue;
            var key = QdqEmitter.Key(n);
            if (quantized.Contains(key)) keys.Add(key);
            if (MatMuls.Contains(n.OpType)) continue;
            var next = backward
                ? n.Inputs.Select(i => i?.Producer).OfType<Node>()
                : n.Outputs.OfType<Value>().SelectMany(o => o.Uses.Select(u => u.Node));
            foreach (var m in next) stack.Push(m);
        }
        return keys;
    }

    private static void Explain(PassContext ctx, HashSet<string> fallback, string why)
    {
        if (fallback.Count == 0) return;
        ctx.Stats.Notes.Add($"accuracy-aware: {why} ({fallback.Count} ops: "
            + string.Join(", ", fallback.Order(StringComparer.Ordinal).Take(8)) + (fallback.Count > 8 ? ", ..." : "")
            + ")");
    }

    internal static void Trial(PassContext ctx, Reference reference, int trial, string? fellBack, FidelityResult f,
        HashSet<string> fallback, double? ms, double confidence)
    {
        ctx.Stats.Count(Counters.Quantize.AccuracyTrials);
        ctx.Stats.Decide(new QuantizeTrial(trial, fellBack, string.Join(";", fallback.Order(StringComparer.Ordinal)),
            reference.DropMetric, reference.Accuracy ?? 100.0, f.Accuracy
                ?? f.Agreement, Math.Round(reference.Drop(f), 6), f.Agreement)
        {
            LatencyMs = ms is double v ? Math.Round(v, 4) : null,
            DropUpper = confidence > 0 ? Math.Round(reference.UpperDrop(f, confidence), 6) : null,
        });
    }
}
