// Quantization-aware training end to end on the trained digits VGG-style net with 4-bit weights (W4A8), short runs:
// it lowers the error round-to-nearest leaves (SQNR against fp32 in ORT on the 500 held-out images), writes the same
// QDQ graph with its integers on the grid and biases at the trained scales, gives the same bytes twice, and runs as
// distill after quantize; options that do not apply are refused.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Data;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;
using OnnxOpt.Training;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class QuantizationAwareTrainingTests
{
    private static readonly string Data = Paths.Model("digits/data");
    private static readonly Model Vgg = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
    private const string W4 = "canonicalize,fold-bn,quantize{weight-bits=4";

    private static (Model After, List<PassRun> Runs) Quantized(string pipeline) =>
        Run(Vgg, pipeline, CalibrationSource.FromFolder(Path.Combine(Data, "calib")));

    /// <summary>fp32 against the candidate in ORT on the held-out images.</summary>
    private static OutputComparison HeldOut(Model candidate)
    {
        using var a = InferenceSession.FromModel(Vgg);
        using var b = InferenceSession.FromModel(candidate);
        return Validator.Compare(a, b, DataSet.FromFolder(Path.Combine(Data, "test"), a.Inputs)).Outputs[0];
    }

    [Fact]
    public void TrainingThroughTheQuantizersLowersTheErrorOfFourBitWeights()
    {
        var plain = Quantized(W4 + "}").After;
        var (trained, runs) = Quantized(W4 + ",train-steps=80}");
        var (before, after) = (HeldOut(plain), HeldOut(trained));
        Assert.True(after.SqnrDb > before.SqnrDb + 1, $"SQNR {before.SqnrDb:F2} -> {after.SqnrDb:F2} dB");
        Assert.True(after.Top1Agreement >= before.Top1Agreement, $"{before.Top1Agreement} -> {after.Top1Agreement}");
        // The same QDQ graph: same nodes, weights still int8 on the 4-bit grid, biases int32 at s_x * s_w.
        Assert.Equal(plain.Graph.Nodes.Select(n => n.OpType), trained.Graph.Nodes.Select(n => n.OpType));
        int weights = 0;
        foreach (var conv in trained.Graph.Nodes.Where(n => n.OpType is "Conv" or "Gemm"))
        {
            var wdq = conv.Input(1)!.Producer!;
            var q = wdq.Input(0)!.Initializer!;
            Assert.Equal(DataType.Int8, q.ElementType);
            Assert.All(q.ToInt64Array(), v => Assert.InRange(v, -7, 7));
            var sw = wdq.Input(1)!.Initializer!.ToFloatArray();
            var sx = conv.Input(0)!.Producer!.Input(1)!.Initializer!.ToFloatArray()[0];
            var sb = conv.Input(2)!.Producer!.Input(1)!.Initializer!.ToFloatArray();
            for (int c = 0; c < sb.Length; c++) Assert.Equal(sx * sw[sw.Length == 1 ? 0 : c], sb[c], 6);
            weights++;
        }
        Assert.True(weights >= 5);
        Assert.Equal(weights, Counter(runs, Counters.Quantize.Int8WeightsTrained));
        Assert.True(Counter(runs, Counters.Quantize.ActivationScalesTrained) > 0);
        // Scales moved: the trained model is not the plain one with new integers only.
        static float[] Scales(Model m) => m.Graph.Initializers.Where(v => v.Name.EndsWith("_scale"))
            .OrderBy(v => v.Name).SelectMany(v => v.Initializer!.ToFloatArray()).ToArray();
        Assert.NotEqual(Scales(plain), Scales(trained));
    }

    [Fact]
    public void TwoRunsGiveTheSameBytes()
    {
        var a = OnnxExporter.ToBytes(Quantized(W4 + ",train-steps=10}").After);
        var b = OnnxExporter.ToBytes(Quantized(W4 + ",train-steps=10}").After);
        Assert.Equal(a, b);
    }

    [Fact]
    public void DistillAfterQuantizeTrainsThroughTheQuantizers()
    {
        var (m, runs) = Quantized("canonicalize,fold-bn,quantize{per-channel=false},distill{steps=20,lr=0.0001}");
        Assert.Equal(1, runs[^1].Stats.Decisions.OfType<TrainingSummary>().Count());
        Assert.True(Counter(runs, Counters.Quantize.Int8WeightsTrained) >= 5);
        Assert.Contains(runs[^1].Stats.Notes, n => n.Contains("quantization-aware training") && n.Contains("+-127"));
        Assert.True(HeldOut(m).Top1Agreement >= 0.98);
        var e = Assert.Throws<OnnxModelException>(() =>
            Quantized("canonicalize,fold-bn,quantize,distill{params=biases,steps=2}"));
        Assert.Contains("params=biases on a quantized (QDQ) model", e.Message);
    }

    /// <summary>Per Conv/Gemm (by node name), which of its weights are zero: the float weight, or the integers of the
    /// DequantizeLinear that feeds it.</summary>
    private static Dictionary<string, bool[]> Zeros(Model m) => m.Graph.Nodes
        .Where(n => n.OpType is "Conv" or "Gemm")
        .ToDictionary(n => n.Name, n => (n.Input(1)!.Producer is { OpType: "DequantizeLinear" } dq
                ? dq.Input(0)!.Initializer!.ToInt64Array().Select(x => x == 0)
                : n.Input(1)!.Initializer!.ToFloatArray().Select(x => x == 0)).ToArray());

    [Fact]
    public void SparseWeightsKeepTheirZerosThroughQuantizationAwareTraining()
    {
        const string sparse = "canonicalize,fold-bn,sparsify{method=magnitude,density=0.5,scope=local},";
        var (pruned, _) = Quantized(sparse.TrimEnd(','));
        var (after, runs) = Quantized(sparse + "quantize{weight-bits=4,train-steps=30}");
        Assert.True(Counter(runs, Counters.Training.WeightsHeldAtZero) > 10_000);
        var (z0, z1) = (Zeros(pruned), Zeros(after));
        Assert.True(z0.Count >= 5);
        foreach (var (name, zeros) in z0)
        {
            // Every pruned position is still 0 after training.
            Assert.True(zeros.Count(z => z) >= zeros.Length / 2, name);
            Assert.All(zeros.Select((z, i) => (z, i)).Where(t => t.z), t => Assert.True(z1[name][t.i], name));
        }
        // Distill after quantize starts on the grid: zeros are held only when asked (rounding makes zeros too).
        var (_, held) = Quantized(sparse + "quantize,distill{steps=5,keep-zeros=true}");
        Assert.True(Counter(held, Counters.Training.WeightsHeldAtZero) > 10_000);
        var (_, auto) = Quantized(sparse + "quantize,distill{steps=5}");
        Assert.Equal(0, Counter(auto, Counters.Training.WeightsHeldAtZero));
    }

    [Fact]
    public void TrainingAndFourBitWeightsAreForStaticInt8Only()
    {
        var e = Assert.Throws<OnnxModelException>(() => Quantized("quantize{mode=dynamic,train-steps=5}"));
        Assert.Contains("train-steps and weight-bits apply to static int8 only", e.Message);
    }
}
