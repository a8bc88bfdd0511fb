// The decisions passes record for the report, one typed record per kind (instead of key/value bags):
// what was considered, what was decided and the figures behind it. Reports serialize them with
// System.Text.Json source generation (ReportJson): snake_case names, in declaration order, a null
// field left out (not applicable), doubles as what they mean. A library user's pass may add records of
// its own (they serialize by reflection).
using System.Text.Json.Serialization;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

// ---- linearize

/// <summary>An activation linearize did not consider (not between linear ops, ...).</summary>
public sealed record ActivationSkipped(string Activation, string Op, string Reason) : Decision
{
    public string Decision => "kept";
}

/// <summary>An activation linearize measured, and what it decided.</summary>
public sealed record ActivationDecision(string Activation, string Op, string Decision, double FractionNegative,
    double NegativeEnergyRatio, double? FractionAboveClip, double Min, double Max, double Score, double? AgreementAfter,
    double? SqnrDbAfter) : Decision;

public sealed record LinearizeSummary(string Metric, double AgreementAfterAll, double? SqnrDbAfterAll,
    long Samples) : Decision
{
    public string Summary => "linearize";
}

// ---- fold-conv

/// <summary>A candidate fold: folded, kept by the cost model, or refused (with the reason).</summary>
public sealed record FoldDecision(string Fold, string? Kind, string Decision) : Decision
{
    public string? Reason { get; init; }
    public bool? Exact { get; init; }
    public bool? BorderBiasMap { get; init; }
    public string? Kernel { get; init; }
    public string? Stride { get; init; }
    public long? Groups { get; init; }
    public long? MacsBefore { get; init; }
    public long? MacsAfter { get; init; }
    public long? ParamsBefore { get; init; }
    public long? ParamsAfter { get; init; }
}

/// <summary>objective=latency: the timing that decided a fold.</summary>
public sealed record FoldTiming(string Fold, double BeforeMs, double AfterMs) : Decision
{
    public string Objective => "latency";
}

/// <summary>allow-border-error=true: the measured error of the approximate folds, per output.</summary>
public sealed record BorderError(string MeasuredBorderError, double MaxAbsError, double Cosine,
    double? Top1Agreement) : Decision;

// ---- quantize

/// <summary>A quantization candidate: int8 (with its absorbed activation and range) or kept in float.</summary>
public sealed record QuantizedOp(string Node, string Op, string Decision) : Decision
{
    public string? Absorbed { get; init; }
    public double? RangeMin { get; init; }
    public double? RangeMax { get; init; }
    public string? Reason { get; init; }
    /// <summary>Bits of the stored weight grid (8; 7 with reduce-range; 4 for W4A8 or 4-bit tables).</summary>
    public int? Bits { get; init; }
    /// <summary>SQNR of the dequantized weight (or embedding table) against the float one, dB.</summary>
    public double? WeightSqnrDb { get; init; }

    /// <summary>10 log10(sum w^2 / sum (w - w')^2) of a weight and its dequantized form, at most 200 (exact; JSON
    /// has no infinity).</summary>
    public static double SqnrDb(float[] w, Func<int, double> dequantized)
    {
        double signal = 0, noise = 0;
        for (int i = 0; i < w.Length; i++)
        {
            double d = w[i] - dequantized(i);
            signal += (double)w[i] * w[i];
            noise += d * d;
        }
        return noise == 0 || signal / noise > 1e20 ? 200
            : Math.Round(Runtime.Validation.Fidelity.SqnrDb(signal, noise), 2);
    }

    /// <summary>Bits of a symmetric grid [-Q, Q]: 127 -> 8, 63 -> 7, 7 -> 4.</summary>
    public static int BitsOf(int qmax) => (int)Math.Ceiling(Math.Log2(2.0 * qmax + 1));
}

/// <summary>Accuracy-aware search: an op's own error (the output's SQNR with only that op in int8).</summary>
public sealed record OpSensitivity(string Node, double? OutputSqnrDbAloneInInt8) : Decision;

/// <summary>Accuracy-aware search: one fallback trial.</summary>
public sealed record QuantizeTrial(long Trial, string? FellBack, string InFloat, string Metric, double Reference,
    double Int8,
    double Drop, double Agreement) : Decision
{
    /// <summary>search=class: the candidate's median ORT latency (1 thread), ms.</summary>
    public double? LatencyMs { get; init; }
    /// <summary>The drop's upper confidence bound, what the budget judged (null: the drop itself).</summary>
    public double? DropUpper { get; init; }
}

// ---- sparsify

public sealed record LayerSparsity(string Layer, string Weight, long Weights, long Kept, double Density, bool Collapsed,
    double ScoreTotal) : Decision;

public sealed record SparsifySummary(string Method, long Rounds, double R, long Weights, long Kept, double Density,
    bool LayerCollapse) : Decision
{
    public string Summary => "sparsify";
}

// ---- prune

/// <summary>A dependency group: channels before and after, or why it was left whole; its members, MACs and
/// parameters before and after, the normalized importance of the channels kept and removed, and the worst
/// SQNR of its refitted consumers.</summary>
public sealed record GroupPruned(int Group, int ChannelsBefore, int ChannelsAfter, string? NotPrunable,
    string Producers,
    long Macs) : Decision
{
    public string Consumers { get; init; } = "";
    public string Tied { get; init; } = "";
    public long MacsAfter { get; init; }
    public long Params { get; init; }
    public long ParamsAfter { get; init; }
    public double? ImportanceKeptMean { get; init; }
    public double? ImportanceKeptMin { get; init; }
    public double? ImportanceRemovedMean { get; init; }
    public double? ImportanceRemovedMax { get; init; }
    public double? SqnrDbAfterRepair { get; init; }
}

/// <summary>prune's latency guard: the input and the pruned model timed in ORT, and whether it was kept.</summary>
public sealed record PruneLatency(double BeforeMs, double AfterMs, double Speedup, double MinSpeedup,
    bool Kept) : Decision;

/// <summary>Source-generated JSON for every decision onnxopt's passes record.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, Converters = [typeof(MeaningfulDoubleConverter)])]
[JsonSerializable(typeof(ActivationSkipped))]
[JsonSerializable(typeof(ActivationDecision))]
[JsonSerializable(typeof(LinearizeSummary))]
[JsonSerializable(typeof(FoldDecision))]
[JsonSerializable(typeof(FoldTiming))]
[JsonSerializable(typeof(BorderError))]
[JsonSerializable(typeof(QuantizedOp))]
[JsonSerializable(typeof(EqualizedPair))]
[JsonSerializable(typeof(OpSensitivity))]
[JsonSerializable(typeof(QuantizeTrial))]
[JsonSerializable(typeof(LayerSparsity))]
[JsonSerializable(typeof(SparsifySummary))]
[JsonSerializable(typeof(GroupPruned))]
[JsonSerializable(typeof(LayerRefit))]
[JsonSerializable(typeof(PruneLatency))]
[JsonSerializable(typeof(GroupSensitivity))]
public sealed partial class ReportJson : JsonSerializerContext;

/// <summary>Doubles as what they mean: 10 significant digits; NaN and infinities as null.</summary>
public sealed class MeaningfulDoubleConverter : JsonConverter<double>
{
    public override bool HandleNull => false;

    public override double Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert,
        System.Text.Json.JsonSerializerOptions options) =>
        reader.TokenType == System.Text.Json.JsonTokenType.Null ? double.NaN : reader.GetDouble();

    public override void Write(System.Text.Json.Utf8JsonWriter writer, double value,
        System.Text.Json.JsonSerializerOptions options)
    {
        if (double.IsFinite(value)) writer.WriteNumberValue(JsonNumbers.Meaningful(value));
        else writer.WriteNullValue();
    }
}
