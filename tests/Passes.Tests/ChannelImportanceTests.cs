// Channel importance criteria (ChannelImportance): each ranks what it says it ranks. bn-scale by the
// BatchNorm |gamma| of the group; taylor against the exact removal damage of a net that is linear in the
// group's activations (where first-order Taylor is exact up to the random probes); synflow against the
// per-filter scores `score` reports; and the prune preset folds BatchNorm after pruning for bn-scale.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class ChannelImportanceTests
{
    [Fact]
    public void BnScaleRanksChannelsByGammaAndSaysWhenBatchNormIsGone()
    {
        var m = Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), "canonicalize").After;
        var d = DependencyGroups.Analyze(m);
        var imp = ChannelImportance.Compute("bn-scale", d, m);
        var checkedGroups = 0;
        foreach (var g in d.Groups.Where(g => g.Prunable))
        {
            var bn = g.Tied.Where(n => n.OpType == "BatchNormalization").Distinct().ToList();
            if (bn.Count != 1) continue;
            var gamma = Rewriter.ConstantOf(bn[0].Input(1))!.ToDoubleArray().Select(Math.Abs).ToArray();
            var mean = gamma.Average();
            for (int c = 0; c < g.Channels; c++) Assert.Equal(gamma[c] / mean, imp[g.Id][c], 9);
            checkedGroups++;
        }
        Assert.True(checkedGroups > 0);

        var folded = Run(m, "fold-bn").After;
        var notes = new List<string>();
        var fd = DependencyGroups.Analyze(folded);
        Assert.Equal(ChannelImportance.Compute("l2", fd, folded), ChannelImportance.Compute("bn-scale", fd, folded, null,
            notes));
        Assert.Contains(notes, n => n.Contains("no BatchNormalization left"));
    }

    [Fact]
    public void ThePrunePresetFoldsBatchNormAfterPruningForBnScale()
    {
        static string Passes(string criterion) =>
            string.Join(",", Presets.Prune.Build([new("criterion", criterion)]).Steps.Select(s => s.Pass.Name));
        Assert.Equal("canonicalize,prune,fold-bn", Passes("bn-scale"));
        Assert.Equal("canonicalize,fold-bn,prune", Passes("l1"));
    }

    [Fact]
    public void TaylorEstimatesTheOutputChangeOfRemovingEachChannel()
    {
        // x -> Gemm(8 -> 12) -> Gemm(12 -> 5): the output is linear in the hidden activations h, so removing
        // channel c changes the output by exactly h_c * W2[c, :], and its damage is sum_n h_c(n)^2 ||W2[c]||^2.
        var b = new GraphBuilder("linear");
        var x = b.Input("x", DataType.Float, "N", 8);
        var h = b.Node("Gemm", [x, W(b, "w1", 1, 8, 12), W(b, "b1", 2, 12)]);
        var w2 = Rand(3, 12 * 5);
        for (int i = 0; i < 5; i++) w2[4 * 5 + i] *= 6; // channel 4 matters most
        for (int i = 0; i < 5; i++) w2[7 * 5 + i] *= 0.05f; // channel 7 hardly
        b.Output(b.Node("Gemm", [h, b.Initializer("w2", w2, 12, 5)]));
        var m = b.Build();
        var calib = Calibration.CalibrationSource.FromRandom(128, 5);
        var d = DependencyGroups.Analyze(m);
        var g = d.Groups.Single(g => g.Prunable);
        var taylor = ChannelImportance.Compute("taylor", d, m, calib)[g.Id];

        var exact = new double[12];
        var w1 = Rewriter.ConstantOf(m.Graph.Find("w1"))!.ToDoubleArray();
        var b1 = Rewriter.ConstantOf(m.Graph.Find("b1"))!.ToDoubleArray();
        foreach (var batch in calib.DataFor(Data.IoInfo.InputsOf(m.Graph)).Batches(8))
        {
            var xs = batch.Inputs["x"].ToDoubleArray();
            for (int n = 0; n < xs.Length / 8; n++)
                for (int c = 0; c < 12; c++)
                {
                    var hc = b1[c];
                    for (int i = 0; i < 8; i++) hc += xs[n * 8 + i] * w1[i * 12 + c];
                    for (int o = 0; o < 5; o++) exact[c] += hc * hc * w2[c * 5 + o] * w2[c * 5 + o];
                }
        }
        var mean = exact.Average();
        for (int c = 0; c < 12; c++)
            Assert.InRange(taylor[c], exact[c] / mean * 0.75 - 0.02, exact[c] / mean * 1.25 + 0.02);
        Assert.Equal(4, Array.IndexOf(taylor, taylor.Max()));
        Assert.Equal(7, Array.IndexOf(taylor, taylor.Min()));
    }

    [Fact]
    public void AGroupedConsumerCountsOnlyTheWeightsThatReadTheChannel()
    {
        // a: Conv(4 -> 8); g: Conv(8 -> 6, group 2), weight [6, 4, 1, 1]: input channel c is read by the 3
        // outputs of group c / 4, at column c % 4.
        var b = new GraphBuilder("grouped");
        var x = b.Input("x", DataType.Float, "N", 4, 5, 5);
        var a = b.Node("Relu", [Conv(b, x, "a", 1, 8, 4, 1, bias: false)]);
        b.Output(Conv(b, a, "g", 2, 6, 4, 1, group: 2, bias: false));
        var m = b.Build();
        var d = DependencyGroups.Analyze(m);
        var group = d.Groups.Single(g => g.Prunable);
        var wa = Rewriter.ConstantOf(m.Graph.Find("a.w"))!.ToDoubleArray();
        var wg = Rewriter.ConstantOf(m.Graph.Find("g.w"))!.ToDoubleArray();
        var expected = new double[8];
        for (int c = 0; c < 8; c++)
        {
            for (int i = 0; i < 4; i++) expected[c] += Math.Abs(wa[c * 4 + i]);
            for (int o = c / 4 * 3; o < c / 4 * 3 + 3; o++) expected[c] += Math.Abs(wg[o * 4 + c % 4]);
        }
        var mean = expected.Average();
        var l1 = ChannelImportance.Compute("l1", d, m)[group.Id];
        for (int c = 0; c < 8; c++) Assert.Equal(expected[c] / mean, l1[c], 9);
    }

    [Fact]
    public void SynFlowSumsThePerWeightScoresOfEachChannel()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/mlp.onnx"));
        var d = DependencyGroups.Analyze(m);
        var imp = ChannelImportance.Compute("synflow", d, m);
        var scores = Saliency.Score(m, new SaliencyOptions { Iterations = 1, Density = 1 });
        var g = d.Groups.First(g => g.Prunable && g.Producers.Count == 1 && g.Consumers.Count == 1);
        var producer = scores.Layers.Single(l => l.Weight == g.Producers[0].Input(1)!.Name);
        // In a bias-free chain a channel's incoming and outgoing scores are equal (SynFlow's conservation), so
        // the group score is the producer's per-filter score; with biases it stays strongly correlated.
        var filters = producer.FilterScores;
        var mean = filters.Average();
        var corr = Correlation(filters.Select(f => f / mean).ToArray(), imp[g.Id]);
        Assert.True(corr > 0.9, $"correlation {corr}");
    }

    private static double Correlation(double[] a, double[] b)
    {
        double ma = a.Average(), mb = b.Average(), sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb);
        }
        return sab / Math.Sqrt(saa * sbb);
    }
}
