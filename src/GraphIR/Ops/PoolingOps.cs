// Pooling: windows over the spatial axes with Conv's output-size formula (ceil_mode too); global pooling
// keeps [N, C] and sets every spatial dim to 1. Channel-preserving and positively homogeneous; average
// pooling is linear.
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class PoolingOps
{
    private const OpTrait Pooling = OpTrait.ChannelPreserving | OpTrait.PositivelyHomogeneous;

    private static OnnxType?[] Windowed(Node n)
    {
        var r = Pool(n, ShapeOf(n.Input(0)), TypeOf(n.Input(0)));
        return n.Outputs.Count > 1 ? [r, r is null ? null : T(DataType.Int64, r.Shape)] : [r];
    }

    private static OnnxType? Global(Node n)
    {
        var (xs, xt) = (ShapeOf(n.Input(0)), TypeOf(n.Input(0)));
        return xs is null ? T(xt, null) : TD(xt, xs.Dims.Select((d, i) => i < 2 ? d : Dim.Of(1)));
    }

    public static IEnumerable<OpInfo> All =>
    [
        new("MaxPool")
        {
            Traits = Pooling | OpTrait.SharesScale, Infer = (n, c) => Windowed(n),
            Channels = ChannelMapping.ElementWise,
        },
        new("AveragePool")
        {
            Traits = OpTrait.LinearReduce | Pooling, Infer = (n, c) => Windowed(n),
            Channels = ChannelMapping.ElementWise, Quant = QuantClass.Compute,
        },
        new("LpPool") { Infer = (n, c) => Windowed(n), Channels = ChannelMapping.ElementWise },
        new("GlobalAveragePool")
        {
            Traits = OpTrait.LinearReduce | Pooling, Infer = (n, c) => [Global(n)],
            Channels = ChannelMapping.ElementWise, Quant = QuantClass.Compute,
        },
        new("GlobalMaxPool") { Traits = Pooling, Infer = (n, c) => [Global(n)], Channels = ChannelMapping.ElementWise },
        new("GlobalLpPool") { Infer = (n, c) => [Global(n)] },
    ];
}

public sealed partial class ShapeContext
{
    internal static OnnxType? Pool(Node n, Shape? xs, DataType xt)
    {
        if (xs is null) return T(xt, null);
        var spatial = xs.Rank - 2;
        var (k, s, d, p) = ConvParams(n, spatial, null);
        var autoPad = n.GetString("auto_pad") ?? "NOTSET";
        var ceil = n.GetInt("ceil_mode", 0) != 0;
        var dims = new List<Dim> { xs[0], xs[1] };
        for (int i = 0; i < spatial; i++) dims.Add(SpatialOut(xs[i + 2], k[i], s[i], d[i], p[i], p[i + spatial],
            autoPad, ceil));
        return TD(xt, dims);
    }
}
