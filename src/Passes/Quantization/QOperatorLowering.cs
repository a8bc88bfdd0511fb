// Lowers a QDQ model to QOperator form: each quantized group "DQ inputs -> op -> Q" becomes one op on
// the integer tensors:
//   Conv    -> QLinearConv(x, xs, xz, w, ws, wz, ys, yz, b)
//   MatMul  -> QLinearMatMul(a, as, az, b, bs, bz, ys, yz)
//   Gemm    -> com.microsoft.QGemm(a, as, az, b, bs, bz, c, ys, yz)
//   Add/Mul -> com.microsoft.QLinearAdd / QLinearMul(a, as, az, b, bs, bz, cs, cz)
//   Concat  -> com.microsoft.QLinearConcat(ys, yz, x1, x1s, x1z, ...)
//   AveragePool / GlobalAveragePool -> com.microsoft.QLinearAveragePool / QLinearGlobalAveragePool
//   MaxPool, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Split, Slice, Resize with equal input and
//   output parameters -> the same op on the integer tensor
// QuantizeLinear stays where float enters, DequantizeLinear where float is read; groups that do not
// match (ConvTranspose, ops next to float ones) stay in QDQ form, which ONNX Runtime still fuses.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class QOperatorLowering
{
    private const string Ms = "com.microsoft";

    private sealed record Dq(Value Q, Value Scale, Value Zero);

    private static Dq? DqOf(Value? v) =>
        v?.Producer is { OpType: "DequantizeLinear", IsStandard: true } d && d.Input(2) is { } z ? new Dq(d.Input(0)!, d.Input(1)!, z) : null;

    /// <summary>The QuantizeLinear that is the only reader of y (y not a graph output), or null.</summary>
    private static Node? OnlyQ(Value y) =>
        !y.IsGraphOutput && y.Uses.Count == 1 && y.Uses[0] is
        {
            InputIndex: 0,
            Node: { OpType: "QuantizeLinear", IsStandard: true } q
        } && q.Input(2) is not null ? q : null;

    private static bool SameParams(Dq a, Node q) => Equal(a.Scale, q.Input(1)!) && Equal(a.Zero, q.Input(2)!);

    private static bool Equal(Value a, Value b) => a == b ||
        (Rewriter.ConstantOf(a) is { } ta && Rewriter.ConstantOf(b) is { } tb && ta.ContentEquals(tb));

    public static void Run(Model m, Rewriter rw, PassStats stats)
    {
        var g = m.Graph;
        bool usesMs = false;
        foreach (var n in g.Nodes.ToList())
        {
            if (!g.Nodes.Contains(n) || !n.IsStandard) continue;
            var lowered = n.OpType switch
            {
                "Conv" => Compute(rw, n, "QLinearConv", "", [0, 1, -1, 2], keepAttrs: true),
                "MatMul" => Compute(rw, n, "QLinearMatMul", "", [0, 1, -1], keepAttrs: false),
                "Gemm" => Compute(rw, n, "QGemm", Ms, [0, 1, 2, -1], keepAttrs: true),
                "Add" => Compute(rw, n, "QLinearAdd", Ms, [0, 1, -1], keepAttrs: false),
                "Mul" => Compute(rw, n, "QLinearMul", Ms, [0, 1, -1], keepAttrs: false),
                "AveragePool" => Compute(rw, n, "QLinearAveragePool", Ms, [0, -1], keepAttrs: true),
                "GlobalAveragePool" => Compute(rw, n, "QLinearGlobalAveragePool", Ms, [0, -1], keepAttrs: false, OnnxAttribute.Int("channels_last", 0)),
                "Concat" => Concat(rw, n),
                "MaxPool" or "Reshape" or "Flatten" or "Transpose" or "Squeeze" or "Unsqueeze" or "Split" or "Slice" or "Resize" => Shared(rw, n),
                _ => null,
            };
            if (lowered is null) continue;
            stats.Count(Counters.Quantize.Lowered(n.OpType, lowered));
            if (lowered.StartsWith("com.microsoft", StringComparison.Ordinal)) usesMs = true;
        }
        if (usesMs && m.OpsetVersion(Ms) is null) m.OpsetImports.Add(new OpsetImport(Ms, 1));
        rw.RemoveDeadNodes(g);
        rw.RemoveUnusedInitializers(g);
        rw.Finish();
    }

    /// <summary>inputs: indices of the op's inputs, each replaced by (q, scale, zero) -- except a bias
    /// (Conv input 2, Gemm input 2), which is passed as its int32 tensor alone -- and -1 for (ys, yz).</summary>
    private static string? Compute(Rewriter rw, Node n, string op, string domain, int[] layout, bool keepAttrs,
        params OnnxAttribute[] extra)
    {
        if (OnlyQ(n.Output()) is not { } q) return null;
        var ins = new List<Value?>();
        foreach (var i in layout)
        {
            if (i == -1) { ins.Add(q.Input(1)); ins.Add(q.Input(2)); continue; }
            bool bias = i == 2 && n.OpType is "Conv" or "Gemm";
            if (bias)
            {
                if (n.Input(2) is null) { if (n.OpType == "Gemm") ins.Add(null); continue; }
                if (DqOf(n.Input(2)) is not { } bq || bq.Q.ElementType != DataType.Int32) return null;
                ins.Add(bq.Q);
                continue;
            }
            if (DqOf(n.Input(i)) is not { } d) return null;
            ins.AddRange([d.Q, d.Scale, d.Zero]);
        }
        var attrs = (keepAttrs ? n.Attributes.Where(a => !(n.OpType == "Gemm" && a.Name == "beta")) : []).Concat(extra).ToArray();
        Replace(rw, n, q, op, domain, ins, attrs);
        return (domain.Length > 0 ? domain + "." : "") + op;
    }

    private static string? Concat(Rewriter rw, Node n)
    {
        if (OnlyQ(n.Output()) is not { } q) return null;
        var ins = new List<Value?> { q.Input(1), q.Input(2) };
        foreach (var i in n.Inputs)
        {
            if (DqOf(i) is not { } d) return null;
            ins.AddRange([d.Q, d.Scale, d.Zero]);
        }
        Replace(rw, n, q, "QLinearConcat", Ms, ins, n.Attributes.ToArray());
        return Ms + ".QLinearConcat";
    }

    private static string? Shared(Rewriter rw, Node n)
    {
        if (DqOf(n.Input(0)) is not { } d) return null;
        var outs = n.Outputs.Where(o => o is not null).Select(o => (Value: o!, Q: OnlyQ(o!))).ToList();
        if (outs.Any(o => o.Q is null || !SameParams(d, o.Q))) return null;
        var g = n.Graph;
        var ins = n.Inputs.ToList();
        ins[0] = d.Q;
        var node = rw.Insert(g, n.OpType, ins, n.Outputs[0]!.Name + "_int", outs.Count, n.Attributes.ToArray());
        for (int k = 0; k < outs.Count; k++)
        {
            var q = outs[k].Q!;
            rw.SetType(node.Output(k), q.Output().Type);
            rw.Replace(q.Output(), node.Output(k));
            rw.Erase(q);
        }
        rw.Erase(n);
        return n.OpType;
    }

    private static void Replace(Rewriter rw, Node n, Node q, string op, string domain, List<Value?> ins,
        OnnxAttribute[] attrs)
    {
        var g = n.Graph;
        var node = rw.Insert(g, domain, op, ins, n.Output().Name + "_int", 1, attrs);
        rw.SetType(node.Output(), q.Output().Type);
        rw.Replace(q.Output(), node.Output());
        rw.Erase(q);
        rw.Erase(n);
    }
}
