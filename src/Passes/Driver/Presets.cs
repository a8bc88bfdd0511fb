// Presets: named pipelines with options of their own, as library objects (the CLI's quantize command
// is one; compress will be another). A preset's options are its last pass's declared options, so the
// same validation of keys and values applies.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class Preset(string name, string description, string prefix, string pass,
    Func<IReadOnlyDictionary<string, string>, (string Prefix, string Suffix)>? arrange = null)
{
    public string Name { get; } = name;
    public string Description { get; } = description;
    /// <summary>The pass whose options the preset takes.</summary>
    public Pass Pass => PassRegistry.Get(pass);

    /// <summary>The pipeline for these option values (unknown keys are refused, naming the pass).</summary>
    public Pipeline Build(IEnumerable<KeyValuePair<string, string>> options)
    {
        var given = options.ToList();
        var bad = given.FirstOrDefault(kv => Pass.Options.All(o => o.Name != kv.Key));
        if (bad.Key is not null)
        {
            var names = string.Join(", ", Pass.Options.Select(o => o.Name));
            throw new OnnxModelException($"preset '{Name}' has no option '{bad.Key}' (options: {names})");
        }
        var body = string.Join(",", given.Select(kv => $"{kv.Key}={kv.Value}"));
        var (before, after) = arrange?.Invoke(given.ToDictionary(kv => kv.Key, kv => kv.Value)) ?? (prefix, "");
        var text = $"{pass}{{{body}}}";
        if (before.Length > 0) text = $"{before},{text}";
        if (after.Length > 0) text = $"{text},{after}";
        return Pipeline.Parse(text);
    }
}

public static class Presets
{
    /// <summary>Post-training int8: BatchNorm and constant per-channel Mul/Add folded first, so every Conv
    /// quantizes as one group and no scale between two layers is requantized on its own; decomposed hard-swishes
    /// fused (four element-wise ops that stay float in int8 models become one or two; ONNX Runtime fuses LayerNorm
    /// and GELU itself, hard-swish not).</summary>
    public static readonly Preset Quantize = new("quantize",
        "post-training int8 (QDQ or QOperator) with calibration and an optional accuracy budget",
        "canonicalize,fold-bn,fold-affine,fuse{layernorm=false,gelu=false}", "quantize");

    /// <summary>Structured pruning: canonicalize (shared parameters back to initializers) and BatchNorm folded
    /// first, so every conv's channels carry their own scale; with criterion=bn-scale BatchNorm is folded
    /// after pruning, since its |gamma| is the criterion.</summary>
    public static readonly Preset Prune = new("prune",
        "structured filter pruning over channel dependency groups",
        "canonicalize,fold-bn", "prune",
        o => o.GetValueOrDefault("criterion") == "bn-scale"
            ? ("canonicalize", "fold-bn") : ("canonicalize,fold-bn", ""));

    /// <summary>Weight clustering: BatchNorm folded first, so the weights clustered are the ones that run.</summary>
    public static readonly Preset Cluster = new("cluster",
        "weight sharing by exact k-means, stored as float or as codes ORT decodes at load",
        "canonicalize,fold-bn", "cluster");

    public static IReadOnlyList<Preset> All { get; } = [Quantize, Prune, Cluster];

    /// <summary>What optimize runs without --passes: the exact clean-up with the transformer fusions
    /// ("canonicalize,fold-bn,fuse,canonicalize"), after the opset upgrade when <paramref name="opset"/> is given
    /// and the shape specialization when <paramref name="dims"/> are (symbolic dims are never frozen
    /// otherwise).</summary>
    public static Pipeline Exact(IReadOnlyDictionary<string, long>? dims = null, long? opset = null)
    {
        var steps = new List<string>();
        if (opset is long v) steps.Add($"upgrade-opset{{version={v}}}");
        if (dims is { Count: > 0 }) steps.Add($"fix-dims{{dims={FixDims.Format(dims)}}}");
        steps.Add("canonicalize,fold-bn,fuse,canonicalize");
        return Pipeline.Parse(string.Join(",", steps));
    }
}
