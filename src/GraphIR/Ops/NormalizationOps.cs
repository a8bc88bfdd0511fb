// Normalizations and the ops that keep their input's shape while mixing along an axis: BatchNormalization
// (inference: affine per channel; training mode's running statistics shaped like the scale),
// LayerNormalization (its optional Mean and InvStdDev keep the normalized axes as 1, in stash_type),
// Instance/GroupNormalization, Softmax/LogSoftmax, LRN, and inference Dropout (its optional mask is bool).
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class NormalizationOps
{
    private static OpInfo Same(string op) => new(op) { Infer = (n, c) => [c.SameAsInput(n)] };

    private static OnnxType?[] BatchNorm(Node n, ShapeContext c)
    {
        var stat = T(TypeOf(n.Input(3)), ShapeOf(n.Input(1)));
        return [c.SameAsInput(n), .. Enumerable.Repeat<OnnxType?>(stat, n.Outputs.Count - 1)];
    }

    private static OnnxType?[] LayerNorm(Node n, ShapeContext c)
    {
        if (n.Outputs.Count == 1) return [c.SameAsInput(n)];
        var xs = ShapeOf(n.Input(0));
        var axis = (int)n.GetInt("axis", -1);
        var stats = xs is null ? null : new Shape(xs.Dims.Select((d, i) =>
            i < (axis < 0 ? axis + xs.Rank : axis) ? d : Dim.Of(1)));
        var stash = (DataType)n.GetInt("stash_type", (long)DataType.Float);
        return [c.SameAsInput(n), .. Enumerable.Repeat(T(stash, stats), n.Outputs.Count - 1)];
    }

    private static OnnxType?[] Dropout(Node n, ShapeContext c) => n.Outputs.Count > 1
        ? [c.SameAsInput(n), T(DataType.Bool, ShapeOf(n.Input(0)))]
        : [c.SameAsInput(n)];

    public static IEnumerable<OpInfo> All =>
    [
        new("BatchNormalization")
        {
            Traits = OpTrait.AffineArithmetic | OpTrait.ChannelPreserving, Infer = BatchNorm,
            Channels = ChannelMapping.Tied,
        },
        new("LayerNormalization") { Infer = LayerNorm },
        Same("InstanceNormalization"),
        Same("GroupNormalization"),
        Same("Softmax"),
        Same("LogSoftmax"),
        Same("LRN"),
        new("Dropout") { Infer = Dropout, Channels = ChannelMapping.ElementWise },
    ];
}
