// What one optimize run is asked to do, and what it answers. The library's optimize driver
// (Optimizer.Run) takes these; the CLI's optimize and quantize commands only build them from flags.
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public sealed record OptimizeOptions
{
    public required Pipeline Pipeline { get; init; }
    /// <summary>Samples for passes that calibrate (linearize, quantize).</summary>
    public CalibrationSource? Calibration { get; init; }
    /// <summary>
    /// Held-out samples: validation runs on them (implies Validate), and budgets are measured on them.</summary>
    public CalibrationSource? Evaluation { get; init; }
    /// <summary>Compare the result with the input in ORT before accepting it.</summary>
    public bool Validate { get; init; }
    /// <summary>Seed of the random validation inputs used when there is no data.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>
    /// How many seeded random samples validate when there is neither evaluation nor calibration data.</summary>
    public int RandomValidationSamples { get; init; } = 10;
    /// <summary>Values of symbolic dims: for random validation inputs (others are 1) and the report's MACs.</summary>
    public IReadOnlyDictionary<string, long>? Dims { get; init; }
    /// <summary>Ranges of random integer inputs, over the ones read from the model (InputRanges).</summary>
    public IReadOnlyDictionary<string, ValueRange>? IntRanges { get; init; }
    /// <summary>The measure approximate pipelines are judged on (default: chosen from the first output's shape;
    /// a sentence encoder's [batch, sequence, hidden] output is mean-pooled over its attention mask).</summary>
    public MetricSpec Metric { get; init; } = MetricSpec.Default;
    /// <summary>Tolerance of exact pipelines.</summary>
    public double Rtol { get; init; } = 1e-4;
    public double Atol { get; init; } = 1e-5;
    /// <summary>
    /// Limit of approximate pipelines in points (default: the pipeline's largest budget, at least 0.5).</summary>
    public double? MaxDrop { get; init; }
    /// <summary>Run the IR verifier after every pass.</summary>
    public bool VerifyEach { get; init; }
    /// <summary>Time the model in ORT before and after (null: no latency in the report); on the first batch of
    /// the evaluation (else calibration) data when there is some.</summary>
    public BenchOptions? Bench { get; init; }
    /// <summary>Without Evaluation, the share of the calibration samples held out (seeded) when a pass trains on
    /// them, for its budget and the validation (at least MinHeldOut samples); 0: none, the budget is then not
    /// checked and the result is refused unless forced.</summary>
    public double HoldOut { get; init; } = 0.2;
    public const int MinHeldOut = 50;
    /// <summary>Where passes write progress lines (default: nowhere).</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>The optimized model (a new model: the input is never changed), its bytes and the report.</summary>
public sealed record OptimizeResult(Model Model, OptimizeReport Report)
{
    private byte[]? _bytes;

    /// <summary>The optimized model serialized (computed on first use; large models are better saved with
    /// OnnxExporter.Save, which streams).</summary>
    public byte[] Bytes => _bytes ??= OnnxExporter.ToBytes(Model);

    /// <summary>False when validation ran and refused the result, or an approximate step could not change the
    /// model (prune with nothing prunable: the user asked for a change that did not happen).</summary>
    public bool Accepted => Idle is null && (Report.Validation?.Accepted ?? true);
    /// <summary>Why the result is refused (null when accepted).</summary>
    public string? Verdict => Idle ?? Report.Validation?.Reason;

    /// <summary>The first approximate step that could not change the model, and why.</summary>
    public string? Idle => Report.Passes.Select(p => p.Stats.Unchanged).FirstOrDefault(u => u is not null);
}
