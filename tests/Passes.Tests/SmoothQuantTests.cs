// SmoothQuant (smooth) and quantize's transformer defaults: smoothing is exact in ORT (1/s absorbed into a pre-norm
// LayerNormalization, or an inserted Mul where the activation has other readers), chooses per group only what lowers
// the simulated int8 error, and raises the held-out fidelity of static int8; static int8 of a transformer quantizes
// MatMul/Gemm only (the attention-mask Add is never quantized) with MatMul outputs left float.
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests.Passes;

public class SmoothQuantTests
{
    private static readonly Model Bert = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx"));
    private static readonly Model Vit = OnnxImporter.Load(Paths.Model("transformers/vit_op17.onnx"));
    private static CalibrationSource BertCalib => CalibrationSource.FromFolder(Paths.Model("transformers/bert_data"));
    private static CalibrationSource VitCalib => CalibrationSource.FromFolder(Paths.Model("digits/data/calib"));

    private static OutputComparison HeldOut(Model before, Model after, string data)
    {
        using var a = InferenceSession.FromModel(before);
        using var b = InferenceSession.FromModel(after);
        return Validator.Compare(a, b, DataSet.FromFolder(Paths.Model(data), a.Inputs)).Outputs[0];
    }

    [Fact]
    public void SmoothingIsExactAndAbsorbedIntoPreNormLayerNorms()
    {
        var (after, runs) = Run(Vit, "smooth", VitCalib);
        var groups = runs.SelectMany(r => r.Stats.Decisions).OfType<SmoothedGroup>().ToList();
        Assert.NotEmpty(groups);
        // The ViT is pre-norm: the LayerNormalization before qkv and fc1 feeds only them, so 1/s goes into its scale
        // and bias; the other groups (attention output, fc2) get a Mul.
        Assert.Contains(groups, d => d.Placement == "producer");
        Assert.Equal(groups.Count(d => d.Placement == "mul"), Count(after, "Mul") - Count(Vit, "Mul"));
        Assert.All(groups, d => Assert.True(d.ErrorRatio <= 1 + 1e-12, $"{d.Input}: {d.ErrorRatio}"));
        Assert.All(groups.Where(d => d.Alpha is null), d => Assert.Equal("none", d.Placement));
        var report = AssertEquivalent(Vit, after);
        Assert.True(report.Outputs.All(o => o.MaxAbsError < 1e-3));
        // Post-norm BERT: every LayerNorm output also feeds a residual Add, so every smoothed group has a Mul.
        var (bert, bruns) = Run(Bert, "smooth", BertCalib);
        var bgroups = bruns.SelectMany(r => r.Stats.Decisions).OfType<SmoothedGroup>().ToList();
        Assert.All(bgroups.Where(d => d.Alpha is not null), d => Assert.Equal("mul", d.Placement));
        Assert.True(HeldOut(Bert, bert, "transformers/bert_eval").Cosine > 0.999999);
    }

    [Fact]
    public void TransformerInt8QuantizesMatMulsOnlyAndSmoothingRaisesFidelity()
    {
        var (q, runs) = Run(Bert, "quantize", BertCalib);
        Assert.Contains(runs[^1].Stats.Notes, n => n.StartsWith("transformer (2 attention blocks)"));
        var quantized = runs[^1].Stats.Decisions.OfType<QuantizedOp>().Where(d => d.Decision == "int8").ToList();
        Assert.NotEmpty(quantized);
        Assert.All(quantized, d => Assert.Contains(d.Op, new[] { "MatMul", "Gemm", "Reshape", "Transpose" }));
        // The attention mask's arithmetic stays float: nothing between the mask input and the Softmax is quantized
        // (the Softmax's output, in [0, 1], is the int8 input of attention . V).
        var mask = q.Graph.Find("attention_mask")!;
        var fromMask = new HashSet<Value>();
        var stack = new Stack<Value>([mask]);
        while (stack.TryPop(out var v))
            if (fromMask.Add(v))
                foreach (var u in v.Uses)
                    if (u.Node.OpType is not ("MatMul" or "Softmax")) foreach (var o in u.Node.Outputs.OfType<Value>()) stack.Push(o);
        Assert.DoesNotContain(q.Graph.Nodes, n => n.OpType == "QuantizeLinear" && fromMask.Contains(n.Input(0)!));
        // Every int8 weight is reported with its bits and SQNR against the float weight.
        var weighted = quantized.Where(d => d.Op is "MatMul" or "Gemm" && d.WeightSqnrDb is not null).ToList();
        Assert.Equal(Bert.Graph.Nodes.Count(n => n.OpType is "MatMul" or "Gemm"
            && Rewriter.ConstantOf(n.Input(1)) is not null), weighted.Count);
        Assert.All(weighted, d => Assert.InRange(d.WeightSqnrDb!.Value, 25, 200));
        Assert.All(weighted, d => Assert.Contains(d.Bits, new int?[] { 7, 8 }));
        // MatMul outputs are not requantized (ORT runs DQ -> MatMul as MatMulIntegerToFloat).
        Assert.DoesNotContain(q.Graph.Nodes, n => n.OpType == "QuantizeLinear"
            && n.Input(0)!.Producer is { OpType: "MatMul" });
        var smoothed = HeldOut(Bert, q, "transformers/bert_eval");
        var (plain, _) = Run(Bert, "quantize{smooth=off}", BertCalib);
        var unsmoothed = HeldOut(Bert, plain, "transformers/bert_eval");
        Assert.True(smoothed.SqnrDb > unsmoothed.SqnrDb + 3, $"SQNR {smoothed.SqnrDb} vs {unsmoothed.SqnrDb} dB");
        Assert.True(smoothed.Cosine > 0.9999, smoothed.Cosine.ToString());
        // transformer=false: the CNN defaults (Adds quantized too).
        var (_, cnn) = Run(Bert, "quantize{transformer=false,smooth=off}", BertCalib);
        Assert.Contains(cnn[^1].Stats.Decisions.OfType<QuantizedOp>(), d => d is { Op: "Add", Decision: "int8" });
        // Deterministic: the same bytes twice.
        Assert.Equal(OnnxExporter.ToBytes(q), OnnxExporter.ToBytes(Run(Bert, "quantize", BertCalib).After));
        var e = Assert.Throws<OnnxModelException>(() => Run(Bert, "quantize{smooth=2}", BertCalib));
        Assert.Contains("alpha '2'", e.Message);
    }
}
