// Hard-swish as exporters decompose it (paddle2onnx, PyTorch below opset 14, TF converters), fused:
//
//   before:  y = x * Clip(x + 3, 0, 6) / 6     (or * (1/6), or x * (Clip(x + 3, 0, 6) / 6), or x * HardSigmoid(x))
//   after:   y = HardSwish(x)                                             (opset >= 14)
//            y = x * HardSigmoid(x; alpha = 1/6, beta = 0.5)              (opset 6 .. 13: two ops instead of four)
//
// HardSwish(x) = x * max(0, min(1, x / 6 + 1/2)) = x * min(max(x + 3, 0), 6) / 6, so the rewrite is exact up to float
// rounding (x / 6 + 0.5 against (x + 3) / 6: within an ulp or two of the gate). ONNX Runtime fuses neither form by
// itself, and on a 640x480 page of the PP-OCRv4 detector the four element-wise passes over each of its 24 hard-swish
// maps are a quarter of the run. The Clip bounds are inputs from opset 11 and attributes before; constants must be
// within 1e-4 (relative) of 3, 6 and 1/6, and every inner value read only inside the pattern.
using OnnxOpt.GraphIR;
using static OnnxOpt.Passes.Patterns;

namespace OnnxOpt.Passes;

public sealed record HardSwishMatch(Value X, List<Node> Nodes);

public sealed class HardSwishFusion : RewriteRule<HardSwishMatch>
{
    public override string Name => "fuse-hardswish";
    public override IReadOnlyList<string> RootOps { get; } = ["Mul", "Div"];
    public override long MinOpset => 6;

    public override RuleMatch<HardSwishMatch> Match(Node root, RuleContext ctx)
    {
        var nodes = new List<Node> { root };
        List<Value> leaves;
        if (root.OpType == "Div")
        {
            // (x * Clip(x + 3, 0, 6)) / 6
            if (!Near(Scalar(root.Input(1)), 6) || !Internal(root.Input(0)) || Op(root.Input(0), "Mul") is not { } mul)
                return new NoMatch("not a product divided by 6");
            nodes.Add(mul);
            leaves = Factors(mul, nodes, 2);
            if (leaves.Count != 2) return new NoMatch("not a product of two factors divided by 6");
            return Pair(leaves, nodes, gated: false, ctx) ?? (RuleMatch<HardSwishMatch>)new NoMatch(
                "not x * Clip(x + 3, 0, 6) / 6");
        }
        leaves = Factors(root, nodes, 3);
        if (leaves.Count == 3)
        {
            // x * Clip(x + 3, 0, 6) * (1/6), in any grouping.
            var sixth = leaves.FindIndex(v => Near(Scalar(v), 1.0 / 6));
            if (sixth < 0) return new NoMatch("a product of three factors without 1/6");
            leaves.RemoveAt(sixth);
            return Pair(leaves, nodes, gated: false, ctx) ?? (RuleMatch<HardSwishMatch>)new NoMatch(
                "not x * Clip(x + 3, 0, 6) / 6");
        }
        if (leaves.Count != 2) return new NoMatch("not a product of two or three factors");
        // x * gate(x): the gate a HardSigmoid(1/6, 0.5), Clip(x + 3, 0, 6) / 6 or Clip(x + 3, 0, 6) * (1/6).
        return Pair(leaves, nodes, gated: true, ctx) ?? (RuleMatch<HardSwishMatch>)new NoMatch(
            "not x * HardSigmoid(x) with alpha 1/6 and beta 1/2");
    }

    /// <summary>x and the other factor (either order): Clip(x + 3, 0, 6) (gated: false), or a complete hard sigmoid
    /// of x (gated: true). Null when neither order matches, or when the result would be the graph already there
    /// (x * HardSigmoid(x) below opset 14).</summary>
    private static RuleMatch<HardSwishMatch>? Pair(List<Value> leaves, List<Node> nodes, bool gated, RuleContext ctx)
    {
        foreach (var (x, other) in new[] { (leaves[0], leaves[1]), (leaves[1], leaves[0]) })
        {
            if (!x.ElementType.IsFloatingPoint() && x.ElementType != DataType.Undefined) continue;
            var inner = new List<Node>();
            bool already = false;
            bool found = gated ? HardSigmoidOf(other, x, inner, out already) : ClipOf(other, x, inner);
            if (!found) continue;
            if (gated && already && ctx.Opset < 14) return null;
            return new HardSwishMatch(x, [.. nodes, .. inner]);
        }
        return null;
    }

    /// <summary>Clip(x + 3, 0, 6), read only by the product.</summary>
    private static bool ClipOf(Value v, Value x, List<Node> inner)
    {
        if (!Internal(v) || Op(v, "Clip") is not { } clip) return false;
        double? lo = clip.Attr("min") is { } a ? a.F : Scalar(clip.Input(1));
        double? hi = clip.Attr("max") is { } b ? b.F : Scalar(clip.Input(2));
        if (lo is not 0.0 || !Near(hi, 6)) return false;
        if (!Internal(clip.Input(0)) || Op(clip.Input(0), "Add") is not { } add || !Near(Scalar(Other(add, x)), 3))
            return false;
        inner.Add(clip);
        inner.Add(add);
        return true;
    }

    /// <summary>A hard sigmoid of x read only by the product: HardSigmoid(x; 1/6, 0.5) (<paramref name="already"/>),
    /// Clip(x + 3, 0, 6) / 6 or Clip(x + 3, 0, 6) * (1/6).</summary>
    private static bool HardSigmoidOf(Value v, Value x, List<Node> inner, out bool already)
    {
        already = false;
        if (!Internal(v) || v.Producer is not { IsStandard: true } p) return false;
        if (p.OpType == "HardSigmoid")
        {
            already = true;
            inner.Add(p);
            return p.Input(0) == x && Near(p.Attr("alpha")?.F ?? 0.2, 1.0 / 6) && Near(p.Attr("beta")?.F ?? 0.5, 0.5);
        }
        Value? clip = p.OpType switch
        {
            "Div" when Near(Scalar(p.Input(1)), 6) => p.Input(0),
            "Mul" when Near(Scalar(p.Input(1)), 1.0 / 6) => p.Input(0),
            "Mul" when Near(Scalar(p.Input(0)), 1.0 / 6) => p.Input(1),
            _ => null,
        };
        if (clip is null || !ClipOf(clip, x, inner)) return false;
        inner.Add(p);
        return true;
    }

    public override void Apply(Node root, HardSwishMatch m, RuleContext ctx)
    {
        var rw = ctx.Rewriter;
        var g = root.Graph;
        rw.InsertionPoint = root;
        Node result;
        if (ctx.Opset >= 14) result = rw.Insert(g, "HardSwish", [m.X], "hardswish");
        else
        {
            var gate = rw.Insert(g, "HardSigmoid", [m.X], "hardsigmoid", 1,
                [OnnxAttribute.Float("alpha", 1f / 6), OnnxAttribute.Float("beta", 0.5f)]);
            rw.SetType(gate.Output(), root.Output().Type);
            result = rw.Insert(g, "Mul", [m.X, gate.Output()], "hardswish");
        }
        rw.SetType(result.Output(), root.Output().Type);
        rw.Replace(root.Output(), result.Output());
        rw.EraseIfDead(m.Nodes);
    }
}
