// fold-affine: a constant per-channel scale or shift next to a linear op folded into its weights, exactly (the
// "learnable affine blocks" of PP-LCNetV3/PP-HGNetV2 exports, a BatchNorm fold-bn left as Mul + Add, a scaled
// residual branch). Through LinearOp, for Conv (any group), ConvTranspose (scale only), Gemm and MatMul with
// constant weights:
//  1. after:  y = Mul(Linear(x), s), s a scalar or one per output channel   ->  Linear'(x):  W'[o] = s_o W[o],
//             b'_o = s_o b_o                      (the linear op's output must feed only the Mul)
//             y = Add(Linear(x), t)   ->  the bias, as fuse-bias (FuseBiasRule, run by the same driver)
//  2. before: y = Linear(Mul(x, s)), s a scalar or one per input channel    ->  W'[.., i, ..] = W[.., i, ..] s_i
//             (zero padding commutes with a scale)
//             y = Linear(Add(x, t)), t a scalar or one per input channel    ->  b'_o = b_o + sum_(i,k) W[o,i,k] t_i,
//             only when every output reads every tap: a Conv without padding, a Gemm, a 2-D MatMul (which becomes
//             a Gemm); a padded Conv would see 0 where the shift should have been
//             (the Mul's or Add's output must feed only that linear op)
//             A Mul that completes a GELU (x * 0.5 * (1 + Erf(x / sqrt 2)), its tanh form) is left: folding its 0.5
//             would hide the GELU from ORT's fusion and from `fuse` (arctic-embed-xs: six unfused GELUs, 1.3 ms of
//             a 16 ms run at sequence 128).
// Channels: axis 1 for Conv/ConvTranspose, the last axis for Gemm/MatMul; a constant of any other shape (one that
// would broadcast x up, or vary along other axes) is left. One driver over the main graph and its subgraphs.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class FoldAffine : Pass<NoOptions>
{
    public override string Name => "fold-affine";
    public override string Summary =>
        "fold a constant per-channel Mul or Add next to a Conv/Gemm/MatMul into its weights and bias";
    public override bool VisitsSubgraphs => true;

    public override void Run(PassContext ctx, NoOptions o)
    {
        ShapeInference.Run(ctx.Model);
        new GreedyRewriteDriver([new ScaleIntoLinearRule(), new FuseBiasRule(), new AffineIntoNextLinearRule()])
        {
            VisitSubgraphs = true,
            MaxIterations = 4,
        }.Run(new RuleContext(ctx));
        ctx.Rewriter.RemoveUnusedInitializers(ctx.Model.Graph);
    }

    /// <summary>The per-channel values of a constant operand along a tensor of rank <paramref name="rank"/> with
    /// <paramref name="channels"/> channels on <paramref name="axis"/>: one per channel (a scalar repeated), or null
    /// when the constant varies along another axis or would broadcast the tensor up.</summary>
    internal static double[]? PerChannel(Tensor c, int rank, int axis, int channels)
    {
        var d = c.ToDoubleArray();
        if (d.Length == 1 && c.Dims.Length <= rank) return Enumerable.Repeat(d[0], channels).ToArray();
        if (c.Dims.Length > rank || d.Length != channels) return null;
        int at = axis - (rank - c.Dims.Length); // the channel axis within c's (right-aligned) dims
        if (at < 0 || c.Dims[at] != channels) return null;
        return c.Dims.Where((v, i) => i != at).All(v => v == 1) ? d : null;
    }

    internal static (Value? Act, Tensor? Const) Operands(Node n)
    {
        if (n.Inputs.Count != 2) return (null, null);
        for (int side = 0; side < 2; side++)
            if (Rewriter.ConstantOf(n.Input(1 - side)) is { ElementType: DataType.Float } t
                && n.Input(side) is { } v && Rewriter.ConstantOf(v) is null) return (v, t);
        return (null, null);
    }

    internal static int ChannelAxis(Node linear, int rank) => linear.OpType is "Conv" or "ConvTranspose" ? 1 : rank - 1;

    /// <summary>Writes a linear op's new weight (and its bias when it has one or gains a non-zero one).</summary>
    internal static void Write(Rewriter rw, LinearOp op, float[] weight, float[] bias)
    {
        var n = op.Node;
        bool hasBias = n.OpType != "MatMul" && n.Input(2) is not null;
        if (hasBias || bias.Any(v => v != 0)) op.Write(rw, op.WeightDims, weight, bias);
        else op.WriteWeight(rw, weight);
    }
}

public sealed record ScaleMatch(LinearOp Op, double[] Scale);

/// <summary>Mul(Linear(x), s) -> Linear'(x) with every output channel's weights and bias scaled.</summary>
public sealed class ScaleIntoLinearRule : RewriteRule<ScaleMatch>
{
    public override string Name => "scale-into-linear";
    public override IReadOnlyList<string> RootOps { get; } = ["Mul"];

    public override RuleMatch<ScaleMatch> Match(Node mul, RuleContext ctx)
    {
        var (v, c) = FoldAffine.Operands(mul);
        if (v is null || c is null) return new NoMatch("not a product of a value and a float constant");
        if (v.Producer is not { IsStandard: true } p || p.Graph != mul.Graph || v.Uses.Count != 1 || v.IsGraphOutput)
            return new NoMatch("the value is not a linear op's output feeding only this Mul");
        if (p.OpType is not ("Conv" or "ConvTranspose" or "Gemm" or "MatMul"))
            return new NoMatch("the value is not a linear op's output");
        if (p.OpType == "Gemm" && p.GetInt("transA", 0) != 0) return new NoMatch("Gemm with transA");
        if (!LinearOp.TryOf(p, out var op, out var why)) return new NoMatch(why);
        if (v.Shape is not { } s) return new NoMatch("the linear op's output rank is unknown");
        if (!Rewriter.CanReplace(mul.Output(), v))
            return new NoMatch("the product is a graph output the linear op cannot take over");
        var scale = FoldAffine.PerChannel(c, s.Rank, FoldAffine.ChannelAxis(p, s.Rank), op!.OutChannels);
        return scale is null ? new NoMatch("the constant is not one per output channel") : new ScaleMatch(op, scale);
    }

    public override void Apply(Node mul, ScaleMatch m, RuleContext ctx)
    {
        var (w, b) = m.Op.Scaled(m.Scale);
        var rw = ctx.Rewriter;
        FoldAffine.Write(rw, m.Op, w, b);
        var lin = m.Op.Node.Output();
        rw.SetType(lin, mul.Output().Type ?? lin.Type);
        rw.Replace(mul.Output(), lin);
        rw.Erase(mul);
        ctx.Stats.Count(Counters.FoldAffine.ScalesInto(m.Op.Node.OpType));
    }
}

public sealed record InputAffineMatch(LinearOp Op, double[] Values, bool IsShift);

/// <summary>Linear(Mul(x, s)) or Linear(Add(x, t)) -> Linear'(x) with the scale in the weights' input channels or
/// the shift in the bias.</summary>
public sealed class AffineIntoNextLinearRule : RewriteRule<InputAffineMatch>
{
    private static readonly GeluFusion Gelu = new();

    public override string Name => "affine-into-next-linear";
    public override IReadOnlyList<string> RootOps { get; } = ["Mul", "Add"];

    public override RuleMatch<InputAffineMatch> Match(Node n, RuleContext ctx)
    {
        var (x, c) = FoldAffine.Operands(n);
        if (x is null || c is null) return new NoMatch("not a value and a float constant");
        var y = n.Output();
        if (y.Uses.Count != 1 || y.IsGraphOutput || y.Uses[0].InputIndex != 0)
            return new NoMatch("the result does not feed only one linear op's input");
        var next = y.Uses[0].Node;
        if (!next.IsStandard || next.OpType is not ("Conv" or "Gemm" or "MatMul"))
            return new NoMatch("the result does not feed a Conv, Gemm or MatMul");
        if (n.OpType == "Mul" && Gelu.Match(n, ctx).Succeeded)
            return new NoMatch("the Mul completes a GELU (ORT fuses it whole)");
        if (next.OpType == "Gemm" && next.GetInt("transA", 0) != 0) return new NoMatch("Gemm with transA");
        if (!LinearOp.TryOf(next, out var op, out var why)) return new NoMatch(why);
        if (x.Shape is not { } s || y.Shape is not { } ys || ys.Rank != s.Rank)
            return new NoMatch("ranks unknown or changed by broadcasting");
        var values = FoldAffine.PerChannel(c, s.Rank, FoldAffine.ChannelAxis(next, s.Rank), op!.InChannels);
        if (values is null) return new NoMatch("the constant is not one per input channel");
        bool shift = n.OpType == "Add";
        if (shift && next.OpType == "Conv" && ((next.GetInts("pads") ?? []).Any(p => p != 0)
            || (next.GetString("auto_pad") ?? "NOTSET") is not ("NOTSET" or "VALID")))
            return new NoMatch("a padded Conv would read zeros where the shift should be");
        if (shift && next.OpType == "MatMul" && s.Rank != 2) return new NoMatch("a MatMul over [.., K] has no bias");
        return new InputAffineMatch(op, values, shift);
    }

    public override void Apply(Node n, InputAffineMatch m, RuleContext ctx)
    {
        var op = m.Op;
        var w = op.Weight.ToArray();
        var b = op.Bias.ToArray();
        if (m.IsShift)
        {
            var add = new double[b.Length];
            for (long i = 0; i < w.Length; i++) add[op.OutputChannelOf(i)] += w[i] * m.Values[op.InputChannelOf(i)];
            for (int o = 0; o < b.Length; o++) b[o] = (float)(b[o] + add[o]);
        }
        else for (long i = 0; i < w.Length; i++) w[i] = (float)(w[i] * m.Values[op.InputChannelOf(i)]);
        var rw = ctx.Rewriter;
        FoldAffine.Write(rw, op, w, b);
        var x = FoldAffine.Operands(n).Act!;
        rw.SetInput(op.Node, 0, x);
        rw.Erase(n);
        ctx.Stats.Count(Counters.FoldAffine.IntoNext(m.IsShift, op.Node.OpType));
    }
}
