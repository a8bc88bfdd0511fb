// sparsify: unstructured pruning. Scores every prunable weight (Conv, ConvTranspose, Gemm, MatMul) with
// SynFlow (iterative, data-free) or magnitude (one shot) and sets the weights outside the mask to zero; method=obs
// (ObsSparsity) prunes layer by layer on calibration data with the Optimal Brain Surgeon update, unstructured or N:M.
//   before: W = [[0.3, -0.01], [0.2, 0.05]]   after (density 0.5): W = [[0.3, 0], [0.2, 0]]
// Shapes and ops do not change; the model gets sparser, not smaller or faster by itself (clustering or
// structured pruning turn sparsity into bytes and time). Approximate: validate by agreement.
// rounds=R (iterative pruning, Han et al. 2015; Frankle & Carbin 2019 with "rewinding to the trained weights"): round
// r prunes to density d^(r/R) (weights already zero stay zero), rewind=original resets the survivors to the values
// sparsify received, and distill (round-steps, zeros held) retrains; the held-out score of every round is reported.
// With pattern=N:M the rounds tighten the pattern instead (gradual N:M): round r keeps M - ceil(r (M - N) / R) of every
// M (2:4 in 2 rounds: 3:4, then 2:4), so each retraining starts from a model one step sparser.
// Main graph only (weights inside If/Loop/Scan bodies are not scored).
using OnnxOpt.GraphIR;
using OnnxOpt.Training;

namespace OnnxOpt.Passes;

public sealed record SparsifyOptions
{
    [Option("method", "saliency: synflow (iterative, data-free), magnitude (one shot |w|), obd or fisher (Optimal "
        + "Brain Damage's 1/2 H_ii w^2, the Hessian diagonal of the distillation loss on calibration data, or the "
        + "empirical Fisher), or obs (layer-wise Optimal Brain Surgeon on calibration data, SparseGPT-style: the "
        + "others absorb each removal)", Choices = ["synflow", "magnitude", "obd", "fisher", "obs"])]
    public string Method { get; init; } = "synflow";
    [Option("pattern", "method=obs: unstructured, or N:M (every M consecutive inputs of a row keep N, e.g. 2:4)")]
    public string Pattern { get; init; } = "unstructured";
    [Option("rounds", "iterative pruning: reach the density in this many rounds (d^(r/rounds) after round r; with "
        + "pattern=N:M, M - ceil(r (M - N) / rounds) of every M), retraining by distillation (zeros held) after each",
        Min = 1, Max = 100)]
    public long Rounds { get; init; } = 1;
    [Option("rewind", "rounds > 1: before each retraining, reset the surviving weights to the values sparsify "
        + "received (lottery-ticket rewinding to the trained weights), or keep them", Choices = ["none", "original"])]
    public string Rewind { get; init; } = "none";
    [Option("round-steps", "rounds > 1: distillation steps after each round", Min = 1)]
    public long RoundSteps { get; init; } = 300;
    [Option("density", "fraction of prunable weights kept", Min = 0, Max = 1)]
    public double Density { get; init; } = 0.1;
    [Option("iterations", "SynFlow rounds (exponential density schedule)", Min = 1)]
    public long Iterations { get; init; } = 100;
    [Option("scope", "one threshold over all layers, or one per layer", Choices = ["global", "local"])]
    public string Scope { get; init; } = "global";
    [Option("allocation", "how the density is shared between layers (scope=local and method=obs): uniform (every "
        + "layer keeps the density) or erk (Erdos-Renyi-Kernel: small layers such as stems, depthwise kernels and "
        + "classifiers denser, large ones sparser, the same weights kept in total)", Choices = ["uniform", "erk"])]
    public string Allocation { get; init; } = "uniform";
    [Option("precision", "SynFlow arithmetic (float32 overflows on deep nets)", Choices = ["float64", "float32"])]
    public string Precision { get; init; } = "float64";
    [Option("input-shape", "SynFlow input shapes where the model's are symbolic beyond the batch axis: "
        + "name:1x3x224x224;other:1x8")]
    public string InputShape { get; init; } = "";

    /// <summary>What Saliency.Score runs (the `score` command builds its options here too).</summary>
    public SaliencyOptions ToSaliency(Data.ProgressSink? progress = null) => new()
    {
        Method = Method,
        Density = Density,
        Iterations = (int)Math.Min(Iterations, int.MaxValue),
        Scope = Scope,
        Allocation = Allocation,
        Precision = Precision,
        InputShapes = SaliencyOptions.ParseShapes([InputShape]),
        Progress = progress,
    };
}

public sealed class Sparsify : Pass<SparsifyOptions>
{
    public override string Name => "sparsify";
    public override string Summary =>
        "set the lowest-saliency weights of Conv/ConvTranspose/Gemm/MatMul to zero (SynFlow through our "
        + "autodiff, or magnitude)";
    public override bool IsExact(SparsifyOptions options) => false;
    public override DataNeeds Needs(SparsifyOptions options) =>
        options.Method is "obs" or "obd" or "fisher" || options.Rounds > 1 ? DataNeeds.Calibration : DataNeeds.None;
    public override bool NeedsTeacher(SparsifyOptions options) => options.Rounds > 1;

    public override void Run(PassContext ctx, SparsifyOptions o)
    {
        // Weights must be initializers to be zeroed: an old export's Constant-held weights are moved first.
        UpgradeOpset.Require(ctx, Name, 13, "the opset onnxopt's compression passes share");
        if (ctx.Model.Graph.Nodes.Any(n => n is { OpType: "Constant", IsStandard: true }))
        {
            var canonicalize = PassRegistry.Get("canonicalize");
            canonicalize.Run(ctx, canonicalize.Defaults());
            ctx.Stats.Notes.Add("canonicalized first: weights held in Constant nodes became initializers");
        }
        if (o.Rounds > 1) Iterate(ctx, o);
        else Once(ctx, o);
    }

    /// <summary>Iterative pruning (see the header): prune to d^(r/R), rewind the survivors if asked, distill with
    /// the zeros held, R times; one SparsifyRound decision per round with the held-out score when there is
    /// evaluation data.</summary>
    private static void Iterate(PassContext ctx, SparsifyOptions o)
    {
        var teacher = Recovery.TeacherModel(ctx);
        var g = ctx.Model.Graph;
        var received = g.Nodes.Where(n => n.IsStandard && n.OpType is "Conv" or "ConvTranspose" or "Gemm" or "MatMul")
            .Select(n => n.Input(1)).OfType<Value>().Where(v => v.Initializer is { ElementType: DataType.Float })
            .Distinct().ToDictionary(v => v.Name, v => v.Initializer!.ToFloatArray(), StringComparer.Ordinal);
        var (keepN, groupM) = o.Method == "obs" ? ObsSparsity.ParsePattern(o.Pattern) : (0, 0);
        for (int r = 1; r <= o.Rounds; r++)
        {
            var density = Math.Pow(o.Density, (double)r / o.Rounds);
            var step = o with { Density = density };
            if (groupM > 0)
            {
                int keep = RoundKeep(keepN, groupM, r, (int)o.Rounds);
                density = (double)keep / groupM;
                step = o with { Pattern = $"{keep}:{groupM}" };
            }
            Once(ctx, step);
            if (o.Rewind == "original")
                foreach (var (name, values) in received)
                {
                    if (g.Find(name) is not { Initializer: { } t } v) continue;
                    var now = t.ToFloatArray();
                    if (now.Length != values.Length) continue;
                    for (int i = 0; i < now.Length; i++) if (now[i] != 0) now[i] = values[i];
                    ctx.Rewriter.SetInitializer(v, Tensor.FromFloats(name, t.Dims, now));
                }
            var training = new TrainingOptions { Steps = o.RoundSteps, KeepZeros = "true" };
            var parameters = ParameterSelection.Select(ctx.Model, "all", keepZeros: "true");
            var result = Recovery.Train(ctx, $"sparsify round {r}", parameters, training.Settings([]), teacher);
            long kept = 0, total = 0;
            foreach (var name in received.Keys)
                if (g.Find(name)?.Initializer is { } t)
                {
                    var w = t.ToFloatArray();
                    kept += w.LongCount(x => x != 0);
                    total += w.Length;
                }
            var left = total == 0 ? 0 : Math.Round((double)kept / total, 6);
            ctx.Stats.Decide(new SparsifyRound(r, Math.Round(density, 6), left, o.Rewind,
                result.BestScore is null ? null : result.ScoreMetric, result.BestScore));
        }
        var rounds = ctx.Stats.Decisions.OfType<SparsifyRound>().ToList();
        var goal = groupM > 0 ? $"pattern {o.Pattern}" : $"density {o.Density}";
        ctx.Stats.Notes.Add($"sparsify: {o.Rounds} rounds to {goal} (rewind={o.Rewind}, {o.RoundSteps} "
            + "distillation steps each)" + (rounds.Any(x => x.Score is not null)
                ? "; held-out " + rounds[0].Metric + " by round: " + string.Join(", ", rounds.Select(x =>
                    string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{x.Score:F2}")))
                : ""));
    }

    /// <summary>Gradual N:M: the N kept of every M after round r of R, M - ceil(r (M - N) / R) (N after the last;
    /// always below M, so every round prunes).</summary>
    internal static int RoundKeep(int keepN, int groupM, int round, int rounds) =>
        groupM - (int)Math.Ceiling((double)round * (groupM - keepN) / rounds);

    private static void Once(PassContext ctx, SparsifyOptions o)
    {
        if (o.Method == "obs")
        {
            ObsSparsity.Run(ctx, o);
            return;
        }
        if (o.Pattern != "unstructured")
            throw new OnnxModelException($"sparsify: pattern {o.Pattern} needs method=obs");
        var result = Saliency.Score(ctx.Model, o.ToSaliency() with
        {
            Calibration = o.Method is "obd" or "fisher"
                ? ctx.RequireCalibration($"sparsify{{method={o.Method}}}") : null,
        });
        var g = ctx.Model.Graph;
        foreach (var layer in result.Layers)
        {
            var v = g.Find(layer.Weight)!;
            var t = v.Initializer!;
            var data = t.ToFloatArray();
            var mask = result.Masks[layer.Weight];
            long zeroed = 0;
            for (int i = 0; i < data.Length; i++) if (!mask[i] && data[i] != 0) { data[i] = 0; zeroed++; }
            ctx.Rewriter.SetInitializer(v, Tensor.FromFloats(v.Name, t.Dims, data));
            ctx.Stats.Count(Counters.Sparsify.WeightsZeroed, zeroed);
            ctx.Stats.Decide(new LayerSparsity(layer.Layer, layer.Weight, layer.Weights, layer.Kept, layer.Density,
                layer.Collapsed,
                layer.ScoreTotal));
        }
        ctx.Stats.Count(Counters.Sparsify.Layers, result.Layers.Count);
        ctx.Stats.Count(Counters.Sparsify.LayersCollapsed, result.Layers.Count(l => l.Collapsed));
        ctx.Stats.Notes.AddRange(result.Notes);
        ctx.Stats.Decide(new SparsifySummary(o.Method, result.Rounds, result.R, result.Weights, result.Kept,
            (double)result.Kept / result.Weights, result.LayerCollapse));
        if (result.LayerCollapse)
            ctx.Log.WriteLine($"sparsify: layer collapse: {string.Join(", ", result.Layers.Where(l => l.Collapsed).Select(l => l.Layer))} kept no weight");
    }
}

/// <summary>One round of iterative pruning: the density it pruned to, the density left, and the held-out score after
/// its retraining (null without evaluation data).</summary>
public sealed record SparsifyRound(int Round, double Target, double Density, string Rewind, string? Metric,
    double? Score) : Decision;
