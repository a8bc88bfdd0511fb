// quantize{mode=weight-only,bits=4|8,block=32|64|128,rounding=nearest|gptq,symmetric}: the weights of every MatMul
// (constant [K, N]) and Gemm (transA 0) stored in 4 or 8 bits per block of K, activations left in float, run by
// com.microsoft MatMulNBits (MatMulNBitsWriter). What LLM and encoder deployments use to make the file and the memory
// traffic small without calibrating activations.
//   per output column n and block b:  w ~ s_nb (q - z_nb),  q in [0, 2^bits - 1]
//   asymmetric (default): s = (max - min) / (2^bits - 1) over the block (widened to include 0), z = round(-min / s)
//   symmetric:            z = 2^(bits - 1), s = max |w| / (2^(bits - 1) - 1)
//   rounding=nearest: each value to its nearest code; rounding=gptq (needs --calib): GPTQ (Gptq.cs), each column's
//   rounding error spread onto the columns after it through the inverse of the layer's input second moment H, the
//   block's scale fitted to the already updated values when the block starts.
// Each layer's output error on the sampled calibration rows, sum d^T H d, is reported for nearest and for GPTQ.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>A layer weight-only quantization stored: bits, block, and its output error on calibration rows with
/// round-to-nearest and with the rounding used (GPTQ), when measured.</summary>
public sealed record WeightOnlyLayer(string Node, string Op, string Decision) : Decision
{
    public int? Bits { get; init; }
    public int? Block { get; init; }
    public double? WeightSqnrDb { get; init; }
    public double? ErrorNearest { get; init; }
    public double? ErrorGptq { get; init; }
    public string? Reason { get; init; }
}

internal static class WeightOnlyQuantize
{
    public static void Run(PassContext ctx, QuantizePassOptions o)
    {
        var model = ctx.Model;
        ShapeInference.Run(model);
        int bits = (int)o.Bits, block = (int)o.Block;
        bool gptq = o.Rounding == "gptq";
        if (o.Rounding == "adaround")
            throw new OnnxModelException("quantize{mode=weight-only}: rounding is nearest (rtn) or gptq");
        var layers = Layers(ctx, o.ToEmitter());
        Dictionary<Node, LayerHessian>? hessians = null;
        if (gptq)
        {
            var calib = ctx.RequireCalibration("quantize{mode=weight-only,rounding=gptq}");
            var (found, refused) = LayerHessian.Collect(model, calib, layers, (int)o.AdaRoundRows,
                "quantize: GPTQ statistics");
            hessians = found;
            foreach (var (n, why) in refused)
                ctx.Stats.Notes.Add($"gptq: {QdqEmitter.Key(n)} rounds to nearest: {why}");
        }
        long before = 0, after = 0;
        foreach (var op in layers)
        {
            var (b, a) = QuantizeLayer(ctx, o, op, hessians?.GetValueOrDefault(op.Node));
            (before, after) = (before + b, after + a);
        }
        ctx.Rewriter.RemoveUnusedInitializers(model.Graph);
        if (layers.Count == 0) return;
        ctx.Stats.Notes.Add($"weight-only int{bits}: {layers.Count} MatMul/Gemm weights, {before:N0} -> {after:N0} "
            + $"bytes (blocks of {block}, {(o.Symmetric ? "symmetric" : "with zero points")}, "
            + $"{(gptq ? "GPTQ" : "round-to-nearest")}, accuracy_level {o.AccuracyLevel})");
        var measured = ctx.Stats.Decisions.OfType<WeightOnlyLayer>().Where(d => d.ErrorNearest > 0).ToList();
        if (measured.Count > 0)
        {
            var ratio = measured.Average(d => d.ErrorGptq!.Value / d.ErrorNearest!.Value);
            ctx.Stats.Notes.Add($"gptq: layer output error {ratio:P0} of round-to-nearest's on average "
                + "(calibration rows)");
        }
    }

    /// <summary>The selected MatMul/Gemm with a constant weight and a data input; the others are kept in float
    /// with the reason.</summary>
    private static List<LinearOp> Layers(PassContext ctx, QuantizeOptions qo)
    {
        var layers = new List<LinearOp>();
        foreach (var n in ctx.Model.Graph.Nodes.Where(n => n.IsStandard && n.OpType is "MatMul" or "Gemm").ToList())
        {
            if (!QdqEmitter.Selected(n, qo, new HashSet<string>())) continue;
            string? why = n.OpType == "Gemm" && n.GetInt("transA", 0) != 0 ? "Gemm with transA"
                : n.Input(0) is not { } a || Rewriter.ConstantOf(a) is not null ? "A is constant"
                : !LinearOp.TryOf(n, out _, out var r) ? r : null;
            if (why is not null)
            {
                ctx.Stats.Decide(new WeightOnlyLayer(QdqEmitter.Key(n), n.OpType, "float") { Reason = why });
                ctx.Stats.Count(Counters.Quantize.KeptInFloat);
                continue;
            }
            layers.Add(LinearOp.Of(n)!);
        }
        return layers;
    }

    /// <summary>One layer's weight on the block grid (GPTQ when its Hessian is known, else round to nearest),
    /// written as MatMulNBits; returns its bytes before and after.</summary>
    private static (long Before, long After) QuantizeLayer(PassContext ctx, QuantizePassOptions o, LinearOp op,
        LayerHessian? h)
    {
        int bits = (int)o.Bits, block = (int)o.Block;
        var node = op.Node;
        var (rows, k, n) = Rows(op);
        var original = (double[])rows.Clone();
        var grid = new BlockGrid(n, k, bits, block, o.Symmetric);
        double? eNearest = null, eGptq = null;
        if (h is not null)
        {
            var rtn = Nearest((double[])original.Clone(), n, k, new BlockGrid(n, k, bits, block, o.Symmetric));
            eNearest = h.Error(Difference(rtn, original));
            if (!Gptq.Run(rows, n, 0, k, h.H[0], grid)) Nearest(rows, n, k, grid);
            eGptq = h.Error(Difference(rows, original));
        }
        else Nearest(rows, n, k, grid);
        var w = MatMulNBitsWeight.Pack(grid.Codes, grid.Scales, o.Symmetric ? null : grid.Zeros, k, n, bits, block);
        ctx.Stats.Decide(new WeightOnlyLayer(QdqEmitter.Key(node), node.OpType, $"int{bits}")
        {
            Bits = bits,
            Block = block,
            WeightSqnrDb = Math.Round(Runtime.Validation.Fidelity.SqnrDb(original.Sum(v => v * v),
                Difference(rows, original).Sum(v => v * v)), 3),
            ErrorNearest = eNearest,
            ErrorGptq = eGptq,
        });
        ctx.Stats.Count(Counters.Quantize.WeightOnly(bits, node.OpType));
        MatMulNBitsWriter.Replace(ctx.Rewriter, ctx.Model.Graph, node, node.Input(1)!.Name, w, (int)o.AccuracyLevel);
        return (op.Weight.Length * 4L, w.B.Length + w.Scales.Length * 4L + (w.Zeros?.Length ?? 0));
    }

    /// <summary>The weight as rows [N][K] (one per output column), whatever the op's layout.</summary>
    private static (double[] Rows, int K, int N) Rows(LinearOp op)
    {
        int n = op.OutChannels, k = op.InChannels;
        var w = op.Weight;
        var rows = new double[n * k];
        for (long i = 0; i < w.Length; i++) rows[op.OutputChannelOf(i) * k + op.InputChannelOf(i)] = w[i];
        return (rows, k, n);
    }

    private static double[] Nearest(double[] rows, int n, int k, BlockGrid grid)
    {
        for (int r = 0; r < n; r++)
            for (int c = 0; c < k; c++)
            {
                grid.Begin(r, c, rows.AsSpan(r * k + c, k - c), default);
                rows[r * k + c] = grid.Quantize(r, c, rows[r * k + c]);
            }
        return rows;
    }

    private static double[] Difference(double[] a, double[] b) => a.Select((v, i) => v - b[i]).ToArray();
}
