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

    public IEnumerable<string> Notes => Passes.SelectMany(p => p.Stats.Notes);
}
