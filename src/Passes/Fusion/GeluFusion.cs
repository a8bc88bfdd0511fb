// GELU as exporters write it, fused into one Gelu (opset 20), exact up to the constants' float rounding:
//
//   erf form  (torch nn.GELU, Hugging Face "gelu"):  y = x * 0.5 * (1 + Erf(x / 1.41421))      (x * 0.70711 too)
//             -> y = Gelu(x)                                    GELU(x) = x * Phi(x) = x/2 (1 + erf(x / sqrt 2))
//   tanh form (Hugging Face "gelu_new", GPT-2):       y = 0.5 * x * (1 + Tanh(0.79788 * (x + 0.044715 * x^3)))
//             -> y = Gelu(x, approximate="tanh")        (Hendrycks & Gimpel 2016; sqrt(2/pi) = 0.7978845608)
//
// The product's factors are gathered through Mul nodes read only inside it, so x * 0.5 * (...), (x * 0.5) * (...)
// and x * ((...) * 0.5) all match; x^3 may be Pow(x, 3) or x * x * x. Constants must be within 1e-4 (relative)
// of the exact ones.
using OnnxOpt.GraphIR;
using static OnnxOpt.Passes.Patterns;

namespace OnnxOpt.Passes;

public sealed record GeluMatch(Value X, bool Tanh, List<Node> Nodes);

public sealed class GeluFusion : RewriteRule<GeluMatch>
{
    public override string Name => "fuse-gelu";
    public override IReadOnlyList<string> RootOps { get; } = ["Mul"];
    public override long MinOpset => 20;

    public override RuleMatch<GeluMatch> Match(Node root, RuleContext ctx)
    {
        var nodes = new List<Node> { root };
        var f = Factors(root, nodes, 3);
        if (f.Count != 3) return new NoMatch("not a product of three factors");
        var half = f.FindIndex(v => Near(Scalar(v), 0.5, 1e-6));
        if (half < 0) return new NoMatch("no factor 0.5");
        f.RemoveAt(half);
        foreach (var (x, onePlus) in new[] { (f[0], f[1]), (f[1], f[0]) })
        {
            if (Op(onePlus, "Add") is not { } add || !Internal(onePlus)) continue;
            var inner = Near(Scalar(add.Input(0)), 1, 1e-6) ? add.Input(1)
                : Near(Scalar(add.Input(1)), 1, 1e-6) ? add.Input(0) : null;
            if (!Internal(inner)) continue;
            if (Op(inner, "Erf") is { } erf && ErfArgument(erf.Input(0), x) is { } scale)
            {
                if (!x.ElementType.IsFloatingPoint()) continue;
                return new GeluMatch(x, false, [.. nodes, add, erf, scale]);
            }
            if (Op(inner, "Tanh") is { } tanh && TanhArgument(tanh.Input(0), x) is { } chain)
                return new GeluMatch(x, true, [.. nodes, add, tanh, .. chain]);
        }
        return new NoMatch("not x * 0.5 * (1 + Erf(x / sqrt 2)) or its tanh approximation");
    }

    // x / 1.41421 or x * 0.70711: the scaling node.
    private static Node? ErfArgument(Value? z, Value x)
    {
        if (!Internal(z)) return null;
        if (Op(z, "Div") is { } div && div.Input(0) == x && Near(Scalar(div.Input(1)), Math.Sqrt(2))) return div;
        if (Op(z, "Mul") is { } mul && Other(mul, x) is { } c && Near(Scalar(c), Math.Sqrt(0.5))) return mul;
        return null;
    }

    // 0.79788 * (x + 0.044715 * x^3): the nodes of the chain.
    private static List<Node>? TanhArgument(Value? z, Value x)
    {
        if (!Internal(z) || Op(z, "Mul") is not { } outer) return null;
        var k = Near(Scalar(outer.Input(0)), Math.Sqrt(2 / Math.PI)) ? outer.Input(1)
            : Near(Scalar(outer.Input(1)), Math.Sqrt(2 / Math.PI)) ? outer.Input(0) : null;
        if (!Internal(k) || Op(k, "Add") is not { } add || Other(add, x) is not { } cubic || !Internal(cubic))
            return null;
        var chain = new List<Node> { outer, add };
        if (Op(cubic, "Mul") is not { } scaleMul) return null;
        chain.Add(scaleMul);
        var cube = Near(Scalar(scaleMul.Input(0)), 0.044715) ? scaleMul.Input(1)
            : Near(Scalar(scaleMul.Input(1)), 0.044715) ? scaleMul.Input(0) : null;
        if (!Internal(cube)) return null;
        if (Op(cube, "Pow") is { } pow && pow.Input(0) == x && Scalar(pow.Input(1)) == 3)
        {
            chain.Add(pow);
            return chain;
        }
        if (Op(cube, "Mul") is { } m3)
        {
            var inner = new List<Node> { m3 };
            var leaves = Factors(m3, inner, 3);
            if (leaves.Count == 3 && leaves.All(l => l == x)) { chain.AddRange(inner); return chain; }
        }
        return null;
    }

    public override void Apply(Node root, GeluMatch m, RuleContext ctx)
    {
        var rw = ctx.Rewriter;
        rw.InsertionPoint = root;
        var attrs = m.Tanh ? new[] { OnnxAttribute.String("approximate", "tanh") } : [];
        var gelu = rw.Insert(root.Graph, "Gelu", [m.X], "gelu", 1, attrs);
        rw.SetType(gelu.Output(), root.Output().Type);
        rw.Replace(root.Output(), gelu.Output());
        rw.EraseIfDead(m.Nodes);
    }
}
