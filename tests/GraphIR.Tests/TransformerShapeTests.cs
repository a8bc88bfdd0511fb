// Shapes and element types through real-export patterns: the ViT's cls token (Expand to a Shape-derived
// [batch, 1, hidden], then Concat) stays float so every MatMul after it is typed; BERT's Shape -> Gather ->
// Range -> Unsqueeze position ids and Shape -> Gather -> Unsqueeze -> Concat -> Reshape head splits carry the
// symbols; MACs are unknown until the sequence is given and exact once it is (inspect --dim).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class TransformerShapeTests
{
    [Fact]
    public void VitResidualStreamStaysFloatThroughTheClsConcat()
    {
        var m = TransformerGraphs.Vit();
        var concat = m.Graph.Nodes.First(n => n.OpType == "Concat" && n.Inputs[0]!.Producer?.OpType == "Expand");
        Assert.Equal("float[batch,17,32]", ModelStats.TypeText(concat.Output().Type));
        Assert.All(m.Graph.Nodes.Where(n => n.OpType == "MatMul"), n =>
        {
            Assert.Equal(DataType.Float, n.Output().ElementType);
            Assert.Equal(n.Input(0)!.Shape!.Rank, n.Output().Shape!.Rank);
        });
        var stats = ModelStats.Compute(m);
        Assert.Empty(stats.UnknownMacNodes); // only the batch is symbolic: it counts as 1
    }

    [Fact]
    public void BertShapesCarryTheSymbolsAndMacsWaitForTheSequence()
    {
        var m = TransformerGraphs.Bert();
        var reshapes = m.Graph.Nodes.Where(n => n.OpType == "Reshape").ToList();
        Assert.NotEmpty(reshapes);
        Assert.All(reshapes, r => Assert.Matches(@"^float\[batch,sequence,(4,8|32)\]$", ModelStats.TypeText(r.Output().Type)));
        var range = m.Graph.Nodes.Single(n => n.OpType == "Range");
        Assert.Equal("int64[sequence]", ModelStats.TypeText(range.Output().Type));

        var symbolic = ModelStats.Compute(m);
        Assert.NotEmpty(symbolic.UnknownMacNodes);
        Assert.Equal(["sequence"], symbolic.SymbolicDims);
        Assert.Contains("--dim sequence=128", ModelStatsWriter.Text(symbolic));

        var at = ModelStats.Compute(m, dims: new Dictionary<string, long> { ["sequence"] = 10 });
        Assert.Empty(at.UnknownMacNodes);
        // Per layer: q, k, v, output projections 4 * S * H * H; scores and context 2 * S * S * H; MLP 2 * S * H * I;
        // plus the pooler H * H. H = 32, I = 64, S = 10, 2 layers.
        long s = 10, h = 32, i = 64;
        Assert.Equal(2 * (4 * s * h * h + 2 * s * s * h + 2 * s * h * i) + h * h, at.TotalMacs);
        Assert.Equal(10, at.Dims["sequence"]);
        // Without --dim, the same count as a function of the sequence: 2 * 2H S^2 + (2 * (4 H^2 + 2 H I)) S + H^2.
        Assert.Equal(new MacsPolynomial("sequence", 2 * 2 * h, 2 * (4 * h * h + 2 * h * i), h * h), symbolic.MacsInSymbol);
        Assert.Equal(at.TotalMacs, symbolic.MacsInSymbol!.At(10));
        Assert.Contains("MACs:        128 sequence^2 + 16,384 sequence + 1,024 per sample", ModelStatsWriter.Text(symbolic));
        Assert.Null(at.MacsInSymbol);
        // The model is unchanged: its types are what inference gave it before.
        Assert.Equal("float[batch,sequence,32]", ModelStats.TypeText(m.Graph.Outputs[0].Type));
    }

    [Fact]
    public void NoPolynomialIsClaimedWhereTheMacsAreKnownOrNotPolynomial()
    {
        var vit = ModelStats.Compute(TransformerGraphs.Vit());
        Assert.Null(vit.MacsInSymbol);
        // A stride-2 conv over a symbolic width: ceil(W / 2) output columns, not a polynomial in W.
        var conv = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[1,1,4,W] x) => (float[1,2,2,?] y) <float[2,1,3,3] w = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}>
            {
               y = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]> (x, w)
            }
            """);
        var s = ModelStats.Compute(conv);
        Assert.Equal(["W"], s.SymbolicDims);
        Assert.NotEmpty(s.UnknownMacNodes);
        Assert.Null(s.MacsInSymbol);
    }

    [Fact]
    public void ExpandTileRangeWhereAndIfAreTyped()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,1,4] x, bool c, float[N,4,5] k) => (float[N,3,4] e, float[N,2,8] t, int64[5] r, float[N,1,4] w,
                float[N,1,4] i, float[N,1,5] s)
               <int64[3] shape = {1,3,1}, int64[3] reps = {1,2,2}, int64 a = {2}, int64 b = {7}, int64 d = {1}>
            {
               e = Expand (x, shape)
               t = Tile (x, reps)
               r = Range (a, b, d)
               z = Neg (x)
               w = Where (c, x, z)
               i = If (c) <then_branch: graph = g1 () => (float[N,1,4] o1) { o1 = Identity (x) },
                           else_branch: graph = g2 () => (float[N,1,4] o2) { o2 = Identity (z) }>
               s = Einsum <equation: string = "bij,bjk->bik"> (x, k)
            }
            """);
        foreach (var v in m.Graph.Outputs) v.Type = null;
        ShapeInference.Run(m);
        Assert.Equal(["float[N,3,4]", "float[N,2,8]", "int64[5]", "float[N,1,4]", "float[N,1,4]", "float[N,1,5]"],
            m.Graph.Outputs.Select(o => ModelStats.TypeText(o.Type)));
        var einsum = m.Graph.Nodes.Single(n => n.OpType == "Einsum");
        Assert.Equal(1L * 4 * 5, ModelStats.Macs(einsum, out var applies)); // b symbolic (1) x i x j x k
        Assert.True(applies);
    }
}
