// Cross-layer equalization: exact in ORT on every pattern it accepts (conv -> depthwise -> conv with ReLU,
// Gemm/MatMul chains, PRelu and pooling between, GAP + Flatten into a Gemm), the fixed point it reaches
// (both ranges of a channel equal), the per-tensor int8 weight SQNR it buys on badly scaled channels, and the
// reasons for what it refuses (Clip, Sigmoid, residual readers, grouped convs).
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class EqualizeTests
{
    /// <summary>conv -> relu -> depthwise -> relu -> conv, the first conv's channels scaled 0.01 .. 100 (as BN
    /// folding leaves them in mobile nets).</summary>
    private static Model MobileBlock(string act = "Relu")
    {
        var b = new GraphBuilder("block");
        var x = b.Input("x", DataType.Float, "N", 4, 8, 8);
        var w1 = Rand(1, 16 * 4 * 3 * 3);
        for (int i = 0; i < w1.Length; i++) w1[i] *= (float)Math.Pow(10, i / 36 % 5 - 2);
        var y = b.Node("Conv", [x, b.Initializer("c1.w", w1, 16, 4, 3, 3), W(b, "c1.b", 2, 16)],
            OnnxAttribute.IntList("pads", 1, 1, 1, 1));
        y = b.Node(act, [y]);
        y = Conv(b, y, "dw", 3, 16, 1, 3, pad: 1, group: 16);
        y = b.Node(act, [y]);
        y = Conv(b, y, "c2", 5, 8, 16, 1);
        b.Output(y);
        return b.Build();
    }

    private static EqualizedPair[] Pairs(List<PassRun> runs) =>
        runs.SelectMany(r => r.Stats.Decisions).OfType<EqualizedPair>().ToArray();

    [Fact]
    public void AMobileBlockIsEqualizedExactlyAndItsPerTensorWeightsGainPrecision()
    {
        var m = MobileBlock();
        var (after, runs) = Run(m, "equalize");
        AssertEquivalent(m, after);
        var pairs = Pairs(runs).Where(p => p.Decision == "equalized").ToList();
        Assert.Equal(2, pairs.Count);
        // The first conv's channels spanned four decades: one int8 grid for all of them now loses far less.
        var first = pairs.Single(p => p.First == m.Graph.Nodes[0].Name);
        Assert.True(first.FirstSqnrDbAfter > first.FirstSqnrDbBefore + 10,
            $"{first.FirstSqnrDbBefore:F1} -> {first.FirstSqnrDbAfter:F1} dB");
        Assert.Equal(2, Counter(runs, Counters.Equalize.PairsEqualized));
    }

    [Fact]
    public void AtTheFixedPointEachChannelsTwoRangesAreEqual()
    {
        var b = new GraphBuilder("pair");
        var x = b.Input("x", DataType.Float, "N", 6);
        var w1 = Rand(7, 6 * 10);
        for (int i = 0; i < w1.Length; i++) w1[i] *= i % 10 + 1; // column j of [6, 10] times j + 1
        var h = b.Node("Gemm", [x, b.Initializer("w1", w1, 6, 10), W(b, "b1", 8, 10)]);
        h = b.Node("Relu", [h]);
        var y = b.Node("Gemm", [h, W(b, "w2", 9, 10, 3), W(b, "b2", 10, 3)]);
        b.Output(y);
        var m = b.Build();
        var (after, _) = Run(m, "equalize");
        AssertEquivalent(m, after);
        var g = after.Graph.Nodes.Where(n => n.OpType == "Gemm").ToArray();
        var a = Rewriter.ConstantOf(g[0].Input(1))!.ToFloatArray();
        var c = Rewriter.ConstantOf(g[1].Input(1))!.ToFloatArray();
        for (int i = 0; i < 10; i++)
        {
            var r1 = Enumerable.Range(0, 6).Max(k => Math.Abs(a[k * 10 + i]));
            var r2 = Enumerable.Range(0, 3).Max(k => Math.Abs(c[i * 3 + k]));
            Assert.Equal(r1, r2, 1e-4 * r1);
        }
    }

    [Theory]
    [InlineData("matmul-leakyrelu")]
    [InlineData("prelu-maxpool")]
    [InlineData("gap-flatten-gemm")]
    [InlineData("no-activation")]
    public void EveryAcceptedPatternIsExactInOrt(string pattern)
    {
        var b = new GraphBuilder(pattern);
        Value y;
        if (pattern == "matmul-leakyrelu")
        {
            var x = b.Input("x", DataType.Float, "N", 5, 12);
            y = b.Node("MatMul", [x, W(b, "w1", 1, 12, 24)]);
            y = b.Node("LeakyRelu", [y], OnnxAttribute.Float("alpha", 0.1f));
            y = b.Node("MatMul", [y, W(b, "w2", 2, 24, 6)]);
        }
        else
        {
            var x = b.Input("x", DataType.Float, "N", 3, 8, 8);
            y = Conv(b, x, "c1", 1, 8, 3, 3, pad: 1);
            if (pattern == "prelu-maxpool")
            {
                y = b.Node("PRelu", [y, W(b, "slope", 3, 8, 1, 1)]);
                y = b.Node("MaxPool", [y], OnnxAttribute.IntList("kernel_shape", 2, 2), OnnxAttribute.IntList("strides", 2, 2));
                y = Conv(b, y, "c2", 4, 6, 8, 3);
            }
            else if (pattern == "gap-flatten-gemm")
            {
                y = b.Node("Relu", [y]);
                y = b.Node("GlobalAveragePool", [y]);
                y = b.Node("Flatten", [y], OnnxAttribute.Int("axis", 1));
                y = b.Node("Gemm", [y, W(b, "fc", 5, 5, 8), W(b, "fcb", 6, 5)], OnnxAttribute.Int("transB", 1));
            }
            else y = Conv(b, y, "c2", 4, 6, 8, 1);
        }
        b.Output(y);
        var m = b.Build();
        var (after, runs) = Run(m, "equalize");
        Assert.Single(Pairs(runs), p => p.Decision == "equalized");
        AssertEquivalent(m, after);
    }

    [Theory]
    [InlineData("Clip", "Clip (ReLU6) between them")]
    [InlineData("Sigmoid", "Sigmoid between them is not positively homogeneous")]
    [InlineData("residual", "has 2 readers")]
    [InlineData("grouped", "grouped conv (group 2)")]
    public void WhatCannotBeEqualizedExactlyIsRefusedWithTheReason(string between, string reason)
    {
        var b = new GraphBuilder("refused");
        var x = b.Input("x", DataType.Float, "N", 8, 6, 6);
        var y = Conv(b, x, "c1", 1, 8, 8, 3, pad: 1);
        Value z;
        switch (between)
        {
            case "Clip":
                z = b.Node("Clip", [y, b.Initializer("lo", [0f]), b.Initializer("hi", [6f])]);
                z = Conv(b, z, "c2", 2, 8, 8, 1);
                break;
            case "Sigmoid":
                z = Conv(b, b.Node("Sigmoid", [y]), "c2", 2, 8, 8, 1);
                break;
            case "residual":
                z = b.Node("Add", [Conv(b, b.Node("Relu", [y]), "c2", 2, 8, 8, 1), y]);
                break;
            default:
                z = Conv(b, b.Node("Relu", [y]), "c2", 2, 8, 4, 1, group: 2);
                break;
        }
        b.Output(z);
        var m = b.Build();
        var (after, runs) = Run(m, "equalize");
        Assert.Contains(Pairs(runs), p => p.Decision == "refused" && p.Reason!.Contains(reason, StringComparison.Ordinal));
        Assert.DoesNotContain(Pairs(runs), p => p.Decision == "equalized");
        Assert.Contains(reason, PassRegistry.Get("equalize").WhyNoChange(m, PassRegistry.Get("equalize").Defaults()));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void AbsorbingHighBiasesShrinksTheReluRangeAndKeepsTheOutputsOnTheCalibrationSamples()
    {
        var b = new GraphBuilder("high-bias");
        var x = b.Input("x", DataType.Float, "N", 6);
        var bias = Enumerable.Range(0, 10).Select(i => 4 + 0.2f * i).ToArray();
        var h = b.Node("Gemm", [x, W(b, "w1", 1, 6, 10), b.Initializer("b1", bias, 10)]);
        h = b.Node("Relu", [h]);
        var y = b.Node("Gemm", [h, W(b, "w2", 2, 10, 3), W(b, "b2", 3, 3)]);
        b.Output(y);
        var m = b.Build();
        var (after, runs) = Run(m, "equalize{absorb-bias=true}", CalibrationSource.FromRandom(64, 5));
        var pair = Assert.Single(Pairs(runs));
        Assert.Equal(10, pair.AbsorbedChannels);
        Assert.True(pair.AbsorbedRangeShare > 0.3, $"range share {pair.AbsorbedRangeShare}");
        Assert.Equal(10, Counter(runs, Counters.Equalize.ChannelsAbsorbed));
        // Every first-layer bias came down by the channel's smallest output (against equalize alone); the model
        // answers the same on the calibration samples (exact there, up to float rounding).
        var b1 = Rewriter.ConstantOf(after.Graph.Nodes.First(n => n.OpType == "Gemm").Input(2))!.ToFloatArray();
        var settings = new SessionSettings { Optimization = GraphOptimization.Disabled };
        using var s0 = InferenceSession.FromModel(m, settings);
        using var s1 = InferenceSession.FromModel(after, settings);
        Assert.True(Validator.Compare(s0, s1, DataSet.Random(s0.Inputs, 64, 5)).Passed);
        var eq = PassRegistry.Get("equalize");
        Assert.False(eq.IsExact(new PassOptions(eq, [new("absorb-bias", "true")])));
        var (plain, _) = Run(m, "equalize");
        var b0 = Rewriter.ConstantOf(plain.Graph.Nodes.First(n => n.OpType == "Gemm").Input(2))!.ToFloatArray();
        for (int i = 0; i < 10; i++) Assert.True(b1[i] < 0.7 * b0[i], $"channel {i}: bias {b0[i]} -> {b1[i]}");
    }

    [Fact]
    public void BalancingActivationsIsExactAndEvensOutTheChannelsBetweenTheLayers()
    {
        var m = MobileBlock();
        var calib = CalibrationSource.FromRandom(32, 5);
        var (after, runs) = Run(m, "equalize{ranges=activations}", calib);
        // Exact up to float rounding (the channels span 10^4, so the absolute error of the largest ones shows).
        var settings = new SessionSettings { Optimization = GraphOptimization.Disabled };
        using (var s0 = InferenceSession.FromModel(m, settings))
        using (var s1 = InferenceSession.FromModel(after, settings))
        {
            var sqnr = Validator.Compare(s0, s1, DataSet.Random(s0.Inputs, 8, 11)).Outputs.Single().SqnrDb;
            Assert.True(sqnr > 100, $"SQNR {sqnr:F1} dB");
        }
        Assert.Equal(2, Pairs(runs).Count(p => p.Decision == "equalized"));
        // The spread of per-channel ranges at the first Relu's output (what the depthwise conv reads): 10^4 before.
        double Spread(Model model)
        {
            var relu = model.Graph.Nodes.First(n => n.OpType == "Relu").Output().Name;
            var stats = new TensorStatistics(relu);
            calib.Stream(model, [relu], (_, outs) => stats.Add(outs[0]));
            var r = stats.Channels.Select(c => Math.Max(Math.Abs(c.Min), c.Max)).Where(v => v > 0).ToList();
            return r.Max() / r.Min();
        }
        var (before, balanced) = (Spread(m), Spread(after));
        Assert.True(balanced < before / 20, $"channel range spread {before:G3} -> {balanced:G3}");
    }
}
