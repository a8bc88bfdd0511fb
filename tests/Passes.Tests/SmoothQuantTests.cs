// SmoothQuant (smooth) and quantize's transformer defaults: smoothing is exact in ORT (1/s absorbed into a pre-norm
// LayerNormalization, or an inserted Mul where the activation has other readers), chooses per group only what lowers
// the simulated int8 error, and raises the held-out fidelity of static int8; static int8 of a transformer quantizes
// MatMul/Gemm only (the attention-mask Add is never quantized) with MatMul outputs left float. On convs: a mobile
// block's hard-swish and depthwise outputs smoothed into their producers exactly, and per-tensor int8 gains from it.
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
        // The groups are found before shape inference too (the driver's "changes nothing" check said so wrongly).
        Assert.DoesNotContain(runs[0].Stats.Notes, n => n.Contains("changes nothing"));
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

    /// <summary>conv -> hard-swish as Add/Clip/Mul/Div -> a per-channel affine Mul (PP-LCNet's learnable scales,
    /// here spanning 0.01 .. 100) -> depthwise -> pointwise: the depthwise conv's input and output vary by orders of
    /// magnitude per channel, after a non-homogeneous op that equalize refuses, and the pointwise weights compensate.
    /// </summary>
    private static Model HardSwishBlock()
    {
        var b = new GraphBuilder("hswish-block");
        var x = b.Input("x", DataType.Float, "N", 4, 8, 8);
        var z = Conv(b, x, "c1", 1, 16, 4, 3, pad: 1);
        var clip = b.Node("Clip", [b.Node("Add", [z, b.Initializer("three", [3f])]), b.Initializer("zero", [0f]),
            b.Initializer("six", [6f])]);
        var h = b.Node("Div", [b.Node("Mul", [z, clip]), b.Initializer("six2", [6f])]);
        var gains = Enumerable.Range(0, 16).Select(c => (float)Math.Pow(10, c % 5 - 2)).ToArray();
        var a = b.Node("Mul", [h, b.Initializer("gain", gains, 16, 1, 1)]);
        var y = Conv(b, a, "dw", 3, 16, 1, 3, pad: 1, group: 16);
        // The pointwise conv undoes the gains (as the layers after a folded BatchNorm do), so every channel counts.
        var pw = Rand(5, 8 * 16).Select((w, i) => w / gains[i % 16]).ToArray();
        b.Output(b.Node("Conv", [y, b.Initializer("pw.w", pw, 8, 16, 1, 1), W(b, "pw.b", 6, 8)]));
        return b.Build();
    }

    [Fact]
    public void ConvGroupsAreSmoothedExactlyIntoTheirProducersAndPerTensorInt8Gains()
    {
        var m = HardSwishBlock();
        var calib = CalibrationSource.FromRandom(32, 5);
        var (after, runs) = Run(m, "smooth", calib);
        // Exact up to float rounding (the outputs span five decades, so judged relatively: SQNR).
        double Sqnr(Model q)
        {
            using var a = InferenceSession.FromModel(m);
            using var c = InferenceSession.FromModel(q);
            return Validator.Compare(a, c, DataSet.Random(a.Inputs, 8, 21, new Dictionary<string, long> { ["N"] = 2 }))
                .Outputs[0].SqnrDb;
        }
        Assert.True(Sqnr(after) > 100, Sqnr(after).ToString());
        var groups = runs.SelectMany(r => r.Stats.Decisions).OfType<SmoothedGroup>().ToDictionary(d => d.Input);
        // Two groups (node outputs read by convs; the graph input is not smoothed): the affine Mul takes 1/s in its
        // constant, the depthwise conv in its output channels.
        Assert.Equal(2, groups.Count);
        var gain = m.Graph.Nodes.Single(n => n.OpType == "Mul" && n.Input(1)!.Name == "gain").Output().Name;
        var dw = m.Graph.Nodes.Single(n => n.OpType == "Conv" && n.GetInt("group", 1) == 16).Output().Name;
        Assert.Equal("producer", groups[gain].Placement);
        Assert.Equal("producer", groups[dw].Placement);
        Assert.All(groups.Values, d => Assert.True(d.ErrorRatio <= 1 + 1e-12, $"{d.Input}: {d.ErrorRatio}"));
        Assert.True(groups[gain].ErrorRatio < 0.5, groups[gain].ErrorRatio.ToString());
        Assert.Equal(Count(m, "Mul"), Count(after, "Mul"));
        // Static int8 of the convs (per-tensor activations): the smoothed block keeps the output far closer to float.
        const string Int8 = "quantize{include=Conv,smooth=off}";
        double plain = Sqnr(Run(m, Int8, calib).After), smoothed = Sqnr(Run(after, Int8, calib).After);
        Assert.True(smoothed > plain + 3, $"SQNR {plain:F1} -> {smoothed:F1} dB");
        Assert.Equal(OnnxExporter.ToBytes(after), OnnxExporter.ToBytes(Run(m, "smooth", calib).After));
    }

    [Fact]
    public void QuantizeSmoothsACnnOnlyWhenAskedAndNeverInsertsAMul()
    {
        // conv -> Relu -> conv: the Relu cannot take 1/s, so smoothing that group needs an inserted Mul.
        var b = new GraphBuilder("relu-pair");
        var x = b.Input("x", DataType.Float, "N", 4, 8, 8);
        var h = b.Node("Relu", [Conv(b, x, "c1", 1, 16, 4, 3, pad: 1)]);
        b.Output(Conv(b, h, "c2", 2, 8, 16, 1));
        var m = b.Build();
        var calib = CalibrationSource.FromRandom(32, 5);
        var (_, smoothRuns) = Run(m, "smooth", calib);
        Assert.Equal("mul", smoothRuns.SelectMany(r => r.Stats.Decisions).OfType<SmoothedGroup>().Single().Placement);
        var (q, runs) = Run(m, "quantize{smooth=on}", calib);
        Assert.Empty(runs.SelectMany(r => r.Stats.Decisions).OfType<SmoothedGroup>());
        Assert.Equal(0, Count(q, "Mul"));
        // On the hard-swish block every group's producer takes 1/s; without smooth=on a CNN is not smoothed.
        var block = HardSwishBlock();
        var (_, on) = Run(block, "quantize{smooth=on}", calib);
        Assert.Equal(2, on.SelectMany(r => r.Stats.Decisions).OfType<SmoothedGroup>().Count(d => d.Alpha is not null));
        var (_, auto) = Run(block, "quantize", calib);
        Assert.Empty(auto.SelectMany(r => r.Stats.Decisions).OfType<SmoothedGroup>());
    }
}
