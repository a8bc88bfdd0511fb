// If: each output typed as its branches declare it (dims the branches disagree on unknown). Loop and Scan
// keep the types the model declares.
namespace OnnxOpt.GraphIR;

internal static class ControlFlowOps
{
    public static IEnumerable<OpInfo> All =>
    [
        new("If") { Infer = (n, c) => ShapeContext.IfOutputs(n) },
    ];
}

public sealed partial class ShapeContext
{
    /// <summary>If: each output typed as the branches declare it (dims they disagree on unknown).</summary>
    internal static OnnxType?[] IfOutputs(Node n)
    {
        var outs = new OnnxType?[n.Outputs.Count];
        var branches = new[] { n.Attr("then_branch")?.G, n.Attr("else_branch")?.G };
        for (int i = 0; i < outs.Length; i++)
        {
            foreach (var g in branches)
            {
                if (g is null || i >= g.Outputs.Count || g.Outputs[i].Type is not { IsTensor: true } bt) continue;
                if (outs[i] is null) outs[i] = bt;
                else if (outs[i]!.Shape is { } s1 && bt.Shape is { } s2 && !s1.Equals(s2))
                    outs[i] = OnnxType.Tensor(outs[i]!.ElementType, s1.Rank == s2.Rank
                        ? new Shape(s1.Dims.Zip(s2.Dims, (a, b) => a == b ? a : Dim.Unknown)) : null);
            }
        }
        return outs;
    }
}
