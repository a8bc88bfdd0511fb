// The original model's answers on a data set, to measure how far a rewritten model drifts from it:
//   classifiers (first output [batch, classes]): top-1 agreement with the original, in %; with labels,
//     also both models' accuracy in %;
//   other models: cosine of the first output x 100;
//   always: SQNR of the first output. Each measure as Runtime.Validation.Fidelity defines it.
//   --metric iou:T (a score map) or agreement on a [batch, positions, classes] output (a sequence): that measure,
//   on the output --metric-output names (the first by default), as validation computes it (FidelityMetric).
// Used by linearize's budget and by quantize's accuracy-aware search.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public sealed record FidelityResult(double Agreement, double SqnrDb, double? Accuracy = null)
{
    /// <summary>The drop measure's per-sample sums (for its confidence bound).</summary>
    public SampleTally? Tally { get; init; }
}

public sealed class Reference
{
    private readonly List<float[]> _outputs = new();
    private readonly List<long[]> _argmax = new();
    private string _output = "";
    public string Metric { get; private set; } = "top1_agreement";
    public int Samples { get; private set; }
    /// <summary>The original's accuracy in % when the data has labels.</summary>
    public double? Accuracy { get; private set; }

    private ResolvedMetric? _dense;

    public static Reference Capture(CalibrationSource data, Model model, MetricSpec? spec = null)
    {
        var r = new Reference { _output = model.Graph.Outputs[0].Name };
        if (spec is { Kind: MetricKind.Iou or MetricKind.Agreement })
        {
            var resolved = ResolvedMetric.Resolve(spec, Data.IoInfo.OutputsOf(model.Graph),
                Data.IoInfo.InputsOf(model.Graph), hasLabels: false);
            if (resolved.Kind == MetricKind.Iou || resolved.PerPosition)
            {
                r._dense = resolved;
                r._output = resolved.Output;
                r.Metric = resolved.Kind == MetricKind.Iou ? "iou_x100" : "position_agreement";
                r.Samples = data.Stream(model, [r._output], (_, outs) => r._outputs.Add(outs[0].ToFloatArray()));
                return r;
            }
        }
        long correct = 0, labelled = 0;
        r.Samples = data.Stream(model, [r._output], (batch, outs) =>
        {
            var t = outs[0];
            if (t.Dims.Length == 2 && t.Dims[1] > 1)
            {
                var am = Validator.ArgMax(t);
                r._argmax.Add(am);
                if (batch.Labels is { } l) for (int i = 0; i < l.Length; i++) { labelled++; if (am[i] == l[i]) correct++; }
            }
            else r.Metric = "cosine_x100";
            r._outputs.Add(t.ToFloatArray());
        });
        if (labelled > 0 && r.Metric == "top1_agreement") r.Accuracy = 100.0 * correct / labelled;
        return r;
    }

    public FidelityResult Measure(CalibrationSource data, Model candidate)
    {
        if (_dense is not null) return DenseMeasure(data, candidate);
        long agree = 0, total = 0, correct = 0, labelled = 0;
        var signal = new SignalComparison();
        var paired = Accuracy is not null;
        var tally = new SampleTally(Metric == "top1_agreement" ? paired ? SampleTally.Form.Accuracy
            : SampleTally.Form.Ratio : SampleTally.Form.Cosine);
        int k = 0;
        data.Stream(candidate, [_output], (batch, outs) =>
        {
            var b = outs[0].ToFloatArray();
            signal.Add(_outputs[k], b);
            if (Metric == "top1_agreement")
            {
                var a = Validator.ArgMax(outs[0]);
                var want = _argmax[k];
                for (int i = 0; i < a.Length; i++)
                {
                    total++;
                    if (a[i] == want[i]) agree++;
                    if (!paired) tally.Add(a[i] == want[i] ? 1 : 0, 1);
                }
                if (batch.Labels is { } l)
                    for (int i = 0; i < l.Length; i++)
                    {
                        labelled++;
                        if (a[i] == l[i]) correct++;
                        if (paired) tally.Add(want[i] == l[i] ? 1 : 0, a[i] == l[i] ? 1 : 0);
                    }
            }
            else
            {
                int rows = (int)Math.Max(outs[0].Dims.FirstOrDefault(), 1), per = b.Length / rows;
                for (int i = 0; i < rows; i++)
                {
                    var row = new SignalComparison();
                    row.Add(_outputs[k].AsSpan(i * per, per), b.AsSpan(i * per, per));
                    tally.Add(row.Dot, row.ReferenceEnergy, row.CandidateEnergy);
                }
            }
            k++;
        });
        var agreement = Metric == "top1_agreement" ? Fidelity.Percent(agree, total) : 100.0 * signal.Cosine;
        return new FidelityResult(agreement, signal.SqnrDb,
            labelled > 0 && Accuracy is not null ? Fidelity.Percent(correct, labelled) : null)
        {
            Tally = tally,
        };
    }

    /// <summary>IoU x 100 or per-position agreement (%) of the candidate against the captured outputs.</summary>
    private FidelityResult DenseMeasure(CalibrationSource data, Model candidate)
    {
        long inter = 0, union = 0, same = 0, positions = 0;
        var signal = new SignalComparison();
        var tally = new SampleTally(SampleTally.Form.Ratio);
        int k = 0;
        data.Stream(candidate, [_output], (_, outs) =>
        {
            var a = _outputs[k++];
            var t = outs[0];
            var b = t.ToFloatArray();
            signal.Add(a, b);
            int n = Math.Min(a.Length, b.Length), rows = (int)Math.Max(t.Dims.FirstOrDefault(), 1), per = n / rows;
            var classes = (int)t.Dims[^1];
            for (int r = 0; r < rows; r++)
            {
                long hit = 0, count = 0;
                if (_dense!.Kind == MetricKind.Iou)
                    for (int i = r * per; i < (r + 1) * per; i++)
                    {
                        bool p = a[i] > _dense.Threshold, q = b[i] > _dense.Threshold;
                        if (p && q) hit++;
                        if (p || q) count++;
                    }
                else
                    for (int at = r * per; at + classes <= (r + 1) * per; at += classes)
                    {
                        count++;
                        if (ArgMax(a, at, classes) == ArgMax(b, at, classes)) hit++;
                    }
                if (_dense.Kind == MetricKind.Iou) { inter += hit; union += count; }
                else { same += hit; positions += count; }
                // An empty map in both models is the same map.
                tally.Add(count == 0 ? 1 : hit, count == 0 ? 1 : count);
            }
        });
        var value = _dense!.Kind == MetricKind.Iou ? (union == 0 ? 100 : 100.0 * inter / union)
            : Fidelity.Percent(same, positions);
        return new FidelityResult(value, signal.SqnrDb) { Tally = tally };
    }

    private static int ArgMax(float[] v, int at, int n)
    {
        int best = 0;
        for (int i = 1; i < n; i++) if (v[at + i] > v[at + best]) best = i;
        return best;
    }

    /// <summary>The drop in points the budget is about: accuracy when labels exist, else agreement (or cosine x 100;
    /// IoU x 100 or per-position agreement under those measures).</summary>
    public double Drop(FidelityResult f) => _dense is not null ? 100 - f.Agreement : Fidelity.DropOf(Accuracy,
        f.Accuracy, Metric == "top1_agreement" ? f.Agreement : null, f.Agreement / 100).Points;

    /// <summary>The upper bound of the drop at this confidence (SampleTally); the drop itself for 0.</summary>
    public double UpperDrop(FidelityResult f, double confidence) =>
        confidence > 0 && f.Tally is { Count: > 0 } t ? Math.Max(t.Upper(confidence), Drop(f)) : Drop(f);

    /// <summary>What <see cref="Drop"/> measures.</summary>
    public string DropMetric => Accuracy is not null ? "accuracy" : Metric;
}
