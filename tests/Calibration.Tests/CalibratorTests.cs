// Calibrators against hand-computed ranges on known distributions, and the histogram they share.
using OnnxOpt.Calibration;
using OnnxOpt.Data;

namespace OnnxOpt.Tests;

public class CalibratorTests
{
    private static float[] Gaussian(int n, ulong seed)
    {
        var r = new SplitMix64(seed);
        return Enumerable.Range(0, n).Select(_ => (float)r.NextGaussian()).ToArray();
    }

    private static T Fed<T>(T c, params float[][] batches) where T : RangeCalibrator
    {
        foreach (var b in batches) c.Observe(b);
        return c;
    }

    [Fact]
    public void MinMaxIsTheGlobalRangeAndItsMovingAverageFollowsTheFormula()
    {
        float[][] batches = [[-2, 1, 3], [0, 5, 2], [-1, 1, 0.5f]];
        Assert.Equal((-2.0, 5.0), Fed(new MinMaxCalibrator(), batches).Range(RangeKind.Asymmetric));
        Assert.Equal((-5.0, 5.0), Fed(new MinMaxCalibrator(), batches).Range(RangeKind.Symmetric));
        // m1 = (-2, 3); m2 = m1 + 0.01 ((0, 5) - m1) = (-1.98, 3.02); m3 = m2 + 0.01 ((-1, 1) - m2) = (-1.9702, 2.9998)
        var (lo, hi) = Fed(new MinMaxCalibrator(movingAverage: true), batches).Range(RangeKind.Asymmetric);
        Assert.Equal(-1.9702, lo, 12);
        Assert.Equal(2.9998, hi, 12);
    }

    [Fact]
    public void HistogramGrowsItsRangeWithoutLosingCounts()
    {
        var h = new SignedHistogram();
        h.Add(Enumerable.Range(1, 10).Select(i => (float)i).ToArray());
        var w0 = h.Width;
        h.Add([100f, -250f, 0f]);
        Assert.True(h.Width >= 250 / (double)SignedHistogram.Bins && h.Width / w0 is 16 or 32 or 64, $"width {w0} -> {h.Width}");
        Assert.Equal(13, h.Count);
        Assert.Equal(13, h.Positive.Sum() + h.Negative.Sum());
        Assert.Equal(-250, h.Min);
        Assert.Equal(100, h.Max);
        Assert.Equal(1, h.Positive[(int)(100 / h.Width)]);
        Assert.Equal(1, h.Negative[(int)(250 / h.Width)]);
        // The values 1..10 and 0 all sit below 11: after merging they still count where they belong.
        Assert.Equal(11, h.Positive.Take((int)(10 / h.Width) + 1).Sum());
    }

    [Fact]
    public void PercentileCutsTheTailsOfAUniformDistribution()
    {
        var u = Enumerable.Range(0, 100_000).Select(i => i / 100_000f).ToArray();
        var c = Fed(new PercentileCalibrator(99), u);
        var w = c.Histogram.Width;
        Assert.InRange(c.Range(RangeKind.Symmetric).Max, 0.99 - 2 * w, 0.99 + 2 * w);
        var v = Enumerable.Range(0, 100_000).Select(i => -1 + 4 * i / 100_000f).ToArray();
        var a = Fed(new PercentileCalibrator(90), v);
        var (lo, hi) = a.Range(RangeKind.Asymmetric);
        var w2 = a.Histogram.Width;
        Assert.InRange(hi, 2.6 - 2 * w2, 2.6 + 2 * w2);
        Assert.InRange(lo, -0.6 - 2 * w2, -0.6 + 2 * w2);
    }

    [Fact]
    public void EntropyPicksAThresholdBelowTheMaxOnAHeavyTail()
    {
        var g = Gaussian(200_000, 3).Concat(Enumerable.Range(0, 20).Select(i => i % 2 == 0 ? 40f + i : -40f - i)).ToArray();
        var (lo, hi) = Fed(new EntropyCalibrator(), g).Range(RangeKind.Symmetric);
        Assert.Equal(-lo, hi);
        Assert.InRange(hi, 3, 30);
        // On a uniform distribution nothing is worth clipping: the threshold is (close to) the max.
        var u = Enumerable.Range(0, 100_000).Select(i => i / 100_000f).ToArray();
        Assert.InRange(Fed(new EntropyCalibrator(), u).Range(RangeKind.Asymmetric).Max, 0.95, 1.0);
    }

    [Fact]
    public void EntropyIgnoresTheReluZeroSpikeAndOneSidedSpikes()
    {
        // Half exact zeros (a ReLU's output) and a half-Gaussian: the threshold stays near the tail, not near 0.
        var relu = Gaussian(100_000, 5).Select(v => Math.Max(v, 0f)).ToArray();
        Assert.InRange(Fed(new EntropyCalibrator(), relu).Range(RangeKind.Asymmetric).Max, 2.5, 5);
        // An image background at -0.75 (most pixels) and ink up to 1.75: neither side is clipped into the spike.
        var img = Enumerable.Range(0, 50_000).Select(i => i % 5 == 0 ? 1.75f * (i % 7) / 6 : -0.75f).ToArray();
        var (lo, hi) = Fed(new EntropyCalibrator(), img).Range(RangeKind.Asymmetric);
        Assert.Equal(-0.75, lo, 3);
        Assert.True(hi > 1.4, $"hi {hi}");
    }

    [Fact]
    public void MseClipsAGaussianNearFourSigmaAndKeepsAUniformWhole()
    {
        var g = Gaussian(200_000, 7);
        var (_, t) = Fed(new MseCalibrator(), g).Range(RangeKind.Symmetric);
        Assert.InRange(t, 3, 5.5);
        Assert.True(t < g.Max(Math.Abs));
        var u = Enumerable.Range(0, 100_000).Select(i => -1 + 2 * i / 100_000f).ToArray();
        var (lo, hi) = Fed(new MseCalibrator(), u).Range(RangeKind.Asymmetric);
        Assert.InRange(hi, 0.97, 1.0);
        Assert.InRange(lo, -1.0, -0.97);
    }

    [Fact]
    public void CalibratorsAreDeterministicAndRefuseUnknownMethods()
    {
        var g = Gaussian(10_000, 9);
        foreach (var m in RangeCalibrator.Methods)
        {
            var make = RangeCalibrator.Factory(m);
            Assert.Equal(Fed(make(), g[..5000], g[5000..]).Range(RangeKind.Asymmetric), Fed(make(), g[..5000], g[5000..]).Range(RangeKind.Asymmetric));
        }
        var e = Assert.Throws<OnnxOpt.GraphIR.OnnxModelException>(() => RangeCalibrator.Factory("kl"));
        Assert.Contains("unknown calibration method 'kl'", e.Message);
    }
}

/// <summary>Batches sized by what one sample's requested values really weigh when shapes cannot tell.</summary>
public class CalibrationBatchTests
{
    [Fact]
    public void DynamicHeightAndWidthAreMeasuredOnOneSampleBeforeBatching()
    {
        // A model whose input is [N, 3, H, W] with H and W unknown: shape inference knows no per-sample size.
        var b = new OnnxOpt.GraphIR.GraphBuilder("dyn");
        var x = b.Input("x", OnnxOpt.GraphIR.DataType.Float, "N", 3, "H", "W");
        var y = b.Node("Relu", [x]);
        y = b.Node("Neg", [y]);
        b.Output(y);
        var model = b.Build();
        var dir = Path.Combine(Path.GetTempPath(), "onnxopt-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        Npy.Write(Path.Combine(dir, "x.npy"), OnnxOpt.GraphIR.Tensor.FromFloats("x", [6, 3, 128, 128],
            new float[6 * 3 * 128 * 128]));
        // Two values of 192 KB per sample: at most 1 MB per batch is 2 samples, not the default 32.
        var calib = CalibrationSource.FromFolder(dir).WithMaxBatchBytes(1L << 20);
        var sizes = new List<long>();
        calib.Stream(model, [model.Graph.Nodes[0].Output().Name, y.Name], (batch, _) =>
            sizes.Add(batch.Inputs["x"].Dims[0]));
        Assert.Equal([2L, 2, 2], sizes);
    }
}
