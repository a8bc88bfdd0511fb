// SynFlow through our autodiff: the conservation law, scores against a hand formula and against
// finite differences of R computed in ONNX Runtime, the rescaling that keeps deep nets in range (float32 at 50
// layers, float64 at 60) with the reference ranking,
// layer collapse (magnitude) versus none (iterative SynFlow), the linearization rules (Softmax cut,
// SE gate = 1), the sparsify pass and the score command.
using System.Text.Json;
using OnnxOpt.Autodiff;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class SaliencyTests
{
    private static SaliencyResult Score(Model m, string method = "synflow", int iterations = 1, double density = 1, string precision = "float64", string scope = "global") =>
        Saliency.Score(m, new SaliencyOptions { Method = method, Iterations = iterations, Density = density, Precision = precision, Scope = scope });

    /// <summary>conv(no bias) -> relu -> conv(no bias) -> relu -> maxpool -> conv(no bias) -> GAP -> flatten -> gemm(no bias).</summary>
    private static Model BiasFreeReluNet()
    {
        var b = new GraphBuilder("plain");
        var x = b.Input("x", DataType.Float, "N", 3, 8, 8);
        var h = b.Node("Relu", [Conv(b, x, "c1", 1, 6, 3, 3, pad: 1, bias: false)]);
        h = b.Node("Relu", [Conv(b, h, "c2", 2, 8, 6, 3, pad: 1, bias: false)]);
        h = b.Node("MaxPool", [h], OnnxAttribute.IntList("kernel_shape", 2, 2), OnnxAttribute.IntList("strides", 2, 2));
        h = Conv(b, h, "c3", 3, 5, 8, 1, bias: false);
        var f = b.Node("Flatten", [b.Node("GlobalAveragePool", [h])]);
        b.Output(b.Node("Gemm", [f, W(b, "fc", 4, 4, 5)], OnnxAttribute.Int("transB", 1)));
        return b.Build();
    }

    [Fact]
    public void ConservationHoldsInABiasFreeReluNet()
    {
        var r = Score(BiasFreeReluNet());
        Assert.Equal(4, r.Layers.Count);
        foreach (var l in r.Layers)
            Assert.True(l.ConservationDeviation < 1e-9, $"{l.Layer}: total {l.ScoreTotal} vs R {r.R} (deviation {l.ConservationDeviation})");
    }

    [Fact]
    public void FilterScoresEqualActivationTimesGradient()
    {
        // Summed score of filter c of conv c2 == sum_hw a_c dR/da_c at c2's output a (bias-free).
        var m = BiasFreeReluNet();
        var r = Score(m);
        var net = SynFlowNetwork.Build(m, PrunableWeight.Find(m.Graph), new Dictionary<string, int[]>());
        var ev = new Evaluator<double>(net.Model);
        var over = net.Model.Graph.Initializers.Where(v => v.Initializer!.ElementType == DataType.Float)
            .ToDictionary(v => v.Name, v => { var a = ev.Initializer(v); return new NdArray<double>(a.Shape, a.R.Select(Math.Abs).ToArray()); });
        var ones = net.InputShapes.ToDictionary(kv => kv.Key, kv => NdArray<double>.Full(kv.Value, 1.0));
        var trace = ev.Forward(ones, over);
        var a = m.Graph.Nodes.Single(n => n.Input(1)?.Name == "c2.w").Output().Name;
        var seeds = net.Outputs.ToDictionary(o => o, o => NdArray<double>.Full(trace[o].Shape, 1.0));
        var ga = ev.Backward(trace, seeds, [a])[a];
        var act = trace[a];
        var layer = r.Layers.Single(l => l.Weight == "c2.w");
        int hw = act.Length / act.Shape[1];
        for (int c = 0; c < act.Shape[1]; c++)
        {
            double s = 0;
            for (int i = 0; i < hw; i++) s += act.R[c * hw + i] * ga.R[c * hw + i];
            Assert.Equal(s, layer.FilterScores[c], 1e-9 * Math.Abs(s));
        }
    }

    [Fact]
    public void ScoresOfATwoLayerLinearNetMatchTheHandFormula()
    {
        // R = sum_i |w2_i| sum_j |w1_ij| (input ones)  =>  score(w1_ij) = |w2_i| |w1_ij|, score(w2_i) = |w2_i| sum_j |w1_ij|.
        var b = new GraphBuilder("lin2");
        var x = b.Input("x", DataType.Float, "N", 2);
        float[] w1 = [0.5f, -1f, 2f, 0.25f, -0.75f, 1.5f], w2 = [-2f, 0.5f, 1f];
        var h = b.Node("Gemm", [x, b.Initializer("w1", w1, 3, 2)], OnnxAttribute.Int("transB", 1));
        b.Output(b.Node("Gemm", [h, b.Initializer("w2", w2, 1, 3)], OnnxAttribute.Int("transB", 1)));
        var r = Score(b.Build());
        var l1 = r.Layers.Single(l => l.Weight == "w1");
        for (int i = 0; i < 3; i++)
        {
            var row = Math.Abs(w1[2 * i]) + Math.Abs(w1[2 * i + 1]);
            Assert.Equal(Math.Abs(w2[i]) * row, ScoreOf(r, "w2", i), 12);
            for (int j = 0; j < 2; j++) Assert.Equal(Math.Abs(w2[i]) * Math.Abs(w1[2 * i + j]), ScoreOf(r, "w1", 2 * i + j), 12);
        }
        Assert.Equal(Enumerable.Range(0, 3).Sum(i => Math.Abs(w2[i]) * (Math.Abs(w1[2 * i]) + Math.Abs(w1[2 * i + 1]))), r.R, 12);
        Assert.Equal(l1.ScoreTotal, r.R, 12);
    }

    private static double ScoreOf(SaliencyResult r, string weight, int index) => r.Scores[weight][index];

    [Fact]
    public void ScoresOfASmallConvNetMatchFiniteDifferencesOfROnOrt()
    {
        // R is multilinear in the weights of the linearized network, so a central difference in ORT
        // (float32, weights made positive, input ones) gives dR/dw exactly up to rounding.
        var b = new GraphBuilder("small");
        var x = b.Input("x", DataType.Float, 1, 2, 5, 5);
        var h = b.Node("Relu", [Conv(b, x, "c1", 1, 3, 2, 3, pad: 1)]);
        h = Conv(b, h, "c2", 2, 2, 3, 3, stride: 2);
        b.Output(b.Node("Flatten", [b.Node("GlobalAveragePool", [h])]));
        var m = b.Build();
        var r = Score(m);
        var positive = OnnxImporter.Parse(OnnxExporter.ToBytes(m));
        foreach (var v in positive.Graph.Initializers.ToList())
            new Rewriter(positive).SetInitializer(v, Tensor.FromFloats(v.Name, v.Initializer!.Dims, v.Initializer.ToFloatArray().Select(Math.Abs).ToArray()));
        var ones = new Dictionary<string, Tensor> { ["x"] = Tensor.FromFloats("x", [1, 2, 5, 5], Enumerable.Repeat(1f, 50).ToArray()) };
        double R(Model mm)
        {
            using var s = InferenceSession.FromModel(mm, new SessionSettings { Optimization = GraphOptimization.Disabled });
            return s.Run(ones)[0].ToDoubleArray().Sum();
        }
        Assert.Equal(R(positive), r.R, 1e-4 * r.R);
        foreach (var name in new[] { "c1.w", "c2.w" })
        {
            var v = positive.Graph.Find(name)!;
            var w = v.Initializer!.ToFloatArray();
            var scores = r.Scores[name];
            foreach (var i in new[] { 0, 7, w.Length / 2, w.Length - 1 })
            {
                var hstep = 0.5f * w[i];
                double At(float delta)
                {
                    var copy = OnnxImporter.Parse(OnnxExporter.ToBytes(positive));
                    var d = (float[])w.Clone(); d[i] += delta;
                    new Rewriter(copy).SetInitializer(copy.Graph.Find(name)!, Tensor.FromFloats(name, v.Initializer.Dims, d));
                    return R(copy);
                }
                var numeric = (At(hstep) - At(-hstep)) / (2 * hstep) * w[i];
                Assert.Equal(numeric, scores[i], 2e-4 * Math.Max(1, Math.Abs(numeric)));
            }
        }
    }

    /// <summary>Every score over their sum, in one array (layer after layer).</summary>
    private static double[] Normalized(SaliencyResult r)
    {
        var all = r.Layers.SelectMany(l => r.Scores[l.Weight]).ToArray();
        var sum = all.Sum();
        return all.Select(v => v / sum).ToArray();
    }

    private static Model DeepChain(int layers, float scale)
    {
        var b = new GraphBuilder("deep");
        Value h = b.Input("x", DataType.Float, 1, 8, 6, 6);
        for (int i = 0; i < layers; i++) h = b.Node("Relu", [Conv(b, h, $"c{i}", 100 + i, 8, 8, 3, pad: 1, bias: false)]);
        b.Output(h);
        var m = b.Build();
        var rw = new Rewriter(m);
        foreach (var v in m.Graph.Initializers.ToList())
            rw.SetInitializer(v, Tensor.FromFloats(v.Name, v.Initializer!.Dims,
                v.Initializer.ToFloatArray().Select(x => x * scale).ToArray()));
        return m;
    }

    [Fact]
    public void AFiftyLayerPlainNetLeavesFloat32UnscaledAndIsRescaledToTheSameRanking()
    {
        var m = DeepChain(50, 1);
        var r64 = Score(m);
        Assert.True(double.IsFinite(r64.R) && r64.R > float.MaxValue, $"R = {r64.R}");
        Assert.Empty(r64.Notes);
        Assert.All(r64.Layers, l => Assert.True(l.ConservationDeviation < 1e-9));
        var r32 = Score(m, precision: "float32");
        Assert.Contains(r32.Notes, n => n.Contains("unit mean row sum", StringComparison.Ordinal));
        var (a, b) = (Normalized(r64), Normalized(r32));
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 1e-4 * a.Max());
    }

    [Fact]
    public void ASixtyLayerNetPastFloat64KeepsTheReferenceRanking()
    {
        // The same chain twice: weights as drawn (R about 1e100, the float64 reference) and times 1e6 per layer
        // (R about 1e460: past float64). Scaling a layer multiplies every score by one factor, so the rankings agree.
        var reference = Score(DeepChain(60, 1));
        Assert.Empty(reference.Notes);
        var big = Score(DeepChain(60, 1e6f));
        Assert.True(double.IsFinite(big.R));
        Assert.Contains(big.Notes, n => n.Contains("unit mean row sum", StringComparison.Ordinal));
        var (a, b) = (Normalized(reference), Normalized(big));
        // Within float32 rounding of the scaled weights.
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 1e-6 * a[i]);
        // Iterative rounds on the rescaled net keep the same weights as on the reference.
        var masksA = Score(DeepChain(60, 1), iterations: 5, density: 0.2).Masks;
        var masksB = Score(DeepChain(60, 1e6f), iterations: 5, density: 0.2).Masks;
        Assert.All(masksA, kv => Assert.Equal(kv.Value, masksB[kv.Key]));
    }

    [Fact]
    public void IterativeSynFlowAvoidsTheLayerCollapseOfMagnitudePruning()
    {
        var vgg = OnnxImporter.Load(Path.Combine(Paths.TestModels, "digits", "vgg.onnx"));
        var magnitude = Score(vgg, "magnitude", density: 1e-3);
        Assert.True(magnitude.LayerCollapse);
        var synflow = Score(vgg, "synflow", iterations: 100, density: 1e-3);
        Assert.False(synflow.LayerCollapse, string.Join(", ", synflow.Layers.Select(l => $"{l.Layer}: {l.Kept}")));
        Assert.All(synflow.Layers, l => Assert.True(l.Kept > 0));
        foreach (var r in new[] { magnitude, synflow })
            Assert.InRange((double)r.Kept / r.Weights, 0.9e-3, 1.1e-3);
    }

    [Fact]
    public void LocalScopeGivesEveryLayerTheSameDensity()
    {
        var r = Score(BiasFreeReluNet(), iterations: 5, density: 0.25, scope: "local");
        Assert.All(r.Layers, l => Assert.InRange(l.Density, 0.2, 0.3));
    }

    [Fact]
    public void TrailingSoftmaxIsCutAndAnSeGateCountsAsOne()
    {
        Model Net(bool gate, bool softmax)
        {
            var b = new GraphBuilder("se");
            var x = b.Input("x", DataType.Float, "N", 4, 6, 6);
            var h = Conv(b, x, "c1", 1, 4, 4, 3, pad: 1);
            if (gate)
            {
                var s = b.Node("Sigmoid", [Conv(b, b.Node("GlobalAveragePool", [h]), "se", 9, 4, 4, 1)]);
                h = b.Node("Mul", [h, s]);
            }
            var y = b.Node("Flatten", [b.Node("GlobalAveragePool", [Conv(b, h, "c2", 2, 3, 4, 3)])]);
            b.Output(softmax ? b.Node("Softmax", [y]) : y);
            return b.Build();
        }
        var plain = Score(Net(false, false));
        foreach (var (g, sm) in new[] { (true, false), (false, true), (true, true) })
        {
            var r = Score(Net(g, sm));
            Assert.Equal(plain.R, r.R, 1e-9 * plain.R);
            foreach (var name in new[] { "c1.w", "c2.w" })
                Assert.Equal(plain.Layers.Single(l => l.Weight == name).ScoreTotal, r.Layers.Single(l => l.Weight == name).ScoreTotal, 1e-9 * plain.R);
            if (g) Assert.Equal(0, r.Layers.Single(l => l.Weight == "se.w").ScoreTotal);
        }
    }

    [Fact]
    public void SparsifyZeroesTheMaskedWeightsAndTheModelStillRuns()
    {
        var mlp = OnnxImporter.Load(Path.Combine(Paths.TestModels, "digits", "mlp.onnx"));
        var (after, runs) = Run(mlp, "sparsify{method=magnitude,density=0.25}");
        var weights = PrunableWeight.Find(after.Graph).Select(p => p.Weight.Initializer!.ToFloatArray()).ToList();
        long total = weights.Sum(w => w.Length), nonzero = weights.Sum(w => w.LongCount(v => v != 0));
        Assert.InRange((double)nonzero / total, 0.249, 0.251);
        Assert.Equal(total - nonzero, Counter(runs, Counters.Sparsify.WeightsZeroed));
        Assert.Equal(total - nonzero, ModelStats.Compute(after).ZeroParameterCount);
        Assert.Equal(Count(mlp, "Gemm"), Count(after, "Gemm"));
        var (syn, runs2) = Run(mlp, "sparsify{iterations=10,density=0.05}");
        Assert.False(runs2[0].Stats.Decisions.OfType<SparsifySummary>().Single().LayerCollapse);
        using var s = InferenceSession.FromModel(syn);
        Assert.NotNull(s);
    }
}

public class ThresholdTests
{
    [Fact]
    public void RadixSelectFindsTheKthSmallestIncludingTiesAndZeros()
    {
        var r = new Random(3);
        var v = Enumerable.Range(0, 5000).Select(i => i % 7 == 0 ? 0.0 : i % 11 == 0 ? 0.25 : r.NextDouble() * Math.Pow(10, r.Next(-30, 30))).ToArray();
        var sorted = v.Order().ToArray();
        foreach (var k in new long[] { 1, 2, 700, 715, 1000, 2500, 4999, 5000 })
            Assert.Equal(sorted[k - 1], Saliency.Threshold(v, k));
        Assert.Equal(double.NegativeInfinity, Saliency.Threshold(v, 0));
    }
}
