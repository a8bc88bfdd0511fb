// quantize: post-training int8 quantization from calibration data (main graph only; subgraphs stay float).
//   1. calibrate every activation a quantization may touch, in one streaming pass (Calibration:
//      minmax | percentile | entropy | mse);
//   2. emit QDQ (QdqEmitter), or lower it to QOperator ops (format=qoperator, QOperatorLowering);
//   3. with max-drop >= 0 (accuracy-aware, needs --eval): measure the int8 model on the evaluation data
//      (accuracy with labels, else top-1 agreement with fp32, else output cosine), and while the drop
//      exceeds max-drop, fall back to float the quantized op whose own output is worst (lowest SQNR of
//      its int8 activation against fp32), one at a time, keeping the best model seen (AccuracyAwareSearch).
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class Quantize : Pass
{
    public override string Name => "quantize";
    public override string Summary =>
        "post-training int8 quantization (QDQ or QOperator) from calibration data, with an optional accuracy "
        + "budget that keeps the worst ops in float";
    public override bool IsExact(PassOptions options) => false;
    public override string BudgetOption => "max-drop";
    public override DataNeeds Needs(PassOptions options) =>
        DataNeeds.Calibration | (options.Double("max-drop") >= 0 ? DataNeeds.Evaluation : DataNeeds.None);
    public override IReadOnlyList<PassOption> Options { get; } =
    [
        PassOption.Enum("format", "qdq", ["qdq", "qoperator"], "QuantizeLinear/DequantizeLinear pairs ORT fuses, or QLinearConv/QLinearMatMul/... ops"),
        PassOption.Enum("calibrate", "minmax", RangeCalibrator.Methods, "how activation ranges are chosen"),
        PassOption.Double("percentile", 99.999, "percentile kept by calibrate=percentile"),
        PassOption.Bool("moving-average", false, "calibrate=minmax: moving average (0.01) of batch extremes instead of the global min/max"),
        PassOption.Bool("per-channel", true, "int8 weights with one scale per output channel (opset 13+), else one per tensor"),
        PassOption.Enum("activation-type", "uint8", ["uint8", "int8"], "activations uint8 asymmetric or int8 symmetric"),
        PassOption.String("include", "", "only these nodes (names, output names or op types; ';'-separated); empty: all supported"),
        PassOption.String("exclude", "", "keep these nodes in float (names, output names or op types; ';'-separated)"),
        PassOption.Enum("reduce-range", "auto", ["auto", "true", "false"],
            "7-bit weights ([-63, 63]) so ORT's uint8 x int8 kernels cannot saturate; auto: on x86 CPUs without VNNI"),
        PassOption.Double("max-drop", -1, "accuracy-aware: largest accuracy drop in points on --eval data (agreement without labels; -1: off)"),
        PassOption.Int("max-trials", 24, "accuracy-aware: most fallback trials"),
        PassOption.Bool("tune-calibration", true,
            "accuracy-aware: try the other calibration methods, for all tensors and for the worst ops' outputs"),
        PassOption.Enum("search", "class", ["class", "op"],
            "accuracy-aware: try whole op classes in float first (fastest within the budget), or one op at a time"),
    ];

    public static QuantizeOptions ReadOptions(PassOptions o) => new()
    {
        PerChannel = o.Bool("per-channel"),
        ActivationType = o.Enum("activation-type") == "int8" ? DataType.Int8 : DataType.UInt8,
        Include = Split(o.String("include")),
        Exclude = Split(o.String("exclude")),
        WeightMax = ReduceRange(o) ? 63 : 127,
    };

    /// <summary>reduce-range resolved: auto follows this CPU (Int8Hardware.U8S8Saturates).</summary>
    public static bool ReduceRange(PassOptions o) => o.Enum("reduce-range") switch
    {
        "true" => true,
        "false" => false,
        _ => Int8Hardware.U8S8Saturates,
    };

    private static HashSet<string> Split(string s) => s.Split(';', StringSplitOptions.RemoveEmptyEntries
        | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);

    public override void Run(PassContext ctx, PassOptions o)
    {
        var calib = ctx.RequireCalibration(Name);
        var model = ctx.Model;
        // Cheap preconditions before the (possibly long) calibration.
        UpgradeOpset.Require(ctx, Name, 13, "per-channel int8 weights");
        ShapeInference.Run(model);
        var qo = ReadOptions(o);
        var factory = RangeCalibrator.Factory(o.Enum("calibrate"), o.Double("percentile"), o.Bool("moving-average"));
        // Accuracy-aware: every method in the same pass, so the search can choose one per tensor.
        if (o.Double("max-drop") >= 0 && o.Bool("tune-calibration"))
            factory = () => new EveryMethodCalibrator(o.Enum("calibrate"), o.Double("percentile"),
                o.Bool("moving-average"));
        var tensors = QdqEmitter.CalibrationTensors(model);
        var ranges = ActivationRanges.Collect(calib, model, tensors, factory, "quantize: calibration");
        ctx.Stats.Count("tensors calibrated", ranges.Count);
        bool qoperator = o.Enum("format") == "qoperator";
        var fallback = new HashSet<string>(StringComparer.Ordinal);
        if (o.Double("max-drop") >= 0)
        {
            var eval = ctx.RequireEvaluation("quantize{max-drop=...}");
            (fallback, ranges) = AccuracyAwareSearch.Run(ctx, model, ranges, qo, qoperator, eval,
                o.Double("max-drop"), (int)o.Int("max-trials"), o.Enum("search") == "class");
        }
        var result = QdqEmitter.Emit(model, ctx.Rewriter, ranges, qo, fallback);
        if (qoperator) QOperatorLowering.Run(model, ctx.Rewriter, ctx.Stats);
        Report(ctx, result, ranges, qo);
    }

    private static void Report(PassContext ctx, QdqResult r, Dictionary<string, RangeCalibrator> ranges,
        QuantizeOptions o)
    {
        var kind = o.ActivationType == DataType.Int8 ? RangeKind.Symmetric : RangeKind.Asymmetric;
        foreach (var (key, op, absorbed) in r.Quantized)
        {
            ctx.Stats.Count($"quantized {op}");
            var d = new QuantizedOp(key, op, "int8") { Absorbed = absorbed };
            if (r.Outputs.TryGetValue(key, out var t) && ranges.TryGetValue(t.Reference, out var cal))
            {
                var (lo, hi) = cal.Range(kind);
                d = d with { RangeMin = lo, RangeMax = hi };
            }
            ctx.Stats.Decide(d);
        }
        foreach (var (key, op, reason) in r.Skipped)
        {
            ctx.Stats.Count("kept in float");
            ctx.Stats.Decide(new QuantizedOp(key, op, "float") { Reason = reason });
        }
        if (!r.PerChannel
            && o.PerChannel) ctx.Stats.Notes.Add("per-channel weights need opset 13; used per-tensor scales");
        if (o.WeightMax < 127)
            ctx.Stats.Notes.Add($"7-bit weights in [-{o.WeightMax}, {o.WeightMax}] (reduce-range; this CPU: {Int8Hardware.Description})");
    }
}
