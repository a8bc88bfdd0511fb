// fold-bn: BatchNormalization (inference) folded away, exactly.
//   s_c = gamma_c / sqrt(var_c + eps),  t_c = beta_c - mean_c * s_c
//  1. y = BN(Conv(x, W, b))          ->  Conv(x, W', b'):  W'[c,...] = s_c W[c,...],  b'_c = s_c b_c + t_c
//     y = BN(ConvTranspose(x, W, b)) ->  W'[i, j, ...] = s_(g*Cout/G + j) W[i, j, ...] (i in group g)
//     y = BN(Gemm(a, B, C))          ->  column n of alpha op(B) scaled by s_n, C'_n = s_n (beta C_n) + t_n,
//                                         alpha' = beta' = 1   (all three through LinearOp.Scaled)
//     (the producer's output must feed only the BN; weights and BN parameters constant)
//  2. y = Conv(BN(x), W2, b2) with conv pads all 0 (so no zero padding sees the shift t):
//        W2'[o,c,...] = W2[o,c,...] s_c,   b2'_o = b2_o + sum_(c,k) W2[o,c,k] t_c       (groups = 1)
//  3. otherwise a standalone BN becomes y = x * s + t with s, t shaped [C,1,...,1] (Mul + Add).
// Weights shared with other nodes are copied, never changed in place. One rule (FoldBatchNormRule, rooted
// at BatchNormalization, trying 1, 2, 3 in order) run by the greedy driver over the main graph and its
// subgraphs.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class FoldBatchNorm : Pass<NoOptions>
{
    public override string Name => "fold-bn";
    public override string Summary =>
        "fold BatchNormalization into the preceding Conv/ConvTranspose/Gemm (or next unpadded Conv, "
        + "or an affine Mul+Add)";

    public override bool VisitsSubgraphs => true;

    public override void Run(PassContext ctx, NoOptions o)
    {
        ShapeInference.Run(ctx.Model);
        var r = new GreedyRewriteDriver([new FoldBatchNormRule()])
        {
            VisitSubgraphs = true,
            MaxIterations = 2
        }.Run(new RuleContext(ctx));
        foreach (var (why, n) in r.Rules[0].Failures) ctx.Stats.Count(Counters.FoldBatchNorm.Skipped(why), n);
        ctx.Rewriter.RemoveUnusedInitializers(ctx.Model.Graph);
    }

    /// <summary>The float data of a constant input, copied so it can be changed.</summary>
    internal static float[]? Floats(Value? v) =>
        Rewriter.ConstantOf(v) is { ElementType: DataType.Float } t ? t.ToFloatArray() : null;

    /// <summary>Writes new data for input <paramref name="index"/> of a node: in place when the node is its
    /// only reader and it is an initializer, else as a new initializer.</summary>
    internal static void SetWeight(Rewriter rw, Node n, int index, long[] dims, float[] data, string baseName)
    {
        var v = n.Input(index);
        var t = Tensor.FromFloats(v?.Name ?? "", dims, data);
        if (v is { Initializer: not null, IsGraphInput: false } && v.Uses.Count == 1
            && !v.IsGraphOutput) rw.SetInitializer(v, t);
        else rw.SetInput(n, index, rw.Constant(n.Graph, v?.Name ?? baseName, t));
    }

    /// <summary>New data for one input of a node (written with SetWeight).</summary>
    public sealed record WeightWrite(int Index, long[] Dims, float[] Data, string BaseName);

    /// <summary>y = s * op(x) + t folded into a Conv, ConvTranspose or Gemm (LinearOp.Scaled), or null
    /// when the op cannot take it.</summary>
    public static (LinearOp Op, float[] Weight, float[] Bias)? PlanProducer(Node n, double[] s, double[] t)
    {
        if (n.OpType is not ("Conv" or "ConvTranspose" or "Gemm") || LinearOp.Of(n) is not { } op || op.OutChannels != s.Length)
            return null;
        var (w, b) = op.Scaled(s, t);
        return (op, w, b);
    }

    /// <summary>The writes that fold y = s * x + t into the unpadded dense Conv reading y, or null.</summary>
    public static List<WeightWrite>? PlanNextConv(Node conv, double[] s, double[] t)
    {
        if (conv.OpType != "Conv" || !conv.IsStandard || conv.GetInt("group", 1) != 1) return null;
        if ((conv.GetString("auto_pad") ?? "NOTSET") is not ("NOTSET" or "VALID")) return null;
        if (conv.GetInts("pads") is { } pads && pads.Any(p => p != 0)) return null;
        var w = Floats(conv.Input(1)); var wt = Rewriter.ConstantOf(conv.Input(1));
        if (w is null || wt!.Dims[1] != s.Length) return null;
        var cout = (int)wt.Dims[0]; var cin = s.Length; var k = w.Length / (cout * cin);
        var b = conv.Input(2) is null ? new float[cout] : Floats(conv.Input(2));
        if (b is null) return null;
        for (int o = 0; o < cout; o++)
        {
            double shift = 0;
            for (int c = 0; c < cin; c++)
                for (int q = 0; q < k; q++)
                {
                    var i = (o * cin + c) * k + q;
                    shift += w[i] * t[c];
                    w[i] = (float)(w[i] * s[c]);
                }
            b[o] = (float)(b[o] + shift);
        }
        return [new(1, wt.Dims, w, conv.Output().Name + "_W"), new(2, [cout], b, conv.Output().Name + "_B")];
    }
}

/// <summary>How a BatchNormalization folds: into its producer, into the next conv, or as Mul + Add.</summary>
public sealed record FoldBatchNormMatch(string Kind, Node? Target, double[] Scale, double[] Shift,
    IReadOnlyList<FoldBatchNorm.WeightWrite> Writes, (LinearOp Op, float[] Weight, float[] Bias)? Producer = null);

public sealed class FoldBatchNormRule : RewriteRule<FoldBatchNormMatch>
{
    public override string Name => "fold-bn";
    public override IReadOnlyList<string> RootOps { get; } = ["BatchNormalization"];

    public override RuleMatch<FoldBatchNormMatch> Match(Node bn, RuleContext ctx)
    {
        if (bn.GetInt("training_mode", 0) != 0 || bn.Outputs.Skip(1).Any(v => v is not null && (v.Uses.Count > 0 || v.IsGraphOutput)))
            return Refused(ctx, "training mode");
        var p = Enumerable.Range(1, 4).Select(i => Rewriter.ConstantOf(bn.Input(i))).ToArray();
        if (p.Any(t => t is null || t.ElementType != DataType.Float)) return Refused(ctx,
            "parameters not constant float");
        var eps = bn.GetFloat("epsilon", 1e-5f);
        var gamma = p[0]!.ToFloatArray(); var beta = p[1]!.ToFloatArray(); var mean = p[2]!.ToFloatArray(); var var_ = p[3]!.ToFloatArray();
        var c = gamma.Length;
        var s = new double[c]; var t = new double[c];
        for (int i = 0; i < c; i++) { s[i] = gamma[i] / Math.Sqrt(var_[i] + (double)eps); t[i] = beta[i] - mean[i] * s[i]; }
        var x = bn.Input(0)!;
        var y = bn.Output();
        if (x.Producer is { } prod && prod.Graph == bn.Graph && x.Uses.Count == 1 && !x.IsGraphOutput
            && Rewriter.CanReplace(y, x)
            && FoldBatchNorm.PlanProducer(prod, s, t) is { } plan)
            return new FoldBatchNormMatch("producer", prod, s, t, [], plan);
        if (y.Uses.Count == 1 && !y.IsGraphOutput && y.Uses[0] is { InputIndex: 0 } u
            && FoldBatchNorm.PlanNextConv(u.Node, s, t) is { } next)
            return new FoldBatchNormMatch("next", u.Node, s, t, next);
        if (x.Shape is { Rank: >= 2 } && Rewriter.CanReplace(y,
            x)) return new FoldBatchNormMatch("affine", null, s, t, []);
        return Refused(ctx, "rank unknown");
    }

    private static NoMatch Refused(RuleContext ctx, string why) => new(why);

    public override void Apply(Node bn, FoldBatchNormMatch m, RuleContext ctx)
    {
        var rw = ctx.Rewriter;
        var (x, y, g) = (bn.Input(0)!, bn.Output(), bn.Graph);
        if (m.Target is { } target)
        {
            if (m.Producer is var (op, weight, bias)) op.Write(rw, op.WeightDims, weight, bias);
            foreach (var w in m.Writes) FoldBatchNorm.SetWeight(rw, target, w.Index, w.Dims, w.Data, w.BaseName);
            rw.Replace(y, x);
            rw.Erase(bn);
            ctx.Stats.Count(m.Kind == "producer"
                ? Counters.FoldBatchNorm.Into(target.OpType) : Counters.FoldBatchNorm.IntoNextConv);
            return;
        }
        var dims = new long[x.Shape!.Rank - 1];
        dims[0] = m.Scale.Length;
        for (int i = 1; i < dims.Length; i++) dims[i] = 1;
        var sv = rw.Constant(g,
            y.Name + "_scale", Tensor.FromFloats("", dims, m.Scale.Select(v => (float)v).ToArray()));
        var tv = rw.Constant(g,
            y.Name + "_shift", Tensor.FromFloats("", dims, m.Shift.Select(v => (float)v).ToArray()));
        var mul = rw.Insert(g, "Mul", [x, sv], y.Name + "_scaled").Output();
        var add = rw.Insert(g, "Add", [mul, tv], y.Name + "_affine").Output();
        rw.SetType(add, y.Type);
        rw.Replace(y, add);
        rw.Erase(bn);
        ctx.Stats.Count(Counters.FoldBatchNorm.StandaloneToMulAdd);
    }
}
