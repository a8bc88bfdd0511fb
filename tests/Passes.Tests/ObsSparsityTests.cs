// Layer-wise OBS sparsity (SparseGPT-style): the sweep equals a brute-force Optimal Brain Surgeon on a tiny layer
// (mask chosen per group by w^2 / [H_F^-1]_jj, each removal absorbed through the restricted inverse); 2:4 keeps two of
// every four inputs of every row; on trained nets it beats magnitude pruning at the same density on held-out data.
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class ObsSparsityTests
{
    /// <summary>OBS by the book for one row with N:M groups: at each group start, prune the M - N lowest
    /// w_j^2 / [H_F^-1]_jj among the group's current weights; then for each column, remove (or keep) and move the
    /// columns after it by -(e / [H_F^-1]_ii) [H_F^-1]_(i, F).</summary>
    private static double[] BruteForce(double[] w, double[] h, int k, int n, int m)
    {
        w = (double[])w.Clone();
        var pruned = new bool[k];
        for (int i = 0; i < k; i++)
        {
            int f = k - i;
            var inv = ObsReference.RestrictedInverse(h, k, i);
            if (i % m == 0)
            {
                // [H_F^-1]_jj for the group's columns j, each with its own F (= columns from j on).
                var cost = new double[Math.Min(m, k - i)];
                for (int j = 0; j < cost.Length; j++)
                    cost[j] = w[i + j] * w[i + j] / ObsReference.RestrictedInverse(h, k, i + j)[0];
                foreach (var j in Enumerable.Range(0, cost.Length).OrderBy(j => cost[j]).ThenBy(j => j)
                             .Take(Math.Max(0, cost.Length - n))) pruned[i + j] = true;
            }
            var e = pruned[i] ? w[i] : 0;
            w[i] -= e;
            for (int j = 1; j < f; j++) w[i + j] -= e / inv[0] * inv[j];
        }
        return w;
    }

    [Fact]
    public void TheSweepIsOptimalBrainSurgeonOnATinyLayer()
    {
        const int k = 8;
        var x = Rand(3, 50 * k, 1f);
        var h = new double[k * k];
        for (int r = 0; r < 50; r++)
            for (int a = 0; a < k; a++)
                for (int b = 0; b < k; b++)
                    h[a * k + b] += (x[r * k + a] + 0.5 * x[r * k + (a + 3) % k])
                        * (x[r * k + b] + 0.5 * x[r * k + (b + 3) % k]);
        var mean = Enumerable.Range(0, k).Average(i => h[i * k + i]);
        var damped = (double[])h.Clone();
        for (int i = 0; i < k; i++) damped[i * k + i] += 0.01 * mean;
        var w = Rand(4, 2 * k, 1f).Select(v => (double)v).ToArray();
        var grid = new SparseGrid(2, k, 0.5, 2, 4);
        var swept = (double[])w.Clone();
        Assert.True(Gptq.Run(swept, 2, 0, k, h, grid, block: 3));
        for (int r = 0; r < 2; r++)
        {
            var expected = BruteForce(w[(r * k)..((r + 1) * k)], damped, k, 2, 4);
            for (int i = 0; i < k; i++) Assert.Equal(expected[i], swept[r * k + i], 1e-9);
        }
    }

    private static readonly string Digits = Paths.Model(Path.Combine("digits", "data"));

    [Fact]
    public void TwoFourKeepsTwoOfEveryFourInputsOfEveryRow()
    {
        var m = OnnxImporter.Load(Paths.Model(Path.Combine("digits", "vgg.onnx")));
        var (after, runs) = Run(m, "canonicalize,fold-bn,sparsify{method=obs,pattern=2:4}",
            CalibrationSource.FromFolder(Path.Combine(Digits, "calib")));
        var layers = runs.SelectMany(r => r.Stats.Decisions).OfType<ObsLayer>().ToList();
        Assert.NotEmpty(layers);
        foreach (var n in after.Graph.Nodes.Where(n => n.OpType is "Conv" or "Gemm"))
        {
            var op = LinearOp.Of(n)!;
            // Rows in the order the sweep saw them: output channel, then input position (channel, kh, kw).
            var groups = new Dictionary<(int, long), int>();
            long inner = op.Node.OpType == "Conv" ? op.WeightDims.Skip(1).Aggregate(1L, (a, b) => a * b)
                : op.InChannels;
            for (long i = 0; i < op.Weight.Length; i++)
            {
                if (op.Weight[i] == 0) continue;
                long pos = op.Node.OpType == "Conv" ? i % inner : op.InputChannelOf(i);
                var key = (op.OutputChannelOf(i), pos / 4);
                groups[key] = groups.GetValueOrDefault(key) + 1;
            }
            Assert.All(groups.Values, c => Assert.True(c <= 2, $"{n}: {c} of 4 kept"));
        }
        Assert.All(layers, l => Assert.True(l.ErrorObs <= l.ErrorMagnitude));
    }

    [Fact]
    public void ObsBeatsMagnitudeAtTheSameDensityOnHeldOutData()
    {
        var m = OnnxImporter.Load(Paths.Model(Path.Combine("digits", "vgg.onnx")));
        var calib = CalibrationSource.FromFolder(Path.Combine(Digits, "calib"));
        var (obs, _) = Run(m, "canonicalize,fold-bn,sparsify{method=obs,density=0.5}", calib);
        var (mag, _) = Run(m, "canonicalize,fold-bn,sparsify{method=magnitude,density=0.5,scope=local}", calib);
        double Agreement(Model candidate)
        {
            using var a = InferenceSession.FromModel(m);
            using var b = InferenceSession.FromModel(candidate);
            return Validator.Compare(a, b, DataSet.FromFolder(Path.Combine(Digits, "test"), a.Inputs)).Outputs
                .Single().Top1Agreement!.Value;
        }
        var (o, g) = (Agreement(obs), Agreement(mag));
        Assert.True(o > g + 0.1, $"top-1 agreement on held-out digits: obs {o:P1}, magnitude {g:P1}");
    }

    [Fact]
    public void ErkKeepsTheDensityInTotalAndSmallLayersDenser()
    {
        long[][] shapes = [[16, 1, 3, 3], [64, 1, 3, 3], [64, 64, 3, 3], [128, 64, 3, 3], [10, 256]];
        foreach (var density in new[] { 0.05, 0.1, 0.5, 0.9 })
        {
            var d = DensityAllocation.Densities(shapes, density, "erk");
            var sizes = shapes.Select(s => (double)s.Aggregate(1L, (a, b) => a * b)).ToArray();
            var mean = d.Select((x, i) => x * sizes[i]).Sum() / sizes.Sum();
            Assert.Equal(density, mean, 9);
            Assert.All(d, x => Assert.InRange(x, 0, 1));
            // Fewer weights per fan (sum of dims / product): denser.
            Assert.True(d[0] >= d[2] && d[1] >= d[2] && d[2] >= d[3], string.Join(", ", d));
        }
        var low = DensityAllocation.Densities(shapes, 0.1, "erk");
        Assert.Equal(1, low[0]);
        Assert.True(low[3] < 0.1, $"the largest layer keeps {low[3]:P1}");
        Assert.All(DensityAllocation.Densities(shapes, 0.1, "uniform"), x => Assert.Equal(0.1, x));
    }

    [Fact]
    public void ObsWithErkAllocationKeepsTheTotalDensity()
    {
        var m = OnnxImporter.Load(Paths.Model(Path.Combine("digits", "vgg.onnx")));
        var calib = CalibrationSource.FromFolder(Path.Combine(Digits, "calib"));
        var (after, runs) = Run(m, "canonicalize,fold-bn,sparsify{method=obs,density=0.1,allocation=erk}", calib);
        var layers = runs.SelectMany(r => r.Stats.Decisions).OfType<ObsLayer>().ToList();
        Assert.True(layers.Count >= 3);
        var kept = (double)layers.Sum(l => l.Kept) / layers.Sum(l => l.Weights);
        Assert.InRange(kept, 0.09, 0.11);
        // The stem (fewest weights) keeps more than the largest layer.
        var stem = layers.MinBy(l => l.Weights)!;
        var largest = layers.MaxBy(l => l.Weights)!;
        Assert.True((double)stem.Kept / stem.Weights > (double)largest.Kept / largest.Weights + 0.1);
        Assert.Equal(layers.Sum(l => l.Weights - l.Kept), after.Graph.Nodes.Where(n => n.OpType is "Conv" or "Gemm")
            .Sum(n => (long)LinearOp.Of(n)!.Weight.Count(w => w == 0)));
        var two4 = Assert.Throws<OnnxModelException>(() =>
            Run(m, "canonicalize,sparsify{method=obs,pattern=2:4,allocation=erk}", calib));
        Assert.Contains("allocation=erk", two4.Message);
        var global = Assert.Throws<OnnxModelException>(() =>
            Run(m, "canonicalize,sparsify{method=magnitude,density=0.5,allocation=erk}", calib));
        Assert.Contains("scope=local", global.Message);
    }
}
