// Removes channels physically, group by group (DependencyGroups says which ops change):
//   producers      W[out axis] and b keep the kept channels (LinearOp.KeepOutputs);
//   consumers      W[in axis] keeps the kept input channels, each repeated channel's features too
//                  (a Gemm after Flatten keeps [c*H*W, (c+1)*H*W) for each kept c) (LinearOp.KeepInputs);
//   depthwise      W, b and `group` keep the kept channels;
//   BN, PRelu, per-channel constants of Add/Sub/Mul/Div   their [C] parameters are sliced;
//   Split/Slice on channels   sizes and bounds recounted; Reshape [N,C,1,1] -> [N,C] its C.
// An op reading several groups (a Concat's consumer) slices them all at their offsets at once. Shapes are
// re-inferred afterwards (ShapeInference.Refresh). Names of kept nodes and values do not change.
// The result equals the original with the removed channels zeroed at every consumer's input (tested).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class ChannelSurgery
{
    /// <summary>Prunes <paramref name="model"/> in place.</summary>
    /// <param name="keep">Group id -> the channels it keeps, ascending.</param>
    public static void Apply(Model model, Rewriter rw, DependencyGroups d, IReadOnlyDictionary<int, int[]> keep)
    {
        if (keep.Count == 0) return;
        foreach (var (id, k) in keep)
        {
            var g = d.Groups[id];
            if (!g.Prunable) throw new InvalidOperationException($"group {id} is not prunable: {g.Reasons[0]}");
            if (k.Length == 0 || k.Any(c => c < 0 || c >= g.Channels) || k.Zip(k.Skip(1)).Any(p => p.First >= p.Second))
                throw new ArgumentException(
                    $"group {id}: kept channels must be ascending, distinct, in [0, {g.Channels})");
        }
        long[] KeptPositions(IEnumerable<ChannelSegment> segs) => ChannelSurgery.KeptPositions(segs, d, keep);
        int[] Kept(int group) => keep.TryGetValue(group, out var k) ? k : Enumerable.Range(0,
            d.Groups[group].Channels).ToArray();
        bool Touched(IEnumerable<ChannelSegment> segs) => segs.Any(s => s.Group >= 0 && keep.ContainsKey(s.Group));

        var graph = model.Graph;
        var nodes = graph.Nodes.ToList();
        // Producers first (output rows), then every reader of a touched feature map (input slices).
        foreach (var (id, k) in keep)
            foreach (var p in d.Groups[id].Producers)
            {
                var op = LinearOp.Of(p)!;
                var (dims, w, b) = op.KeepOutputs(k);
                op.Write(rw, dims, w, b);
            }
        foreach (var n in nodes)
        {
            // The feature map the op reads (a constant operand of Add/Mul may come first).
            var x = n.Inputs.FirstOrDefault(v => v is not null && d.Segments.ContainsKey(v));
            if (x is null || !d.Segments.TryGetValue(x, out var segs) || !Touched(segs)) continue;
            var pos = KeptPositions(segs);
            var ints = pos.Select(v => checked((int)v)).ToArray();
            switch (n.OpType)
            {
                case "Conv" or "ConvTranspose" or "Gemm" or "MatMul":
                {
                    var op = LinearOp.Of(n)!;
                    if (op.IsDepthwise && n.OpType == "Conv")
                    {
                        var (dims, w, b) = op.KeepOutputs(ints);
                        op.Write(rw, dims, w, b);
                    }
                    else
                    {
                        var (dims, w) = op.KeepInputs(ints);
                        op.Write(rw, dims, w, LinearOp.Of(n)!.Bias);
                    }
                    break;
                }
                case "BatchNormalization":
                    for (int i = 1; i <= 4; i++) SliceVector(rw, n, i, ints);
                    break;
                case "PRelu":
                    SliceVector(rw, n, 1, ints);
                    break;
                case "Add" or "Sub" or "Mul" or "Div" or "Pow" or "Max" or "Min":
                    for (int i = 0; i < 2; i++)
                        if (Rewriter.ConstantOf(n.Input(i)) is { } t && t.ElementCount > 1) SliceVector(rw, n, i, ints);
                    break;
                case "Split":
                    SplitSizes(rw, n, segs, Kept);
                    break;
                case "Slice":
                    SliceBounds(rw, n, segs, Kept, d.ChannelAxis(x) ?? 1);
                    break;
                case "Reshape":
                    if (d.ChannelAxis(n.Output()) is int axis) ReshapeChannels(rw, n, axis, pos.Length);
                    break;
            }
        }
        ShapeInference.Refresh(model);
    }

    /// <summary>The positions a feature map keeps along its channel axis (each channel Repeat elements wide).</summary>
    public static long[] KeptPositions(IEnumerable<ChannelSegment> segs, DependencyGroups d, IReadOnlyDictionary<int,
        int[]> keep)
    {
        var list = new List<long>();
        long at = 0;
        foreach (var s in segs)
        {
            var channels = s.Group >= 0 && keep.TryGetValue(s.Group, out var k) ? k : Enumerable.Range(0,
                s.Channels).ToArray();
            foreach (var c in channels)
                for (long j = 0; j < s.Repeat; j++) list.Add(at + c * s.Repeat + j);
            at += s.Channels * s.Repeat;
        }
        return list.ToArray();
    }

    /// <summary>A per-channel constant ([C], [C,1,..] or [1,C,1,..]) keeps channels <paramref name="keep"/>.</summary>
    private static void SliceVector(Rewriter rw, Node n, int index, int[] keep)
    {
        if (Rewriter.ConstantOf(n.Input(index)) is not { } t) return;
        var data = t.ToFloatArray();
        var kept = keep.Select(c => data[c]).ToArray();
        var dims = t.Dims.ToArray();
        var axis = Array.FindIndex(dims, v => v == data.Length);
        dims[axis] = kept.Length;
        FoldBatchNorm.SetWeight(rw, n, index, dims, kept, n.Output().Name + $"_p{index}");
    }

    private static long KeptBefore(List<ChannelSegment> segs, Func<int, int[]> kept, long position)
    {
        long at = 0, count = 0;
        foreach (var s in segs)
        {
            var len = s.Channels * s.Repeat;
            if (at >= position) break;
            count += (s.Group >= 0 ? kept(s.Group).Length : s.Channels) * s.Repeat;
            at += len;
        }
        return count;
    }

    private static void SplitSizes(Rewriter rw, Node n, List<ChannelSegment> segs, Func<int, int[]> kept)
    {
        var split = n.GetInts("split") ?? Rewriter.ConstantOf(n.Input(1))!.ToInt64Array();
        long at = 0;
        var sizes = new long[split.Length];
        for (int i = 0; i < split.Length; i++)
        {
            sizes[i] = KeptBefore(segs, kept, at + split[i]) - KeptBefore(segs, kept, at);
            at += split[i];
        }
        if (n.GetInts("split") is not null) rw.SetAttr(n, OnnxAttribute.IntList("split", sizes));
        else rw.SetInput(n, 1, rw.Constant(n.Graph, n.Input(1)!.Name, Tensor.FromInt64s("", [sizes.Length], sizes)));
    }

    private static void SliceBounds(Rewriter rw, Node n, List<ChannelSegment> segs, Func<int, int[]> kept, int axis)
    {
        if (Rewriter.ConstantOf(n.Input(1)) is not { } st || Rewriter.ConstantOf(n.Input(2)) is not { } en
            || (n.Input(3) is not null && Rewriter.ConstantOf(n.Input(3)) is null))
            throw new OnnxModelException($"prune: node {n}: the Slice's bounds are not constant inputs");
        var starts = st.ToInt64Array();
        var ends = en.ToInt64Array();
        var axes = n.Input(3) is null ? starts.Select((_,
            i) => (long)i).ToArray() : Rewriter.ConstantOf(n.Input(3))!.ToInt64Array();
        var rank = n.Input(0)?.Shape?.Rank
            ?? throw new OnnxModelException($"prune: node {n}: the rank of the Slice's input is unknown");
        var total = segs.Sum(s => s.Channels * s.Repeat);
        for (int i = 0; i < axes.Length; i++)
        {
            if (axes[i] != axis && axes[i] != axis - rank) continue;
            var lo = Math.Clamp(starts[i] < 0 ? starts[i] + total : starts[i], 0, total);
            var hi = Math.Clamp(ends[i] < 0 ? ends[i] + total : ends[i], lo, total);
            starts[i] = KeptBefore(segs, kept, lo);
            ends[i] = KeptBefore(segs, kept, hi);
        }
        rw.SetInput(n, 1, rw.Constant(n.Graph, n.Input(1)!.Name, Tensor.FromInt64s("", [starts.Length], starts)));
        rw.SetInput(n, 2, rw.Constant(n.Graph, n.Input(2)!.Name, Tensor.FromInt64s("", [ends.Length], ends)));
    }

    /// <summary>A Reshape's constant target gets the new channel count at the channel axis (0 and -1 stay).</summary>
    private static void ReshapeChannels(Rewriter rw, Node n, int axis, long channels)
    {
        if (Rewriter.ConstantOf(n.Input(1))?.ToInt64Array() is not { } shape || axis >= shape.Length
            || shape[axis] <= 0) return;
        shape[axis] = channels;
        rw.SetInput(n, 1, rw.Constant(n.Graph, n.Input(1)!.Name, Tensor.FromInt64s("", [shape.Length], shape)));
    }
}
