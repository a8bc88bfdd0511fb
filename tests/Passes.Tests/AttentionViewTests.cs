// The attention view on the exported test models: BERT's separate query/key/value projections with their biases,
// the additive mask and the output projection; the ViT's one qkv projection in three slots.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Tests.Passes;

public class AttentionViewTests
{
    private static Model Typed(string rel)
    {
        var m = OnnxImporter.Load(Paths.Model(rel));
        ShapeInference.Run(m);
        return m;
    }

    [Theory]
    [InlineData("transformers/bert_op11.onnx")]
    [InlineData("transformers/bert_op13.onnx")]
    public void BertStyleBlocksHaveThreeProjectionsAMaskAndAnOutputProjection(string rel)
    {
        var views = AttentionView.All(Typed(rel).Graph);
        Assert.Equal(2, views.Count);
        foreach (var a in views)
        {
            Assert.Equal((4L, 16L), (a.Heads!.Value, a.HeadSize!.Value));
            Assert.Equal(3, new[] { a.Query.MatMul, a.Key.MatMul, a.Value.MatMul }.Distinct().Count());
            Assert.All(new[] { a.Query, a.Key, a.Value }, p => Assert.NotNull(p.Bias));
            Assert.Null(a.Query.Slot);
            Assert.NotNull(a.Mask);
            Assert.Contains("attention_mask", Ancestors(a.Mask!));
            Assert.NotNull(a.Output);
            Assert.Equal([64L, 64L], Rewriter.ConstantOf(a.Output!.Weight)!.Dims);
        }
    }

    [Theory]
    [InlineData("transformers/vit_op13.onnx")]
    [InlineData("transformers/vit_op17.onnx")]
    public void VitBlocksShareOneQkvProjectionInThreeSlots(string rel)
    {
        var views = AttentionView.All(Typed(rel).Graph);
        Assert.Equal(3, views.Count);
        foreach (var a in views)
        {
            Assert.Same(a.Query.MatMul, a.Key.MatMul);
            Assert.Same(a.Query.MatMul, a.Value.MatMul);
            Assert.Equal((0, 1, 2), (a.Query.Slot, a.Key.Slot, a.Value.Slot));
            Assert.Equal([64L, 192L], Rewriter.ConstantOf(a.Query.Weight)!.Dims);
            Assert.Equal(4L, a.Heads);
            Assert.Null(a.Mask);
            Assert.NotNull(a.Output);
        }
    }

    [Fact]
    public void ThePretrainedArcticEncoderHasSixTwelveHeadBlocks()
    {
        if (!ArcticXs.Available) return;
        var m = OnnxImporter.Load(ArcticXs.Model);
        ShapeInference.Run(m);
        var views = AttentionView.All(m.Graph);
        Assert.Equal(6, views.Count);
        Assert.All(views, a => Assert.Equal((12L, 32L), (a.Heads!.Value, a.HeadSize!.Value)));
        Assert.All(views, a => Assert.NotNull(a.Output));
    }

    [Fact]
    public void ASoftmaxThatIsNotAttentionHasNoView()
    {
        var m = Typed("digits/mlp.onnx");
        Assert.Empty(AttentionView.All(m.Graph));
    }

    private static HashSet<string> Ancestors(Value v)
    {
        var seen = new HashSet<string>();
        var stack = new Stack<Value>([v]);
        while (stack.TryPop(out var x))
        {
            if (!seen.Add(x.Name)) continue;
            foreach (var i in x.Producer?.Inputs ?? []) if (i is not null) stack.Push(i);
        }
        return seen;
    }
}
