// quantize{mode=dynamic}: dynamic int8, no calibration data. Every MatMul (and Gemm without transA, alpha = beta = 1)
// with a constant float weight B [K, N] becomes ONNX Runtime's contrib DynamicQuantizeMatMul, which quantizes its
// float input A to uint8 at run time (per tensor, from A's own min and max) and multiplies by int8 weights:
//
//   y = MatMul(A, B) (+ Add(y, bias))  ->  y = com.microsoft.DynamicQuantizeMatMul(A, B_q, s, zp, bias)
//   s_j = max_k |B[k, j]| / 127 (per output column j; 63 with reduce-range), B_q = round(B / s) in [-127, 127],
//   zp = 0 (symmetric weights), bias: the constant [N] Add that followed, folded in.
//
// An input that several of them read (a block's q, k and v projections) is quantized once, by DynamicQuantizeLinear,
// and each reads the shared uint8 copy through MatMulIntegerToFloat(A_q, B_q, s_A, s, zp_A, zp, bias) (measured on
// arctic-embed-xs against DynamicQuantizeMatMul everywhere: 1.01x at sequence 128, no change at 32).
// What ONNX Runtime's quantize_dynamic does, with per-column weight scales. The activations keep their dynamic
// range per call, which is why transformers hold up where static int8 of the attention mask arithmetic does not.
// The accuracy is validated like any approximate pass (optimize --eval, the measure of the output).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

internal static class DynamicQuantize
{
    public const string Domain = "com.microsoft";

    public static void Run(PassContext ctx, QuantizePassOptions o)
    {
        var model = ctx.Model;
        var rw = ctx.Rewriter;
        var g = model.Graph;
        var qo = o.ToEmitter();
        ShapeInference.Run(model);
        int done = 0;
        // An input several MatMuls read (a block's q, k and v projections) is quantized once, by DynamicQuantizeLinear,
        // and each of them becomes MatMulIntegerToFloat over the shared uint8 copy.
        var eligible = g.Nodes.Where(n => n.IsStandard && n.OpType is "MatMul" or "Gemm" && WhyNot(n) is null
            && !(qo.Include.Count > 0 && !Named(n, qo.Include) || Named(n, qo.Exclude))).ToList();
        var sharedInputs = eligible.GroupBy(n => n.Input(0)!).Where(x => x.Count() >= 2).Select(x => x.Key).ToHashSet();
        var quantizedInputs = new Dictionary<Value, Node>();
        foreach (var n in g.Nodes.Where(n => n.IsStandard && n.OpType is "MatMul" or "Gemm").ToList())
        {
            var key = n.Name is { Length: > 0 } name ? name : n.Output().Name;
            if (qo.Include.Count > 0 && !Named(n, qo.Include) || Named(n, qo.Exclude)) continue;
            if (WhyNot(n) is { } why)
            {
                ctx.Stats.Count(Counters.Quantize.KeptInFloat);
                ctx.Stats.Decide(new QuantizedOp(key, n.OpType, "float") { Reason = why });
                continue;
            }
            var w = Rewriter.ConstantOf(n.Input(1))!;
            bool transB = n.OpType == "Gemm" && n.GetInt("transB", 0) != 0;
            var (k, cols) = transB ? ((int)w.Dims[1], (int)w.Dims[0]) : ((int)w.Dims[0], (int)w.Dims[1]);
            var b = w.ToFloatArray();
            var (q, scales) = PerColumn(b, k, cols, transB, qo.WeightMax);
            var (bias, output) = BiasOf(n, cols);
            rw.InsertionPoint = n;
            if (bias is not null && Rewriter.ConstantOf(bias) is { Dims.Length: not 1 } bt2)
                bias = rw.Constant(g, bias.Name + "_1d", bt2.WithData(bt2.ElementType, [cols], bt2.RawData));
            var bq = rw.Constant(g, w.Name + "_int8", new Tensor("", DataType.Int8, [k, cols], q));
            var scale = rw.Constant(g, w.Name + "_scale", Tensor.FromFloats("", [cols], scales));
            var zp = rw.Constant(g, w.Name + "_zero_point", new Tensor("", DataType.Int8, [cols], new byte[cols]));
            Node dq;
            if (sharedInputs.Contains(n.Input(0)!))
            {
                var a = n.Input(0)!;
                if (!quantizedInputs.TryGetValue(a, out var dql))
                {
                    rw.InsertionPoint = a.Producer is { } p0 && p0.Graph == g ? null : rw.InsertionPoint;
                    dql = quantizedInputs[a] = rw.Insert(g, "DynamicQuantizeLinear", [a], a.Name + "_uint8", 3);
                    rw.InsertionPoint = n;
                }
                dq = rw.Insert(g, Domain, "MatMulIntegerToFloat", [dql.Outputs[0], bq, dql.Outputs[1], scale,
                    dql.Outputs[2], zp, bias], key + "_dynamic_int8");
            }
            else
                dq = rw.Insert(g, Domain, "DynamicQuantizeMatMul", [n.Input(0), bq, scale, zp, bias],
                    key + "_dynamic_int8");
            rw.SetType(dq.Output(), output.Type);
            rw.Replace(output, dq.Output());
            rw.EraseIfDead([output.Producer!, n]);
            ctx.Stats.Count(Counters.Quantize.Quantized(n.OpType));
            ctx.Stats.Decide(new QuantizedOp(key, n.OpType, "int8 (dynamic)")
            {
                Bits = QuantizedOp.BitsOf(qo.WeightMax),
                WeightSqnrDb = QuantizedOp.SqnrDb(b, i =>
                {
                    var (r, c) = transB ? (i % k, i / k) : (i / cols, i % cols);
                    return (sbyte)q[r * cols + c] * (double)scales[c];
                }),
            });
            done++;
        }
        if (done > 0 && model.OpsetVersion(Domain) is null) rw.SetOpset(Domain, 1);
        rw.RemoveUnusedInitializers(g);
        rw.Finish();
        if (o.ReducesRange)
            ctx.Stats.Notes.Add($"7-bit weights in [-{qo.WeightMax}, {qo.WeightMax}] (reduce-range; this CPU: "
                + $"{Int8Hardware.Description})");
    }

    /// <summary>B [K, N] (or [N, K] with transB) as int8 [K, N] with one symmetric scale per column: the weight grid
    /// every static int8 weight uses (QuantizedWeight, per output channel), laid out as the dynamic ops read it.
    /// </summary>
    private static (byte[] Q, float[] Scales) PerColumn(float[] b, int k, int cols, bool transB, int weightMax)
    {
        var w = QuantizedWeight.Of(b, transB ? [cols, k] : [k, cols], transB ? 0 : 1, weightMax);
        var q = new byte[k * cols];
        for (int r = 0; r < k; r++)
            for (int c = 0; c < cols; c++)
                q[r * cols + c] = unchecked((byte)w.Values[transB ? c * k + r : r * cols + c]);
        return (q, w.Scales);
    }

    /// <summary>The bias the dynamic op takes: Gemm's C, or a constant [N] Add read only here (then the Add's output
    /// is what the op replaces); else none and the MatMul's own output.</summary>
    private static (Value? Bias, Value Output) BiasOf(Node n, int cols)
    {
        var output = n.Output();
        if (n.OpType == "Gemm" && n.Input(2) is { } cIn) return (cIn, output);
        if (output.Uses.Count == 1 && !output.IsGraphOutput
            && output.Uses[0].Node is { OpType: "Add", IsStandard: true } add
            && add.Inputs.FirstOrDefault(i => i != output) is { } bv
            && Rewriter.ConstantOf(bv) is { ElementType: DataType.Float } bt && bt.ElementCount == cols
            && bt.Dims.Length == 1)
            return (bv, add.Output());
        return (null, output);
    }

    private static bool Named(Node n, IReadOnlySet<string> names) => n.Name is { } nm && names.Contains(nm)
        || names.Contains(n.OpType)
        || n.Outputs.Any(o => o is not null && names.Contains(o.Name));

    /// <summary>Why a MatMul or Gemm cannot take the dynamic int8 kernel, or null.</summary>
    private static string? WhyNot(Node n)
    {
        if (Rewriter.ConstantOf(n.Input(1)) is not { ElementType: DataType.Float, Dims.Length: 2 })
            return "weight is not a constant float matrix";
        if (n.Input(0)?.ElementType is not DataType.Float) return "input is not float";
        if (n.OpType == "Gemm")
        {
            if (n.GetInt("transA", 0) != 0) return "Gemm with transA";
            if (n.GetFloat("alpha", 1) != 1 || n.GetFloat("beta", 1) != 1) return "Gemm with alpha or beta not 1";
            var cols = Rewriter.ConstantOf(n.Input(1))!.Dims[n.GetInt("transB", 0) != 0 ? 0 : 1];
            if (n.Input(2) is { } c && (Rewriter.ConstantOf(c) is not { ElementType: DataType.Float } ct
                || ct.ElementCount != cols || ct.Dims.Length > 1 && ct.Dims[0] != 1))
                return "Gemm bias is not a constant [N]";
        }
        return null;
    }
}
