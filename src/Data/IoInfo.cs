// A model input or output as a runner sees it: name, element type and shape (symbols kept).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Data;

public sealed record IoInfo(string Name, DataType ElementType, Shape? Shape)
{
    public override string ToString() => $"{Name}: {ModelStats.TypeText(OnnxType.Tensor(ElementType, Shape))}";

    /// <summary>The graph's inputs that are not initializers (what a caller must feed).</summary>
    public static IReadOnlyList<IoInfo> InputsOf(Graph g) => g.Inputs.Where(v => !v.IsInitializer)
        .Select(v => new IoInfo(v.Name, v.ElementType, v.Shape)).ToList();

    public static IReadOnlyList<IoInfo> OutputsOf(Graph g) => g.Outputs.Select(v => new IoInfo(v.Name, v.ElementType,
        v.Shape)).ToList();
}
