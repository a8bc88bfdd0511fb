// LayerNorm as exporters decompose it below opset 17, fused into one LayerNormalization (opset 17), exact:
//
//   m = ReduceMean(x, axes=[-1])            d = Sub(x, m)
//   v = ReduceMean(Pow(d, 2), axes=[-1])    (or Mul(d, d))
//   n = Div(d, Sqrt(Add(v, eps)))
//   y = Add(Mul(n, gamma), beta)            (operands in either order)
//   ->  y = LayerNormalization(x, gamma, beta, axis=-1, epsilon=eps)
//
// y = (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta over the last axis, which is LayerNormalization's definition
// with axis = -1 (Ba et al. 2016). Every intermediate must be read only inside the pattern; gamma and beta must be
// constants holding one value per channel of the last axis (reshaped to [C] if they were [1, 1, C]).
using OnnxOpt.GraphIR;
using static OnnxOpt.Passes.Patterns;

namespace OnnxOpt.Passes;

public sealed record LayerNormMatch(Value X, Value GammaValue, Tensor Gamma, Value BetaValue, Tensor Beta,
    double Epsilon, List<Node> Nodes);

public sealed class LayerNormFusion : RewriteRule<LayerNormMatch>
{
    public override string Name => "fuse-layernorm";
    public override IReadOnlyList<string> RootOps { get; } = ["Add"];
    public override long MinOpset => 17;

    public override RuleMatch<LayerNormMatch> Match(Node root, RuleContext ctx)
    {
        Node? mul = null;
        Value? betaV = null;
        foreach (var (a, b) in new[] { (root.Input(0), root.Input(1)), (root.Input(1), root.Input(0)) })
            if (Op(a, "Mul") is { } m && Internal(a) && Rewriter.ConstantOf(b) is not null)
            {
                (mul, betaV) = (m, b);
                break;
            }
        if (mul is null) return new NoMatch("not Add(Mul(...), constant)");
        Node? div = null;
        Value? gammaV = null;
        foreach (var (a, b) in new[] { (mul.Input(0), mul.Input(1)), (mul.Input(1), mul.Input(0)) })
            if (Op(a, "Div") is { } dv && Internal(a) && Rewriter.ConstantOf(b) is not null)
            {
                (div, gammaV) = (dv, b);
                break;
            }
        if (div is null) return new NoMatch("no Div(x - mean, sqrt(var + eps)) under the scale");
        var sub = Op(div.Input(0), "Sub");
        var sqrt = Op(div.Input(1), "Sqrt");
        if (sub is null || sqrt is null || !Internal(div.Input(1))) return new NoMatch("not (x - mean) / sqrt(...)");
        var addEps = Op(sqrt.Input(0), "Add");
        if (addEps is null || !Internal(sqrt.Input(0))) return new NoMatch("no Add(var, eps) under Sqrt");
        Node? varMean = null;
        double? eps = null;
        foreach (var (a, b) in new[] { (addEps.Input(0), addEps.Input(1)), (addEps.Input(1), addEps.Input(0)) })
            if (Op(a, "ReduceMean") is { } r && Internal(a) && Scalar(b) is double e) { varMean = r; eps = e; break; }
        if (varMean is null || eps is not double epsilon || epsilon < 0) return new NoMatch("no ReduceMean(...) + eps");
        var sq = varMean.Input(0)?.Producer;
        var d = sub.Output();
        bool squares = sq is { IsStandard: true } && Internal(varMean.Input(0))
            && (sq.OpType == "Pow" && sq.Input(0) == d && Scalar(sq.Input(1)) == 2
                || sq.OpType == "Mul" && sq.Input(0) == d && sq.Input(1) == d);
        if (!squares) return new NoMatch("the variance is not the mean of (x - mean)^2");
        if (!Internal(d, sq!.OpType == "Mul" ? 3 : 2)) return new NoMatch("x - mean is read elsewhere");
        var x = sub.Input(0);
        var mean = Op(sub.Input(1), "ReduceMean");
        if (x is null || mean is null || mean.Input(0) != x || !Internal(sub.Input(1)))
            return new NoMatch("not x - ReduceMean(x)");
        if (!x.ElementType.IsFloatingPoint()) return new NoMatch("x is not floating point");
        int? rank = x.Shape?.Rank;
        if (!ReducesLastAxis(mean, rank) || !ReducesLastAxis(varMean, rank))
            return new NoMatch("the means are not over the last axis alone (keepdims)");
        var gamma = Rewriter.ConstantOf(gammaV)!;
        var beta = Rewriter.ConstantOf(betaV)!;
        long? c = x.Shape is { Rank: > 0 } s ? s.Dims[^1].Value : null;
        long channels = c ?? gamma.Dims.LastOrDefault();
        bool PerChannel(Tensor t) => t.ElementType == x.ElementType && t.ElementCount == channels
            && t.Dims.Length >= 1 && t.Dims[^1] == channels;
        if (channels <= 0 || !PerChannel(gamma) || !PerChannel(beta))
            return new NoMatch("scale and bias are not one constant per channel of the last axis");
        return new LayerNormMatch(x, gammaV!, gamma, betaV!, beta, epsilon,
            [root, mul, div, sqrt, addEps, varMean, sq, sub, mean]);
    }

    public override void Apply(Node root, LayerNormMatch m, RuleContext ctx)
    {
        var rw = ctx.Rewriter;
        var g = root.Graph;
        rw.InsertionPoint = root;
        var c = m.Gamma.Dims[^1];
        // A [C] initializer is used as it is; a [1, 1, C] one or a Constant node's value gets a [C] initializer.
        Value PerChannel(Value v, Tensor t, string name) => v.Initializer is not null && t.Dims.Length == 1 ? v
            : rw.Constant(g, name, t.WithData(t.ElementType, [c], t.RawData));
        var gamma = PerChannel(m.GammaValue, m.Gamma, "ln_scale");
        var beta = PerChannel(m.BetaValue, m.Beta, "ln_bias");
        var ln = rw.Insert(g, "LayerNormalization", [m.X, gamma, beta], "layernorm", 1,
            OnnxAttribute.Int("axis", -1), OnnxAttribute.Float("epsilon", (float)m.Epsilon));
        rw.SetType(ln.Output(), root.Output().Type);
        rw.Replace(root.Output(), ln.Output());
        rw.EraseIfDead(m.Nodes);
    }
}
