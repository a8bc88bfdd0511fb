// fuse-bias: a per-channel constant added after a linear op becomes that op's bias, exactly.
//   y = Add(Conv(x, W, b), c),  c of shape [C,1,..,1], [1,C,1,..,1] or a scalar  ->  Conv(x, W, b + c)
//   y = Add(Gemm(a, B, C), d),  d of shape [N] or [1,N] (or scalar)               ->  Gemm(a, B, beta*C + d), beta = 1
//   y = Add(MatMul(a, B), d),   a 2-D, B constant [K,N], d of shape [N] or [1,N]  ->  Gemm(a, B, d)
// The linear op's output must feed only the Add. One rule (FuseBiasRule, rooted at Add) run by the greedy
// driver over the main graph and its subgraphs.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class FuseBias : Pass<NoOptions>
{
    public override string Name => "fuse-bias";
    public override string Summary =>
        "fold a per-channel constant Add into the preceding Conv/Gemm bias (MatMul+Add becomes Gemm)";
    public override bool VisitsSubgraphs => true;

    public override void Run(PassContext ctx, NoOptions o)
    {
        ShapeInference.Run(ctx.Model);
        new GreedyRewriteDriver([new FuseBiasRule()])
        {
            VisitSubgraphs = true,
            MaxIterations = 2
        }.Run(new RuleContext(ctx));
        ctx.Rewriter.RemoveUnusedInitializers(ctx.Model.Graph);
    }
}

/// <summary>The new bias of the linear op an Add feeds from (its side of the Add, and how to write it).</summary>
public sealed record FuseBiasMatch(Node Producer, Value Linear, long[] BiasDims, float[] Bias, bool ToGemm,
    bool ResetBeta);

public sealed class FuseBiasRule : RewriteRule<FuseBiasMatch>
{
    public override string Name => "fuse-bias";
    public override IReadOnlyList<string> RootOps { get; } = ["Add"];

    public override RuleMatch<FuseBiasMatch> Match(Node add, RuleContext ctx)
    {
        string why = "neither input is a linear op's output feeding only this Add";
        for (int side = 0; side < 2; side++)
        {
            var lin = add.Input(side);
            var cst = Rewriter.ConstantOf(add.Input(1 - side));
            if (lin?.Producer is not { IsStandard: true } p || p.Graph != add.Graph || lin.Uses.Count != 1
                || lin.IsGraphOutput) continue;
            if (cst is not { ElementType: DataType.Float }) { why = "the addend is not a float constant"; continue; }
            if (!Rewriter.CanReplace(add.Output(),
                lin)) { why = "the sum is a graph output the linear op cannot take over"; continue; }
            var r = p.OpType switch
            {
                "Conv" => ConvBias(p, cst, lin),
                "Gemm" => GemmBias(p, cst),
                "MatMul" => MatMulBias(p, cst, lin),
                _ => new NoMatch($"{p.OpType} has no bias to fold into"),
            };
            if (r.Succeeded) return r;
            why = r.Reason!;
        }
        return new NoMatch(why);
    }

    private static RuleMatch<FuseBiasMatch> ConvBias(Node p, Tensor cst, Value lin)
    {
        var wt = Rewriter.ConstantOf(p.Input(1));
        if (wt is null) return new NoMatch("conv weights not constant");
        if (lin.Shape is not { } ys) return new NoMatch("conv output rank unknown");
        var d = cst.ToFloatArray();
        var c = (int)wt.Dims[0];
        // [C,1,..,1] aligned with axis 1 of the output, or [1,C,1,..], or a scalar.
        var rank = ys.Rank;
        var dims = cst.Dims;
        bool perChannel = d.Length == c && dims.Length <= rank && dims.Length >= rank - 1 &&
            dims[dims.Length - (rank - 1)] == c && dims.Select((x, i) => i == dims.Length - (rank - 1)
                || x == 1).All(b => b);
        if (!(perChannel || d.Length == 1)) return new NoMatch("the addend is not per output channel");
        var b = p.Input(2) is null ? new float[c] : FoldBatchNorm.Floats(p.Input(2));
        if (b is null) return new NoMatch("conv bias not constant float");
        for (int i = 0; i < c; i++) b[i] += d.Length == 1 ? d[0] : d[i];
        return new FuseBiasMatch(p, lin, [c], b, ToGemm: false, ResetBeta: false);
    }

    private static RuleMatch<FuseBiasMatch> GemmBias(Node p, Tensor cst)
    {
        var bt = Rewriter.ConstantOf(p.Input(1));
        if (bt is null) return new NoMatch("Gemm's B not constant");
        var d = cst.ToFloatArray();
        var n = (int)(p.GetInt("transB", 0) != 0 ? bt.Dims[0] : bt.Dims[1]);
        if (!(d.Length == 1 || (d.Length == n && cst.Dims[^1] == n && cst.Dims.Length <= 2)))
            return new NoMatch("the addend is not per output column");
        float[] cv;
        if (p.Input(2) is null) cv = new float[n];
        else if (Rewriter.ConstantOf(p.Input(2)) is { ElementType: DataType.Float } ct && ct.ElementCount == n
            && ct.Dims.Length <= 2
                 && ct.Dims.LastOrDefault(1) == n) cv = ct.ToFloatArray();
        else return new NoMatch("Gemm's C is not a constant [N] vector");
        var beta = p.GetFloat("beta", 1f);
        var nc = Enumerable.Range(0, n).Select(j => beta * cv[j] + (d.Length == 1 ? d[0] : d[j])).ToArray();
        return new FuseBiasMatch(p, p.Output(), [n], nc, ToGemm: false, ResetBeta: true);
    }

    private static RuleMatch<FuseBiasMatch> MatMulBias(Node p, Tensor cst, Value lin)
    {
        var bt = Rewriter.ConstantOf(p.Input(1));
        if (bt is null || bt.Dims.Length != 2) return new NoMatch("MatMul's B is not a constant matrix");
        if (p.Input(0)?.Shape is not { Rank: 2 }) return new NoMatch("MatMul's A is not 2-D");
        var d = cst.ToFloatArray();
        var n = (int)bt.Dims[1];
        if (!(d.Length == n && cst.Dims[^1] == n
            && cst.Dims.Length <= 2)) return new NoMatch("the addend is not per output column");
        return new FuseBiasMatch(p, lin, [n], d, ToGemm: true, ResetBeta: false);
    }

    public override void Apply(Node add, FuseBiasMatch m, RuleContext ctx)
    {
        var (rw, p, lin) = (ctx.Rewriter, m.Producer, m.Linear);
        var op = p.OpType;
        if (m.ToGemm) rw.SetOpType(p, "Gemm");
        if (p.Input(2) is null) rw.SetInput(p, 2, rw.Constant(p.Graph,
            lin.Name + "_bias", Tensor.FromFloats("", m.BiasDims, m.Bias)));
        else FoldBatchNorm.SetWeight(rw, p, 2, m.BiasDims, m.Bias, lin.Name + "_bias");
        if (m.ResetBeta) rw.SetAttr(p, OnnxAttribute.Float("beta", 1f));
        var y = add.Output();
        rw.SetType(lin, y.Type ?? lin.Type);
        rw.Replace(y, lin);
        rw.Erase(add);
        ctx.Stats.Count(Counters.FuseBias.Into(op));
    }
}
