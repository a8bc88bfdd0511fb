// Where an activation y = act(z) sits in a graph: its input z and the node producing y, for the ReLU family
// (one node, piecewise linear: every linearize mode) and, for Layer Folding's trained slopes (mode=train), the
// smooth activations transformers and mobile nets use, as exporters write them:
//   one node      Gelu (opset 20, or com.microsoft Gelu/FastGelu), HardSwish, Mish, Elu, Celu, Selu
//   GELU          x * 0.5 * (1 + Erf(x / sqrt 2)) or the Tanh form (GeluFusion's match; its inner nodes read only
//                 inside the product)
//   SiLU / swish  x * Sigmoid(x), hard swish x * HardSigmoid(x) (the gate read only by the product)
// The slope form y' = act(z) + a (z - act(z)) needs nothing else of act: at a = 1 it is z, whatever act is.
// Pure: reads the graph.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>An activation: the node producing y, its input z, and what kind it is (for reports).</summary>
public sealed record ActivationSite(Node Act, Value Z, string Kind)
{
    public Value Y => Act.Output();

    private static readonly HashSet<string> SmoothOps =
        ["Gelu", "FastGelu", "HardSwish", "Mish", "Elu", "Celu", "Selu"];

    /// <summary>The ReLU-family activations of the main graph (and the smooth ones when asked).</summary>
    public static List<ActivationSite> Find(Graph g, bool smooth, PassContext ctx)
    {
        var sites = new List<ActivationSite>();
        var gelu = smooth ? new GeluFusion() : null;
        var rules = smooth ? new RuleContext(ctx) : null;
        foreach (var n in g.Nodes)
        {
            if (OpTraits.Has(n, OpTrait.PiecewiseLinear)) sites.Add(new(n, n.Input(0)!, n.OpType));
            else if (!smooth || n.Input(0) is null) continue;
            else if (SmoothOps.Contains(n.OpType) && (n.IsStandard || n.Domain == "com.microsoft"))
                sites.Add(new(n, n.Input(0)!, n.OpType));
            else if (n is { OpType: "Mul", IsStandard: true } && Gate(n) is { } x)
                sites.Add(new(n, x.Z, x.Kind));
            else if (n is { OpType: "Mul", IsStandard: true } && gelu!.Match(n, rules!).Value is { } m)
                sites.Add(new(n, m.X, m.Tanh ? "Gelu (tanh, decomposed)" : "Gelu (erf, decomposed)"));
        }
        return sites;
    }

    /// <summary>x * Sigmoid(x) or x * HardSigmoid(x), the gate read only by the product.</summary>
    private static (Value Z, string Kind)? Gate(Node mul)
    {
        for (int i = 0; i < 2; i++)
        {
            var x = mul.Input(i);
            var gate = mul.Input(1 - i)?.Producer;
            if (x is null || gate is not { IsStandard: true, OpType: "Sigmoid" or "HardSigmoid" }
                || gate.Input(0) != x || gate.Output().Uses.Count != 1 || gate.Output().IsGraphOutput) continue;
            return (x, gate.OpType == "Sigmoid" ? "SiLU" : "HardSwish (decomposed)");
        }
        return null;
    }
}
