// Runs a reference and a candidate model on the same inputs and compares every output.
// An element fails only if it exceeds both tolerances: |a-b| > atol and |a-b| > rtol*|a| (as
// Polygraphy does); a model passes when no element fails and all shapes agree. Also reported per
// output: max abs error, max rel error, cosine similarity and SQNR (as Fidelity defines them), and for
// 2-D outputs [batch, classes] the
// top-1 agreement; with labels, each model's accuracy (argmax of the first 2-D output).
// Statistics stream over the batches, so the data set size does not raise memory.
using OnnxOpt.GraphIR;
using OnnxOpt.Data;

namespace OnnxOpt.Runtime.Validation;

public sealed record ValidationOptions
{
    public double Rtol { get; init; } = 1e-4;
    public double Atol { get; init; } = 1e-5;
    public int BatchSize { get; init; } = 32;
    public SessionSettings Settings { get; init; } = new();
    /// <summary>The measure budgets are judged on (FidelityMetric); by default chosen from the first
    /// output.</summary>
    public MetricSpec Metric { get; init; } = MetricSpec.Default;
}

public sealed record OutputComparison(
    string Name, long Elements, long Failures, double MaxAbsError, double MaxRelError, double Cosine,
    double? Top1Agreement, string? Problem, double SqnrDb = double.NaN)
{
    public bool Passed => Failures == 0 && Problem is null;
    /// <summary>The measure's output under --metric iou:T: IoU of the elements above T.</summary>
    public double? Iou { get; init; }
    /// <summary>The measure's output under --metric agreement, rank >= 3: argmax agreement per position.</summary>
    public double? PositionAgreement { get; init; }
}

public sealed record ValidationReport(
    string Data, int Samples, double Rtol, double Atol, IReadOnlyList<OutputComparison> Outputs,
    double? ReferenceAccuracy, double? CandidateAccuracy)
{
    public bool Passed => Outputs.All(o => o.Passed);
    /// <summary>The budget's measure (ValidationOptions.Metric resolved) and its drop.</summary>
    public MetricResult? Primary { get; init; }
}

public static class Validator
{
    public static ValidationReport Compare(IModelRunner reference, IModelRunner candidate, DataSet data,
        ValidationOptions? options = null)
    {
        options ??= new ValidationOptions();
        var refOutputs = reference.Outputs.Select(o => o.Name).ToList();
        var candNames = candidate.Outputs.Select(o => o.Name).ToHashSet();
        var missing = refOutputs.Where(n => !candNames.Contains(n)).ToList();
        var candInputs = candidate.Inputs.Select(i => i.Name).ToHashSet();
        long refCorrect = 0, candCorrect = 0, labelled = 0;
        int samples = 0;
        var metric = ResolvedMetric.Resolve(options.Metric, reference.Outputs, reference.Inputs, data.HasLabels);
        var stats = refOutputs.ToDictionary(n => n,
            n => new Accumulator(n, options, n == metric.Output ? metric : null));
        var pooled = metric.Pooled ? new PooledComparison() : null;
        var tally = TallyFor(metric);
        foreach (var batch in data.Batches(options.BatchSize))
        {
            var candFeed = batch.Inputs.Where(kv => candInputs.Contains(kv.Key)).ToDictionary();
            var present = refOutputs.Where(candNames.Contains).ToList();
            var (r, c) = RandomDimsHint.Wrap(data,
                () => (reference.Run(batch.Inputs), candidate.Run(candFeed, present)));
            samples += (int)(batch.Inputs.Values.FirstOrDefault()?.Dims.FirstOrDefault() ?? 1);
            for (int i = 0; i < present.Count; i++)
                stats[present[i]].Add(r[refOutputs.IndexOf(present[i])], c[i]);
            if (pooled is not null && present.IndexOf(metric.Output) is var pi && pi >= 0
                && batch.Inputs.TryGetValue(metric.MaskInput!, out var mask))
                pooled.Add(r[refOutputs.IndexOf(metric.Output)], c[pi], mask);
            if (tally is not null && metric.Kind != MetricKind.Accuracy && !metric.Pooled
                && present.IndexOf(metric.Output) is var mi && mi >= 0)
                AddSamples(tally, metric, r[refOutputs.IndexOf(metric.Output)], c[mi]);
            if (batch.Labels is { } labels)
            {
                var ri = Array.FindIndex(r, t => t.Dims.Length == 2 && t.Dims[0] == labels.Length);
                if (ri >= 0)
                {
                    var classes = r[ri].Dims[1];
                    var outside = Array.FindIndex(labels, l => l < 0 || l >= classes);
                    if (outside >= 0)
                        throw new OnnxModelException($"{data.Description}: label {labels[outside]} of sample "
                            + $"{labelled + outside} is outside the model's {classes} classes");
                    var ci = present.IndexOf(refOutputs[ri]);
                    var ra = ArgMax(r[ri]);
                    var ca = ci >= 0 ? ArgMax(c[ci]) : null;
                    for (int k = 0; k < labels.Length; k++)
                    {
                        labelled++;
                        if (ra[k] == labels[k]) refCorrect++;
                        if (ca is not null && ca[k] == labels[k]) candCorrect++;
                        if (metric.Kind == MetricKind.Accuracy)
                            tally?.Add(ra[k] == labels[k] ? 1 : 0, ca is not null && ca[k] == labels[k] ? 1 : 0);
                    }
                }
            }
        }
        var outputs = refOutputs.Select(n => missing.Contains(n)
            ? new OutputComparison(n, 0, 0, double.NaN, double.NaN, double.NaN, null,
                "the candidate model has no such output")
            : stats[n].Result()).ToList();
        double? refAcc = labelled > 0 ? (double)refCorrect / labelled : null;
        double? candAcc = labelled > 0 ? (double)candCorrect / labelled : null;
        if (pooled is not null && metric.Kind == MetricKind.Cosine && tally is not null)
            foreach (var cos in pooled.SampleCosines()) tally.Add(cos, 1);
        return new ValidationReport(data.Description, samples, options.Rtol, options.Atol, outputs, refAcc, candAcc)
        {
            Primary = Measure(metric, outputs.First(o => o.Name == metric.Output), pooled, refAcc, candAcc) with
            {
                // A tally that does not add up to the reported measure (a missing output, a shape mismatch) bounds
                // nothing.
                Tally = tally is { Count: > 0 } && (metric.Kind != MetricKind.Accuracy || tally.Count == labelled)
                    ? tally : null,
            },
        };
    }

    /// <summary>The per-sample sums of the budget's measure (SampleTally); none for neighbour agreement, which
    /// is not a sum over samples.</summary>
    private static SampleTally? TallyFor(ResolvedMetric m) => m.Kind switch
    {
        MetricKind.Accuracy => new SampleTally(SampleTally.Form.Accuracy),
        MetricKind.Agreement when m.Pooled => null,
        MetricKind.Agreement or MetricKind.Iou => new SampleTally(SampleTally.Form.Ratio),
        MetricKind.Cosine => new SampleTally(m.Pooled ? SampleTally.Form.Ratio : SampleTally.Form.Cosine),
        _ => new SampleTally(SampleTally.Form.Noise),
    };

    /// <summary>Each sample's (dim 0's) sums of the measure.</summary>
    private static void AddSamples(SampleTally tally, ResolvedMetric m, Tensor a, Tensor b)
    {
        if (!a.Dims.SequenceEqual(b.Dims) || a.Dims.Length == 0 || a.Dims[0] == 0) return;
        var x = a.ToDoubleArray();
        var y = b.ToDoubleArray();
        int rows = (int)a.Dims[0], per = x.Length / rows;
        int classes = a.Dims.Length > 1 ? (int)a.Dims[^1] : 1;
        for (int i = 0; i < rows; i++)
        {
            int at = i * per;
            switch (m.Kind)
            {
                case MetricKind.Agreement:
                    long same = 0, positions = 0;
                    for (int p = at; classes > 0 && p + classes <= at + per; p += classes)
                    {
                        positions++;
                        if (ArgMaxOf(x, p, classes) == ArgMaxOf(y, p, classes)) same++;
                    }
                    tally.Add(same, positions);
                    break;
                case MetricKind.Iou:
                    long inter = 0, union = 0;
                    for (int k = at; k < at + per; k++)
                    {
                        bool p = x[k] > m.Threshold, q = y[k] > m.Threshold;
                        if (p && q) inter++;
                        if (p || q) union++;
                    }
                    // An empty map in both models is the same map.
                    tally.Add(union == 0 ? 1 : inter, union == 0 ? 1 : union);
                    break;
                default:
                    var s = new SignalComparison();
                    for (int k = at; k < at + per; k++) s.Add(x[k], y[k]);
                    if (m.Kind == MetricKind.Cosine) tally.Add(s.Dot, s.ReferenceEnergy, s.CandidateEnergy);
                    else tally.Add(s.ReferenceEnergy, s.ErrorEnergy);
                    break;
            }
        }
    }

    private static int ArgMaxOf(double[] v, int at, int n)
    {
        int best = 0;
        for (int k = 1; k < n; k++) if (v[at + k] > v[at + best]) best = k;
        return best;
    }

    private static MetricResult Measure(ResolvedMetric m, OutputComparison o, PooledComparison? pooled,
        double? refAcc, double? candAcc)
    {
        switch (m.Kind)
        {
            case MetricKind.Accuracy when refAcc is double ra && candAcc is double ca:
                return new MetricResult(m, 100 * ca, 100 * (ra - ca), 100 * ra);
            case MetricKind.Agreement:
                var agree = pooled?.NeighbourAgreement ?? 100 * (o.PositionAgreement ?? o.Top1Agreement ?? 1);
                return new MetricResult(m, agree, 100 - agree);
            case MetricKind.Iou:
                var iou = o.Iou ?? 1;
                return new MetricResult(m, iou, 100 * (1 - iou));
            case MetricKind.Sqnr:
                var noise = double.IsPositiveInfinity(o.SqnrDb) ? 0 : 100 * Math.Pow(10, -o.SqnrDb / 10);
                return new MetricResult(m, o.SqnrDb, double.IsNaN(noise) ? 100 : noise);
            default:
                var cos = pooled?.MeanCosine ?? o.Cosine;
                return new MetricResult(m, cos, double.IsNaN(cos) ? 100 : 100 * (1 - cos));
        }
    }

    /// <summary>Row-wise argmax of a [batch, classes] float tensor.</summary>
    public static long[] ArgMax(Tensor t)
    {
        var v = t.ToDoubleArray();
        var rows = t.Dims[0];
        var cols = t.Dims.Length > 1 ? t.Dims[1] : 1;
        var r = new long[rows];
        for (long i = 0; i < rows; i++)
        {
            long best = 0;
            for (long j = 1; j < cols; j++) if (v[i * cols + j] > v[i * cols + best]) best = j;
            r[i] = best;
        }
        return r;
    }

    private sealed class Accumulator(string name, ValidationOptions o, ResolvedMetric? metric)
    {
        private long _n, _fail, _rows, _agree, _inter, _union, _positions, _samePositions;
        private double _maxAbs, _maxRel;
        private readonly SignalComparison _signal = new();
        private string? _problem;

        public void Add(Tensor a, Tensor b)
        {
            if (!a.Dims.SequenceEqual(b.Dims))
            {
                _problem ??= $"shape [{string.Join(",", b.Dims)}] differs from the reference's [{string.Join(",", a.Dims)}]";
                return;
            }
            if (a.ElementType != b.ElementType)
            {
                _problem ??= $"element type {b.ElementType.Name()} differs from the reference's {a.ElementType.Name()}";
                return;
            }
            var x = a.ToDoubleArray();
            var y = b.ToDoubleArray();
            for (int i = 0; i < x.Length; i++)
            {
                var abs = Math.Abs(x[i] - y[i]);
                if (double.IsNaN(x[i]) && double.IsNaN(y[i])) abs = 0;
                var rel = abs == 0 ? 0 : abs / Math.Max(Math.Abs(x[i]), double.Epsilon);
                if (double.IsNaN(abs) || (abs > o.Atol && rel > o.Rtol)) _fail++;
                if (!(abs <= _maxAbs)) _maxAbs = abs;
                if (Math.Abs(x[i]) > o.Atol && !(rel <= _maxRel)) _maxRel = rel;
                _signal.Add(x[i], y[i]);
            }
            _n += x.Length;
            if (a.Dims.Length == 2 && a.Dims[1] > 1)
            {
                var ra = ArgMax(a); var rb = ArgMax(b);
                for (int i = 0; i < ra.Length; i++) { _rows++; if (ra[i] == rb[i]) _agree++; }
            }
            if (metric is { Kind: MetricKind.Iou })
                for (int i = 0; i < x.Length; i++)
                {
                    bool p = x[i] > metric.Threshold, q = y[i] > metric.Threshold;
                    if (p && q) _inter++;
                    if (p || q) _union++;
                }
            if (metric is { PerPosition: true } && a.Dims[^1] > 0)
            {
                var classes = (int)a.Dims[^1];
                for (int at = 0; at + classes <= x.Length; at += classes)
                {
                    _positions++;
                    if (ArgMaxOf(x, at, classes) == ArgMaxOf(y, at, classes)) _samePositions++;
                }
            }
        }

        public OutputComparison Result()
        {
            return new OutputComparison(name, _n, _fail, _maxAbs, _maxRel, _signal.Cosine,
                _rows > 0 ? (double)_agree / _rows : null, _problem, _signal.SqnrDb)
            {
                // Nothing above the threshold in either model: the same (empty) map.
                Iou = metric is { Kind: MetricKind.Iou } ? (_union == 0 ? 1 : (double)_inter / _union) : null,
                PositionAgreement = metric is { PerPosition: true } && _positions > 0
                    ? (double)_samePositions / _positions : null,
            };
        }
    }
}
