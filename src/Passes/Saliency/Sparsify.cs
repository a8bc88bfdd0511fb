// sparsify: unstructured pruning. Scores every prunable weight (Conv, ConvTranspose, Gemm, MatMul) with
// SynFlow (iterative, data-free) or magnitude (one shot) and sets the weights outside the mask to zero; method=obs
// (ObsSparsity) prunes layer by layer on calibration data with the Optimal Brain Surgeon update, unstructured or N:M.
//   before: W = [[0.3, -0.01], [0.2, 0.05]]   after (density 0.5): W = [[0.3, 0], [0.2, 0]]
// Shapes and ops do not change; the model gets sparser, not smaller or faster by itself (clustering or
// structured pruning turn sparsity into bytes and time). Approximate: validate by agreement.
// Main graph only (weights inside If/Loop/Scan bodies are not scored).
using OnnxOpt.GraphIR;

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
    [Option("density", "fraction of prunable weights kept", Min = 0, Max = 1)]
    public double Density { get; init; } = 0.1;
    [Option("iterations", "SynFlow rounds (exponential density schedule)", Min = 1)]
    public long Iterations { get; init; } = 100;
    [Option("scope", "one threshold over all layers, or one per layer", Choices = ["global", "local"])]
    public string Scope { get; init; } = "global";
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
        options.Method is "obs" or "obd" or "fisher" ? DataNeeds.Calibration : DataNeeds.None;

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
            ctx.Stats.Count("weights zeroed", zeroed);
            ctx.Stats.Decide(new LayerSparsity(layer.Layer, layer.Weight, layer.Weights, layer.Kept, layer.Density,
                layer.Collapsed,
                layer.ScoreTotal));
        }
        ctx.Stats.Count("layers", result.Layers.Count);
        ctx.Stats.Count("layers collapsed", result.Layers.Count(l => l.Collapsed));
        ctx.Stats.Notes.AddRange(result.Notes);
        ctx.Stats.Decide(new SparsifySummary(o.Method, result.Rounds, result.R, result.Weights, result.Kept,
            (double)result.Kept / result.Weights, result.LayerCollapse));
        if (result.LayerCollapse)
            ctx.Log.WriteLine($"sparsify: layer collapse: {string.Join(", ", result.Layers.Where(l => l.Collapsed).Select(l => l.Layer))} kept no weight");
    }
}
