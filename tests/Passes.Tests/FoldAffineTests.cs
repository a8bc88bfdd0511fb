// fold-affine: constant per-channel scales and shifts next to linear ops folded into them, exactly in ORT (conv
// chains as PP-LCNetV3 exports them, Gemm/MatMul on the last axis), and what it must leave: a shift before a padded
// conv, a constant that varies along another axis or broadcasts the input up, a value with another reader.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class FoldAffineTests
{
    private static Value Const(GraphBuilder b, string name, int seed, params long[] dims) =>
        b.Initializer(name, Rand(seed, dims.Aggregate(1L, (x, y) => x * y)).Select(v => v + 1f).ToArray(), dims);

    [Fact]
    public void AConvChainLikePpLcNetsLearnableAffineBlocksFoldsAway()
    {
        var b = new GraphBuilder("lab");
        var x = b.Input("x", DataType.Float, "N", 4, 8, 8);
        var y = Conv(b, x, "c1", 1, 8, 4, 3, pad: 1);
        y = b.Node("Mul", [b.Initializer("a", [1.7f]), y]);          // scalar scale after the conv
        y = b.Node("Add", [y, b.Initializer("t", [0.3f])]);          // scalar shift after it
        y = b.Node("Relu", [y]);
        y = b.Node("Mul", [y, Const(b, "s2", 2, 8, 1, 1)]);          // per-channel scale before a padded depthwise
        y = Conv(b, y, "dw", 3, 8, 1, 3, pad: 1, group: 8);
        y = b.Node("Relu", [y]);
        y = b.Node("Mul", [y, Const(b, "s3", 4, 1, 8, 1, 1)]);       // scale and shift before an unpadded 1x1
        y = b.Node("Add", [y, Const(b, "t3", 5, 8, 1, 1)]);
        y = Conv(b, y, "pw", 6, 6, 8, 1, bias: false);
        y = b.Node("Mul", [y, Const(b, "s4", 7, 6, 1, 1)]);          // per-channel scale after a conv without bias
        b.Output(y);
        var m = b.Build();
        var (after, runs) = Run(m, "fold-affine");
        AssertEquivalent(m, after);
        Assert.Equal(0, Count(after, "Mul") + Count(after, "Add"));
        Assert.Equal(2, Counter(runs, Counters.FoldAffine.ScalesInto("Conv")));
        Assert.Equal(2, Counter(runs, Counters.FoldAffine.IntoNext(false, "Conv")));
        Assert.Equal(1, Counter(runs, Counters.FoldAffine.IntoNext(true, "Conv")));
    }

    [Fact]
    public void GemmAndMatMulFoldOnTheLastAxis()
    {
        var b = new GraphBuilder("fc");
        var x = b.Input("x", DataType.Float, "N", 6);
        var h = b.Node("Mul", [x, Const(b, "s0", 1, 6)]);
        h = b.Node("Add", [h, Const(b, "t0", 2, 1, 6)]);
        h = b.Node("Gemm", [h, W(b, "w1", 3, 5, 6), W(b, "b1", 4, 5)], OnnxAttribute.Int("transB", 1),
            OnnxAttribute.Float("alpha", 0.5f));
        h = b.Node("Mul", [h, Const(b, "s1", 5, 5)]);
        h = b.Node("Tanh", [h]);
        h = b.Node("MatMul", [h, W(b, "w2", 6, 5, 3)]);
        h = b.Node("Mul", [Const(b, "s2", 7, 3), h]);
        b.Output(h);
        var m = b.Build();
        var (after, _) = Run(m, "fold-affine");
        AssertEquivalent(m, after);
        Assert.Equal(0, Count(after, "Mul") + Count(after, "Add"));
    }

    [Fact]
    public void WhatIsNotAPerChannelAffineNextToALinearOpStays()
    {
        var b = new GraphBuilder("left");
        var x = b.Input("x", DataType.Float, "N", 4, 6, 6);
        var y = b.Node("Add", [x, Const(b, "t", 1, 4, 1, 1)]);           // shift before a padded conv
        y = Conv(b, y, "c1", 2, 4, 4, 3, pad: 1);
        var r = b.Node("Relu", [y]);                                       // y has two readers: not folded back
        var z = b.Node("Mul", [y, Const(b, "grid", 3, 1, 6, 6)]);         // varies over space
        z = b.Node("Add", [z, r]);
        z = b.Node("Mul", [z, Const(b, "up", 4, 2, 4, 1, 1)]);            // broadcasts the batch up
        z = Conv(b, z, "c2", 5, 4, 4, 1);
        b.Output(z);
        var m = b.Build();
        var (after, runs) = Run(m, "fold-affine");
        AssertEquivalent(m, after);
        Assert.Equal(Count(m, "Mul"), Count(after, "Mul"));
        Assert.Equal(Count(m, "Add"), Count(after, "Add"));
        var failures = runs.SelectMany(s => s.Stats.Rules).SelectMany(s => s.Failures.Keys).ToList();
        Assert.Contains(failures, f => f.Contains("padded Conv"));
        Assert.Contains(failures, f => f.Contains("not one per"));
    }

    [Fact]
    public void TheHalfOfAGeluBeforeAMatMulStaysSoTheGeluCanStillBeFused()
    {
        // x * (1 + Erf(x / sqrt 2)) * 0.5 -> MatMul: folding the 0.5 into the MatMul is exact but leaves a GELU
        // that neither ORT's fusion nor `fuse` recognizes.
        var b = new GraphBuilder("gelu");
        var x = b.Input("x", DataType.Float, "N", 6);
        var h = b.Node("MatMul", [x, W(b, "w1", 1, 6, 8)]);
        var e = b.Node("Erf", [b.Node("Div", [h, b.Initializer("r2", [MathF.Sqrt(2)])])]);
        var g = b.Node("Mul", [b.Node("Mul", [h, b.Node("Add", [e, b.Initializer("one", [1f])])]),
            b.Initializer("half", [0.5f])]);
        var y = b.Node("MatMul", [g, W(b, "w2", 2, 8, 3)]);
        y = b.Node("MatMul", [b.Node("Mul", [y, b.Initializer("s", [0.25f])]), W(b, "w3", 3, 3, 2)]);
        b.Output(y);
        var m = b.Build();
        var (after, runs) = Run(m, "fold-affine");
        AssertEquivalent(m, after);
        Assert.Equal(Count(m, "Mul") - 1, Count(after, "Mul"));    // the plain scale folds, the GELU's 0.5 stays
        Assert.Contains(after.Graph.Nodes, n => n.OpType == "Mul" && n.Inputs.Any(v => v.Name == "half"));
        var failures = runs.SelectMany(s => s.Stats.Rules).SelectMany(s => s.Failures.Keys).ToList();
        Assert.Contains(failures, f => f.Contains("completes a GELU"));
        var (fused, _) = Run(after, "upgrade-opset{version=20},fuse");
        Assert.Equal(1, Count(fused, "Gelu"));
    }
}
