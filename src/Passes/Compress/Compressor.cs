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

public static class Compressor
{
    private sealed record State(CompressCandidate Candidate, Model Model, byte[] Bytes, List<PassRun> Runs);

    public static CompressResult Run(Model input, CompressOptions o, string? inputPath = null,
        string? outputPath = null)
    {
        var clock = Stopwatch.StartNew();
        DateTime? deadline = o.TimeBudgetMinutes is { } minutes ? DateTime.UtcNow.AddMinutes(minutes) : null;
        var stageSeconds = new Dictionary<string, double>(StringComparer.Ordinal);
        var recipe = (o.Recipe ?? Recipe.Auto("size", 1)).Normalize();
        var log = o.Log ?? TextWriter.Null;
        var originalBytes = OnnxExporter.ToBytes(input);
        // Latency is timed on the user's held-out inputs (their first batch), not on random ones.
        o = o with
        {
            Bench = o.Bench with
            {
                Inputs = o.Bench.Inputs ?? Optimizer.BenchInputs(o.Evaluation, input, o.Bench.Batch),
            },
        };
        var evalSettings = new SessionSettings { Optimization = GraphOptimization.All };
        using var reference = InferenceSession.FromBytes(originalBytes, evalSettings);
        var all = new List<CompressCandidate>();
        var states = new Dictionary<int, State>();
        var skipped = new List<string>();
        string dropMetric = "accuracy";
        double? referenceAccuracy = null;
        var validations = new Dictionary<int, (ValidationReport V, BenchReport B)>();

        CompressCandidate Evaluate(int? parent, string stage, string step, string pipeline, Model m, byte[] bytes,
            double seconds)
        {
            using var cand = InferenceSession.FromBytes(bytes, evalSettings);
            var v = Validator.Compare(reference, cand, o.Evaluation.DataFor(reference.Inputs),
                new ValidationOptions { Metric = o.Metric });
            var drop = Fidelity.DropOf(v);
            var upper = v.Primary?.UpperDrop(o.Confidence) ?? drop.Points;
            // The input against itself is a drop of 0; anything else (NaN or infinite outputs) leaves no budget to
            // judge candidates by, so the search stops before it starts.
            if (parent is null && !(drop.Points <= recipe.MaxDrop + 1e-9))
                throw new OnnxModelException($"compress: the input model does not meet the budget against itself "
                    + $"({drop.MetricName} drop {drop.Points.ToString(CultureInfo.InvariantCulture)}; NaN or infinite "
                    + "outputs?)");
            dropMetric = drop.MetricName;
            referenceAccuracy = v.ReferenceAccuracy * 100;
            var bench = Benchmark.Run(originalBytes, bytes, o.Bench);
            var stats = ModelStats.Compute(m, bytes.LongLength);
            var packed = ModelArchive.Pack(bytes, out _);
            var c = new CompressCandidate(all.Count, parent, stage, step, pipeline)
            {
                Accuracy = v.CandidateAccuracy * 100,
                Drop = Math.Round(drop.Points, 6),
                DropUpper = Math.Round(upper, 6),
                LatencyMs = bench.Other!.MedianMs,
                ReferenceLatencyMs = bench.Model.MedianMs,
                Bytes = bytes.LongLength,
                PackedBytes = packed.LongLength,
                Macs = stats.TotalMacs,
                Parameters = stats.ParameterCount,
                NonLinearDepth = stats.NonLinearDepth,
                WithinBudget = upper <= recipe.MaxDrop + 1e-9,
                Seconds = Math.Round(seconds, 3),
            };
            validations[c.Id] = (v, bench);
            all.Add(c);
            var bound = o.Confidence > 0
                ? FormattableString.Invariant($" (<= {c.DropUpper:F2} at {o.Confidence * 100:G3}%)") : "";
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"compress: #{c.Id} [{stage}] {(step.Length == 0 ? "input" : Pipeline.Brief(step))}: {dropMetric} "
                    + $"drop {c.Drop:F2}{bound}, "
                + $"{c.LatencyMs:F3} ms (input {c.ReferenceLatencyMs:F3}), {c.PackedBytes:N0} B packed, "
                + $"{c.Macs:N0} MACs{(c.WithinBudget ? "" : " - over budget")} ({seconds:F1} s)"));
            return c;
        }

        var c0 = Evaluate(null, "input", "", "", input, originalBytes, 0);
        states[c0.Id] = new State(c0, input, originalBytes, []);
        // (parent state, step) -> the candidate it made (-1: failed or cut), so the second sweep reuses the first's.
        var tried = new Dictionary<(int, string), int>();

        void Sweep(bool cheapOnly)
        {
            var beam = new List<int> { c0.Id };
            foreach (var stage in recipe.Stages)
            {
                var next = new List<int>();
                // Under a deadline the cheapest candidates of a stage run first (fewest training steps).
                var steps = stage.Candidates.Where(st => !cheapOnly || TrainingSteps(st) <= CheapSteps).ToList();
                if (deadline is not null) steps = [.. steps.OrderBy(TrainingSteps)];
                foreach (var sid in beam)
                    foreach (var step in steps)
                    {
                        if (step.Length == 0) { next.Add(sid); continue; }
                        if (tried.TryGetValue((sid, step), out var seen))
                        {
                            if (seen >= 0 && all[seen].WithinBudget) next.Add(Successor(sid, seen));
                            continue;
                        }
                        if (Try(stage, states[sid], step) is { } id)
                        {
                            tried[(sid, step)] = id;
                            if (id >= 0 && all[id].WithinBudget) next.Add(Successor(sid, id));
                        }
                    }
                beam = next.Distinct().OrderBy(id => Objective(recipe.Target, all[id])).ThenBy(id => all[id].Drop)
                    .ThenBy(id => id).Take(recipe.Beam).ToList();
            }
        }

        // A step that left the model byte for byte as it was (linearize with nothing to linearize, a prune with
        // nothing to cut) goes on as its parent, so the next stages do not run twice on the same model.
        int Successor(int parent, int id) =>
            states[id].Bytes.AsSpan().SequenceEqual(states[parent].Bytes) ? parent : id;

        // One candidate step on a state: its candidate's id, -1 when it failed, null when it was cut (time, no
        // change possible) and may be tried again.
        int? Try(RecipeStage stage, State parent, string step)
        {
            var sid = parent.Candidate.Id;
            if (o.TimeBudgetMinutes is { } tb && clock.Elapsed.TotalMinutes >= tb)
            {
                var line = $"[{stage.Name}] {Pipeline.Brief(step)} after #{sid}: time budget of "
                    + $"{tb.ToString(CultureInfo.InvariantCulture)} min spent";
                if (!skipped.Contains(line)) skipped.Add(line);
                return null;
            }
            if (deadline is { } end && stageSeconds.TryGetValue(stage.Name, out var took)
                && (end - DateTime.UtcNow).TotalSeconds < took)
            {
                skipped.Add(string.Create(CultureInfo.InvariantCulture, $"[{stage.Name}] "
                    + $"{Pipeline.Brief(step)} after #{sid}: would not finish (the last one took {took:F0} s, "
                    + $"{(end - DateTime.UtcNow).TotalSeconds:F0} s left)"));
                return null;
            }
            if (WhyNoChange(step, parent.Model) is { } why)
            {
                var line = $"[{stage.Name}] {Pipeline.Brief(step)}: cannot change the model: {why}";
                if (!skipped.Contains(line)) skipped.Add(line);
                log.WriteLine($"compress: {line}");
                return -1;
            }
            var sw = Stopwatch.StartNew();
            var pipeline = parent.Candidate.Pipeline.Length == 0 ? step : parent.Candidate.Pipeline + "," + step;
            try
            {
                var model = parent.Model.Clone();
                var ctx = new PassContext(model, o.Calibration, log, o.Evaluation)
                {
                    Metric = o.Metric,
                    Original = input,
                    Deadline = deadline,
                };
                var runs = PipelineRunner.Run(model, Pipeline.Parse(step), ctx);
                Verifier.Verify(model);
                var bytes = OnnxExporter.ToBytes(model);
                var c = Evaluate(sid, stage.Name, step, pipeline, model, bytes, sw.Elapsed.TotalSeconds);
                stageSeconds[stage.Name] = sw.Elapsed.TotalSeconds;
                foreach (var note in runs.SelectMany(r => r.Stats.Notes)
                    .Where(n => n.Contains("stopped at the deadline", StringComparison.Ordinal)))
                    skipped.Add($"[{stage.Name}] #{c.Id}: {note}");
                states[c.Id] = new State(c, model, bytes, [.. parent.Runs, .. runs]);
                return c.Id;
            }
            // A defect in one candidate's passes (InvalidOperation, NotSupported, ...) fails that candidate,
            // with its message in the report, instead of the whole search.
            catch (Exception e) when (e is OnnxModelException or OrtException or InvalidOperationException
                or NotSupportedException or ArgumentException or IndexOutOfRangeException)
            {
                var c = new CompressCandidate(all.Count, sid, stage.Name, step, pipeline)
                {
                    Error = (e is OnnxModelException or OrtException ? ""
                        : $"internal error ({e.GetType().Name}): ") + e.Message.ReplaceLineEndings(" "),
                    Seconds = Math.Round(sw.Elapsed.TotalSeconds, 3),
                    Drop = double.PositiveInfinity,
                };
                all.Add(c);
                log.WriteLine($"compress: #{c.Id} [{stage.Name}] {Pipeline.Brief(step)}: failed: {c.Error}");
                return -1;
            }
        }

        // Anytime: under --time-budget a first sweep runs only the cheap candidates of every stage (at most
        // CheapSteps training steps: clustering, int8, post-training Layer Folding of the cleaned model), so a
        // good model exists within a minute or two; the full search follows with the time left, reusing them.
        if (deadline is not null) Sweep(cheapOnly: true);
        Sweep(cheapOnly: false);
        MarkPareto(all);
        // The input itself is candidate 0 and normally within any budget; a model whose own outputs do not
        // compare with themselves (NaN) leaves nothing to choose.
        var chosen = all.Where(c => c.WithinBudget && c.Error is null).OrderBy(c => Objective(recipe.Target, c))
            .ThenBy(c => c.Drop).ThenBy(c => c.Id).FirstOrDefault() ?? throw new OnnxModelException(
                $"compress: no candidate met the budget, not even the input model (its drop against itself: "
                + $"{all[0].Drop.ToString(System.Globalization.CultureInfo.InvariantCulture)}; NaN or infinite "
                + "outputs?)");
        chosen.Chosen = true;
        var best = states[chosen.Id];
        var (validation, latency) = validations[chosen.Id];
        var report = new CompressReport
        {
            Input = inputPath,
            Output = outputPath,
            Target = recipe.Target,
            MaxDrop = recipe.MaxDrop,
            Confidence = o.Confidence,
            Recipe = recipe,
            DropMetric = dropMetric,
            ReferenceAccuracy = referenceAccuracy,
            Candidates = all,
            Chosen = chosen.Id,
            Skipped = skipped,
            SearchSeconds = Math.Round(clock.Elapsed.TotalSeconds, 3),
            Before = ModelStats.Compute(input, originalBytes.LongLength),
            After = ModelStats.Compute(best.Model, best.Bytes.LongLength),
            Passes = best.Runs,
            Validation = validation,
            Latency = latency,
        };
        return new CompressResult(best.Model, best.Bytes, ModelArchive.Pack(best.Bytes, out _), report);
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
