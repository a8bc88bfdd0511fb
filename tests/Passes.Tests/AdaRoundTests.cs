// Layer-wise second moments and AdaRound: H's error d^T H d equals the energy ORT computes for the weight change d
// (conv patches with padding, stride, dilation and groups; Gemm rows), AdaRound lowers the layer's output error
// against round-to-nearest at int8 and int4 on held-out inputs, and quantize{rounding=adaround} stores the learned
// integers (each the floor or the ceiling of w / s).
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class AdaRoundTests
{
    /// <summary>A conv with padding, stride, dilation and groups; with <paramref name="smooth"/> it reads a fixed
    /// positive 3x3 conv's ReLU output (neighbouring inputs correlated, as in images: random inputs alone are
    /// uncorrelated, H is then diagonal and round-to-nearest is already optimal).</summary>
    private static Model ConvLayer(float[] w, int group, bool smooth = false, long cin = 8, long cout = 8)
    {
        var b = new GraphBuilder("conv");
        var x = b.Input("x", DataType.Float, "N", cin, 9, 7);
        if (smooth)
        {
            var s = Rand(9, cin * cin * 9).Select(v => v + 0.5f).ToArray();
            x = b.Node("Conv", [x, b.Initializer("s", s, cin, cin, 3, 3)], OnnxAttribute.IntList("kernel_shape", 3, 3),
                OnnxAttribute.IntList("pads", 1, 1, 1, 1));
            x = b.Node("Relu", [x]);
        }
        var y = b.Node("Conv", [x, b.Initializer("w", w, cout, cin / group, 3, 3)],
            OnnxAttribute.IntList("kernel_shape", 3, 3), OnnxAttribute.IntList("pads", 1, 0, 2, 1),
            OnnxAttribute.IntList("strides", 2, 1), OnnxAttribute.IntList("dilations", 1, 2),
            OnnxAttribute.Int("group", group));
        b.Output(y);
        return b.Build();
    }

    private static Model GemmLayer(float[] w)
    {
        var b = new GraphBuilder("gemm");
        var x = b.Input("x", DataType.Float, "N", 12);
        var y = b.Node("Gemm", [x, b.Initializer("w", w, 12, 5)]);
        b.Output(y);
        return b.Build();
    }

    /// <summary>sum of y^2 over every output of the model on the data (all samples, positions, channels).</summary>
    private static double Energy(Model m, ulong seed, int count)
    {
        using var s = InferenceSession.FromModel(m, new SessionSettings { Optimization = GraphOptimization.Disabled });
        double e = 0;
        foreach (var batch in DataSet.Random(s.Inputs, count, seed).Batches(8))
            foreach (var v in s.Run(batch.Inputs)[0].ToFloatArray()) e += (double)v * v;
        return e;
    }

    private static LayerHessian HessianOf(Model m, ulong seed, int count, int maxRows)
    {
        var op = LinearOp.Of(m.Graph.Nodes.Last())!;
        var (layers, refused) = LayerHessian.Collect(m, CalibrationSource.FromRandom(count, seed), [op], maxRows, "t");
        Assert.Empty(refused);
        return layers.Values.Single();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(8)]
    public void TheErrorOfAWeightChangeIsTheEnergyOrtComputesForIt(int group)
    {
        var d = Rand(3, 8 * (8 / group) * 9);
        var m = ConvLayer(Rand(1, d.Length), group);
        var h = HessianOf(m, 5, 6, 1 << 20); // every position of every sample
        var rows = h.Rows();
        var dm = ConvLayer(d, group);
        var dRows = HessianOf(dm, 5, 6, 1 << 20).Rows(); // d in the rows layout
        Assert.Equal(Energy(dm, 5, 6), h.Error(dRows), 1e-6 * Energy(dm, 5, 6));
        Assert.Equal(rows.Length, dRows.Length);
    }

    [Fact]
    public void AGemmsRowsAreItsInputRowsAndItsWeightColumnsAreTheOutputs()
    {
        var d = Rand(4, 60);
        var h = HessianOf(GemmLayer(Rand(2, 60)), 5, 16, 1 << 20);
        var dRows = HessianOf(GemmLayer(d), 5, 16, 1 << 20).Rows();
        Assert.Equal(Energy(GemmLayer(d), 5, 16), h.Error(dRows), 1e-6 * Energy(GemmLayer(d), 5, 16));
        Assert.Equal(d, h.FromRows(h.Rows()).Select((_, i) => d[i]).ToArray());
    }

    [Theory]
    [InlineData(127)]
    [InlineData(7)]
    public void LearnedRoundingLowersTheLayersErrorOnHeldOutInputs(int qmax)
    {
        var w = Rand(1, 8 * 8 * 9);
        var m = ConvLayer(w, 1, smooth: true);
        var h = HessianOf(m, 5, 32, 4096);
        var rows = h.Rows();
        var scales = Enumerable.Range(0, 8).Select(o =>
            (float)(Enumerable.Range(0, 72).Max(a => Math.Abs(rows[o * 72 + a])) / qmax)).ToArray();
        var (q, nearest, learned) = AdaRound.Round(h, rows, scales, qmax, new AdaRoundSettings());
        Assert.True(learned < 0.7 * nearest, $"qmax {qmax}: {nearest:G4} -> {learned:G4} on the calibration rows");
        Assert.All(q.Select((v, i) => v - rows[i] / scales[i / 72]), e => Assert.InRange(e, -1, 1));
        // Held out: the energy of (W_q - W) x on other samples.
        double HeldOut(Func<int, double> qi) => Energy(ConvLayer(h.FromRows(Enumerable.Range(0, rows.Length)
            .Select(i => scales[i / 72] * qi(i) - rows[i]).ToArray()), 1, smooth: true), 77, 32);
        var rtn = HeldOut(i => Math.Round(rows[i] / scales[i / 72], MidpointRounding.ToEven));
        var ada = HeldOut(i => q[i]);
        Assert.True(ada < 0.7 * rtn, $"qmax {qmax}: held-out error {rtn:G4} -> {ada:G4}");
    }

    [Fact]
    public void QuantizeStoresTheLearnedIntegers()
    {
        var m = ConvLayer(Rand(1, 8 * 8 * 9), 1, smooth: true);
        var calib = CalibrationSource.FromRandom(32, 5);
        var (nearest, _) = Run(m, "quantize{reduce-range=false}", calib);
        var (learned, runs) = Run(m, "quantize{reduce-range=false,rounding=adaround}", calib);
        var decisions = runs.SelectMany(r => r.Stats.Decisions).OfType<RoundedLayer>().ToList();
        Assert.Equal(2, decisions.Count);
        var decision = decisions.Last();
        Assert.Equal("learned", decision.Decision);
        Assert.True(decision.FlippedShare > 0);
        long[] Ints(Model q) => Rewriter.ConstantOf(q.Graph.Nodes.Last(n => n.OpType == "DequantizeLinear"
            && Rewriter.ConstantOf(n.Input(0)) is { ElementType: DataType.Int8 }).Input(0))!.ToInt64Array();
        var (a, b) = (Ints(nearest), Ints(learned));
        Assert.Equal(a.Length, b.Length);
        Assert.All(a.Zip(b), p => Assert.InRange(p.First - p.Second, -1, 1));
        Assert.Contains(a.Zip(b), p => p.First != p.Second);
    }
}
