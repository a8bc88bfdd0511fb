// A linear op seen uniformly: y = W (*) x + b with a constant float weight, whatever ONNX calls it.
//   Conv           W [Cout, Cin/G, k...], out axis 0, in axis 1, groups G, bias input 2
//   ConvTranspose  W [Cin, Cout/G, k...], out axis 1 (channel g*Cout/G + j for rows of group g), in axis 0
//   Gemm           y = alpha op(A) op(B) + beta C: W = alpha B (out axis 0 with transB, else 1), b = beta C
//                  (C of shape [N], [1,N] or a scalar; transA kept as is)
//   MatMul         A [.., K] x B [K, N] with B constant 2-D: out axis 1, in axis 0, no bias
// What passes do with it, each a pure computation on copies:
//   Scaled(s, t):     y' = s_c y_c + t_c   ->  W'[c] = s_c W[c],  b'_c = s_c b_c + t_c
//   KeepOutputs(K):   output channels K only (W rows along the out axis, b), groups 1 or depthwise (a
//                     depthwise op then also reads only input channels K: the producer must be sliced too)
//   KeepInputs(K):    input channels K only (W along the in axis), groups 1
// and Write(rw, W, b) puts a result back through the rewriter (a shared weight is copied, never changed
// in place; Gemm's alpha and beta become 1; a MatMul that gains a bias becomes a Gemm when A is 2-D).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class LinearOp
{
    private LinearOp(Node node, float[] weight, long[] dims, int outAxis, int inAxis, int groups, float[] bias)
    {
        Node = node; Weight = weight; WeightDims = dims; OutAxis = outAxis; InAxis = inAxis; Groups = groups; Bias = bias;
    }

    public Node Node { get; }
    /// <summary>The effective weight (Gemm: alpha folded in), a copy.</summary>
    public float[] Weight { get; }
    public long[] WeightDims { get; }
    public int OutAxis { get; }
    public int InAxis { get; }
    public int Groups { get; }
    /// <summary>The effective bias per output channel (zeros when the op has none; Gemm: beta C).</summary>
    public float[] Bias { get; }

    public int OutChannels => Node.OpType == "ConvTranspose" ? (int)WeightDims[1] * Groups : (int)WeightDims[OutAxis];
    public int InChannels => Node.OpType == "Conv" ? (int)WeightDims[1] * Groups : (int)WeightDims[InAxis];
    public bool IsDepthwise => Groups > 1 && Groups == OutChannels && Groups == InChannels;

    /// <summary>The view of a node, or null with the reason.</summary>
    public static LinearOp? Of(Node n) => TryOf(n, out var v, out _) ? v : null;

    public static bool TryOf(Node n, out LinearOp? op, out string why)
    {
        op = null;
        why = "";
        if (!OpTraits.Has(n, OpTrait.Linear)) { why = $"{n.OpType} is not a linear op"; return false; }
        if (Rewriter.ConstantOf(n.Input(1)) is not { ElementType: DataType.Float } wt)
        { why = "weight not constant float"; return false; }
        var w = wt.ToFloatArray();
        var dims = wt.Dims.ToArray();
        switch (n.OpType)
        {
            case "Conv" or "ConvTranspose":
            {
                if (dims.Length < 3) { why = "weight rank below 3"; return false; }
                var g = (int)n.GetInt("group", 1);
                if (!PrunableWeight.ValidGroups(n, dims))
                {
                    why = $"group={g} does not divide the weight's channels";
                    return false;
                }
                bool conv = n.OpType == "Conv";
                int cout = conv ? (int)dims[0] : (int)dims[1] * g;
                if (!TryBias(n.Input(2), cout, out var b)) { why = "bias not a constant [C] vector"; return false; }
                op = new LinearOp(n, w, dims, conv ? 0 : 1, conv ? 1 : 0, g, b);
                return true;
            }
            case "Gemm":
            {
                if (dims.Length != 2) { why = "B is not a matrix"; return false; }
                bool transB = n.GetInt("transB", 0) != 0;
                int nOut = (int)(transB ? dims[0] : dims[1]);
                var alpha = n.GetFloat("alpha", 1f);
                var beta = n.GetFloat("beta", 1f);
                float[] b;
                if (n.Input(2) is null) b = new float[nOut];
                else if (Rewriter.ConstantOf(n.Input(2)) is { ElementType: DataType.Float } ct
                         && (ct.ElementCount == 1 || (ct.ElementCount == nOut && ct.Dims.Length <= 2
                             && ct.Dims.LastOrDefault(1) == nOut)))
                {
                    var cd = ct.ToFloatArray();
                    b = Enumerable.Range(0, nOut).Select(j => beta * (cd.Length == 1 ? cd[0] : cd[j])).ToArray();
                }
                else { why = "C is not a constant [N] vector"; return false; }
                if (alpha != 1f) for (int i = 0; i < w.Length; i++) w[i] *= alpha;
                op = new LinearOp(n, w, dims, transB ? 0 : 1, transB ? 1 : 0, 1, b);
                return true;
            }
            default: // MatMul
            {
                if (dims.Length != 2) { why = "B is not a constant matrix"; return false; }
                op = new LinearOp(n, w, dims, 1, 0, 1, new float[dims[1]]);
                return true;
            }
        }
    }

    private static bool TryBias(Value? v, int c, out float[] b)
    {
        b = new float[c];
        if (v is null) return true;
        if (Rewriter.ConstantOf(v) is not { ElementType: DataType.Float } t || t.ElementCount != c) return false;
        b = t.ToFloatArray();
        return true;
    }

    /// <summary>The output channel each weight element feeds.</summary>
    public int OutputChannelOf(long index)
    {
        var inner = WeightDims.Skip(OutAxis + 1).Aggregate(1L, (a, d) => a * d);
        var j = (int)(index / inner % WeightDims[OutAxis]);
        if (Node.OpType != "ConvTranspose" || Groups == 1) return j;
        var row = (int)(index / WeightDims.Skip(1).Aggregate(1L, (a, d) => a * d));
        return row / ((int)WeightDims[0] / Groups) * (int)WeightDims[1] + j;
    }

    /// <summary>The input channel each weight element reads.</summary>
    public int InputChannelOf(long index)
    {
        if (Node.OpType == "Conv" && Groups != 1)
        {
            int perIn = (int)WeightDims[1], perOut = OutChannels / Groups;
            var inner = WeightDims.Skip(2).Aggregate(1L, (a, d) => a * d);
            var o = (int)(index / (perIn * inner));
            return o / perOut * perIn + (int)(index / inner % perIn);
        }
        var innerIn = WeightDims.Skip(InAxis + 1).Aggregate(1L, (a, d) => a * d);
        return (int)(index / innerIn % WeightDims[InAxis]);
    }

    /// <summary>y' = s_c y_c + t_c: the weight and bias that compute it (t optional).</summary>
    public (float[] Weight, float[] Bias) Scaled(IReadOnlyList<double> s, IReadOnlyList<double>? t = null)
    {
        if (s.Count != OutChannels) throw new ArgumentException($"{s.Count} scales for {OutChannels} output channels");
        var w = Weight.ToArray();
        for (long i = 0; i < w.Length; i++) w[i] = (float)(w[i] * s[OutputChannelOf(i)]);
        var b = Bias.Select((v, c) => (float)(v * s[c] + (t?[c] ?? 0))).ToArray();
        return (w, b);
    }

    /// <summary>Only output channels <paramref name="keep"/> (ascending): weight dims and data, bias.</summary>
    /// <remarks>A grouped Conv must keep the same number of output channels in each of its groups.</remarks>
    public (long[] Dims, float[] Weight, float[] Bias) KeepOutputs(IReadOnlyList<int> keep)
    {
        if (Groups != 1 && !IsDepthwise && (Node.OpType != "Conv" || !EvenlyGrouped(keep, OutChannels)))
            throw new InvalidOperationException(
                $"{Node}: a grouped conv must keep the same number of channels in each of its {Groups} groups");
        var axis = IsDepthwise && Node.OpType == "ConvTranspose" ? 0 : OutAxis;
        var (dims, w) = Take(axis, keep);
        return (dims, w, keep.Select(c => Bias[c]).ToArray());
    }

    /// <summary>Only input channels <paramref name="keep"/> (ascending): weight dims and data.</summary>
    /// <remarks>A grouped Conv (weight [Cout, Cin/G, ...]) must keep the same number k of input channels in each
    /// group; output channels of group j then keep the columns of the inputs group j kept: [Cout, k, ...].</remarks>
    public (long[] Dims, float[] Weight) KeepInputs(IReadOnlyList<int> keep)
    {
        if (Groups == 1) return Take(InAxis, keep);
        if (Node.OpType != "Conv" || !EvenlyGrouped(keep, InChannels))
            throw new InvalidOperationException(
                $"{Node}: a grouped conv must keep the same number of input channels in each of its {Groups} groups");
        int perIn = InChannels / Groups, perOut = OutChannels / Groups, k = keep.Count / Groups;
        var inner = WeightDims.Skip(2).Aggregate(1L, (a, d) => a * d);
        var data = new float[OutChannels * k * inner];
        for (int o = 0; o < OutChannels; o++)
        {
            var group = o / perOut;
            for (int i = 0; i < k; i++)
            {
                var col = keep[group * k + i] - group * perIn;
                Array.Copy(Weight, (o * perIn + col) * inner, data, (o * k + i) * inner, inner);
            }
        }
        var dims = WeightDims.ToArray();
        dims[1] = k;
        return (dims, data);
    }

    /// <summary>Ascending channels of [0, total) with the same count in each of the op's groups.</summary>
    private bool EvenlyGrouped(IReadOnlyList<int> keep, int total)
    {
        var per = total / Groups;
        var counts = new int[Groups];
        foreach (var c in keep) counts[c / per]++;
        return counts.All(n => n == counts[0]) && counts[0] > 0;
    }

    private (long[] Dims, float[] Data) Take(int axis, IReadOnlyList<int> keep)
    {
        var outer = WeightDims.Take(axis).Aggregate(1L, (a, d) => a * d);
        var inner = WeightDims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d);
        var n = WeightDims[axis];
        var data = new float[outer * keep.Count * inner];
        long k = 0;
        for (long o = 0; o < outer; o++)
            foreach (var c in keep)
            {
                if (c < 0 || c >= n) throw new ArgumentOutOfRangeException(nameof(keep),
                    $"channel {c} outside [0, {n})");
                Array.Copy(Weight, (o * n + c) * inner, data, k, inner);
                k += inner;
            }
        var dims = WeightDims.ToArray();
        dims[axis] = keep.Count;
        return (dims, data);
    }

    /// <summary>Writes an effective weight of the same dims back, leaving the bias as it is (Gemm's alpha 1).</summary>
    public void WriteWeight(Rewriter rw, float[] weight)
    {
        FoldBatchNorm.SetWeight(rw, Node, 1, WeightDims, weight, Node.Output().Name + "_W");
        if (Node.OpType == "Gemm" && Node.GetFloat("alpha", 1f) != 1f)
            rw.SetAttr(Node, OnnxAttribute.Float("alpha", 1f));
    }

    /// <summary>Writes an effective weight and bias back to the node (alpha/beta 1; MatMul becomes Gemm
    /// when it gains a non-zero bias and A is 2-D; over [batch, tokens.., K] the bias is added to the bias Add
    /// that follows, or a new Add is inserted after it).</summary>
    public void Write(Rewriter rw, long[] dims, float[] weight, float[] bias)
    {
        var n = Node;
        var name = n.Output().Name;
        if (n.OpType == "MatMul" && bias.Any(v => v != 0))
        {
            if (n.Input(0)?.Shape is not { Rank: 2 })
            {
                FoldBatchNorm.SetWeight(rw, n, 1, dims, weight, name + "_W");
                AddBiasAfter(rw, bias);
                return;
            }
            rw.SetOpType(n, "Gemm");
        }
        FoldBatchNorm.SetWeight(rw, n, 1, dims, weight, name + "_W");
        if (n.OpType != "MatMul") FoldBatchNorm.SetWeight(rw, n, 2, [bias.Length], bias, name + "_B");
        if (n.OpType == "Gemm")
        {
            if (n.GetFloat("alpha", 1f) != 1f) rw.SetAttr(n, OnnxAttribute.Float("alpha", 1f));
            if (n.GetFloat("beta", 1f) != 1f) rw.SetAttr(n, OnnxAttribute.Float("beta", 1f));
        }
        // A depthwise weight [C, 1, k...] keeps one group per channel it keeps.
        if (IsDepthwise && dims[0] != Groups) rw.SetAttr(n, OnnxAttribute.Int("group", dims[0]));
    }

    /// <summary>y = x W over [batch, tokens.., K] gains b: into the [N] constant of the one bias Add reading y, or
    /// through a new Add.</summary>
    private void AddBiasAfter(Rewriter rw, float[] bias)
    {
        var y = Node.Output();
        if (y.Uses.Count == 1 && y.Uses[0].Node is { OpType: "Add", IsStandard: true } add
            && add.Inputs.Select((v, i) => (v, i)).FirstOrDefault(p => p.v != y) is var (other, index)
            && Rewriter.ConstantOf(other) is { ElementType: DataType.Float, ElementCount: var count } t
            && count == bias.Length && t.Dims[^1] == bias.Length)
        {
            var b = t.ToFloatArray();
            for (int i = 0; i < b.Length; i++) b[i] += bias[i];
            FoldBatchNorm.SetWeight(rw, add, index, t.Dims.ToArray(), b, add.Output().Name + "_B");
            return;
        }
        if (y.IsGraphOutput) throw new InvalidOperationException($"{Node}: no bias Add to write a bias to");
        var g = Node.Graph;
        var uses = y.Uses.ToList();
        var bv = rw.Constant(g, y.Name + "_B", Tensor.FromFloats("", [bias.Length], bias));
        var sum = rw.Insert(g, "Add", [y, bv], y.Name + "_biased");
        foreach (var u in uses) rw.SetInput(u.Node, u.InputIndex, sum.Output());
    }
}
