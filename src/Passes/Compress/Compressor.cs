// compress: one search from an exported model to the smallest (or fastest, or cheapest in MACs) model inside
// an accuracy budget. A beam search over the recipe's stages (Recipe.Auto: exact clean-up -> Layer Folding,
// post-training or trained -> pruning with least-squares repair and distillation -> int8 for latency, or
// clustering with trained centroids for size):
//   states = { the input }
//   for each stage: every state x every candidate pipeline ("" keeps the state) -> a new model, run with the
//     input model as every training pass's teacher, validated in ORT on --eval against the input (accuracy
//     drop with labels, else top-1 agreement), timed in ORT (1 thread, interleaved with the input), sized as
//     .onnx and as the packed archive; the `beam` best within the budget, by the target, go on.
// The best candidate within the budget over the whole search is the result, and no candidate over it ever is;
// the (drop, latency, packed size) Pareto set is marked. --time-budget makes the search anytime: a first sweep
// runs only the cheap candidates of every stage (at most CheapSteps training steps: clustering or int8 of the
// cleaned model, post-training Layer Folding), cheapest first, so any budget returns the best model found so far;
// the full search follows with the time left, reusing what the first sweep evaluated. The budget is a deadline:
// training stops at it with its best weights, no candidate starts that the last one of its stage says cannot
// finish in the time left, and a step
// whose pass cannot change the model (prune without a prunable group, linearize without an eligible activation) is
// skipped with the reason; the report lists what was cut. Latency is a claim only beyond the timing noise (the 95%
// interval of the interleaved speed-up excludes 1). Deterministic for a fixed seed when the target is size or
// macs (latency targets follow the timings measured).
using System.Diagnostics;
using System.Globalization;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public sealed record CompressOptions
{
    public required CalibrationSource Calibration { get; init; }
    public required CalibrationSource Evaluation { get; init; }
    /// <summary>The search (normalized); default Recipe.Auto("size", 1).</summary>
    public Recipe? Recipe { get; init; }
    /// <summary>Stop starting candidates after this many minutes (null: no limit).</summary>
    public double? TimeBudgetMinutes { get; init; }
    public BenchOptions Bench { get; init; } = new() { Iterations = 100, Warmup = 10 };
    /// <summary>What the budget is measured in (default: chosen from the first output's shape).</summary>
    public MetricSpec Metric { get; init; } = MetricSpec.Default;
    /// <summary>A candidate is within the budget when the upper bound of its drop at this confidence is
    /// (SampleTally: binomial for accuracy, bootstrap otherwise); 0 judges the measured drop.</summary>
    public double Confidence { get; init; } = 0.9;
    public TextWriter? Log { get; init; }
}

/// <summary>One evaluated model of the search.</summary>
public sealed record CompressCandidate(int Id, int? Parent, string Stage, string Step, string Pipeline)
{
    public double? Accuracy { get; init; }
    public double Drop { get; init; }
    /// <summary>The drop's upper confidence bound (CompressOptions.Confidence), what the budget judges.</summary>
    public double DropUpper { get; init; }
    public double LatencyMs { get; init; }
    public double ReferenceLatencyMs { get; init; }
    public long Bytes { get; init; }
    public long PackedBytes { get; init; }
    public long Macs { get; init; }
    public long Parameters { get; init; }
    public int NonLinearDepth { get; init; }
    public bool WithinBudget { get; init; }
    public bool Pareto { get; set; }
    public bool Chosen { get; set; }
    public double Seconds { get; init; }
    public string? Error { get; init; }
}

public sealed record CompressReport
{
    public string? Input { get; init; }
    public string? Output { get; init; }
    public required string Target { get; init; }
    public required double MaxDrop { get; init; }
    /// <summary>The confidence of the drops' upper bounds the budget judged (0: the measured drops).</summary>
    public double Confidence { get; init; }
    public required Recipe Recipe { get; init; }
    /// <summary>What the drop is measured in: accuracy (labels) or top1_agreement / cosine_x100.</summary>
    public required string DropMetric { get; init; }
    public double? ReferenceAccuracy { get; init; }
    public required IReadOnlyList<CompressCandidate> Candidates { get; init; }
    public required int Chosen { get; init; }
    public required IReadOnlyList<string> Skipped { get; init; }
    public required double SearchSeconds { get; init; }
    public required ModelStats Before { get; init; }
    public required ModelStats After { get; init; }
    /// <summary>The chosen model's pass runs, every stage in order (decisions for the per-layer charts).</summary>
    public required IReadOnlyList<PassRun> Passes { get; init; }
    public required ValidationReport Validation { get; init; }
    public required BenchReport Latency { get; init; }
    public CompressCandidate ChosenCandidate => Candidates[Chosen];
    /// <summary>What the drop measures, for people.</summary>
    public string DropMetricName => DropMetric switch
    {
        "accuracy" => "accuracy",
        "top1_agreement" => "top-1 agreement",
        _ => "cosine x 100",
    };
}

public sealed record CompressResult(Model Model, byte[] Bytes, byte[] Packed, CompressReport Report);

public static partial class Compressor
{
    private sealed record State(CompressCandidate Candidate, Model Model, byte[] Bytes, List<PassRun> Runs);

    public static CompressResult Run(Model input, CompressOptions o, string? inputPath = null,
        string? outputPath = null)
    {
        using var search = new Search(input, o);
        // Anytime: under --time-budget a first sweep runs only the cheap candidates of every stage (at most
        // CheapSteps training steps: clustering, int8, post-training Layer Folding of the cleaned model), so a
        // good model exists within a minute or two; the full search follows with the time left, reusing them.
        if (search.Deadline is not null) search.Sweep(cheapOnly: true);
        search.Sweep(cheapOnly: false);
        return search.Result(inputPath, outputPath);
    }

    /// <summary>The most training steps a candidate of the anytime search's first sweep may take.</summary>
    public const long CheapSteps = 400;

    /// <summary>The training steps a candidate step takes (each training pass's steps, finetune-steps and
    /// train-steps), its cost estimate.</summary>
    public static long TrainingSteps(string step) => step.Length == 0 ? 0 : Pipeline.Parse(step).Steps
        .Where(s => s.Pass.NeedsTeacher(s.Options))
        .Sum(s => s.Pass.Options.Where(opt => opt.Name is "steps" or "finetune-steps" or "train-steps")
            .Sum(opt => Convert.ToInt64(s.Options.Value(opt.Name), CultureInfo.InvariantCulture)));

    /// <summary>Why a candidate step cannot change the model (its first pass that says so), or null.</summary>
    private static string? WhyNoChange(string step, Model model)
    {
        foreach (var s in Pipeline.Parse(step).Steps)
            if (s.Pass.WhyNoChange(model, s.Options) is { } why) return $"{s.Pass.Name}: {why}";
        return null;
    }

    /// <summary>What the target minimizes.</summary>
    public static double Objective(string target, CompressCandidate c) => c.Error is not null ? double.PositiveInfinity
        : target switch { "latency" => c.LatencyMs, "macs" => c.Macs, _ => c.PackedBytes };

    /// <summary>Marks the candidates no other beats on drop, latency and packed size at once.</summary>
    private static void MarkPareto(List<CompressCandidate> all)
    {
        var ok = all.Where(c => c.Error is null).ToList();
        foreach (var c in ok)
            c.Pareto = !ok.Any(d => d != c && d.Drop <= c.Drop && d.LatencyMs <= c.LatencyMs
                && d.PackedBytes <= c.PackedBytes
                && (d.Drop < c.Drop || d.LatencyMs < c.LatencyMs || d.PackedBytes < c.PackedBytes));
    }
}
