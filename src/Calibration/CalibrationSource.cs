// Where calibration samples come from: a data folder (the runtime's convention) or seeded random
// inputs. Samples are always visited in the same order, so every statistic and every decision
// derived from them is reproducible.
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Data;

namespace OnnxOpt.Calibration;

public sealed class CalibrationSource
{
    private readonly Func<IReadOnlyList<IoInfo>, DataSet> _factory;

    private CalibrationSource(string description, Func<IReadOnlyList<IoInfo>, DataSet> factory)
    {
        Description = description;
        _factory = factory;
    }

    public string Description { get; }
    public int BatchSize { get; init; } = 32;
    public SessionSettings Settings { get; init; } = new() { Optimization = GraphOptimization.Disabled };

    /// <summary>What runs the model over the samples: ORT with <see cref="Settings"/> unless set (e.g. to
    /// our own evaluator, Autodiff's EvaluatorRunner.Factory).</summary>
    public RunnerFactory? Runner { get; init; }

    /// <summary>Where Stream reports its progress on labelled runs (default: nowhere).</summary>
    public ProgressSink? Progress { get; init; }


    /// <summary>A runner for the model (plus intermediate values), as this source runs models.</summary>
    public IModelRunner RunnerFor(Model model, IEnumerable<string> extraOutputs) =>
        Runner?.Invoke(model, extraOutputs) ?? InferenceSession.FromModel(model, Settings, extraOutputs);

    /// <param name="skipNonFinite">Drop samples holding NaN or infinity (counted in SkippedNonFinite) instead
    /// of refusing the folder at the first one.</param>
    public static CalibrationSource FromFolder(string dir, bool skipNonFinite = false)
    {
        var sets = new List<DataSet>();
        return new(dir, inputs =>
        {
            var d = DataSet.FromFolder(dir, inputs, skipNonFinite);
            lock (sets) sets.Add(d);
            return d;
        })
        { _sets = sets };
    }

    private List<DataSet>? _sets;

    /// <summary>The most samples any pass over this source skipped for holding NaN or infinity (every pass skips
    /// the same ones).</summary>
    public int SkippedNonFinite
    {
        get
        {
            if (_sets is null) return 0;
            lock (_sets) return _sets.Count == 0 ? 0 : _sets.Max(d => d.SkippedNonFinite);
        }
    }

    public static CalibrationSource FromRandom(int count, ulong seed = 1, IReadOnlyDictionary<string,
        long>? dims = null, IReadOnlyDictionary<string, ValueRange>? ranges = null) =>
        new($"{count} seeded random samples (seed {seed})", inputs => DataSet.Random(inputs, count, seed, dims,
            ranges));

    public DataSet DataFor(IReadOnlyList<IoInfo> inputs) => _factory(inputs);

    /// <summary>Symbolic dims other than the batch, valued from the first sample (a sequence length), so MAC counts
    /// include the attention products; null when the model's inputs have none.</summary>
    public Dictionary<string, long>? SymbolicDims(Model model)
    {
        var first = DataFor(IoInfo.InputsOf(model.Graph)).Batches(1).FirstOrDefault();
        var dims = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var x in model.Graph.Inputs.Where(v => !v.IsInitializer))
            if (x.Shape is { } s && first?.Inputs.GetValueOrDefault(x.Name) is { } t && t.Dims.Length == s.Rank)
                for (int i = 1; i < s.Rank; i++)
                    if (s[i].Param is string p) dims[p] = t.Dims[i];
        return dims.Count == 0 ? null : dims;
    }

    /// <summary>Splits the samples in two, seeded: <paramref name="heldOut"/> of them (a seeded choice, each kept
    /// in its place in the order) for budgets and validation, the rest to fit on. Both halves stream from the same
    /// folder (nothing is copied).</summary>
    public (CalibrationSource Fit, CalibrationSource HeldOut) Split(int heldOut, ulong seed = 7)
    {
        bool[] Held(int n)
        {
            var order = Enumerable.Range(0, n).ToArray();
            var rng = new SplitMix64(seed);
            for (int i = n - 1; i > 0; i--)
            {
                int j = (int)(rng.Next() % (ulong)(i + 1));
                (order[i], order[j]) = (order[j], order[i]);
            }
            var held = new bool[n];
            foreach (var i in order.Take(Math.Min(heldOut, n))) held[i] = true;
            return held;
        }
        CalibrationSource Part(bool wanted, string what) => Copy(Settings, Runner, Progress, source: (
            $"{Description} ({what})", inputs =>
            {
                var all = _factory(inputs);
                var held = Held(all.SampleCount);
                return all.Where(i => held[i] == wanted, $"{all.Description}, {what}");
            }
        ));
        return (Part(false, "the samples not held out"), Part(true, $"{heldOut} held out"));
    }

    /// <summary>The same samples, run with other session settings (e.g. ORT's optimizations on, to
    /// measure a quantized model as it will be deployed), by ORT.</summary>
    public CalibrationSource With(SessionSettings settings) => Copy(settings, null, Progress);

    /// <summary>The same samples, run by another runner (our own evaluator, say).</summary>
    public CalibrationSource With(RunnerFactory runner) => Copy(Settings, runner, Progress);

    /// <summary>The same samples, reporting progress to <paramref name="sink"/>.</summary>
    public CalibrationSource WithProgress(ProgressSink? sink) => Copy(Settings, Runner, sink);

    /// <summary>The same samples, in batches of at most <paramref name="bytes"/> of requested values.</summary>
    public CalibrationSource WithMaxBatchBytes(long bytes) => Copy(Settings, Runner, Progress, bytes);

    /// <summary>This source's settings with the ones given changed (and, with <paramref name="source"/>, other
    /// samples).</summary>
    private CalibrationSource Copy(SessionSettings settings, RunnerFactory? runner, ProgressSink? progress,
        long? maxBatchBytes = null,
        (string Description, Func<IReadOnlyList<IoInfo>, DataSet> Factory)? source = null) =>
        new(source?.Description ?? Description, source?.Factory ?? _factory)
        {
            BatchSize = BatchSize,
            MaxBatchBytes = maxBatchBytes ?? MaxBatchBytes,
            Settings = settings,
            Runner = runner,
            Progress = progress,
            _sets = _sets,
        };

    /// <summary>Most bytes of requested values one batch may hold; the batch shrinks (to 1 at least)
    /// when the model's activations are large, so memory stays bounded for any model and data size.</summary>
    public long MaxBatchBytes { get; init; } = 128L << 20;

    /// <summary>Samples per batch: BatchSize, or fewer when the requested values' per-sample bytes
    /// (from their inferred shapes, axis 0 taken as the batch) would exceed MaxBatchBytes.</summary>
    public int BatchFor(Model model, IReadOnlyList<string> values)
    {
        long perSample = 0;
        foreach (var name in values.Distinct())
        {
            if (model.Graph.Find(name) is not { Shape: { Rank: > 0 } s } v
                || !s.Dims.Skip(1).All(d => d.IsKnown)) continue;
            perSample += Math.Max(1, v.ElementType.ByteCount(s.Dims.Skip(1).Aggregate(1L, (a,
                d) => a * d.Value!.Value)));
        }
        return perSample == 0 ? BatchSize : (int)Math.Clamp(MaxBatchBytes / perSample, 1, BatchSize);
    }

    /// <summary>Samples per batch for values whose per-sample size shape inference cannot tell (a detector's
    /// dynamic height and width): one sample is run through <paramref name="session"/> and its values measured.
    /// Without that, 32 pages of 640x480 with every activation requested held 22 GB.</summary>
    public int BatchFor(Model model, IReadOnlyList<string> values, IModelRunner session, DataSet data)
    {
        if (PerSampleKnown(model, values)) return BatchFor(model, values);
        var first = data.Batches(1).FirstOrDefault();
        if (first is null) return 1;
        long perSample = session.Run(first.Inputs, values).Sum(t => Math.Max(1, t.ByteSize));
        return (int)Math.Clamp(MaxBatchBytes / Math.Max(1, perSample), 1, BatchSize);
    }

    private static bool PerSampleKnown(Model model, IReadOnlyList<string> values) =>
        values.Distinct().All(name => model.Graph.Find(name) is { Shape: { Rank: > 0 } s } && s.Dims.Skip(1)
            .All(d => d.IsKnown));

    /// <summary>Runs the model over every calibration batch, handing the requested values (graph
    /// outputs or intermediates) of each batch to <paramref name="visit"/>; nothing is kept.</summary>
    public int Stream(Model model, IReadOnlyList<string> values, Action<Batch, IReadOnlyList<Tensor>> visit,
        string? progressLabel = null)
    {
        var outputs = model.Graph.Outputs.Select(o => o.Name).ToHashSet();
        using var session = RunnerFor(model, values.Where(v => !outputs.Contains(v)).Distinct());
        var data = DataFor(session.Inputs);
        var progress = progressLabel is not null ? Progress : null;
        int seen = 0;
        ShapeInference.Run(model);
        foreach (var batch in data.Batches(BatchFor(model, values, session, data)))
        {
            var outs = session.Run(batch.Inputs, values);
            visit(batch, outs);
            seen += (int)(batch.Inputs.Values.FirstOrDefault()?.Dims.FirstOrDefault() ?? 1);
            progress?.Invoke(progressLabel!, seen, data.SampleCount);
        }
        if (seen < data.SampleCount) progress?.Invoke(progressLabel!, data.SampleCount, data.SampleCount);
        return seen;
    }
}
