// fuse-bias: a per-channel constant added after a linear op becomes that op's bias, exactly.
//   y = Add(Conv(x, W, b), c),  c of shape [C,1,..,1], [1,C,1,..,1] or a scalar  ->  Conv(x, W, b + c)
//   y = Add(Gemm(a, B, C), d),  d of shape [N] or [1,N] (or scalar)               ->  Gemm(a, B, beta*C + d), beta = 1
//   y = Add(MatMul(a, B), d),   a 2-D, B constant [K,N], d of shape [N] or [1,N]  ->  Gemm(a, B, d)
// The linear op's output must feed only the Add.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class FuseBias : Pass
{
    public override string Name => "fuse-bias";
    public override string Summary => "fold a per-channel constant Add into the preceding Conv/Gemm bias (MatMul+Add becomes Gemm)";

    public override void Run(PassContext ctx, PassOptions o)
    {
        ShapeInference.Run(ctx.Model);
        var rw = ctx.Rewriter;
        foreach (var g in ctx.Model.Graph.SelfAndSubgraphs().ToList())
            foreach (var add in g.Nodes.Where(n => n.OpType == "Add" && n.IsStandard).ToList())
            {
                for (int side = 0; side < 2; side++)
                {
                    var lin = add.Input(side); var cst = Rewriter.ConstantOf(add.Input(1 - side));
                    if (lin?.Producer is not { } p || p.Graph != g || lin.Uses.Count != 1 || lin.IsGraphOutput || cst is not { ElementType: DataType.Float }) continue;
                    var y = add.Output();
                    if (!Rewriter.CanReplace(y, lin)) continue;
                    var op = p.OpType;
                    if (TryFuse(rw, p, cst, lin))
                    {
                        lin.Type = y.Type ?? lin.Type;
                        rw.Replace(y, lin);
                        rw.Erase(add);
                        ctx.Stats.Count($"fused into {op}");
                        break;
                    }
                }
            }
        rw.RemoveUnusedInitializers(ctx.Model.Graph);
    }

    private static bool TryFuse(Rewriter rw, Node p, Tensor cst, Value lin)
    {
        if (!p.IsStandard) return false;
        var d = cst.ToFloatArray();
        switch (p.OpType)
        {
            case "Conv":
            {
                var wt = Rewriter.ConstantOf(p.Input(1));
                if (wt is null || lin.Shape is not { } ys) return false;
                var c = (int)wt.Dims[0];
                // [C,1,..,1] aligned with axis 1 of the output, or [1,C,1,..], or a scalar.
                var rank = ys.Rank;
                var dims = cst.Dims;
                bool perChannel = d.Length == c && dims.Length <= rank && dims.Length >= rank - 1 &&
                    dims[dims.Length - (rank - 1)] == c && dims.Select((x, i) => i == dims.Length - (rank - 1) || x == 1).All(b => b);
                if (!(perChannel || d.Length == 1)) return false;
                var b = p.Input(2) is null ? new float[c] : FoldBatchNorm.Floats(p.Input(2));
                if (b is null) return false;
                for (int i = 0; i < c; i++) b[i] += d.Length == 1 ? d[0] : d[i];
                if (p.Input(2) is null) rw.SetInput(p, 2, rw.Constant(p.Graph, lin.Name + "_bias", Tensor.FromFloats("", [c], b)));
                else FoldBatchNorm.SetWeight(rw, p, 2, [c], b, lin.Name + "_bias");
                return true;
            }
            case "Gemm":
            {
                var bt = Rewriter.ConstantOf(p.Input(1));
                if (bt is null) return false;
                var n = (int)(p.GetInt("transB", 0) != 0 ? bt.Dims[0] : bt.Dims[1]);
                if (!(d.Length == 1 || (d.Length == n && cst.Dims[^1] == n && cst.Dims.Length <= 2))) return false;
                float[] cv;
                if (p.Input(2) is null) cv = new float[n];
                else if (Rewriter.ConstantOf(p.Input(2)) is { ElementType: DataType.Float } ct && ct.ElementCount == n && ct.Dims.Length <= 2 && ct.Dims.LastOrDefault(1) == n) cv = ct.ToFloatArray();
                else return false;
                var beta = p.GetFloat("beta", 1f);
                var nc = Enumerable.Range(0, n).Select(j => beta * cv[j] + (d.Length == 1 ? d[0] : d[j])).ToArray();
                if (p.Input(2) is null) rw.SetInput(p, 2, rw.Constant(p.Graph, lin.Name + "_bias", Tensor.FromFloats("", [n], nc)));
                else FoldBatchNorm.SetWeight(rw, p, 2, [n], nc, lin.Name + "_bias");
                rw.SetAttr(p, OnnxAttribute.Float("beta", 1f));
                return true;
            }
            case "MatMul":
            {
                var bt = Rewriter.ConstantOf(p.Input(1));
                if (bt is null || bt.Dims.Length != 2 || p.Input(0)?.Shape is not { Rank: 2 }) return false;
                var n = (int)bt.Dims[1];
                if (!(d.Length == n && cst.Dims[^1] == n && cst.Dims.Length <= 2)) return false;
                p.OpType = "Gemm";
                rw.SetInput(p, 2, rw.Constant(p.Graph, lin.Name + "_bias", Tensor.FromFloats("", [n], d)));
                return true;
            }
            default: return false;
        }
    }
}
