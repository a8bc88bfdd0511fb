// inspect --dim against an independent count: the MACs ModelStats computes from inferred shapes at given
// symbolic dims, and the same formula over the shapes ONNX Runtime actually produces when it runs the model
// at those dims (every MatMul/Gemm input and output made a graph output). Within 1% (they should agree exactly).
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;

namespace OnnxOpt.Tests;

public class TransformerMacsTests
{
    private static long OrtMacs(Model model, Dictionary<string, Tensor> inputs)
    {
        var m = model.Clone();
        var probes = m.Graph.Nodes.Where(n => n.OpType is "MatMul" or "Gemm").ToList();
        var names = new List<string>();
        foreach (var n in probes)
            foreach (var v in new[] { n.Input(0)!, n.Output() })
                if (!m.Graph.IsOutput(v) && !v.IsGraphInput) { v.Type = null; m.Graph.AddOutput(v); }
        using var s = InferenceSession.FromModel(m, new SessionSettings { Optimization = GraphOptimization.Disabled });
        var outs = s.Run(inputs, s.Outputs.Select(o => o.Name).ToList());
        var shapes = s.Outputs.Select((o, i) => (o.Name, outs[i].Dims)).ToDictionary(p => p.Name, p => p.Dims);
        long total = 0;
        foreach (var n in probes)
        {
            var a = shapes[n.Input(0)!.Name];
            var y = shapes[n.Output().Name];
            long k = n.OpType == "Gemm" && n.GetInt("transA", 0) != 0 ? a[0] : a[^1];
            total += y.Aggregate(1L, (p, d) => p * d) * k;
        }
        return total;
    }

    [Theory]
    [InlineData(24)]
    [InlineData(7)]
    public void BertMacsAtAGivenSequenceMatchOrtsRuntimeShapes(long sequence)
    {
        var m = TransformerGraphs.Bert();
        var ids = Enumerable.Range(0, (int)sequence).Select(i => (long)(i * 7 % TransformerGraphs.BertVocab)).ToArray();
        var inputs = new Dictionary<string, Tensor>
        {
            ["input_ids"] = Tensor.FromInt64s("input_ids", [1, sequence], ids),
            ["attention_mask"] = Tensor.FromInt64s("attention_mask", [1, sequence], ids.Select(_ => 1L).ToArray()),
            ["token_type_ids"] = Tensor.FromInt64s("token_type_ids", [1, sequence], ids.Select(_ => 0L).ToArray()),
        };
        var expected = OrtMacs(m, inputs);
        var stats = ModelStats.Compute(m, dims: new Dictionary<string, long> { ["sequence"] = sequence, ["batch"] = 1 });
        Assert.Empty(stats.UnknownMacNodes);
        Assert.InRange(stats.TotalMacs, expected * 0.99, expected * 1.01);
    }

    [Theory]
    [InlineData("quantize{mode=dynamic}")]
    [InlineData("quantize{mode=weight-only,bits=4}")]
    [InlineData("quantize{mode=weight-only,bits=8,block=64}")]
    public void QuantizedMatMulsKeepTheirShapesAndMacs(string pipeline)
    {
        // DynamicQuantizeMatMul, MatMulIntegerToFloat (behind DynamicQuantizeLinear) and MatMulNBits count as the
        // float MatMul they replace, and their inferred shapes equal what the pass declared.
        var m = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx"));
        var dims = new Dictionary<string, long> { ["sequence"] = 32, ["batch"] = 1 };
        var (q, _) = PassTestKit.Run(m, pipeline);
        Assert.Contains(q.Graph.Nodes, n => n.Domain == "com.microsoft");
        Assert.Empty(Verifier.CheckShapes(q));
        var (before, after) = (ModelStats.Compute(m, dims: dims), ModelStats.Compute(q, dims: dims));
        Assert.Empty(after.UnknownMacNodes);
        Assert.Equal(before.TotalMacs, after.TotalMacs);
    }

    [Fact]
    public void VitMacsMatchOrtsRuntimeShapes()
    {
        var m = TransformerGraphs.Vit();
        var px = Tensor.FromFloats("pixel_values", [1, 1, 16, 16], Enumerable.Range(0, 256).Select(i => i / 256f).ToArray());
        var expected = OrtMacs(m, new Dictionary<string, Tensor> { ["pixel_values"] = px });
        var conv = 32L * 16 * 16; // the patch Conv: 32 outputs x 16 patches x 16 taps, which OrtMacs does not probe
        var stats = ModelStats.Compute(m);
        Assert.InRange(stats.TotalMacs - conv, expected * 0.99, expected * 1.01);
    }
}
