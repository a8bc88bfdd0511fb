// fix-dims{dims=batch:1;sequence:128}: shape specialization. The named symbolic dims get their values in every
// declared type (graph inputs, outputs, value_info, in subgraphs too), shapes are inferred again, and the shape
// arithmetic they fed is folded by canonicalize (exact):
//
//   s = Shape(input_ids)               // [batch, sequence]          s  -> initializer {1, 128}
//   n = Gather(s, 1)                                                  n  -> 128
//   u = Unsqueeze(n, [0])                                             (folded)
//   c = Concat(b, u, {4}, {16})                                       c  -> initializer {1, 128, 4, 16}
//   y = Reshape(x, c)                                                 y = Reshape(x, c_folded)
//
// Without fix-dims nothing freezes a symbolic dim (optimize only does it when --dim is given and --passes is not,
// or when the pipeline names this pass). Dims that no graph input has are refused with the dims it does have.
using System.Globalization;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record FixDimsOptions
{
    [Option("dims", "the symbolic dims to fix, NAME:VALUE;NAME:VALUE (e.g. batch:1;sequence:128)")]
    public string Dims { get; init; } = "";
}

public sealed class FixDims : Pass<FixDimsOptions>
{
    public override string Name => "fix-dims";
    public override string Summary => "give symbolic dims fixed values and fold the shape arithmetic they feed (exact)";

    /// <summary>The option text for these dims ("batch:1;sequence:128").</summary>
    public static string Format(IReadOnlyDictionary<string, long> dims) =>
        string.Join(";", dims.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}:{kv.Value}")));

    public static Dictionary<string, long> Parse(string text)
    {
        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var part in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split(':', 2);
            if (kv.Length != 2 || kv[0].Length == 0 || !long.TryParse(kv[1], NumberStyles.Integer,
                CultureInfo.InvariantCulture, out var v) || v <= 0)
                throw new OnnxModelException($"fix-dims: '{part}' is not NAME:VALUE with a positive VALUE");
            d[kv[0]] = v;
        }
        return d;
    }

    public override void Run(PassContext ctx, FixDimsOptions o)
    {
        var dims = Parse(o.Dims);
        if (dims.Count == 0)
            throw new OnnxModelException("fix-dims: give the dims to fix, e.g. fix-dims{dims=batch:1}");
        var model = ctx.Model;
        var known = model.Graph.Inputs.Where(v => !v.IsInitializer).SelectMany(v => v.Shape?.Dims ?? [])
            .Select(d => d.Param).OfType<string>().ToHashSet(StringComparer.Ordinal);
        foreach (var name in dims.Keys.Where(n => !known.Contains(n)))
            throw new OnnxModelException($"fix-dims: the model's inputs have no symbolic dim '{name}' (their dims: "
                + (known.Count == 0 ? "none" : string.Join(", ", known.Order(StringComparer.Ordinal))) + ")");
        int types = 0;
        foreach (var g in model.Graph.SelfAndSubgraphs())
            foreach (var v in g.Values.ToList())
                if (ShapeInference.Specialize(v.Type, dims) is { } fixedType)
                {
                    ctx.Rewriter.SetType(v, fixedType);
                    types++;
                }
        ctx.Stats.Count(Counters.FixDims.TypesSpecialized, types);
        ctx.Stats.Notes.Add("fixed " + string.Join(", ", dims.Select(kv => $"{kv.Key}={kv.Value}")));
        // The shape arithmetic over the now static shapes folds as canonicalize folds any constant.
        var stats = ctx.Stats;
        ctx.Stats = new PassStats();
        try { new Canonicalize().Run(ctx, new CanonicalizeOptions()); }
        finally { (stats, ctx.Stats) = (ctx.Stats, stats); }
        foreach (var k in (CounterKey[])[Counters.Canonicalize.NodesFolded, Counters.Canonicalize.DeadNodesRemoved,
                     Counters.Canonicalize.ConstantsToInitializers])
            ctx.Stats.Count(k, stats[k]);
        ctx.Stats.Count(Counters.FixDims.ReshapeDimsKeptAsZero, CopyDimsAsZero(ctx));
    }

    /// <summary>Folded Reshape targets write back the sizes they copied from their input as 0 ("copy this
    /// dim"): [1, 128, 12, 32] on a [1, 128, 384] input becomes [0, 0, 12, 32], exactly, the form exporters
    /// write and ONNX Runtime's attention fusion looks for (with the literal sizes the fused Attention is lost
    /// and a BERT runs 13% slower).</summary>
    private static int CopyDimsAsZero(PassContext ctx)
    {
        int n = 0;
        var rw = ctx.Rewriter;
        foreach (var node in ctx.Model.Graph.Nodes.Where(x => x.OpType == "Reshape" && x.IsStandard).ToList())
        {
            if (node.GetInt("allowzero", 0) != 0 || node.Input(0)?.Shape is not { IsFullyKnown: true } s
                || node.Input(1) is not { Initializer: { } t } target || target.IsGraphInput) continue;
            var shape = t.ToInt64Array();
            var dims = s.ToArray();
            var copied = shape.Select((v, i) => i < dims.Length && v > 0 && v == dims[i] ? 0 : v).ToArray();
            if (copied.SequenceEqual(shape)) continue;
            var c = rw.Constant(node.Graph, target.Name, Tensor.FromInt64s("", [copied.Length], copied));
            rw.SetInput(node, 1, c);
            n++;
        }
        rw.RemoveUnusedInitializers(ctx.Model.Graph);
        return n;
    }
}
