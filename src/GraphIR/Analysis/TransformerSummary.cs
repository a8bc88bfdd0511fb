// What a transformer user reads at a glance in inspect: attention layers, heads, hidden size, the sequence dims and
// the embedding tables with their share of the file. Read from the typed graph (ModelStats runs it under shape
// inference):
//   layers      Softmax nodes over the last axis whose input comes from a MatMul (Q K^T, scaled and masked);
//   heads       axis 1 of that Softmax's [batch, heads, query, key] input, when known;
//   hidden      the most common size of a LayerNormalization's scale, else an embedding table's width, else the
//               most common input width of the MatMul weights;
//   sequence    symbolic dims after the first axis of the integer inputs (token models) or of the Softmax's input;
//   embeddings  Gather nodes reading a float [rows, width] initializer with indices from the graph's inputs.
namespace OnnxOpt.GraphIR;

public sealed record EmbeddingTable(string Name, long Rows, long Width, long Bytes);

public sealed record TransformerSummary(int Layers, long? Heads, long? Hidden, IReadOnlyList<string> SequenceDims,
    IReadOnlyList<EmbeddingTable> Embeddings)
{
    /// <summary>The summary of a graph with attention, or null when it has none.</summary>
    public static TransformerSummary? Of(Graph g)
    {
        var softmaxes = g.Nodes.Where(IsAttentionSoftmax).ToList();
        var embeddings = g.Nodes.Where(n => n.OpType == "Gather" && n.IsStandard).Select(Embedding)
            .OfType<EmbeddingTable>().DistinctBy(e => e.Name).ToList();
        if (softmaxes.Count == 0 && embeddings.Count == 0) return null;
        var heads = softmaxes.Select(s => s.Input(0)?.Shape is { Rank: 4 } sh ? sh.Dims[1].Value : null)
            .FirstOrDefault(h => h is not null);
        var hidden = g.Nodes.Where(n => n.OpType == "LayerNormalization")
            .Select(n => Rewriter.ConstantOf(n.Input(1))?.ElementCount).OfType<long>()
            .GroupBy(v => v).OrderByDescending(x => x.Count()).Select(x => (long?)x.Key).FirstOrDefault()
            ?? embeddings.Select(e => (long?)e.Width).FirstOrDefault()
            ?? g.Nodes.Where(n => n.OpType == "MatMul" && softmaxes.Count > 0)
                .Select(n => Rewriter.ConstantOf(n.Input(1)) is { Dims.Length: 2 } w ? (long?)w.Dims[0] : null)
                .OfType<long>().GroupBy(v => v).OrderByDescending(x => x.Count()).Select(x => (long?)x.Key)
                .FirstOrDefault();
        var seq = g.Inputs.Where(v => !v.IsInitializer && !v.ElementType.IsFloatingPoint())
            .SelectMany(v => v.Shape?.Dims.Skip(1) ?? []).Select(d => d.Param).OfType<string>()
            .Concat(softmaxes.SelectMany(s => s.Input(0)?.Shape?.Dims.Skip(2) ?? []).Select(d => d.Param)
                .OfType<string>()).Distinct().ToList();
        return new TransformerSummary(softmaxes.Count, heads, hidden, seq, embeddings);
    }

    private static bool IsAttentionSoftmax(Node n)
    {
        if (n.OpType != "Softmax" || !n.IsStandard) return false;
        var axis = n.GetInt("axis", -1);
        var rank = n.Input(0)?.Shape?.Rank;
        if (axis != -1 && rank is int r && axis != r - 1) return false;
        // Back through the scale, the mask Add, casts and fuse's denormal guard (a Max) to a MatMul.
        var v = n.Input(0);
        for (int step = 0; step < 6 && v?.Producer is { } p; step++)
        {
            if (p.OpType is "MatMul" or "Einsum") return true;
            if (p.OpType is not ("Add" or "Mul" or "Div" or "Sub" or "Cast" or "Where" or "Max")) return false;
            v = p.Inputs.FirstOrDefault(i => i?.Producer is not null && Rewriter.ConstantOf(i) is null);
        }
        return false;
    }

    private static EmbeddingTable? Embedding(Node gather)
    {
        if (gather.Input(0) is not { Initializer: { } t } table || t.Dims.Length != 2
            || !t.ElementType.IsFloatingPoint()) return null;
        // Indices from a graph input (through casts, reshapes, slices), or a position buffer sliced to it.
        var idx = gather.Input(1);
        for (int step = 0; step < 8 && idx is not null; step++)
        {
            if (idx.IsGraphInput && !idx.IsInitializer) return new(table.Name, t.Dims[0], t.Dims[1], t.ByteSize);
            if (Rewriter.ConstantOf(idx) is not null)
                return t.Dims[0] > 1 ? new(table.Name, t.Dims[0], t.Dims[1], t.ByteSize) : null;
            if (idx.Producer is not { OpType: "Cast" or "Unsqueeze" or "Reshape" or "Slice" or "Expand" or "Add" } p)
                return null;
            idx = p.Input(0);
        }
        return null;
    }
}
