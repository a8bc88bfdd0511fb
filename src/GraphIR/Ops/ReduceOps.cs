// Reductions over axes (an attribute up to opset 12 for ReduceSum and 17 for the others, an input after;
// keepdims; noop_with_empty_axes), and ArgMax/ArgMin (one axis, int64 indices). ReduceMean and ReduceSum are
// linear.
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class ReduceOps
{
    private static OpInfo Reduce(string op, OpTrait traits = OpTrait.None) => new(op)
    {
        Traits = traits,
        Infer = (n, c) => [c.Reduce(n, ShapeOf(n.Input(0)), TypeOf(n.Input(0)))],
    };

    private static OnnxType? Arg(Node n)
    {
        var xs = ShapeOf(n.Input(0));
        if (xs is null) return T(DataType.Int64, null);
        var axis = (int)n.GetInt("axis", 0);
        if (axis < 0) axis += xs.Rank;
        var keep = n.GetInt("keepdims", 1) != 0;
        return TD(DataType.Int64, xs.Dims.Select((d, i) => (d, i)).Where(p => keep || p.i != axis)
            .Select(p => p.i == axis ? Dim.Of(1) : p.d));
    }

    public static IEnumerable<OpInfo> All =>
    [
        Reduce("ReduceMean", OpTrait.LinearReduce | OpTrait.PositivelyHomogeneous),
        Reduce("ReduceSum", OpTrait.LinearReduce | OpTrait.PositivelyHomogeneous),
        Reduce("ReduceMax"),
        Reduce("ReduceMin"),
        Reduce("ReduceProd"),
        Reduce("ReduceL2"),
        Reduce("ReduceL1"),
        Reduce("ReduceLogSumExp"),
        Reduce("ReduceSumSquare"),
        new("ArgMax") { Infer = (n, c) => [Arg(n)] },
        new("ArgMin") { Infer = (n, c) => [Arg(n)] },
    ];
}

public sealed partial class ShapeContext
{
    internal OnnxType? Reduce(Node n, Shape? xs, DataType xt)
    {
        if (xs is null) return T(xt, null);
        var keep = n.GetInt("keepdims", 1) != 0;
        var useInput = n.OpType == "ReduceSum" ? opset >= 13 : opset >= 18;
        var axes = useInput ? (n.Input(1) is null ? null : Const(n.Input(1))) : n.GetInts("axes");
        if (useInput && n.Input(1) is not null && axes is null) return T(xt, null);
        if ((axes is null || axes.Length == 0) && n.GetInt("noop_with_empty_axes", 0) != 0) return T(xt, xs);
        var set = axes is null || axes.Length == 0 ? Enumerable.Range(0,
            xs.Rank).ToHashSet() : axes.Select(a => (int)(a < 0 ? a + xs.Rank : a)).ToHashSet();
        var dims = new List<Dim>();
        for (int i = 0; i < xs.Rank; i++)
            if (!set.Contains(i)) dims.Add(xs[i]);
            else if (keep) dims.Add(Dim.Of(1));
        return TD(xt, dims);
    }
}
