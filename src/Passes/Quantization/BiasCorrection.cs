// bias-correct{per-channel,reduce-range}: removes from each layer's bias the mean output error its int8 weights
// will make (Nagel, van Baalen, Blankevoort, Welling, ICCV 2019, section 4.2: bias correction, with the input
// means measured on calibration data rather than read from BatchNorm).
//   before: y = W_q x + b, where W_q = s * clamp(round(W / s)) is what quantize will store:
//           E[y] = W E[x] + b + (W_q - W) E[x]; the last term is a per-channel shift the float model does not have
//           (large for per-tensor weights of a depthwise conv, whose 9 weights per channel round coarsely)
//   after:  b' = b - (W_q - W) E[x], so E[W_q x + b'] = E[W x + b] on the calibration data
// E[x] is the mean of each input channel over the calibration samples and every other axis. For a Conv the error of
// output channel o sums (W_q - W)[o, i, k] E[x_i] over its kernel window; at the borders, where padding reads zeros,
// the window sees fewer inputs and the correction overshoots by the missing taps' share (ignored, as in the paper).
// Layers: Conv (any group), Gemm (transA 0) and 2-D MatMul (which becomes a Gemm with the bias) with constant float
// weights, quantized as the quantize pass does (QdqEmitter.WeightAxis, the same scales and rounding, AdaRound's
// when it ran).
// ConvTranspose (the number of taps per output pixel varies with the stride) and MatMuls over [.., K] (no bias
// input) are left with the reason.
// As a pass it runs right before quantize with the same weight options; quantize{bias-correct=true} applies it to
// exactly the layers it quantizes (and the accuracy-aware search tries it before keeping ops in float).
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record BiasCorrectOptions
{
    [Option("per-channel", "the int8 weights quantize will make: one scale per output channel (opset 13+)")]
    public bool PerChannel { get; init; } = true;
    [Option("reduce-range", "the int8 weights quantize will make: 7-bit ([-63, 63]); auto: on x86 CPUs without VNNI",
        Choices = ["auto", "true", "false"])]
    public string ReduceRange { get; init; } = "auto";
}

/// <summary>A layer whose bias bias-correct changed (or left, with the reason).</summary>
public sealed record BiasCorrected(string Node, string Op, string Decision) : Decision
{
    /// <summary>Mean and largest |correction| over output channels.</summary>
    public double? MeanAbsCorrection { get; init; }
    public double? LargestAbsCorrection { get; init; }
    public string? Reason { get; init; }
}

public static class BiasCorrection
{
    /// <summary>The correction each eligible layer's bias takes (by QdqEmitter.Key), from the input means of
    /// <paramref name="model"/> on the calibration data; refused layers come back with their reasons.</summary>
    public static (Dictionary<string, float[]> Corrections, List<BiasCorrected> Refused) Measure(Model model,
        CalibrationSource calib, QuantizeOptions qo)
    {
        ShapeInference.Run(model);
        bool perChannel = qo.PerChannel && (model.OpsetVersion("") ?? 1) >= 13;
        var layers = new List<LinearOp>();
        var refused = new List<BiasCorrected>();
        foreach (var n in model.Graph.Nodes)
        {
            if (!n.IsStandard || n.OpType is not ("Conv" or "ConvTranspose" or "Gemm" or "MatMul")) continue;
            if (WhyNot(n, out var op) is { } why)
                refused.Add(new BiasCorrected(QdqEmitter.Key(n), n.OpType, "left") { Reason = why });
            else layers.Add(op!);
        }
        var stats = TensorStatistics.Collect(calib, model, layers.Select(l => l.Node.Input(0)!.Name).ToList(),
            "bias-correct: input means");
        var corrections = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var op in layers)
        {
            var means = stats[op.Node.Input(0)!.Name].Channels.Select(c => c.Mean).ToArray();
            if (means.Length != op.InChannels)
            {
                refused.Add(new BiasCorrected(QdqEmitter.Key(op.Node), op.Node.OpType, "left")
                { Reason = $"its input has {means.Length} channels on axis 1, the weight reads {op.InChannels}" });
                continue;
            }
            corrections[QdqEmitter.Key(op.Node)] = Correction(op, means, QdqEmitter.WeightAxis(op.Node, perChannel),
                qo);
        }
        return (corrections, refused);
    }

    /// <summary>-(W_q - W) E[x] per output channel, W_q the int8 weight quantize stores.</summary>
    public static float[] Correction(LinearOp op, IReadOnlyList<double> inputMeans, int axis, QuantizeOptions qo)
    {
        var q = qo.Weight(op.Node, op.Weight, op.WeightDims, axis);
        long inner = axis < 0 ? 1 : op.WeightDims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
        var e = new double[op.OutChannels];
        for (long i = 0; i < op.Weight.Length; i++)
        {
            var s = q.Scales.Length == 1 ? q.Scales[0] : q.Scales[(int)(i / inner % q.Scales.Length)];
            var dw = (double)q.Values[i] * s - op.Weight[i];
            e[op.OutputChannelOf(i)] += dw * inputMeans[op.InputChannelOf(i)];
        }
        return e.Select(v => (float)-v).ToArray();
    }

    /// <summary>Adds the corrections of the layers <paramref name="include"/> accepts to their biases.</summary>
    public static List<BiasCorrected> Apply(Model model, Rewriter rw, IReadOnlyDictionary<string, float[]> corrections,
        Func<Node, bool> include)
    {
        var done = new List<BiasCorrected>();
        foreach (var n in model.Graph.Nodes.ToList())
        {
            var key = QdqEmitter.Key(n);
            if (!corrections.TryGetValue(key, out var d) || !include(n)) continue;
            if (WhyNot(n, out var op) is not null || op!.OutChannels != d.Length) continue;
            var bias = op.Bias.Select((b, c) => b + d[c]).ToArray();
            op.Write(rw, op.WeightDims, op.Weight, bias);
            done.Add(new BiasCorrected(key, n.OpType, "corrected")
            {
                MeanAbsCorrection = d.Average(v => Math.Abs((double)v)),
                LargestAbsCorrection = d.Max(v => Math.Abs((double)v)),
            });
        }
        return done;
    }

    private static string? WhyNot(Node n, out LinearOp? op)
    {
        op = null;
        if (n.OpType == "ConvTranspose") return "ConvTranspose: the taps per output pixel vary with the stride";
        if (n.OpType == "Gemm" && n.GetInt("transA", 0) != 0) return "Gemm with transA";
        if (!LinearOp.TryOf(n, out op, out var why)) return why;
        if (n.OpType == "MatMul" && n.Input(0)?.Shape is not { Rank: 2 })
            return "MatMul over [.., K]: no bias input to correct";
        return null;
    }
}

public sealed class BiasCorrect : Pass<BiasCorrectOptions>
{
    public override string Name => "bias-correct";
    public override string Summary =>
        "removes from each Conv/Gemm bias the mean output error of its int8 weights (run right before quantize)";
    public override bool IsExact(BiasCorrectOptions options) => false;
    public override DataNeeds Needs(BiasCorrectOptions options) => DataNeeds.Calibration;

    public override void Run(PassContext ctx, BiasCorrectOptions o)
    {
        var calib = ctx.RequireCalibration(Name);
        var qo = new QuantizePassOptions { PerChannel = o.PerChannel, ReduceRange = o.ReduceRange }.ToEmitter();
        var (corrections, refused) = BiasCorrection.Measure(ctx.Model, calib, qo);
        foreach (var r in refused) ctx.Stats.Decide(r);
        var done = BiasCorrection.Apply(ctx.Model, ctx.Rewriter, corrections, _ => true);
        foreach (var d in done) ctx.Stats.Decide(d);
        ctx.Stats.Count(Counters.BiasCorrect.BiasesCorrected, done.Count);
        ctx.Stats.Count(Counters.BiasCorrect.LayersLeft, refused.Count);
        if (done.Count > 0)
            ctx.Stats.Notes.Add($"{done.Count} biases corrected for {(qo.WeightMax < 127 ? "7" : "8")}-bit "
                + $"{(o.PerChannel ? "per-channel" : "per-tensor")} weights (largest shift "
                + $"{done.Max(d => d.LargestAbsCorrection ?? 0):G3}); quantize with the same weight options next");
    }
}
