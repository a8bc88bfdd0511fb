// canonicalize, fold-bn, fuse-bias: golden text before/after (in the ONNX text syntax) and ORT
// equivalence of every rewrite, plus the cases each rule must leave alone.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class CanonicalizationTests
{
    private static string Print(Model m) => TextPrinter.Print(m);

    [Fact]
    public void CanonicalizeRemovesNoOpsFoldsConstantsAndDeadCode()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,4] x) => (float[N,4] y, float[N,4] z)
               <float[4] a = {1,2,3,4}, float[4] b = {0.5,0.5,0.5,0.5}, float[4] unused = {9,9,9,9}>
            {
               i1 = Identity (x)
               d1 = Dropout (i1)
               c1 = Cast <to: int = 1> (d1)
               k = Constant <value: tensor = float[4] {1,1,1,1}> ()
               s = Add (a, b)
               s2 = Mul (s, k)
               y = Add (c1, s2)
               dead = Relu (x)
               z = Identity (y)
            }
            """);
        var (after, runs) = Run(m, "canonicalize");
        Golden.Assert("passes/canonicalize.txt", Print(after));
        Assert.Equal(0, Count(after, "Identity") - 1); // z = Identity(y) stays: an output may not alias another output
        Assert.Equal(0, Count(after, "Relu"));
        Assert.Equal(1, Counter(runs, Counters.Canonicalize.Converged));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void IdentityActivationsAreNoOps()
    {
        // PRelu with slope 1, LeakyRelu with alpha 1 and an unbounded Clip compute y = x; a PRelu with
        // slope 0.5 or a bounded Clip do not.
        var b = new GraphBuilder("acts");
        var x = b.Input("x", DataType.Float, "N", 3, 4, 4);
        var h = b.Node("PRelu", [x, b.Initializer("one", [1f, 1f, 1f], 3, 1, 1)]);
        h = b.Node("LeakyRelu", [h], OnnxAttribute.Float("alpha", 1f));
        h = b.Node("Clip", [h]);
        h = b.Node("PRelu", [h, b.Initializer("half", [0.5f])]);
        b.Output(b.Node("Clip", [h, b.Initializer("lo", [0f]), null]));
        var m = b.Build();
        var (after, runs) = Run(m, "canonicalize");
        Assert.Equal(3, Counter(runs, Counters.Canonicalize.NoOpsRemoved));
        Assert.Equal(["PRelu", "Clip"], after.Graph.Nodes.Select(n => n.OpType).ToArray());
        AssertEquivalent(m, after);
    }

    [Fact]
    public void CanonicalizeKeepsAnOutputThatAliasesAnInput()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[2] x) => (float[2] y) { y = Identity (x) }
            """);
        var (after, _) = Run(m, "canonicalize");
        Assert.Equal(1, Count(after, "Identity"));
        Assert.Equal("y", after.Graph.Outputs[0].Name);
    }

    [Fact]
    public void DropoutWithAUsedMaskStays()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[2] x) => (float[2] y, bool[2] mask) { y, mask = Dropout (x) }
            """);
        Assert.Equal(1, Count(Run(m, "canonicalize").After, "Dropout"));
    }

    private static Model ConvBn(string producer, int group = 1)
    {
        var b = new GraphBuilder("convbn");
        var x = b.Input("x", DataType.Float, "N", 4, 6, 6);
        Value h = producer switch
        {
            "Conv" => Conv(b, x, "c", 1, 8, 4 / group, 3, pad: 1, group: group),
            "ConvTranspose" => b.Node("ConvTranspose", [x, W(b, "ct.w", 2, 4, 8 / group, 3, 3), W(b, "ct.b", 3, 8)],
                OnnxAttribute.IntList("strides", 2, 2), OnnxAttribute.IntList("pads", 1, 1, 1, 1), OnnxAttribute.Int("group", group)),
            _ => throw new ArgumentException(producer),
        };
        var var_ = b.Initializer("bn.var", Rand(5, 8).Select(v => 0.3f + Math.Abs(v)).ToArray(), 8);
        b.Output(b.Node("BatchNormalization", [h, W(b, "bn.g", 6, 8), W(b, "bn.b", 7, 8), W(b, "bn.m", 8, 8), var_], OnnxAttribute.Float("epsilon", 1e-3f)));
        return b.Build();
    }

    [Theory]
    [InlineData("Conv", 1)]
    [InlineData("Conv", 2)]
    [InlineData("ConvTranspose", 1)]
    [InlineData("ConvTranspose", 2)]
    public void FoldBnIntoProducerIsExact(string producer, int group)
    {
        var m = ConvBn(producer, group);
        var (after, runs) = Run(m, "fold-bn");
        Assert.Equal(0, Count(after, "BatchNormalization"));
        Assert.Equal(1, Counter(runs, Counters.FoldBatchNorm.Into(producer)));
        Assert.Equal("batchnormalization0", after.Graph.Outputs[0].Name); // the output keeps its name
        AssertEquivalent(m, after);
    }

    [Fact]
    public void FoldBnGolden() => Golden.Assert("passes/fold-bn-conv.txt", Print(Run(ConvBn("Conv"), "fold-bn").After));

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void FoldBnIntoGemmIsExact(int transB)
    {
        var b = new GraphBuilder("gemmbn");
        var x = b.Input("x", DataType.Float, "N", 5);
        var g = b.Node("Gemm", [x, transB == 1 ? W(b, "w", 1, 3, 5) : W(b, "w", 1, 5, 3), W(b, "c", 2, 3)],
            OnnxAttribute.Int("transB", transB), OnnxAttribute.Float("alpha", 0.7f), OnnxAttribute.Float("beta", 1.3f));
        var var_ = b.Initializer("v", [0.5f, 1.5f, 2f], 3);
        b.Output(b.Node("BatchNormalization", [g, W(b, "s", 3, 3), W(b, "bb", 4, 3), W(b, "mu", 5, 3), var_]));
        var m = b.Build();
        var (after, _) = Run(m, "fold-bn");
        Assert.Equal(0, Count(after, "BatchNormalization"));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void BnReadByAnUnpaddedConvFoldsForwardAndAStandaloneBnBecomesMulAdd()
    {
        var b = new GraphBuilder("bnnext");
        var x = b.Input("x", DataType.Float, "N", 3, 5, 5);
        var v1 = b.Initializer("v1", [0.5f, 1f, 2f], 3);
        var bn1 = b.Node("BatchNormalization", [x, W(b, "g1", 1, 3), W(b, "b1", 2, 3), W(b, "m1", 3, 3), v1]);
        var c = Conv(b, bn1, "c", 4, 4, 3, 3, pad: 0);
        var v2 = b.Initializer("v2", [0.5f, 1f, 2f, 3f], 4);
        var r = b.Node("Relu", [c]);
        b.Output(b.Node("BatchNormalization", [r, W(b, "g2", 5, 4), W(b, "b2", 6, 4), W(b, "m2", 7, 4), v2]));
        var m = b.Build();
        var (after, runs) = Run(m, "fold-bn");
        Assert.Equal(0, Count(after, "BatchNormalization"));
        Assert.Equal(1, Counter(runs, Counters.FoldBatchNorm.IntoNextConv));
        Assert.Equal(1, Counter(runs, Counters.FoldBatchNorm.StandaloneToMulAdd));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void BnAfterAPaddedConsumerIsNotFoldedForward()
    {
        var b = new GraphBuilder("bnpad");
        var x = b.Input("x", DataType.Float, "N", 3, 5, 5);
        var v1 = b.Initializer("v1", [0.5f, 1f, 2f], 3);
        var bn1 = b.Node("BatchNormalization", [x, W(b, "g1", 1, 3), W(b, "b1", 2, 3), W(b, "m1", 3, 3), v1]);
        b.Output(Conv(b, bn1, "c", 4, 4, 3, 3, pad: 1));
        var m = b.Build();
        var (after, runs) = Run(m, "fold-bn");
        Assert.Equal(0, Counter(runs, Counters.FoldBatchNorm.IntoNextConv));
        Assert.Equal(1, Counter(runs, Counters.FoldBatchNorm.StandaloneToMulAdd));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void FuseBiasFoldsPerChannelAddsAndMatMulAdd()
    {
        var b = new GraphBuilder("bias");
        var x = b.Input("x", DataType.Float, "N", 2, 4, 4);
        var c = Conv(b, x, "c", 1, 3, 2, 1, bias: false);
        var a = b.Node("Add", [c, W(b, "cb", 2, 1, 3, 1, 1)]);
        var f = b.Node("Flatten", [a]);
        var mm = b.Node("MatMul", [f, W(b, "mw", 3, 48, 5)]);
        b.Output(b.Node("Add", [W(b, "mb", 4, 5), mm]));
        var m = b.Build();
        var (after, runs) = Run(m, "fuse-bias");
        Assert.Equal(0, Count(after, "Add"));
        Assert.Equal(1, Count(after, "Gemm"));
        Assert.Equal(2, Counter(runs, Counters.FuseBias.Into("Conv")) + Counter(runs, Counters.FuseBias.Into("MatMul")));
        Golden.Assert("passes/fuse-bias.txt", Print(after));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void FuseBiasLeavesANonPerChannelAddAlone()
    {
        var b = new GraphBuilder("nobias");
        var x = b.Input("x", DataType.Float, "N", 2, 3, 3);
        var c = Conv(b, x, "c", 1, 2, 2, 1);
        b.Output(b.Node("Add", [c, W(b, "map", 2, 2, 3, 3)]));
        var (after, _) = Run(b.Build(), "fuse-bias");
        Assert.Equal(1, Count(after, "Add"));
    }
}
