// inspect's transformer summary on the exported test models: attention layers, heads, hidden size, sequence dims
// and embedding tables; none for a CNN.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class TransformerSummaryTests
{
    private static TransformerSummary? Of(string rel) =>
        ModelStats.Compute(OnnxImporter.Load(Paths.Model(rel))).Transformer;

    [Theory]
    [InlineData("transformers/bert_op11.onnx")]
    [InlineData("transformers/bert_op13.onnx")]
    public void BertStyle(string rel)
    {
        var t = Of(rel)!;
        Assert.Equal((2, 4L, 64L), (t.Layers, t.Heads!.Value, t.Hidden!.Value));
        Assert.Equal(["sequence"], t.SequenceDims);
        Assert.Equal(["word.weight", "token_type.weight", "position.weight"], t.Embeddings.Select(e => e.Name).Order()
            .Reverse().ToArray());
        Assert.Equal(1000, t.Embeddings.Single(e => e.Name == "word.weight").Rows);
    }

    [Theory]
    [InlineData("transformers/vit_op13.onnx")]
    [InlineData("transformers/vit_op17.onnx")]
    public void VitStyle(string rel)
    {
        var t = Of(rel)!;
        Assert.Equal((3, 4L, 64L), (t.Layers, t.Heads!.Value, t.Hidden!.Value));
        Assert.Empty(t.Embeddings);
    }

    [Fact]
    public void ACnnHasNone() => Assert.Null(Of("digits/resnet.onnx"));
}
