// Constants and shape computations: Constant, ConstantOfShape, Shape (its dims, symbols included, become a
// tracked constant, which is how exported Reshape targets resolve), Size, Range, Cast. Small integer results
// are tracked for the ops that read them.
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class ShapeOps
{
    private static OnnxType? ConstantOfShape(Node n, ShapeContext c)
    {
        var value = n.GetTensor("value");
        var type = value?.ElementType ?? DataType.Float;
        if (c.Const(n.Input(0)) is not { } shape) return T(type, null);
        var count = shape.Aggregate(1L, (a, b) => a * b);
        if (type is DataType.Int64 or DataType.Int32 && count <= 1024)
            c.SetConst(n.Output(), Enumerable.Repeat(value!.ToInt64Array()[0], (int)count));
        return T(type, Shape.Of(shape));
    }

    private static OnnxType? ShapeNode(Node n, ShapeContext c)
    {
        var xs = ShapeContext.ShapeOf(n.Input(0));
        if (xs is null) return T(DataType.Int64, new Shape([Dim.Unknown]));
        var start = (int)n.GetInt("start", 0); var end = (int)n.GetInt("end", xs.Rank);
        if (start < 0) start += xs.Rank;
        if (end < 0) end += xs.Rank;
        start = Math.Clamp(start, 0, xs.Rank); end = Math.Clamp(end, start, xs.Rank);
        var dims = xs.Dims.Skip(start).Take(end - start).ToArray();
        c.SetConst(n.Output(), dims);
        return T(DataType.Int64, Shape.Of(dims.Length));
    }

    private static OnnxType? Cast(Node n, ShapeContext c)
    {
        c.SetConst(n.Output(), c.SymConst(n.Input(0)));
        return T((DataType)n.GetInt("to", 0), ShapeContext.ShapeOf(n.Input(0)));
    }

    public static IEnumerable<OpInfo> All =>
    [
        new("Constant") { Infer = (n, c) => [c.ConstantNode(n)] },
        new("ConstantOfShape") { Infer = (n, c) => [ConstantOfShape(n, c)] },
        new("Shape") { Infer = (n, c) => [ShapeNode(n, c)] },
        new("Size") { Infer = (n, c) => [T(DataType.Int64, Shape.Scalar)] },
        new("Range") { Infer = (n, c) => [c.Range(n)] },
        new("Cast") { Infer = (n, c) => [Cast(n, c)], Channels = ChannelMapping.ElementWise },
    ];
}

public sealed partial class ShapeContext
{
    /// <summary>Range: 1-D, max(ceil((limit - start) / delta), 0) elements when all three are constant.</summary>
    internal OnnxType? Range(Node n)
    {
        var t = TypeOf(n.Input(0));
        var a = Const(n.Input(0)); var b = Const(n.Input(1)); var d = Const(n.Input(2));
        if (a is [var start] && b is [var limit] && d is [var delta] && delta != 0)
        {
            var count = Math.Max((long)Math.Ceiling((limit - start) / (double)delta), 0);
            if (count <= 1024) SetConst(n.Output(), Enumerable.Range(0, (int)count).Select(i => start + i * delta));
            return T(t, Shape.Of(count));
        }
        // range(0, n) with n a symbolic dim (position ids) has n elements.
        if (a is [0] && SymConst(n.Input(1)) is [var sym] && d is [1]) return TD(t, [sym]);
        return T(t, new Shape([Dim.Unknown]));
    }

    internal OnnxType? ConstantNode(Node n)
    {
        if (n.GetTensor("value") is { } t)
        {
            if (t.ElementType is DataType.Int64 or DataType.Int32 && t.ElementCount <= 1024) SetConst(n.Output(),
                t.ToInt64Array());
            return T(t.ElementType, Shape.Of(t.Dims));
        }
        if (n.Attr("value_int") is { } vi) { SetConst(n.Output(), [vi.I]); return T(DataType.Int64, Shape.Scalar); }
        if (n.Attr("value_ints") is { } vis)
        {
            SetConst(n.Output(), vis.Ints!);
            return T(DataType.Int64, Shape.Of(vis.Ints!.Length));
        }
        if (n.Attr("value_float") is not null) return T(DataType.Float, Shape.Scalar);
        if (n.Attr("value_floats") is { } vfs) return T(DataType.Float, Shape.Of(vfs.Floats!.Length));
        return null;
    }
}
