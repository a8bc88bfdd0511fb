// Shape inference per op, checked against the output shapes declared by the ONNX backend node tests
// (written by ONNX's reference implementation): for every single-node test of an op we support,
// integer inputs are frozen to their test values (as an exporter's constants would be), the output
// types are erased, inference runs, and the result must equal the declared shape.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class ShapeInferenceTests
{
    private static readonly string[] Ops =
    [
        "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid",
        "HardSigmoid", "HardSwish", "Add", "Sub", "Mul", "Div", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten",
        "Reshape", "Transpose", "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Pad", "Softmax", "Identity", "Dropout",
        "Constant", "Shape", "Gather", "QuantizeLinear", "DequantizeLinear",
    ];

    [OnnxTestDataFact]
    public void InferredShapesMatchBackendTestDeclarations()
    {
        var checkedPerOp = Ops.ToDictionary(o => o, _ => 0);
        var failures = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories(Path.Combine(Paths.OnnxTestData, "node")).Order(StringComparer.Ordinal))
        {
            var path = Path.Combine(dir, "model.onnx");
            if (!File.Exists(path)) continue;
            var m = OnnxImporter.Load(path);
            if (m.Graph.Nodes.Count != 1 || !checkedPerOp.ContainsKey(m.Graph.Nodes[0].OpType)) continue;
            var node = m.Graph.Nodes[0];
            if (node.OpType == "Dropout" && node.Outputs.Count > 1 && node.Inputs.Count > 1) { } // training-mode dropout: still shape-preserving
            FreezeIntegerInputs(m, dir);
            var expected = node.Outputs.Select(o => o?.Type?.Shape).ToArray();
            var opset = m.OpsetVersion("") ?? 13;
            var inferred = ShapeInference.InferNode(node, opset);
            for (int i = 0; i < expected.Length; i++)
            {
                if (expected[i] is null || node.Outputs[i] is null) continue;
                var got = inferred.ElementAtOrDefault(i)?.Shape;
                if (got is null || !got.Equals(expected[i]))
                    failures.Add($"{Path.GetFileName(dir)} output {i}: expected {expected[i]}, inferred {got?.ToString() ?? "nothing"}");
            }
            checkedPerOp[node.OpType]++;
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        var untested = checkedPerOp.Where(kv => kv.Value == 0).Select(kv => kv.Key).ToList();
        Assert.True(untested.Count == 0, "no backend test exercised: " + string.Join(", ", untested));
    }

    private static void FreezeIntegerInputs(Model m, string dir)
    {
        var inputs = m.Graph.Inputs.Where(v => !v.IsInitializer).ToList();
        for (int i = 0; i < inputs.Count; i++)
        {
            if (inputs[i].ElementType is not (DataType.Int64 or DataType.Int32)) continue;
            var pb = Path.Combine(dir, "test_data_set_0", $"input_{i}.pb");
            if (File.Exists(pb)) m.Graph.FreezeInput(inputs[i], OnnxImporter.ParseTensor(File.ReadAllBytes(pb)));
        }
    }

    private static OnnxType? Infer(string text, string output)
    {
        var m = TextParser.ParseModel(text);
        ShapeInference.Run(m);
        return m.Graph.Lookup(output)!.Type;
    }

    [Fact]
    public void SymbolicBatchFlowsThroughConvPoolAndFlatten()
    {
        var zeros = string.Join(",", Enumerable.Repeat("0", 8 * 3 * 3 * 3));
        var t = Infer($$"""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,3,32,32] x) => (float[N,?] y)
               <float[8,3,3,3] w = {{{zeros}}}>
            {
               c = Conv <strides: ints = [2, 2], pads: ints = [1, 1, 1, 1]> (x, w)
               p = MaxPool <kernel_shape: ints = [3, 3], strides: ints = [2, 2], ceil_mode: int = 1> (c)
               y = Flatten (p)
            }
            """, "p");
        Assert.Equal("float[N,8,8,8]", ModelStats.TypeText(t));
    }

    [Fact]
    public void ReshapeWithMinusOneKeepsSymbolicBatch()
    {
        var t = Infer("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,4,2,2] x) => (float[N,16] y) <int64[2] s = {0,-1}>
            {
               y = Reshape (x, s)
            }
            """, "y");
        Assert.Equal("float[N,16]", ModelStats.TypeText(t));
    }

    [Fact]
    public void ShapeGatherConcatReshapeChainResolves()
    {
        // The pattern PyTorch exports for x.view(x.size(0), -1).
        var t = Infer("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[2,4,3,3] x) => (float[2,36] y) <int64 i0 = {0}, int64[1] m1 = {-1}, int64[1] ax = {0}>
            {
               s = Shape (x)
               b = Gather <axis: int = 0> (s, i0)
               bu = Unsqueeze (b, ax)
               shape = Concat <axis: int = 0> (bu, m1)
               y = Reshape (x, shape)
            }
            """, "y");
        Assert.Equal("float[2,36]", ModelStats.TypeText(t));
    }

    [Fact]
    public void BroadcastMismatchNamesTheNode()
    {
        var e = Assert.Throws<OnnxModelException>(() => Infer("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[2,3] a, float[4] b) => (float[2,3] y)
            {
               [bad_add] y = Add (a, b)
            }
            """, "y"));
        Assert.Contains("bad_add", e.Message);
    }

    [Fact]
    public void UnknownOpKeepsDeclaredType()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13, "custom" : 1]>
            g (float[2,3] a) => (float[7] y)
            {
               y = custom.Mystery (a)
            }
            """);
        ShapeInference.Run(m);
        Assert.Equal("float[7]", ModelStats.TypeText(m.Graph.Outputs[0].Type));
    }
}
