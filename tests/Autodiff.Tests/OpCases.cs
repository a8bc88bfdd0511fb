// Small single-op (or few-op) models covering every op of the reference evaluator and its attribute
// variants. Each is run against ONNX Runtime (forward) and through a finite-difference gradient check
// (every VJP). Float inputs are graph inputs filled with seeded N(0,1) values; constants that must stay
// in a range (divisors, variances) or be integers (shapes, indices) are initializers.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public static class OpCases
{
    private static OnnxAttribute Ints(string n, params long[] v) => OnnxAttribute.IntList(n, v);
    private static OnnxAttribute Int(string n, long v) => OnnxAttribute.Int(n, v);
    private static OnnxAttribute Flt(string n, float v) => OnnxAttribute.Float(n, v);

    private static float[] Uniform(int seed, int n, double lo, double hi)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(lo + (hi - lo) * r.NextDouble())).ToArray();
    }

    private static Model One(string op, long[][] inputShapes, OnnxAttribute[] attrs, long opset = 13, Func<GraphBuilder, Value[], Value[]>? extra = null, int outputs = 1)
    {
        var b = new GraphBuilder(op.ToLowerInvariant(), opset);
        var ins = inputShapes.Select((s, i) => b.Input("x" + i, DataType.Float, s.Cast<object>().ToArray())).ToArray();
        var all = extra is null ? ins : extra(b, ins);
        foreach (var o in b.NodeMulti(op, all, outputs, attrs)) b.Output(o);
        return b.Build();
    }

    // x^2 + 0.5: a positive operand for Sqrt, Log, Reciprocal and Pow's base.
    private static Value[] Positive(GraphBuilder b, Value[] x) =>
        [b.Node("Add", [b.Node("Mul", [x[0], x[0]]), b.Initializer("half", [0.5f])])];

    public static readonly Dictionary<string, Func<Model>> All = new()
    {
        ["conv-pad1"] = () => One("Conv", [[2, 3, 7, 7], [4, 3, 3, 3], [4]], [Ints("pads", 1, 1, 1, 1)]),
        ["conv-stride2-dil2-asym"] = () => One("Conv", [[1, 4, 9, 9], [6, 4, 3, 3]], [Ints("strides", 2, 2), Ints("dilations", 2, 2), Ints("pads", 1, 2, 2, 1)]),
        ["conv-grouped"] = () => One("Conv", [[1, 6, 6, 6], [4, 3, 3, 3], [4]], [Int("group", 2), Ints("pads", 1, 1, 1, 1)]),
        ["conv-depthwise-mult2-stride2"] = () => One("Conv", [[2, 4, 7, 7], [8, 1, 3, 3], [8]], [Int("group", 4), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1)]),
        ["conv-depthwise-dil2-asym"] = () => One("Conv", [[5, 3, 8, 8], [3, 1, 3, 3], [3]], [Int("group", 3), Ints("dilations", 2, 2), Ints("pads", 2, 1, 1, 2)]),
        ["conv-depthwise-mult2-pad1"] = () => One("Conv", [[3, 2, 5, 5], [4, 1, 3, 3]], [Int("group", 2), Ints("pads", 1, 1, 1, 1)]),
        ["conv-batch5-pad1"] = () => One("Conv", [[5, 3, 6, 6], [4, 3, 3, 3], [4]], [Ints("pads", 1, 1, 1, 1)]),
        ["conv-1x1"] = () => One("Conv", [[2, 5, 4, 4], [3, 5, 1, 1]], []),
        // Outputs of 64 and 32 columns: written straight into y (and dX) one image at a time.
        ["conv-dil2-8x8"] = () => One("Conv", [[2, 3, 8, 8], [4, 3, 3, 3], [4]], [Ints("dilations", 2, 2), Ints("pads", 2, 2, 2, 2)]),
        ["conv-grouped-8x8"] = () => One("Conv", [[2, 4, 8, 8], [6, 2, 3, 3], [6]], [Int("group", 2), Ints("pads", 1, 1, 1, 1)]),
        ["conv-1d-32"] = () => One("Conv", [[2, 3, 32], [4, 3, 3], [4]], [Ints("pads", 1, 1)]),
        ["conv-asym-pad"] = () => One("Conv", [[1, 2, 6, 6], [3, 2, 3, 3]], [Ints("pads", 0, 1, 2, 1)]),
        ["conv-1d"] = () => One("Conv", [[2, 3, 10], [4, 3, 3], [4]], [Ints("pads", 1, 1), Ints("strides", 2)]),
        ["conv-same-upper"] = () => One("Conv", [[1, 2, 7, 7], [3, 2, 4, 4]], [OnnxAttribute.String("auto_pad", "SAME_UPPER"), Ints("strides", 2, 2)]),
        ["convtranspose-stride2-outpad"] = () => One("ConvTranspose", [[1, 3, 4, 4], [3, 2, 3, 3], [2]], [Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1), Ints("output_padding", 1, 1)]),
        ["convtranspose-grouped"] = () => One("ConvTranspose", [[2, 4, 3, 3], [4, 1, 3, 3]], [Int("group", 2), Ints("dilations", 2, 2)]),
        ["convtranspose-output-shape"] = () => One("ConvTranspose", [[1, 2, 3, 3], [2, 3, 3, 3]], [Ints("strides", 2, 2), Ints("output_shape", 6, 6)]),
        ["convtranspose-same-upper"] = () => One("ConvTranspose", [[1, 2, 3, 3], [2, 3, 3, 3]], [Ints("strides", 2, 2), OnnxAttribute.String("auto_pad", "SAME_UPPER")]),
        ["convtranspose-1d"] = () => One("ConvTranspose", [[2, 3, 5], [3, 2, 3], [2]], [Ints("strides", 2), Ints("pads", 1, 0)]),
        ["gemm-trans-alpha-beta"] = () => One("Gemm", [[4, 3], [5, 4], [5]], [Int("transA", 1), Int("transB", 1), Flt("alpha", 0.5f), Flt("beta", 2f)]),
        ["gemm-plain-matrix-c"] = () => One("Gemm", [[3, 4], [4, 5], [3, 5]], []),
        ["matmul-batched-broadcast"] = () => One("MatMul", [[2, 1, 3, 4], [3, 4, 5]], []),
        ["matmul-1d"] = () => One("MatMul", [[4], [2, 4, 3]], []),
        ["add-broadcast"] = () => One("Add", [[2, 3, 4], [3, 1]], []),
        ["sub-broadcast"] = () => One("Sub", [[3, 1], [2, 3, 4]], []),
        ["mul-broadcast"] = () => One("Mul", [[2, 3, 4], [4]], []),
        ["add-per-channel"] = () => One("Add", [[2, 3, 5, 5], [1, 3, 1, 1]], []),
        ["mul-scalar"] = () => One("Mul", [[2, 3, 4], []], []),
        ["mul-middle-axes"] = () => One("Mul", [[2, 1, 4], [2, 3, 1]], []),
        ["sub-large-pieces"] = () => One("Sub", [[2, 3, 100, 120], [2, 3, 100, 120]], []),
        ["mul-large-row"] = () => One("Mul", [[3, 40000], [40000]], []),
        ["div-scalar-numerator"] = () => One("Div", [[], [2, 3, 4]], [], extra: (b, x) => [x[0], b.Node("Add", [b.Node("Mul", [x[1], x[1]]), b.Initializer("one", [1f])])]),
        ["div-broadcast"] = () => One("Div", [[2, 3, 4]], [], extra: (b, x) => [x[0], b.Initializer("den", Uniform(3, 3, 1, 2), 3, 1)]),
        ["relu"] = () => One("Relu", [[2, 3, 4]], []),
        ["leakyrelu"] = () => One("LeakyRelu", [[2, 3, 4]], [Flt("alpha", 0.1f)]),
        ["prelu"] = () => One("PRelu", [[2, 3, 4, 4], [3, 1, 1]], []),
        ["clip-inputs"] = () => One("Clip", [[2, 3, 4]], [], extra: (b, x) => [x[0], b.Initializer("lo", [-0.5f]), b.Initializer("hi", [0.7f])]),
        ["clip-opset6-attrs"] = () => One("Clip", [[2, 3, 4]], [Flt("min", -0.5f), Flt("max", 0.7f)], opset: 6),
        ["sigmoid"] = () => One("Sigmoid", [[2, 3, 4]], []),
        ["hardsigmoid"] = () => One("HardSigmoid", [[2, 3, 4]], [Flt("alpha", 0.3f), Flt("beta", 0.4f)], opset: 14),
        ["hardswish"] = () => One("HardSwish", [[2, 3, 4]], [], opset: 14, extra: (b, x) => [b.Node("Mul", [x[0], b.Initializer("four", [4f])])]),
        ["tanh"] = () => One("Tanh", [[2, 3, 4]], []),
        ["abs"] = () => One("Abs", [[2, 3, 4]], []),
        ["neg"] = () => One("Neg", [[2, 3, 4]], []),
        ["sqrt"] = () => One("Sqrt", [[2, 3, 4]], [], extra: Positive),
        ["exp"] = () => One("Exp", [[2, 3, 4]], []),
        ["log"] = () => One("Log", [[2, 3, 4]], [], extra: Positive),
        ["reciprocal"] = () => One("Reciprocal", [[2, 3, 4]], [], extra: Positive),
        ["erf"] = () => One("Erf", [[2, 3, 4]], [], extra: (b, x) => [b.Node("Mul", [x[0], b.Initializer("three", [1.7f])])]),
        ["softplus"] = () => One("Softplus", [[2, 3, 4]], []),
        ["mish"] = () => One("Mish", [[2, 3, 4]], [], opset: 18),
        ["elu-alpha"] = () => One("Elu", [[2, 3, 4]], [Flt("alpha", 0.7f)]),
        ["selu"] = () => One("Selu", [[2, 3, 4]], []),
        ["gelu-exact"] = () => One("Gelu", [[2, 3, 4]], [], opset: 20),
        ["gelu-tanh"] = () => One("Gelu", [[2, 3, 4]], [OnnxAttribute.String("approximate", "tanh")], opset: 20),
        ["pow-broadcast"] = () => One("Pow", [[2, 3, 4], [4]], [], extra: (b, x) => [Positive(b, x)[0], x[1]]),
        ["max-variadic"] = () => One("Max", [[2, 3, 4], [3, 4], [4]], []),
        ["min-variadic"] = () => One("Min", [[2, 3, 4], [1, 4]], []),
        ["sum-variadic"] = () => One("Sum", [[2, 3, 4], [3, 1], [4]], []),
        ["mean-variadic"] = () => One("Mean", [[2, 3, 4], [2, 3, 4]], []),
        ["reducemax-axes-attr"] = () => One("ReduceMax", [[2, 3, 4]], [Ints("axes", 1), Int("keepdims", 1)]),
        ["reducemin-all"] = () => One("ReduceMin", [[2, 3, 4]], [Int("keepdims", 0)]),
        ["reduceprod-axes"] = () => One("ReduceProd", [[2, 3, 4]], [Ints("axes", 2), Int("keepdims", 0)]),
        ["reducel2-opset18-input"] = () => One("ReduceL2", [[2, 3, 4]], [], opset: 18,
            extra: (b, x) => [x[0], b.Initializer("axes", [0L, 2L], 2)]),
        ["reducelogsumexp"] = () => One("ReduceLogSumExp", [[2, 3, 4]], [Ints("axes", 1)]),
        ["layernorm-last-axis"] = () => One("LayerNormalization", [[2, 3, 5], [5], [5]], [Flt("epsilon", 1e-3f)], opset: 17),
        ["layernorm-axis1-no-bias"] = () => One("LayerNormalization", [[2, 3, 4], [3, 4]], [Int("axis", 1)], opset: 17),
        ["groupnorm-opset18"] = () => One("GroupNormalization", [[2, 4, 3, 3], [2], [2]], [Int("num_groups", 2)],
            opset: 18),
        ["groupnorm-opset21-per-channel"] = () => One("GroupNormalization", [[2, 6, 4], [6], [6]],
            [Int("num_groups", 3), Flt("epsilon", 1e-3f)], opset: 21),
        ["instancenorm"] = () => One("InstanceNormalization", [[2, 3, 4, 4], [3], [3]], [Flt("epsilon", 1e-3f)]),
        ["resize-nearest-scales"] = () => One("Resize", [[1, 2, 3, 4]], [OnnxAttribute.String("mode", "nearest")],
            extra: (b, x) => [x[0], null!, b.Initializer("scales", [1f, 1f, 2f, 1.5f], 4)]),
        ["resize-nearest-asymmetric-floor"] = () => One("Resize", [[1, 2, 3, 3]], [OnnxAttribute.String("mode",
            "nearest"), OnnxAttribute.String("coordinate_transformation_mode", "asymmetric"),
            OnnxAttribute.String("nearest_mode", "floor")],
            extra: (b, x) => [x[0], null!, b.Initializer("scales", [1f, 1f, 2f, 2f], 4)]),
        ["resize-linear-half-pixel-sizes"] = () => One("Resize", [[1, 2, 3, 4]], [OnnxAttribute.String("mode", "linear")],
            extra: (b, x) => [x[0], null!, null!, b.Initializer("sizes", [1L, 2L, 5L, 7L], 4)]),
        ["resize-linear-align-corners"] = () => One("Resize", [[2, 1, 4, 3]], [OnnxAttribute.String("mode", "linear"),
            OnnxAttribute.String("coordinate_transformation_mode", "align_corners")],
            extra: (b, x) => [x[0], null!, b.Initializer("scales", [1f, 1f, 1.5f, 2f], 4)]),
        ["resize-cubic-half-pixel"] = () => One("Resize", [[1, 2, 4, 5]], [OnnxAttribute.String("mode", "cubic")],
            extra: (b, x) => [x[0], null!, b.Initializer("scales", [1f, 1f, 2f, 1.5f], 4)]),
        ["resize-cubic-align-corners-exclude-outside"] = () => One("Resize", [[1, 1, 5, 4]],
            [OnnxAttribute.String("mode", "cubic"), OnnxAttribute.String("coordinate_transformation_mode",
            "align_corners"), Flt("cubic_coeff_a", -0.5f), Int("exclude_outside", 1)],
            extra: (b, x) => [x[0], null!, null!, b.Initializer("sizes", [1L, 1L, 7L, 3L], 4)]),
        ["resize-cubic-asymmetric-down"] = () => One("Resize", [[1, 2, 8, 6]], [OnnxAttribute.String("mode", "cubic"),
            OnnxAttribute.String("coordinate_transformation_mode", "asymmetric")],
            extra: (b, x) => [x[0], null!, b.Initializer("scales", [1f, 1f, 0.5f, 0.75f], 4)]),
        ["einsum-matmul"] = () => One("Einsum", [[3, 4], [4, 5]], [OnnxAttribute.String("equation", "ij,jk->ik")], opset: 12),
        ["einsum-batched"] = () => One("Einsum", [[2, 3, 4], [2, 4, 3]], [OnnxAttribute.String("equation", "bij,bjk->bik")], opset: 12),
        ["einsum-attention"] = () => One("Einsum", [[1, 2, 3, 4], [1, 2, 5, 4]], [OnnxAttribute.String("equation", "bhid,bhjd->bhij")], opset: 12),
        ["einsum-transpose"] = () => One("Einsum", [[3, 4]], [OnnxAttribute.String("equation", "ij->ji")], opset: 12),
        ["einsum-implicit"] = () => One("Einsum", [[3, 4], [4, 2]], [OnnxAttribute.String("equation", "ij,jk")], opset: 12),
        ["einsum-outer"] = () => One("Einsum", [[3], [4]], [OnnxAttribute.String("equation", "i,j->ij")], opset: 12),
        ["einsum-trace"] = () => One("Einsum", [[4, 4]], [OnnxAttribute.String("equation", "ii->")], opset: 12),
        ["einsum-diagonal-times"] = () => One("Einsum", [[3, 3], [3]], [OnnxAttribute.String("equation", "ii,i->i")], opset: 12),
        ["einsum-ellipsis"] = () => One("Einsum", [[2, 3, 4], [2, 4, 2]], [OnnxAttribute.String("equation", "...ij,...jk->...ik")], opset: 12),
        ["einsum-ellipsis-broadcast"] = () => One("Einsum", [[2, 1, 3, 4], [2, 5, 4, 2]], [OnnxAttribute.String("equation", "...ij,...jk->...ik")], opset: 12),
        ["einsum-sum-axis"] = () => One("Einsum", [[2, 3, 4]], [OnnxAttribute.String("equation", "bij->bj")], opset: 12),
        ["expand"] = () => One("Expand", [[3, 1]], [], extra: (b, x) => [x[0], b.Initializer("shape", [2L, 1L, 4L], 3)]),
        ["tile"] = () => One("Tile", [[2, 3]], [], extra: (b, x) => [x[0], b.Initializer("reps", [2L, 3L], 2)]),
        ["where-less"] = () => One("Where", [[2, 3, 4], [3, 4]], [],
            extra: (b, x) => [b.Node("Less", [x[0], x[1]]), x[0], x[1]]),
        ["where-not-greater-equal"] = () => One("Where", [[2, 3], [2, 3]], [],
            extra: (b, x) => [b.Node("Not", [b.Node("GreaterOrEqual", [x[0], x[1]])]), x[1], x[0]]),
        ["argmax-as-float"] = () => One("Add", [[2, 3, 4]], [], extra: (b, x) => [x[0],
            b.Node("Cast", [b.Node("ArgMax", [x[0]], Int("axis", 2), Int("keepdims", 1))], Int("to", 1))]),
        ["range-as-float"] = () => One("Add", [[2, 5]], [], extra: (b, x) => [x[0], b.Node("Cast",
            [b.Node("Range", [b.Initializer("s", [0L]), b.Initializer("l", [5L]), b.Initializer("d", [1L])])],
            Int("to", 1))]),
        ["softmax-axis1"] = () => One("Softmax", [[2, 3, 4]], [Int("axis", 1)]),
        ["softmax-opset11-coerced"] = () => One("Softmax", [[2, 3, 4]], [Int("axis", 1)], opset: 11),
        ["logsoftmax"] = () => One("LogSoftmax", [[2, 5]], []),
        ["maxpool-pad-stride"] = () => One("MaxPool", [[2, 3, 7, 7]], [Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1)]),
        ["maxpool-2x2-odd"] = () => One("MaxPool", [[2, 3, 7, 9]], [Ints("kernel_shape", 2, 2), Ints("strides", 2, 2)]),
        ["maxpool-2x2-indices"] = () => One("MaxPool", [[2, 3, 6, 8]], [Ints("kernel_shape", 2, 2), Ints("strides", 2, 2)], outputs: 2),
        // 20 outputs a row: 16 in 256-bit vectors, 4 in a 128-bit one; after a Clip to [-0.3, 0.3], ties (between
        // any two taps) pick the first of them.
        ["maxpool-2x2-wide-ties-indices"] = () => One("MaxPool", [[2, 3, 4, 40]], [Ints("kernel_shape", 2, 2), Ints("strides", 2, 2)], outputs: 2,
            extra: (b, x) => [b.Node("Clip", [x[0], b.Initializer("lo", [-0.3f]), b.Initializer("hi", [0.3f])])]),
        ["maxpool-ceil-dilated"] = () => One("MaxPool", [[1, 2, 8, 8]], [Ints("kernel_shape", 2, 2), Ints("strides", 2, 2), Ints("dilations", 2, 2), Int("ceil_mode", 1)]),
        ["averagepool-include-pad"] = () => One("AveragePool", [[2, 3, 6, 6]], [Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1), Int("count_include_pad", 1)]),
        ["averagepool-exclude-pad-ceil"] = () => One("AveragePool", [[1, 2, 7, 7]], [Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 0, 0), Int("ceil_mode", 1)]),
        ["globalaveragepool"] = () => One("GlobalAveragePool", [[2, 3, 4, 5]], []),
        ["globalmaxpool"] = () => One("GlobalMaxPool", [[2, 3, 4, 5]], []),
        ["batchnorm"] = () => One("BatchNormalization", [[2, 3, 4, 4], [3], [3], [3]], [Flt("epsilon", 1e-3f)],
            extra: (b, x) => [.. x, b.Initializer("var", Uniform(5, 3, 0.5, 2), 3)]),
        ["reducemean-axes-attr"] = () => One("ReduceMean", [[2, 3, 4, 5]], [Ints("axes", 2, 3), Int("keepdims", 1)]),
        ["reducesum-axes-input"] = () => One("ReduceSum", [[2, 3, 4]], [Int("keepdims", 0)], extra: (b, x) => [x[0], b.Initializer("axes", [1L], 1)]),
        ["flatten-axis2"] = () => One("Flatten", [[2, 3, 4, 5]], [Int("axis", 2)]),
        ["reshape-zero-minus1"] = () => One("Reshape", [[2, 3, 4]], [], extra: (b, x) => [x[0], b.Initializer("shape", [0L, -1L], 2)]),
        ["transpose"] = () => One("Transpose", [[2, 3, 4]], [Ints("perm", 2, 0, 1)]),
        ["concat-axis1"] = () => One("Concat", [[2, 3, 4], [2, 1, 4], [2, 2, 4]], [Int("axis", 1)]),
        ["split-sizes"] = () => One("Split", [[2, 6, 3]], [Int("axis", 1)], outputs: 3, extra: (b, x) => [x[0], b.Initializer("split", [1L, 3L, 2L], 3)]),
        ["slice-negative-step"] = () => One("Slice", [[4, 6, 5]], [], extra: (b, x) => [x[0], b.Initializer("starts", [-1L, 1L], 2), b.Initializer("ends", [-10L, 6L], 2),
            b.Initializer("axes", [1L, 2L], 2), b.Initializer("steps", [-2L, 2L], 2)]),
        ["pad-reflect"] = () => One("Pad", [[2, 3, 4, 4]], [OnnxAttribute.String("mode", "reflect")], extra: (b, x) => [x[0], b.Initializer("pads", [0L, 0L, 2L, 1L, 0L, 0L, 1L, 3L], 8)]),
        ["pad-edge"] = () => One("Pad", [[2, 3, 4]], [OnnxAttribute.String("mode", "edge")], extra: (b, x) => [x[0], b.Initializer("pads", [0L, 1L, 2L, 0L, 2L, 1L], 6)]),
        ["pad-constant"] = () => One("Pad", [[2, 3, 4]], [], extra: (b, x) => [x[0], b.Initializer("pads", [0L, 1L, 2L, 0L, 0L, -1L], 6), b.Initializer("value", [1.5f])]),
        ["squeeze"] = () => One("Squeeze", [[2, 1, 4, 1]], [], extra: (b, x) => [x[0], b.Initializer("axes", [1L, -1L], 2)]),
        ["unsqueeze"] = () => One("Unsqueeze", [[2, 4]], [], extra: (b, x) => [x[0], b.Initializer("axes", [0L, 3L], 2)]),
        ["gather-axis1"] = () => One("Gather", [[3, 5, 2]], [Int("axis", 1)], extra: (b, x) => [x[0], b.Initializer("idx", [4L, 0L, -1L, 2L, 2L, 1L], 2, 3)]),
        ["shape-chain-reshape"] = () =>
        {
            var b = new GraphBuilder("shapechain");
            var x = b.Input("x0", DataType.Float, 2, 3, 4);
            var s = b.Node("Shape", [x]);
            var n = b.Node("Gather", [s, b.Initializer("zero", [0L])], Int("axis", 0));
            var shape = b.Node("Concat", [b.Node("Unsqueeze", [n, b.Initializer("ax", [0L], 1)]), b.Initializer("rest", [-1L], 1)], Int("axis", 0));
            b.Output(b.Node("Reshape", [b.Node("Cast", [x], Int("to", (long)DataType.Float)), shape]));
            return b.Build();
        },
        ["dropout-identity"] = () => One("Dropout", [[2, 3]], []),
        ["identity"] = () => One("Identity", [[2, 3]], []),
        ["argmin-as-float"] = () => One("Add", [[2, 3, 4]], [], extra: (b, x) => [x[0],
            b.Node("Cast", [b.Node("ArgMin", [x[0]], Int("axis", 1), Int("keepdims", 1))], Int("to", 1))]),
        ["where-equal-greater-lessorequal"] = () => One("Where", [[2, 3], [2, 3]], [], extra: (b, x) =>
        {
            // Equal of a value with itself (true) and of two random values (false): both outcomes.
            var eq = b.Node("Cast", [b.Node("Equal", [x[0], b.Node("Mul", [x[0], b.Node("Cast",
                [b.Node("Equal", [x[0], x[1]])], Int("to", 1))])])], Int("to", 1));
            var gt = b.Node("Cast", [b.Node("Greater", [x[0], x[1]])], Int("to", 1));
            return [b.Node("LessOrEqual", [x[0], b.Node("Add", [eq, gt])]), x[0], x[1]];
        }),
        // Q then DQ (STE gradients: not finite differences of a staircase; QuantizationAwareTests checks them).
        ["qdq-uint8-per-tensor-saturating"] = () => One("DequantizeLinear", [[2, 3, 4]], [], extra: (b, x) =>
        {
            var s = b.Initializer("s", [0.01f]);
            var z = b.Initializer(Tensor.FromValues("z", DataType.UInt8, [], [(byte)120]));
            return [b.Node("QuantizeLinear", [x[0], s, z]), s, z];
        }),
        ["qdq-int8-per-axis"] = () => One("DequantizeLinear", [[2, 3, 4]], [Int("axis", 1)], extra: (b, x) =>
        {
            var s = b.Initializer("s", [0.02f, 0.005f, 0.1f], 3);
            var z = b.Initializer(Tensor.FromValues("z", DataType.Int8, [3], new sbyte[] { 0, 3, -2 }.AsSpan()));
            return [b.Node("QuantizeLinear", [x[0], s, z], Int("axis", 1)), s, z];
        }),
        ["constant-and-constantofshape"] = () => One("Add", [[2, 3]], [], extra: (b, x) =>
        {
            var c = b.Node("Constant", [], OnnxAttribute.FromTensor("value", Tensor.FromFloats("", [3], [0.5f, -1f, 2f])));
            var shape = b.Node("Constant", [], OnnxAttribute.FromTensor("value", Tensor.FromInt64s("", [2], [2L, 3L])));
            var fill = b.Node("ConstantOfShape", [shape], OnnxAttribute.FromTensor("value", Tensor.FromFloats("", [1], [0.25f])));
            return [b.Node("Mul", [x[0], c]), fill];
        }),
    };
}
