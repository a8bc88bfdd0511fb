// Optimal Brain Damage's Hessian diagonal: on a tiny net, the probe estimate of diag H of the distillation loss (KL to
// the model itself, at its own weights) matches the exact diagonal from central differences of the loss; obd and
// fisher drive sparsify and prune (criterion) end to end.
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class SecondOrderSaliencyTests
{
    private static readonly float[] W1 = Rand(1, 4 * 6, 1f), W2 = Rand(2, 6 * 3, 1.5f);

    private static Model Tiny()
    {
        var b = new GraphBuilder("tiny");
        var x = b.Input("x", DataType.Float, "N", 4);
        var h = b.Node("Tanh", [b.Node("Gemm", [x, b.Initializer("w1", W1, 4, 6)])]);
        b.Output(b.Node("Gemm", [h, b.Initializer("w2", W2, 6, 3)]));
        return b.Build();
    }

    /// <summary>mean over samples of KL(p(w0) || p(w)), in double.</summary>
    private static double Loss(double[][] xs, double[] w1, double[] w2)
    {
        double total = 0;
        foreach (var x in xs)
        {
            var (p0, p) = (Probabilities(x, W1.Select(v => (double)v).ToArray(), W2.Select(v => (double)v).ToArray()),
                Probabilities(x, w1, w2));
            for (int j = 0; j < 3; j++) total += p0[j] * Math.Log(p0[j] / p[j]);
        }
        return total / xs.Length;
    }

    private static double[] Probabilities(double[] x, double[] w1, double[] w2)
    {
        var h = new double[6];
        for (int j = 0; j < 6; j++) { for (int i = 0; i < 4; i++) h[j] += x[i] * w1[i * 6 + j]; h[j] = Math.Tanh(h[j]); }
        var y = new double[3];
        for (int k = 0; k < 3; k++) for (int j = 0; j < 6; j++) y[k] += h[j] * w2[j * 3 + k];
        var e = y.Select(v => Math.Exp(v - y.Max())).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    [Fact]
    public void TheProbeEstimateIsTheExactHessianDiagonalOfTheDistillationLoss()
    {
        var m = Tiny();
        var calib = CalibrationSource.FromRandom(32, 5);
        var (_, diag) = SecondOrderSaliency.Compute(m, ["w1", "w2"], calib, "obd", samples: 32, probes: 3000);
        var xs = calib.DataFor(IoInfo.InputsOf(m.Graph)).Batches(32).SelectMany(b =>
        {
            var v = b.Inputs["x"].ToFloatArray();
            return Enumerable.Range(0, v.Length / 4).Select(s => v.Skip(s * 4).Take(4).Select(f => (double)f).ToArray());
        }).ToArray();
        const double step = 1e-3;
        foreach (var (name, w, other) in new[] { ("w1", W1, W2), ("w2", W2, W1) })
        {
            double err = 0, norm = 0;
            for (int i = 0; i < w.Length; i++)
            {
                double Shifted(double d)
                {
                    var a = w.Select(v => (double)v).ToArray();
                    a[i] += d;
                    var o = other.Select(v => (double)v).ToArray();
                    return name == "w1" ? Loss(xs, a, o) : Loss(xs, o, a);
                }
                var exact = (Shifted(step) + Shifted(-step)) / (step * step); // L(w0) = 0
                err += (diag[name][i] - exact) * (diag[name][i] - exact);
                norm += exact * exact;
            }
            Assert.True(Math.Sqrt(err / norm) < 0.1, $"{name}: relative error {Math.Sqrt(err / norm):P1}");
        }
    }

    [Theory]
    [InlineData("sparsify{method=obd,density=0.8}")]
    [InlineData("sparsify{method=fisher,density=0.8,scope=local}")]
    [InlineData("prune{criterion=obd,ratio=0.25,recover=none}")]
    [InlineData("prune{criterion=fisher,ratio=0.25,recover=none}")]
    public void ObdAndFisherDriveSparsifyAndPrune(string pass)
    {
        var m = OnnxImporter.Load(Paths.Model(Path.Combine("digits", "vgg.onnx")));
        var calib = CalibrationSource.FromFolder(Paths.Model(Path.Combine("digits", "data", "calib")));
        var (after, runs) = Run(m, "canonicalize,fold-bn," + pass, calib);
        Assert.True(Counter(runs, Counters.Sparsify.WeightsZeroed) > 0 || Counter(runs, Counters.Prune.ChannelsRemoved) > 0,
            string.Join(", ", runs.SelectMany(r => r.Stats.Counters.Keys)));
        Assert.Throws<OnnxModelException>(() => Run(m, "canonicalize,fold-bn," + pass));
    }
}
