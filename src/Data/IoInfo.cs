// A model input or output as a runner sees it: name, element type and shape (symbols kept).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Data;

public sealed record IoInfo(string Name, DataType ElementType, Shape? Shape)
{
    /// <summary>For an integer input, the values random inputs are drawn from (InputRanges), when the model
    /// was seen.</summary>
    public ValueRange? Range { get; init; }

    public override string ToString() => $"{Name}: {ModelStats.TypeText(OnnxType.Tensor(ElementType, Shape))}";

    /// <summary>The graph's inputs that are not initializers (what a caller must feed).</summary>
    public static IReadOnlyList<IoInfo> InputsOf(Graph g)
    {
        var ranges = InputRanges.Of(g);
        return g.Inputs.Where(v => !v.IsInitializer).Select(v => new IoInfo(v.Name, v.ElementType, v.Shape)
        {
            Range = ranges.GetValueOrDefault(v.Name),
        }).ToList();
    }

    public static IReadOnlyList<IoInfo> OutputsOf(Graph g) => g.Outputs.Select(v => new IoInfo(v.Name, v.ElementType,
        v.Shape)).ToList();
}
