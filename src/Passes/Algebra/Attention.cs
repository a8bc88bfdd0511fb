// One multi-head attention block read off an exported graph, the view head pruning and transformer quantization
// work from. Rooted at the attention Softmax:
//
//   q = proj_q(x)                                   proj: MatMul(x, W) (+ Add(b)), W constant [hidden, H*D]
//   Q = Transpose(Reshape(q, [0, 0, H, D]))         (or a slot of one fused qkv projection: Reshape to
//   S = MatMul(Q, K^T) / sqrt(D) (+ mask)            [.., 3, H, D], Transpose, Gather/Split slot 0, 1, 2)
//   P = Softmax(S)                                  the root
//   C = MatMul(P, V)                                context [batch, H, seq, D]
//   y = proj_o(Reshape(Transpose(C), [0, 0, H*D]))  output projection, W_o constant [H*D, hidden]
//
// Found as BERT (separate query/key/value Linear layers, an additive mask) and ViT (one qkv Linear) export them.
// Pure: reads the graph, changes nothing.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>A projection: its MatMul with a constant weight, the bias Add after it (if any), and for a fused qkv
/// projection which of its three parts this one is (null: the whole output).</summary>
public sealed record Projection(Node MatMul, Node? BiasAdd, int? Slot)
{
    public Value Weight => MatMul.Input(1)!;
    public Value? Bias => BiasAdd is null ? null : BiasAdd.Inputs.First(i => Rewriter.ConstantOf(i) is not null);
    /// <summary>The projection's output (after the bias).</summary>
    public Value Output => (BiasAdd ?? MatMul).Output();
}

public sealed record AttentionView(Node Softmax, Node Scores, Node Context, Projection Query, Projection Key,
    Projection Value, Projection? Output, long? Heads, long? HeadSize, Value? Mask)
{
    /// <summary>Every attention block of a graph, in graph order.</summary>
    public static IReadOnlyList<AttentionView> All(Graph g) =>
        g.Nodes.Where(n => n.OpType == "Softmax" && n.IsStandard).Select(n => Of(n, out _)).OfType<AttentionView>()
            .ToList();

    /// <summary>The attention block rooted at <paramref name="softmax"/>, or null with the reason.</summary>
    public static AttentionView? Of(Node softmax, out string? why)
    {
        why = null;
        // Back from the Softmax through scale and mask to the scores MatMul; the mask is the other Add operand.
        Value? mask = null;
        var v = softmax.Input(0);
        Node? scores = null;
        for (int step = 0; step < 6 && v?.Producer is { IsStandard: true } p; step++)
        {
            if (p.OpType == "MatMul") { scores = p; break; }
            if (SoftmaxGuard.IsGuard(p)) { v = p.Input(0); continue; }
            if (p.OpType is not ("Add" or "Mul" or "Div" or "Sub" or "Where")) break;
            var data = p.Inputs.Where(i => i is not null && Rewriter.ConstantOf(i) is null).ToList();
            if (p.OpType == "Add" && data.Count == 2)
            {
                // The scores side leads back to a MatMul; the other is the mask.
                var (a, b) = (data[0]!, data[1]!);
                bool aScores = LeadsToMatMul(a);
                mask = aScores ? b : a;
                v = aScores ? a : b;
                continue;
            }
            v = p.OpType == "Where" ? p.Input(2) : data.FirstOrDefault();
        }
        if (scores is null) { why = "no Q K^T MatMul before the Softmax"; return null; }
        var context = softmax.Output().Uses.Select(u => u.Node)
            .FirstOrDefault(n => n is { OpType: "MatMul", IsStandard: true } && n.Input(0) == softmax.Output());
        if (context is null) { why = "the Softmax output does not feed a MatMul (P V)"; return null; }
        var q = ProjectionOf(scores.Input(0), out var qHeads);
        var k = ProjectionOf(scores.Input(1), out _);
        var val = ProjectionOf(context.Input(1), out _);
        if (q is null || k is null || val is null)
        {
            why = "a query, key or value projection is not a MatMul with a constant weight";
            return null;
        }
        long? heads = softmax.Input(0)?.Shape is { Rank: 4 } s ? s.Dims[1].Value : qHeads?.Heads;
        long? headSize = qHeads?.HeadSize ?? (scores.Input(0)?.Shape is { Rank: 4 } qs ? qs.Dims[3].Value : null);
        return new AttentionView(softmax, scores, context, q, k, val, OutputProjection(context), heads, headSize, mask);
    }

    private static bool LeadsToMatMul(Value v)
    {
        for (int step = 0; step < 4 && v.Producer is { IsStandard: true } p; step++)
        {
            if (p.OpType == "MatMul") return true;
            if (p.OpType is not ("Mul" or "Div")) return false;
            var next = p.Inputs.FirstOrDefault(i => i is not null && Rewriter.ConstantOf(i) is null);
            if (next is null) return false;
            v = next;
        }
        return false;
    }

    /// <summary>Back from Q (or K^T, or V) through Transpose, Reshape, scaling, Gather/Squeeze/Split of a fused
    /// qkv tensor, to a MatMul with a constant weight and its bias Add.</summary>
    private static Projection? ProjectionOf(Value? v, out (long? Heads, long? HeadSize)? split)
    {
        split = null;
        int? slot = null;
        for (int step = 0; step < 10 && v?.Producer is { IsStandard: true } p; step++)
        {
            switch (p.OpType)
            {
                case "Reshape":
                    if (Rewriter.ConstantOf(p.Input(1))?.ToInt64Array() is { Length: >= 4 } shape)
                        split = (shape[^2] > 0 ? shape[^2] : null, shape[^1] > 0 ? shape[^1] : null);
                    v = p.Input(0);
                    break;
                case "Transpose" or "Squeeze" or "Unsqueeze" or "Mul" or "Div" or "Identity" or "Cast":
                    v = p.Inputs.FirstOrDefault(i => i is not null && Rewriter.ConstantOf(i) is null);
                    break;
                case "Gather":
                    slot = Rewriter.ConstantOf(p.Input(1)) is { ElementCount: 1 } idx
                        ? (int)idx.ToInt64Array()[0] : null;
                    v = p.Input(0);
                    break;
                case "Split":
                    slot = p.Outputs.ToList().IndexOf(v);
                    v = p.Input(0);
                    break;
                case "Add":
                    if (p.Inputs.Any(i => Rewriter.ConstantOf(i) is not null)
                        && p.Inputs.FirstOrDefault(i => Rewriter.ConstantOf(i) is null)?.Producer is
                        { OpType: "MatMul", IsStandard: true } mm && Rewriter.ConstantOf(mm.Input(1)) is not null)
                        return new Projection(mm, p, slot);
                    return null;
                case "MatMul":
                    return Rewriter.ConstantOf(p.Input(1)) is not null ? new Projection(p, null, slot) : null;
                default:
                    return null;
            }
        }
        return null;
    }

    /// <summary>After the context: Transpose, Reshape (merging the heads), then a MatMul with a constant weight.
    /// </summary>
    private static Projection? OutputProjection(Node context)
    {
        var v = context.Output();
        for (int step = 0; step < 4; step++)
        {
            // Shape reads (view(size()[:-2] + (hidden,))) aside, one consumer.
            var data = v.Uses.Where(u => u.Node.OpType != "Shape").ToList();
            if (data.Count != 1) return null;
            var n = data[0].Node;
            if (n is { OpType: "MatMul", IsStandard: true } && Rewriter.ConstantOf(n.Input(1)) is not null)
            {
                var add = n.Output().Uses.Count == 1 && n.Output().Uses[0].Node is { OpType: "Add" } a
                    && a.Inputs.Any(i => Rewriter.ConstantOf(i) is not null) ? a : null;
                return new Projection(n, add, null);
            }
            if (n.OpType is not ("Transpose" or "Reshape" or "Flatten")) return null;
            v = n.Output();
        }
        return null;
    }
}
