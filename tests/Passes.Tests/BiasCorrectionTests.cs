// Bias correction: on held-out inputs the layer's mean output error from its int8 weights shrinks (the pass measured
// its input means on other samples); end to end, quantize{bias-correct=true} lowers the int8 model's mean error
// against fp32; the accuracy-aware search tries it before keeping ops in float; what it leaves has a reason.
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class BiasCorrectionTests
{
    private const int C = 16;

    /// <summary>x -> Relu (inputs with a positive mean) -> depthwise 3x3 conv (no padding) whose channels span
    /// 0.05 .. 5, as BatchNorm folding leaves them, then a 1x1 conv.</summary>
    private static Model Block(float[]? dw = null, float[]? dwBias = null)
    {
        var b = new GraphBuilder("block");
        var x = b.Input("x", DataType.Float, "N", C, 10, 10);
        var h = b.Node("Relu", [x]);
        h = b.Node("Conv", [h, b.Initializer("dw.w", dw ?? DepthwiseWeight(), C, 1, 3, 3),
            b.Initializer("dw.b", dwBias ?? Rand(3, C), C)], OnnxAttribute.Int("group", C),
            OnnxAttribute.IntList("kernel_shape", 3, 3));
        b.Output(h);
        return b.Build();
    }

    private static float[] DepthwiseWeight()
    {
        var w = Rand(1, C * 9);
        for (int i = 0; i < w.Length; i++) w[i] *= (float)(0.05 * Math.Pow(100, i / 9 % 4 / 3.0));
        return w;
    }

    private static CalibrationSource Data(ulong seed) => CalibrationSource.FromRandom(64, seed);

    /// <summary>Per output channel, the mean over held-out samples and positions of (y - y_fp32); the mean of its
    /// absolute values over channels.</summary>
    private static double MeanChannelError(Model reference, Model candidate)
    {
        var settings = new SessionSettings { Optimization = GraphOptimization.Disabled };
        using var a = InferenceSession.FromModel(reference, settings);
        using var b = InferenceSession.FromModel(candidate, settings);
        var data = DataSet.Random(a.Inputs, 64, 99);
        var sum = new double[C];
        long count = 0;
        foreach (var batch in data.Batches(16))
        {
            var ya = a.Run(batch.Inputs)[0].ToFloatArray();
            var yb = b.Run(batch.Inputs)[0].ToFloatArray();
            var inner = ya.Length / C / (int)batch.Inputs.Values.First().Dims[0];
            for (int i = 0; i < ya.Length; i++) sum[i / inner % C] += yb[i] - ya[i];
            count += ya.Length / C;
        }
        return sum.Average(s => Math.Abs(s / count));
    }

    [Fact]
    public void TheLayersMeanOutputErrorFromInt8WeightsShrinksOnHeldOutInputs()
    {
        var m = Block();
        var (corrected, runs) = Run(m, "bias-correct{per-channel=false,reduce-range=false}", Data(5));
        Assert.Equal(1, Counter(runs, Counters.BiasCorrect.BiasesCorrected));
        var conv = corrected.Graph.Nodes.Single(n => n.OpType == "Conv");
        var bias = Rewriter.ConstantOf(conv.Input(2))!.ToFloatArray();
        // The weights int8 per tensor gives (dequantized), with the original and with the corrected bias.
        var q = QuantizedWeight.Of(DepthwiseWeight(), [C, 1, 3, 3], -1);
        var wq = q.Values.Select(v => v * q.Scales[0]).ToArray();
        var before = MeanChannelError(m, Block(wq));
        var after = MeanChannelError(m, Block(wq, bias));
        Assert.True(after < 0.1 * before, $"mean channel error {before:G3} -> {after:G3}");
    }

    [Fact]
    public void QuantizeWithBiasCorrectionHasASmallerMeanErrorThanWithout()
    {
        var m = Block();
        var (plain, _) = Run(m, "quantize{per-channel=false,reduce-range=false,bias-correct=false}", Data(5));
        var (corrected, runs) = Run(m, "quantize{per-channel=false,reduce-range=false,bias-correct=true}", Data(5));
        Assert.Equal(1, Counter(runs, Counters.BiasCorrect.BiasesCorrected));
        Assert.Equal(Count(plain, "DequantizeLinear"), Count(corrected, "DequantizeLinear"));
        var before = MeanChannelError(m, plain);
        var after = MeanChannelError(m, corrected);
        Assert.True(after < 0.5 * before, $"mean channel error {before:G3} -> {after:G3}");
    }

    [Fact]
    public void ConvTransposeAndBatchedMatMulsAreLeftWithTheReason()
    {
        var b = new GraphBuilder("left");
        var x = b.Input("x", DataType.Float, "N", 4, 6);
        var h = b.Node("MatMul", [x, W(b, "w", 1, 6, 6)]);
        var y = b.Node("ConvTranspose", [h, W(b, "t", 2, 4, 2, 1)], OnnxAttribute.IntList("kernel_shape", 1));
        b.Output(y);
        var (after, runs) = Run(b.Build(), "bias-correct", Data(5));
        var left = runs.SelectMany(r => r.Stats.Decisions).OfType<BiasCorrected>().ToList();
        Assert.Contains(left, d => d.Op == "MatMul" && d.Reason!.Contains("no bias input"));
        Assert.Contains(left, d => d.Op == "ConvTranspose" && d.Reason!.Contains("stride"));
        Assert.Equal(0, Counter(runs, Counters.BiasCorrect.BiasesCorrected));
    }

    [Fact]
    public void TheAccuracyAwareSearchTriesBiasCorrectionBeforeKeepingOpsInFloat()
    {
        var m = Block().Clone();
        var runs = PipelineRunner.Run(m, Pipeline.Parse("quantize{per-channel=false,reduce-range=false,max-drop=0,"
            + "max-trials=3,tune-calibration=false,equalize=false}"), PassContexts.Create(m, Data(5), null, Data(7)));
        var trials = runs.SelectMany(r => r.Stats.Decisions).OfType<QuantizeTrial>().ToList();
        Assert.Equal("bias-correct", trials[1].FellBack);
        Assert.True(trials[1].Drop < trials[0].Drop, $"{trials[0].Drop} -> {trials[1].Drop}");
    }
}
