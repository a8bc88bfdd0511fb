// canonicalize's partial-shape rules: shape arithmetic over a tensor whose shape is only partly known (a symbolic
// batch N, a static width), as every traced export writes it for `x.reshape(b, n, 3, h, c // h)`, resolved at
// optimization time instead of by a dozen Shape/Gather/Unsqueeze/Concat kernels per block at run time. Exact:
//   y = Gather(Shape(x), i)  or  Slice(Shape(x), a, b),  every selected dim of x static
//                                                        ->  initializer y = int64[those dims]
//   y = Reshape(d, t), allowzero = 0, t's entries known from constants and shapes (Concat of constants,
//       Shape/Slice/Gather/Unsqueeze of shapes) except symbolic ones:
//       at least one entry symbolic (a fully static target is constant folding's);
//       an entry that is d's own dim at the same position (the same symbol or size)  ->  0 (Reshape copies it)
//       then at most one entry still unknown, with no -1 among the others  ->  -1 (Reshape infers it: the other
//       entries are exact, so the element count leaves it one value, the true one)
//                                                        ->  y = Reshape(d, initializer t')
// A known dim of 0 in t is refused (0 means "copy" to Reshape). The Shape/Gather/Concat chain that computed t is
// left to dead-code removal: the default optimize takes testmodels/fashion/vit.onnx to 131 nodes instead of 202, the
// digits test ViT to 102 instead of 156 (README, optimize, has the ORT timings).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>One entry of an int64 shape vector: a literal from a constant (where -1 and 0 keep Reshape's
/// meanings) or a tensor's dim (static or symbolic).</summary>
public readonly record struct ShapeEntry(long? Literal, Dim Dim)
{
    public long? Known => Literal ?? Dim.Value;
}

internal static class ShapeVectors
{
    /// <summary>The entries of a 0-D or 1-D int64 value computed from constants and tensor shapes, or null when
    /// some entry is computed otherwise (the rules then leave it).</summary>
    public static List<ShapeEntry>? Of(Value? v, int depth = 0)
    {
        if (v is null || depth > 8) return null;
        if (Rewriter.ConstantOf(v) is { ElementType: DataType.Int64, Dims.Length: <= 1 } c)
            return c.ToInt64Array().Select(x => new ShapeEntry(x, Dim.Unknown)).ToList();
        if (v.Producer is not { IsStandard: true } p) return null;
        switch (p.OpType)
        {
            case "Shape" when p.Input(0)?.Shape is { } s:
            {
                int r = s.Rank, start = (int)p.GetInt("start", 0), end = (int)p.GetInt("end", r);
                start = Math.Clamp(start < 0 ? start + r : start, 0, r);
                end = Math.Clamp(end < 0 ? end + r : end, start, r);
                return s.Dims.Skip(start).Take(end - start).Select(d => new ShapeEntry(null, d)).ToList();
            }
            case "Gather" when p.GetInt("axis", 0) == 0 && Rewriter.ConstantOf(p.Input(1)) is { Dims.Length: <= 1 } idx:
            {
                if (Of(p.Input(0), depth + 1) is not { } from) return null;
                var picked = new List<ShapeEntry>();
                foreach (var i in idx.ToInt64Array())
                {
                    var k = i < 0 ? i + from.Count : i;
                    if (k < 0 || k >= from.Count) return null;
                    picked.Add(from[(int)k]);
                }
                return picked;
            }
            case "Slice":
                return Of(p.Input(0), depth + 1) is { } whole && SliceRange(p, whole.Count) is { } range
                    && range.End >= range.Start ? whole.Skip(range.Start).Take(range.End - range.Start).ToList() : null;
            case "Unsqueeze":
            {
                var axes = p.GetInts("axes") ?? Rewriter.ConstantOf(p.Input(1))?.ToInt64Array();
                return axes is [0] or [-1] && p.Input(0)?.Shape is { Rank: 0 } ? Of(p.Input(0), depth + 1) : null;
            }
            case "Concat" when p.GetInt("axis", 0) is 0 or -1:
            {
                var all = new List<ShapeEntry>();
                foreach (var part in p.Inputs)
                    if (Of(part, depth + 1) is { } e) all.AddRange(e);
                    else return null;
                return all;
            }
            default:
                return null;
        }
    }

    // [a, b) of a step-1 Slice along axis 0 with constant bounds (inputs from opset 10, attributes before).
    private static (int Start, int End)? SliceRange(Node slice, int length)
    {
        long[]? Arg(int input, string attr) =>
            slice.GetInts(attr) ?? Rewriter.ConstantOf(slice.Input(input))?.ToInt64Array();
        if (Arg(1, "starts") is not [var s] || Arg(2, "ends") is not [var e]) return null;
        if (Arg(3, "axes") is { } axes && axes is not ([0] or [-1])) return null;
        if (slice.Inputs.Count > 4 && Rewriter.ConstantOf(slice.Input(4))?.ToInt64Array() is not [1]) return null;
        long Clamp(long x) => Math.Clamp(x < 0 ? x + length : x, 0, length);
        return ((int)Clamp(s), (int)Clamp(e));
    }
}

/// <summary>Gather/Slice of a Shape whose selected dims are all static -> initializer.</summary>
public sealed class StaticShapeElementsRule : RewriteRule<Tensor>
{
    public override string Name => "static-shape-elements";
    public override IReadOnlyList<string> RootOps { get; } = ["Gather", "Slice"];

    public override RuleMatch<Tensor> Match(Node n, RuleContext ctx)
    {
        if (n.Input(0)?.Producer is not { OpType: "Shape", IsStandard: true })
            return new NoMatch("not an element of a Shape");
        if (n.Output().IsGraphOutput) return new NoMatch("its output is a graph output");
        if (ShapeVectors.Of(n.Output()) is not { } e) return new NoMatch("indices or bounds are not constant");
        if (e.Any(x => x.Known is null)) return new NoMatch("a selected dim is not static");
        var scalar = n.OpType == "Gather" && Rewriter.ConstantOf(n.Input(1)) is { Dims.Length: 0 };
        return Tensor.FromInt64s("", scalar ? [] : [e.Count], e.Select(x => x.Known!.Value).ToArray());
    }

    public override void Apply(Node n, Tensor t, RuleContext ctx)
    {
        ConstantToInitializerRule.Swap(n.Graph, ctx.Rewriter, n.Output(), t);
        ctx.Rewriter.Erase(n);
    }
}

/// <summary>Reshape with a computed target whose unknown entries are copies of the input's dims (0) or one
/// inferable dim (-1) -> Reshape with a constant target.</summary>
public sealed class ReshapeTargetRule : RewriteRule<Tensor>
{
    public override string Name => "reshape-target-to-constant";
    public override IReadOnlyList<string> RootOps { get; } = ["Reshape"];

    public override RuleMatch<Tensor> Match(Node n, RuleContext ctx)
    {
        if (n.Inputs.Count < 2 || Rewriter.ConstantOf(n.Input(1)) is not null) return new NoMatch("a constant target");
        if (n.GetInt("allowzero", 0) != 0) return new NoMatch("allowzero = 1 (0 would not copy)");
        if (ShapeVectors.Of(n.Input(1)) is not { } e) return new NoMatch("the target is not computed from shapes");
        if (e.All(x => x.Known is not null)) return new NoMatch("every entry is static (constant folding takes it)");
        var data = n.Input(0)?.Shape;
        var target = new long?[e.Count];
        for (int p = 0; p < e.Count; p++)
        {
            // A dim of the input's shape at the same position is copied (0), as fix-dims writes it.
            if (e[p].Literal is null && data is { } s && p < s.Rank && SameDim(s[p], e[p].Dim)) target[p] = 0;
            else if (e[p].Known is long k)
            {
                if (e[p].Literal is null && k == 0) return new NoMatch("a dim of 0 (Reshape would copy)");
                target[p] = k;
            }
        }
        var unknown = Enumerable.Range(0, e.Count).Where(p => target[p] is null).ToList();
        if (unknown.Count > 1 || (unknown.Count == 1 && target.Contains(-1)))
            return new NoMatch("more than one entry is neither known nor a copy of the input's dim");
        foreach (var p in unknown) target[p] = -1;
        return Tensor.FromInt64s("", [e.Count], target.Select(x => x!.Value).ToArray());
    }

    private static bool SameDim(Dim a, Dim b) =>
        a.Value is long va ? b.Value == va && va > 0 : a.Param is { } pa && b.Param == pa;

    public override void Apply(Node n, Tensor t, RuleContext ctx)
    {
        var rw = ctx.Rewriter;
        var c = rw.Constant(n.Graph, n.Input(1)!.Name + "_const", t);
        rw.SetInput(n, 1, c);
    }
}
