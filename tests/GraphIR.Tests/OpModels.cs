// Small models built in C#, one per op family the passes use; committed under testmodels/ops/
// (regenerated with ONNXOPT_UPDATE_GOLDEN=1) so other tests, the CLI and the runtime lane can load them.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public static class OpModels
{
    private static float[] Rand(int seed, int n, float scale = 1f)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * scale).ToArray();
    }

    private static Value W(GraphBuilder b, string name, int seed, params long[] dims) =>
        b.Initializer(name, Rand(seed, (int)dims.Aggregate(1L, (a, c) => a * c), 0.5f), dims);

    public static IReadOnlyDictionary<string, Func<Model>> All { get; } = new SortedDictionary<string, Func<Model>>(StringComparer.Ordinal)
    {
        ["conv"] = () =>
        {
            var b = new GraphBuilder("conv");
            var x = b.Input("x", DataType.Float, "N", 4, 9, 9);
            var c1 = b.Node("Conv", [x, W(b, "w1", 1, 8, 4, 3, 3), W(b, "b1", 2, 8)], OnnxAttribute.IntList("pads", 1, 1, 1, 1), OnnxAttribute.IntList("strides", 2, 2));
            var c2 = b.Node("Conv", [c1, W(b, "w2", 3, 8, 2, 3, 3)], OnnxAttribute.Int("group", 4), OnnxAttribute.IntList("dilations", 2, 2), OnnxAttribute.IntList("pads", 2, 2, 2, 2));
            var c3 = b.Node("Conv", [c2, W(b, "w3", 4, 8, 1, 3, 3)], OnnxAttribute.Int("group", 8), OnnxAttribute.IntList("pads", 1, 1, 1, 1));
            b.Output(c3);
            return b.Build();
        },
        ["convtranspose"] = () =>
        {
            var b = new GraphBuilder("convtranspose");
            var x = b.Input("x", DataType.Float, "N", 4, 5, 5);
            b.Output(b.Node("ConvTranspose", [x, W(b, "w", 5, 4, 3, 3, 3), W(b, "b", 6, 3)], OnnxAttribute.IntList("strides", 2, 2), OnnxAttribute.IntList("pads", 1, 1, 1, 1), OnnxAttribute.IntList("output_padding", 1, 1)));
            return b.Build();
        },
        ["gemm_matmul"] = () =>
        {
            var b = new GraphBuilder("gemm_matmul");
            var x = b.Input("x", DataType.Float, "N", 16);
            var g = b.Node("Gemm", [x, W(b, "w1", 7, 12, 16), W(b, "b1", 8, 12)], OnnxAttribute.Int("transB", 1));
            var m = b.Node("MatMul", [g, W(b, "w2", 9, 12, 6)]);
            b.Output(b.Node("Add", [m, W(b, "b2", 10, 6)]));
            return b.Build();
        },
        ["batchnorm"] = () =>
        {
            var b = new GraphBuilder("batchnorm");
            var x = b.Input("x", DataType.Float, "N", 3, 6, 6);
            var c = b.Node("Conv", [x, W(b, "w", 11, 5, 3, 3, 3)], OnnxAttribute.IntList("pads", 1, 1, 1, 1));
            var var_ = b.Initializer("var", Rand(12, 5).Select(v => 0.5f + Math.Abs(v)).ToArray(), 5);
            b.Output(b.Node("BatchNormalization", [c, W(b, "gamma", 13, 5), W(b, "beta", 14, 5), W(b, "mean", 15, 5), var_], OnnxAttribute.Float("epsilon", 1e-5f)));
            return b.Build();
        },
        ["activations"] = () =>
        {
            var b = new GraphBuilder("activations", opset: 14);
            var x = b.Input("x", DataType.Float, "N", 4, 3, 3);
            var v = b.Node("Relu", [x]);
            v = b.Node("LeakyRelu", [b.Node("Add", [v, W(b, "shift", 16, 4, 1, 1)])], OnnxAttribute.Float("alpha", 0.1f));
            v = b.Node("PRelu", [v, W(b, "slope", 17, 4, 1, 1)]);
            v = b.Node("Clip", [v, b.Initializer(Tensor.FromFloats("lo", [], [-0.5f])), b.Initializer(Tensor.FromFloats("hi", [], [6f]))]);
            v = b.Node("Sigmoid", [v]);
            v = b.Node("HardSigmoid", [v], OnnxAttribute.Float("alpha", 0.3f));
            v = b.Node("HardSwish", [v]);
            b.Output(v);
            return b.Build();
        },
        ["elementwise"] = () =>
        {
            var b = new GraphBuilder("elementwise");
            var x = b.Input("x", DataType.Float, "N", 3, 4);
            var y = b.Input("y", DataType.Float, 4);
            var v = b.Node("Add", [x, y]);
            v = b.Node("Sub", [v, W(b, "c1", 18, 3, 1)]);
            v = b.Node("Mul", [v, W(b, "c2", 19, 1, 4)]);
            v = b.Node("Div", [v, b.Initializer("c3", [2f, 4f, 8f, 16f], 4)]);
            b.Output(v);
            return b.Build();
        },
        ["pooling"] = () =>
        {
            var b = new GraphBuilder("pooling");
            var x = b.Input("x", DataType.Float, "N", 2, 9, 9);
            var m = b.Node("MaxPool", [x], OnnxAttribute.IntList("kernel_shape", 3, 3), OnnxAttribute.IntList("strides", 2, 2), OnnxAttribute.Int("ceil_mode", 1));
            var a = b.Node("AveragePool", [m], OnnxAttribute.IntList("kernel_shape", 2, 2), OnnxAttribute.IntList("pads", 1, 1, 0, 0), OnnxAttribute.Int("count_include_pad", 1));
            b.Output(b.Node("GlobalAveragePool", [a]));
            return b.Build();
        },
        ["shapes"] = () =>
        {
            var b = new GraphBuilder("shapes");
            var x = b.Input("x", DataType.Float, "N", 2, 3, 4);
            var t = b.Node("Transpose", [x], OnnxAttribute.IntList("perm", 0, 2, 1, 3));
            var r = b.Node("Reshape", [t, b.Initializer("shape", new long[] { 0, 6, -1 }, 3)]);
            var parts = b.NodeMulti("Split", [r, b.Initializer("split", new long[] { 2, 4 }, 2)], 2, OnnxAttribute.Int("axis", 1));
            var cat = b.Node("Concat", [parts[1], parts[0]], OnnxAttribute.Int("axis", 1));
            var sl = b.Node("Slice", [cat, b.Initializer("starts", new long[] { 1 }, 1), b.Initializer("ends", new long[] { 5 }, 1), b.Initializer("axes", new long[] { 1 }, 1)]);
            var us = b.Node("Unsqueeze", [sl, b.Initializer("uaxes", new long[] { 1 }, 1)]);
            var pd = b.Node("Pad", [us, b.Initializer("pads", new long[] { 0, 0, 0, 1, 0, 0, 0, 1 }, 8)]);
            var sq = b.Node("Squeeze", [pd, b.Initializer("saxes", new long[] { 1 }, 1)]);
            var fl = b.Node("Flatten", [sq]);
            var sm = b.Node("Softmax", [fl], OnnxAttribute.Int("axis", -1));
            var id = b.Node("Identity", [sm]);
            b.Output(b.Node("Dropout", [id]));
            return b.Build();
        },
        ["shape_gather"] = () =>
        {
            var b = new GraphBuilder("shape_gather");
            var x = b.Input("x", DataType.Float, "N", 3, 2, 2);
            var s = b.Node("Shape", [x]);
            var n = b.Node("Gather", [s, b.Initializer(Tensor.FromInt64s("zero", [], [0]))], OnnxAttribute.Int("axis", 0));
            var nu = b.Node("Unsqueeze", [n, b.Initializer("ax0", new long[] { 0 }, 1)]);
            var c = b.Node("Constant", [], OnnxAttribute.FromTensor("value", Tensor.FromInt64s("", [1], [-1])));
            var shape = b.Node("Concat", [nu, c], OnnxAttribute.Int("axis", 0));
            b.Output(b.Node("Reshape", [x, shape]));
            return b.Build();
        },
        ["qdq"] = () =>
        {
            var b = new GraphBuilder("qdq");
            var x = b.Input("x", DataType.Float, "N", 8);
            var scale = b.Initializer(Tensor.FromFloats("scale", [], [0.05f]));
            var zp = b.Initializer(Tensor.FromValues<byte>("zp", DataType.UInt8, [], [128]));
            var q = b.Node("QuantizeLinear", [x, scale, zp]);
            b.Output(b.Node("DequantizeLinear", [q, scale, zp]));
            return b.Build();
        },
    };
}

public class OpModelTests
{
    public static TheoryData<string> Names() => new(OpModels.All.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void CommittedModelMatchesBuilderAndGoldenText(string name)
    {
        var m = OpModels.All[name]();
        Assert.Empty(Verifier.Check(m));
        var bytes = OnnxExporter.ToBytes(m);
        var path = Path.Combine(Paths.TestModels, "ops", name + ".onnx");
        if (Environment.GetEnvironmentVariable("ONNXOPT_UPDATE_GOLDEN") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, bytes);
        }
        Assert.True(File.Exists(path), $"{path} missing: run the tests with ONNXOPT_UPDATE_GOLDEN=1");
        Assert.Equal(bytes, File.ReadAllBytes(path));
        Golden.Assert($"ops/{name}.txt", TextPrinter.Print(OnnxImporter.Load(path)));
    }
}
