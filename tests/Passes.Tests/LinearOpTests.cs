// LinearOp: one view of Conv / ConvTranspose / Gemm (transB, alpha, beta) / MatMul. Each computation is
// checked in ORT against the same math done around the original op: scaling outputs against Mul + Add
// after it, keeping output channels against Gather after it, keeping input channels against the original
// with those weights zeroed; and OpTraits against the sets the passes used to keep.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class LinearOpTests
{
    /// <summary>x -> op -> y, with the op's weights seeded; returns the model and the op node.</summary>
    public static (Model, Node) Single(string kind)
    {
        var b = new GraphBuilder(kind);
        var conv = kind.StartsWith("conv", StringComparison.Ordinal);
        var x = conv || kind.StartsWith("convt", StringComparison.Ordinal) ? b.Input("x", DataType.Float, "N", 4, 5, 5) : b.Input("x", DataType.Float, "N", 6);
        Value y = kind switch
        {
            "conv" => Conv(b, x, "c", 1, 6, 4, 3, pad: 1),
            "conv-nobias" => Conv(b, x, "c", 1, 6, 4, 3, bias: false),
            "conv-depthwise" => Conv(b, x, "c", 1, 4, 1, 3, pad: 1, group: 4),
            "convt" => b.Node("ConvTranspose", [x, W(b, "w", 2, 4, 3, 3, 3), W(b, "bias", 3, 3)], OnnxAttribute.IntList("kernel_shape", 3, 3)),
            "convt-grouped" => b.Node("ConvTranspose", [x, W(b, "w", 2, 4, 3, 3, 3), W(b, "bias", 3, 6)],
                OnnxAttribute.IntList("kernel_shape", 3, 3), OnnxAttribute.Int("group", 2)),
            "gemm" => b.Node("Gemm", [x, W(b, "w", 4, 6, 5), W(b, "bias", 5, 5)], OnnxAttribute.Float("alpha", 0.5f), OnnxAttribute.Float("beta", 2f)),
            "gemm-transb" => b.Node("Gemm", [x, W(b, "w", 4, 5, 6), W(b, "bias", 5, 1, 5)], OnnxAttribute.Int("transB", 1)),
            "matmul" => b.Node("MatMul", [x, W(b, "w", 6, 6, 5)]),
            _ => throw new ArgumentException(kind),
        };
        b.Output(y);
        var m = b.Build();
        ShapeInference.Run(m);
        return (m, m.Graph.Nodes.Single(n => OpTraits.Has(n, OpTrait.Linear)));
    }

    private static bool Spatial(Model m) => m.Graph.Inputs[0].Shape!.Rank == 4;

    /// <summary>The original model with <paramref name="after"/>(y) appended as the new output.</summary>
    private static Model Around(Model m, Func<GraphBuilder, Value, Value> after)
    {
        var copy = OnnxImporter.Parse(OnnxExporter.ToBytes(m));
        var g = copy.Graph;
        var y = g.Outputs[0];
        var b = GraphBuilder.Over(copy);
        var z = after(b, y);
        var outName = y.Name;
        g.ClearOutputs();
        var rw = new Rewriter(copy);
        rw.Rename(y, outName + "_inner");
        rw.Rename(z, outName);
        g.AddOutput(z);
        z.Type = null;
        ShapeInference.Run(copy);
        return copy;
    }

    public static TheoryData<string> Kinds() => new("conv", "conv-nobias", "conv-depthwise", "convt", "convt-grouped", "gemm", "gemm-transb", "matmul");

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ScaledOutputsEqualMulAndAddAfterTheOp(string kind)
    {
        var (m, _) = Single(kind);
        var (cand, node) = Single(kind);
        var op = LinearOp.Of(node)!;
        var c = op.OutChannels;
        var s = Enumerable.Range(0, c).Select(i => 0.5 + 0.25 * i).ToArray();
        var t = Enumerable.Range(0, c).Select(i => kind == "matmul" ? 0.0 : 0.1 * i - 0.2).ToArray();
        var (w, bias) = op.Scaled(s, t);
        var rw = new Rewriter(cand);
        op.Write(rw, op.WeightDims, w, bias);
        rw.Cleanup();
        long[] shape = Spatial(m) ? [c, 1, 1] : [c];
        var reference = Around(m, (b, y) => b.Node("Add", [b.Node("Mul", [y, b.Initializer("s", s.Select(v => (float)v).ToArray(), shape)]),
            b.Initializer("t", t.Select(v => (float)v).ToArray(), shape)]));
        Assert.Empty(Verifier.Check(cand));
        AssertEquivalent(reference, cand);
    }

    [Theory]
    [InlineData("conv")]
    [InlineData("conv-depthwise")]
    [InlineData("convt")]
    [InlineData("gemm")]
    [InlineData("gemm-transb")]
    [InlineData("matmul")]
    public void KeptOutputChannelsEqualGatherAfterTheOp(string kind)
    {
        var (m, _) = Single(kind);
        var (cand, node) = Single(kind);
        var op = LinearOp.Of(node)!;
        int[] keep = op.OutChannels switch { 3 => [0, 2], 4 => [0, 2, 3], _ => [1, 2, 4] };
        var (dims, w, bias) = op.KeepOutputs(keep);
        var rw = new Rewriter(cand);
        if (op.IsDepthwise)
        {
            // A depthwise conv keeps the input channels it keeps: slice its input the same way.
            var gx = rw.Insert(cand.Graph, "Gather", [node.Input(0), rw.Constant(cand.Graph, "keep", Tensor.FromInt64s("", [keep.Length], keep.Select(k => (long)k).ToArray()))],
                "x_kept", 1, OnnxAttribute.Int("axis", 1));
            rw.SetInput(node, 0, gx.Output());
        }
        op.Write(rw, dims, w, bias);
        cand.Graph.Outputs[0].Type = null;
        rw.Cleanup();
        ShapeInference.Run(cand);
        var reference = Around(m, (b, y) => b.Node("Gather", [y, b.Initializer("k", keep.Select(k => (long)k).ToArray(), keep.Length)],
            OnnxAttribute.Int("axis", 1)));
        Assert.Empty(Verifier.Check(cand));
        AssertEquivalent(reference, cand);
    }

    [Theory]
    [InlineData("conv")]
    [InlineData("convt")]
    [InlineData("gemm")]
    [InlineData("gemm-transb")]
    [InlineData("matmul")]
    public void KeptInputChannelsEqualZeroedWeightsOnTheFullInput(string kind)
    {
        var (m, node0) = Single(kind);
        var (cand, node) = Single(kind);
        var op = LinearOp.Of(node)!;
        int[] keep = [0, 1, 3];
        var rw = new Rewriter(cand);
        var (dims, w) = op.KeepInputs(keep);
        var gx = rw.Insert(cand.Graph, "Gather", [node.Input(0), rw.Constant(cand.Graph, "keep", Tensor.FromInt64s("", [keep.Length], keep.Select(k => (long)k).ToArray()))],
            "x_kept", 1, OnnxAttribute.Int("axis", 1));
        rw.SetInput(node, 0, gx.Output());
        op.Write(rw, dims, w, op.Bias);
        rw.Cleanup();
        // Reference: every weight reading a dropped input channel set to 0, on the full input.
        var refOp = LinearOp.Of(node0)!;
        var zw = refOp.Weight.ToArray();
        var inner = refOp.WeightDims.Skip(refOp.InAxis + 1).Aggregate(1L, (a, d) => a * d);
        for (long i = 0; i < zw.Length; i++)
            if (!keep.Contains((int)(i / inner % refOp.WeightDims[refOp.InAxis]))) zw[i] = 0;
        refOp.Write(new Rewriter(m), refOp.WeightDims, zw, refOp.Bias);
        Assert.Empty(Verifier.Check(cand));
        AssertEquivalent(m, cand);
    }

    [Fact]
    public void ViewsDescribeAxesGroupsAndRefusals()
    {
        var conv = LinearOp.Of(Single("conv").Item2)!;
        Assert.Equal((0, 1, 1, 6, 4), (conv.OutAxis, conv.InAxis, conv.Groups, conv.OutChannels, conv.InChannels));
        var dw = LinearOp.Of(Single("conv-depthwise").Item2)!;
        Assert.True(dw.IsDepthwise);
        var ct = LinearOp.Of(Single("convt-grouped").Item2)!;
        Assert.Equal((1, 0, 2, 6, 4), (ct.OutAxis, ct.InAxis, ct.Groups, ct.OutChannels, ct.InChannels));
        Assert.Throws<InvalidOperationException>(() => ct.KeepOutputs([0, 1]));
        var gemm = LinearOp.Of(Single("gemm").Item2)!;
        Assert.Equal(1, gemm.OutAxis); // B is [K, N] without transB
        var gt = LinearOp.Of(Single("gemm-transb").Item2)!;
        Assert.Equal(0, gt.OutAxis);
        var m = Single("gemm").Item1;
        var relu = new GraphBuilder("r");
        relu.Output(relu.Node("Relu", [relu.Input("x", DataType.Float, 2)]));
        Assert.False(LinearOp.TryOf(relu.Build().Graph.Nodes[0], out _, out var why));
        Assert.Equal("Relu is not a linear op", why);
        var b = new GraphBuilder("dyn");
        var x = b.Input("x", DataType.Float, "N", 6);
        b.Output(b.Node("MatMul", [x, b.Input("w", DataType.Float, 6, 5)]));
        Assert.False(LinearOp.TryOf(b.Build().Graph.Nodes[0], out _, out why));
        Assert.Equal("weight not constant float", why);
        Assert.NotNull(m);
    }

    [Fact]
    public void OpTraitsKeepThePassesSets()
    {
        Assert.Equal(["Clip", "LeakyRelu", "PRelu", "Relu"], OpTraits.With(OpTrait.PiecewiseLinear));
        Assert.Equal(["Conv", "ConvTranspose", "Gemm", "MatMul"], OpTraits.With(OpTrait.Linear));
        Assert.Equal(["Flatten", "MaxPool", "Reshape", "Resize", "Slice", "Split", "Squeeze", "Transpose", "Unsqueeze"], OpTraits.With(OpTrait.SharesScale));
        Assert.Equal(17, OpTraits.With(OpTrait.NonLinear).Count());
        Assert.Equal(OpTrait.None, OpTraits.Of("NoSuchOp"));
        Assert.True(OpTraits.Of("Relu").HasFlag(OpTrait.PositivelyHomogeneous));
        Assert.False(OpTraits.Of("Clip").HasFlag(OpTrait.PositivelyHomogeneous));
        Assert.True(OpTraits.Of("BatchNormalization").HasFlag(OpTrait.ChannelPreserving));
    }
}
