// canonicalize's partial-shape rules: shape arithmetic over a symbolic batch resolved at optimization time, exact in
// ORT at several batch sizes, and what must stay computed (two unknown entries, allowzero, a dim that is not the
// input's own).
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class PartialShapeRuleTests
{
    private static Value I64(GraphBuilder b, string name, params long[] v) =>
        b.Initializer(name, v, v.Length);

    private static Value Scalar(GraphBuilder b, string name, long v) =>
        b.Initializer(Tensor.FromInt64s(name, [], [v]));

    // Unsqueeze(Gather(Shape(x), i), [0]): one entry of x's shape as a 1-element vector, as torch traces x.shape[i].
    private static Value DimOf(GraphBuilder b, Value x, int i, string tag) =>
        b.Node("Unsqueeze", [b.Node("Gather", [b.Node("Shape", [x]), Scalar(b, "i" + tag, i)]), I64(b, "ax" + tag, 0)]);

    [Fact]
    public void ATracedMultiHeadReshapeGetsAConstantTargetAndItsShapeChainGoes()
    {
        // x: [N, 5, 12] -> reshape(x.shape[0], x.shape[1], 3, x.shape[2] // 3) -> [N, 5, 3, 4], then back. The
        // static dims fold to constants first (5, 4); a symbolic dim taken from the input at its own position, and
        // a dim of the shape the second Reshape reads, are copied (0), as fix-dims writes them.
        var b = new GraphBuilder("heads");
        var x = b.Input("x", DataType.Float, "N", 5, 12);
        var width = b.Node("Div", [b.Node("Gather", [b.Node("Shape", [x]), Scalar(b, "i2", 2)]), Scalar(b, "three", 3)]);
        var target = b.Node("Concat", [DimOf(b, x, 0, "0"), DimOf(b, x, 1, "1"), I64(b, "h", 3),
            b.Node("Unsqueeze", [width, I64(b, "axw", 0)])], OnnxAttribute.Int("axis", 0));
        var y = b.Node("Reshape", [b.Node("Relu", [x]), target]);
        // back to [N, 5, 12] through Slice(Shape(y), 0, 2) ++ [-1]
        var back = b.Node("Concat", [b.Node("Slice", [b.Node("Shape", [y]), I64(b, "s", 0), I64(b, "e", 2)]),
            I64(b, "m1", -1)], OnnxAttribute.Int("axis", 0));
        b.Output(b.Node("Reshape", [y, back]));
        var m = b.Build();
        var (after, runs) = Run(m, "canonicalize");
        foreach (var batch in new long[] { 1, 3 }) AssertEquivalent(m, after, batch: batch);
        var reshapes = after.Graph.Nodes.Where(n => n.OpType == "Reshape").ToList();
        Assert.Equal([[0, 5, 3, 4], [0, 0, -1]], reshapes.Select(r => Rewriter.ConstantOf(r.Input(1))!.ToInt64Array()));
        Assert.Equal(0, Count(after, "Shape") + Count(after, "Gather") + Count(after, "Concat") + Count(after, "Div"));
        Assert.Equal(2, runs.Sum(r => r.Stats.Rules.Where(s => s.Rule == "reshape-target-to-constant").Sum(s => s.Applied)));
        Assert.True(Counter(runs, Counters.Canonicalize.ShapesResolved) >= 3); // two Reshapes, the width's Gather
    }

    [Fact]
    public void ADimMovedElsewhereBecomesTheOneInferredEntry()
    {
        // x: [N, 6] -> [6, N]: N is not x's dim at position 1, but the only unknown entry, so -1.
        var b = new GraphBuilder("moved");
        var x = b.Input("x", DataType.Float, "N", 6);
        var target = b.Node("Concat", [I64(b, "six", 6), DimOf(b, x, 0, "0")], OnnxAttribute.Int("axis", 0));
        b.Output(b.Node("Reshape", [x, target]));
        var m = b.Build();
        var (after, _) = Run(m, "canonicalize");
        foreach (var batch in new long[] { 1, 4 }) AssertEquivalent(m, after, batch: batch);
        var r = after.Graph.Nodes.Single(n => n.OpType == "Reshape");
        Assert.Equal([6, -1], Rewriter.ConstantOf(r.Input(1))!.ToInt64Array());
    }

    [Fact]
    public void WhatCannotBeResolvedStaysComputed()
    {
        var b = new GraphBuilder("left", opset: 14);
        var x = b.Input("x", DataType.Float, "N", "M");
        // [M, N] from [N, M]: two entries neither known nor copies of x's own dims.
        var swapped = b.Node("Concat", [DimOf(b, x, 1, "1"), DimOf(b, x, 0, "0")], OnnxAttribute.Int("axis", 0));
        var y = b.Node("Reshape", [x, swapped]);
        // allowzero = 1: a 0 would mean an empty dim, not a copy.
        var same = b.Node("Concat", [DimOf(b, y, 0, "a"), DimOf(b, y, 1, "b")], OnnxAttribute.Int("axis", 0));
        b.Output(b.Node("Reshape", [y, same], OnnxAttribute.Int("allowzero", 1)));
        var m = b.Build();
        var (after, runs) = Run(m, "canonicalize");
        AssertEquivalent(m, after);
        Assert.All(after.Graph.Nodes.Where(n => n.OpType == "Reshape"), r => Assert.Null(Rewriter.ConstantOf(r.Input(1))));
        var failures = runs.SelectMany(s => s.Stats.Rules).SelectMany(s => s.Failures.Keys).ToList();
        Assert.Contains(failures, f => f.Contains("more than one entry"));
        Assert.Contains(failures, f => f.Contains("allowzero"));
    }

    [Fact]
    public void ShapeVectorsFollowConstantsAndShapesOnly()
    {
        var b = new GraphBuilder("vectors", opset: 13);
        var x = b.Input("x", DataType.Float, "N", 5, 12);
        var k = b.Input("k", DataType.Int64, 1);
        var shape = b.Node("Shape", [x]);
        var sliced = b.Node("Slice", [shape, I64(b, "s", 1), I64(b, "e", 3)]);
        var moving = b.Node("Slice", [shape, k, I64(b, "e2", 3)]);       // a bound from an input: not followed
        var picked = b.Node("Gather", [shape, I64(b, "ix", -1, 0)]);
        b.Output(sliced); b.Output(moving); b.Output(picked);
        ShapeInference.Run(b.Build());
        Assert.Equal([5, 12], ShapeVectors.Of(sliced)!.Select(e => e.Known!.Value));
        Assert.Null(ShapeVectors.Of(moving));
        var p = ShapeVectors.Of(picked)!;
        Assert.Equal(12, p[0].Known);
        Assert.Equal("N", p[1].Dim.Param);
        Assert.Null(p[1].Known);
    }
}
