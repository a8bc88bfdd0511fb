// One report model for optimize runs: the model before and after (inspect statistics), the normalized
// pipeline, every pass run (time, counters, decisions, notes), the validation verdict and the latency.
// Renderers (OptimizeReportWriter: JSON and text) read it; they compute nothing.
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public enum ValidationMode { Tolerance, Agreement }

/// <summary>How the result was validated and whether it was accepted (Reason says why not).</summary>
public sealed record ValidationOutcome(ValidationMode Mode, bool Accepted, string? Reason, double? Limit, Drop? Drop,
    ValidationReport Report)
{
    public string ModeName => Mode == ValidationMode.Tolerance ? "tolerance" : "agreement";
}

public sealed record OptimizeReport
{
    /// <summary>Where the input came from and where the output goes, when the caller says (files).</summary>
    public string? Input { get; init; }
    public string? Output { get; init; }
    public required string Pipeline { get; init; }
    public required bool Exact { get; init; }
    public required ModelStats Before { get; init; }
    public required ModelStats After { get; init; }
    public required IReadOnlyList<PassRun> Passes { get; init; }
    public ValidationOutcome? Validation { get; init; }
    public BenchReport? Latency { get; init; }
    /// <summary>What data the budgets and the validation used when the driver held calibration samples out (or
    /// could not).</summary>
    public string? DataNote { get; init; }

    public IEnumerable<string> Notes => (DataNote is { } d ? [d] : Array.Empty<string>())
        .Concat(Passes.SelectMany(p => p.Stats.Notes)).Concat(LatencyWarning is { } w ? [w] : []);

    /// <summary>When ORT measurably runs the result slower than the input, says so (and, after shape
    /// specialization, the measured reason: static shapes let ORT fuse SkipLayerNormalization, slower on CPU).
    /// </summary>
    public string? LatencyWarning => Latency is { Measurable: true, PairedSpeedup: < 1 } lat
        ? "ONNX Runtime runs the result slower than the input: " + lat.SpeedupText()
            + (Pipeline.Contains("fix-dims", StringComparison.Ordinal)
                && After.OpHistogram.ContainsKey("LayerNormalization")
                ? "; with static shapes ORT's own optimizer fuses residual Add + LayerNorm into SkipLayerNormalization,"
                    + " slower on this CPU: without --dim (fix-dims) the dims stay symbolic"
                : "")
        : null;
}
