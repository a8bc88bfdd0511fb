// fold-conv: every exact fold matches the original in ORT (stride 2, dilation 2, depthwise, grouped,
// residual Dirac, the 1x1-first border bias map, Gemm->Gemm, MatMul->MatMul), and each refusal
// (padding, multiplicative gate, fan-out, cost) leaves the model unchanged.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class FoldConvTests
{
    private static Model Chain(Func<GraphBuilder, Value, Value> body, long c = 4, long hw = 9)
    {
        var b = new GraphBuilder("chain");
        var x = b.Input("x", DataType.Float, "N", c, hw, hw);
        b.Output(body(b, x));
        return b.Build();
    }

    public static TheoryData<string> ExactCases() => new()
    {
        "stride2", "dilation2", "depthwise", "grouped", "first1x1-padded-bias-map", "unpadded-3x3-3x3", "three-in-a-row",
    };

    private static Model Case(string name) => name switch
    {
        // conv2 unpadded: exact for any conv1
        "stride2" => Chain((b, x) => Conv(b, Conv(b, x, "c1", 1, 6, 4, 3, stride: 2, pad: 1), "c2", 2, 5, 6, 3, stride: 2)),
        "dilation2" => Chain((b, x) => Conv(b, Conv(b, x, "c1", 1, 6, 4, 3, dil: 2, pad: 2), "c2", 2, 5, 6, 3, dil: 2), hw: 13),
        "depthwise" => Chain((b, x) => Conv(b, Conv(b, x, "c1", 1, 4, 1, 3, pad: 1, group: 4), "c2", 2, 4, 1, 3, group: 4)),
        "grouped" => Chain((b, x) => Conv(b, Conv(b, x, "c1", 1, 6, 2, 3, pad: 1, group: 2), "c2", 2, 4, 3, 1, group: 2)),
        "unpadded-3x3-3x3" => Chain((b, x) => Conv(b, Conv(b, x, "c1", 1, 6, 4, 3), "c2", 2, 5, 6, 3)),
        // conv1 1x1 unpadded, conv2 padded: exact with the border bias map
        "first1x1-padded-bias-map" => Chain((b, x) => Conv(b, Conv(b, x, "c1", 1, 6, 4, 1), "c2", 2, 5, 6, 3, pad: 1)),
        "three-in-a-row" => Chain((b, x) => Conv(b, Conv(b, Conv(b, x, "c1", 1, 8, 4, 1), "c2", 2, 8, 1, 3, stride: 2, group: 8), "c3", 3, 4, 8, 1)),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(ExactCases))]
    public void ExactFoldsMatchTheOriginalInOrt(string name)
    {
        var m = Case(name);
        var (after, runs) = Run(m, "fold-conv{objective=depth}");
        Assert.Equal(1, Count(after, "Conv"));
        Assert.Equal("conv" + (name == "three-in-a-row" ? "2" : "1"), after.Graph.Outputs[0].Name);
        if (name.Contains("bias-map")) Assert.Equal(1, Counter(runs, Counters.FoldConv.ConvConvBiasMap));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void LatencyObjectiveTimesTheFoldInOrtAndRecordsBothTimes()
    {
        var m = Chain((b, x) => Conv(b, Conv(b, x, "c1", 1, 16, 8, 1), "c2", 2, 8, 16, 1), c: 8, hw: 32);
        var (after, runs) = Run(m, "fold-conv{objective=latency}");
        var timed = runs[0].Stats.Decisions.OfType<FoldTiming>().Single();
        var (before, afterMs) = (timed.BeforeMs, timed.AfterMs);
        Assert.True(before > 0 && afterMs > 0);
        Assert.Equal(afterMs < before ? 1 : 2, Count(after, "Conv"));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void ResidualDiracGolden() => Golden.Assert("passes/fold-conv-dirac.txt",
        TextPrinter.Print(Run(Chain((b, x) => b.Node("Add", [Conv(b, x, "c", 1, 4, 4, 3, pad: 1), x]), hw: 5), "fold-conv").After, TextOptions.Full));

    [Fact]
    public void DepthwisePairStaysDepthwise()
    {
        var (after, _) = Run(Case("depthwise"), "fold-conv{objective=depth}");
        var conv = after.Graph.Nodes.Single(n => n.OpType == "Conv");
        Assert.Equal(4, conv.GetInt("group", 1));
        Assert.Equal(new long[] { 5, 5 }, conv.GetInts("kernel_shape"));
    }

    [Fact]
    public void BiasMapFoldGolden() => Golden.Assert("passes/fold-conv-bias-map.txt",
        TextPrinter.Print(Run(Case("first1x1-padded-bias-map"), "fold-conv{objective=depth}").After));

    [Fact]
    public void InvertedResidualBlockFoldsToOneConvPlusDirac()
    {
        // MobileNetV2 block with its activations linearized: x + project(dw(expand(x))) -> one dense 3x3 conv.
        var m = Chain((b, x) =>
        {
            var e = Conv(b, x, "expand", 1, 24, 4, 1);
            var d = Conv(b, e, "dw", 2, 24, 1, 3, pad: 1, group: 24);
            var p = Conv(b, d, "project", 3, 4, 24, 1);
            return b.Node("Add", [x, p]);
        });
        var (after, runs) = Run(m, "fold-conv");
        Assert.Equal(1, Count(after, "Conv"));
        Assert.Equal(1, Counter(runs, Counters.FoldConv.Residual));
        var report = AssertEquivalent(m, after);
        Assert.True(report.Outputs[0].MaxAbsError < 1e-5, $"max abs error {report.Outputs[0].MaxAbsError}");
    }

    [Fact]
    public void ResidualDiracIsExact()
    {
        var m = Chain((b, x) => b.Node("Add", [Conv(b, x, "c", 1, 4, 4, 3, pad: 1), x]));
        var (after, runs) = Run(m, "fold-conv");
        Assert.Equal(0, Count(after, "Add"));
        Assert.Equal(1, Counter(runs, Counters.FoldConv.Residual));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void GemmGemmAndMatMulMatMulFold()
    {
        var b = new GraphBuilder("gg");
        var x = b.Input("x", DataType.Float, "N", 6);
        var g1 = b.Node("Gemm", [x, W(b, "w1", 1, 4, 6), W(b, "c1", 2, 4)], OnnxAttribute.Int("transB", 1), OnnxAttribute.Float("alpha", 0.5f));
        var g2 = b.Node("Gemm", [g1, W(b, "w2", 3, 4, 3), W(b, "c2", 4, 3)], OnnxAttribute.Float("beta", 2f));
        var m1 = b.Node("MatMul", [g2, W(b, "m1", 5, 3, 3)]);
        b.Output(b.Node("MatMul", [m1, W(b, "m2", 6, 3, 2)]));
        var m = b.Build();
        var (after, runs) = Run(m, "fold-conv");
        Assert.Equal(1, Counter(runs, Counters.FoldConv.GemmGemm));
        Assert.Equal(1, Counter(runs, Counters.FoldConv.MatMulMatMul));
        AssertEquivalent(m, after);
    }

    [Theory]
    [InlineData("Gemm")]
    [InlineData("MatMul")]
    public void PairWhoseResultIsTheGraphOutputFoldsAndKeepsTheOutputName(string op)
    {
        // Regression: Gemm->Gemm checked CanReplace(y, y) and never folded when y was a graph output.
        var b = new GraphBuilder("out");
        var x = b.Input("x", DataType.Float, "N", 6);
        var h = b.Node(op, [x, W(b, "w1", 1, 6, 4)]);
        b.Output(b.Node(op, [h, W(b, "w2", 2, 4, 3)]));
        var m = b.Build();
        var name = m.Graph.Outputs[0].Name;
        var (after, runs) = Run(m, "fold-conv");
        Assert.Equal(1, Counter(runs, op == "Gemm" ? Counters.FoldConv.GemmGemm : Counters.FoldConv.MatMulMatMul));
        Assert.Equal(op, Assert.Single(after.Graph.Nodes).OpType);
        Assert.Equal(name, after.Graph.Outputs[0].Name);
        AssertEquivalent(m, after);
    }

    [Fact]
    public void RefusedMatMulPairLeavesNoNodeBehind()
    {
        // A bottleneck pair (6x2 then 2x6: 24 parameters) would grow to 6x6 (36): kept, and nothing is added.
        var b = new GraphBuilder("kept");
        var x = b.Input("x", DataType.Float, "N", 6);
        var h = b.Node("MatMul", [x, W(b, "w1", 1, 6, 2)]);
        b.Output(b.Node("MatMul", [h, W(b, "w2", 2, 2, 6)]));
        var m = b.Build();
        var (after, runs) = Run(m, "fold-conv");
        Assert.Equal(0, Counter(runs, Counters.FoldConv.MatMulMatMul));
        Assert.Equal(2, Count(after, "MatMul"));
        Assert.Equal(m.Graph.Nodes.Count, after.Graph.Nodes.Count);
        Assert.Equal(m.Graph.Initializers.Count, after.Graph.Initializers.Count);
    }

    [Fact]
    public void PaddedSecondConvIsRefusedUnlessBorderErrorIsAllowed()
    {
        var m = Chain((b, x) => Conv(b, Conv(b, x, "c1", 1, 6, 4, 3, pad: 1), "c2", 2, 5, 6, 3, pad: 1));
        var (kept, runs) = Run(m, "fold-conv{objective=depth}");
        Assert.Equal(2, Count(kept, "Conv"));
        Assert.Contains(runs[0].Stats.Decisions.OfType<FoldDecision>(), d => d.Reason?.Contains("wrong at the border") == true);
        var (approx, runs2) = Run(m, "fold-conv{objective=depth,allow-border-error=true}");
        Assert.Equal(1, Count(approx, "Conv"));
        var measured = runs2[0].Stats.Decisions.OfType<BorderError>().Single();
        Assert.True(measured.MaxAbsError > 1e-3);
    }

    [Fact]
    public void MultiplicativeGateStopsTheFold()
    {
        var m = Chain((b, x) =>
        {
            var h = Conv(b, x, "c1", 1, 4, 4, 1);
            var gate = b.Node("Mul", [h, b.Node("Sigmoid", [h])]);
            return Conv(b, gate, "c2", 2, 4, 4, 1);
        });
        var (after, _) = Run(m, "fold-conv{objective=depth}");
        Assert.Equal(2, Count(after, "Conv"));
    }

    [Fact]
    public void FanOutStopsTheFold()
    {
        var m = Chain((b, x) =>
        {
            var h = Conv(b, x, "c1", 1, 4, 4, 1);
            return b.Node("Add", [Conv(b, h, "c2", 2, 4, 4, 1), b.Node("Sigmoid", [h])]);
        });
        var (after, runs) = Run(m, "fold-conv{objective=depth}");
        Assert.Equal(2, Count(after, "Conv"));
        Assert.Equal(1, Counter(runs, Counters.FoldConv.Refused(FoldConv.Refusals.FanOut)));
    }

    [Fact]
    public void CostModelRefusesAFoldThatAddsMacs()
    {
        // ResNet basic block: 3x3 -> 3x3 grows MACs (18C^2 -> 25C^2 per pixel).
        var m = Chain((b, x) => Conv(b, Conv(b, x, "c1", 1, 8, 8, 3), "c2", 2, 8, 8, 3), c: 8, hw: 32);
        var (after, runs) = Run(m, "fold-conv");
        Assert.Equal(2, Count(after, "Conv"));
        Assert.Equal(1, Counter(runs, Counters.FoldConv.DoesNotPay));
        var (folded, _) = Run(m, "fold-conv{objective=depth}");
        Assert.Equal(1, Count(folded, "Conv"));
    }
}
