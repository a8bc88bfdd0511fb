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
// One rule (QOperatorLoweringRule: a pure match that plans the op and its inputs, an apply that edits), run
// once over the main graph in order.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class QOperatorLowering
{
    internal const string Ms = "com.microsoft";

    /// <summary>Lowers every quantized group of the main graph; the stats count each lowering by op.</summary>
    public static void Run(PassContext ctx)
    {
        var rc = new RuleContext(ctx);
        new GreedyRewriteDriver([new QOperatorLoweringRule()]) { MaxIterations = 1 }.Run(rc);
        var rw = ctx.Rewriter;
        rw.RemoveDeadNodes(ctx.Model.Graph);
        rw.RemoveUnusedInitializers(ctx.Model.Graph);
        rw.Finish();
    }
}

/// <summary>What the lowering of one node writes: the op, its inputs and attributes, and the QuantizeLinear
/// nodes whose outputs the new node's outputs replace (one per output).</summary>
public sealed record QLowering(string Op, string Domain, IReadOnlyList<Value?> Inputs, OnnxAttribute[] Attributes,
    IReadOnlyList<Node> Quantizers, bool Shared);

/// <summary>A quantized group "DQ inputs -> op -> Q" -> one QOperator op.</summary>
public sealed class QOperatorLoweringRule : RewriteRule<QLowering>
{
    private const string Ms = QOperatorLowering.Ms;

    public override string Name => "lower-to-qoperator";
    public override IReadOnlyList<string> RootOps { get; } =
    [
        "Conv", "MatMul", "Gemm", "Add", "Mul", "AveragePool", "GlobalAveragePool", "Concat",
        "MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Split", "Slice", "Resize",
    ];

    public override RuleMatch<QLowering> Match(Node n, RuleContext ctx)
    {
        var lowering = n.OpType switch
        {
            "Conv" => Compute(n, "QLinearConv", "", [0, 1, -1, 2], keepAttrs: true),
            "MatMul" => Compute(n, "QLinearMatMul", "", [0, 1, -1], keepAttrs: false),
            "Gemm" => Compute(n, "QGemm", Ms, [0, 1, 2, -1], keepAttrs: true),
            "Add" => Compute(n, "QLinearAdd", Ms, [0, 1, -1], keepAttrs: false),
            "Mul" => Compute(n, "QLinearMul", Ms, [0, 1, -1], keepAttrs: false),
            "AveragePool" => Compute(n, "QLinearAveragePool", Ms, [0, -1], keepAttrs: true),
            "GlobalAveragePool" => Compute(n, "QLinearGlobalAveragePool", Ms, [0, -1], keepAttrs: false,
                OnnxAttribute.Int("channels_last", 0)),
            "Concat" => Concat(n),
            _ => Shared(n),
        };
        return lowering is null ? new NoMatch("not a quantized group (inputs from DequantizeLinear, output to one "
            + "QuantizeLinear)") : lowering;
    }

    public override void Apply(Node n, QLowering l, RuleContext ctx)
    {
        var rw = ctx.Rewriter;
        var g = n.Graph;
        var node = rw.Insert(g, l.Domain, l.Op, l.Inputs, n.Outputs[0]!.Name + "_int", l.Quantizers.Count,
            l.Attributes);
        for (int k = 0; k < l.Quantizers.Count; k++)
        {
            var q = l.Quantizers[k];
            rw.SetType(node.Output(k), q.Output().Type);
            rw.Replace(q.Output(), node.Output(k));
            rw.Erase(q);
        }
        rw.Erase(n);
        if (l.Domain == Ms && ctx.Model.OpsetVersion(Ms) is null) rw.SetOpset(Ms, 1);
        ctx.Stats.Count(Counters.Quantize.Lowered(n.OpType,
            l.Shared ? n.OpType : (l.Domain.Length > 0 ? l.Domain + "." : "") + l.Op));
    }

    private sealed record Dq(Value Q, Value Scale, Value Zero);

    private static Dq? DqOf(Value? v) =>
        v?.Producer is { OpType: "DequantizeLinear", IsStandard: true } d && d.Input(2) is { } z
            ? new Dq(d.Input(0)!, d.Input(1)!, z) : null;

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

    /// <summary>layout: indices of the op's inputs, each replaced by (q, scale, zero) -- except a bias
    /// (Conv input 2, Gemm input 2), which is passed as its int32 tensor alone -- and -1 for (ys, yz).</summary>
    private static QLowering? Compute(Node n, string op, string domain, int[] layout, bool keepAttrs,
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
        var attrs = (keepAttrs ? n.AttributesOrEmpty.Where(a => !(n.OpType == "Gemm" && a.Name == "beta")) : [])
            .Concat(extra).ToArray();
        return new QLowering(op, domain, ins, attrs, [q], Shared: false);
    }

    private static QLowering? Concat(Node n)
    {
        if (OnlyQ(n.Output()) is not { } q) return null;
        var ins = new List<Value?> { q.Input(1), q.Input(2) };
        foreach (var i in n.Inputs)
        {
            if (DqOf(i) is not { } d) return null;
            ins.AddRange([d.Q, d.Scale, d.Zero]);
        }
        return new QLowering("QLinearConcat", Ms, ins, [.. n.AttributesOrEmpty], [q], Shared: false);
    }

    /// <summary>An op that moves values without changing them runs on the integer tensor when its input and
    /// every output share one scale and zero point.</summary>
    private static QLowering? Shared(Node n)
    {
        if (DqOf(n.Input(0)) is not { } d) return null;
        var outs = n.Outputs.Where(o => o is not null).Select(o => OnlyQ(o!)).ToList();
        if (outs.Any(q => q is null || !SameParams(d, q))) return null;
        var ins = n.Inputs.ToList();
        ins[0] = d.Q;
        return new QLowering(n.OpType, "", ins, [.. n.AttributesOrEmpty], outs!, Shared: true);
    }
}
