// Every pass onnxopt knows, by name. `onnxopt passes` lists them with their declared options.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class PassRegistry
{
    private static readonly Pass[] All =
    [
        new Canonicalize(),
        new FoldBatchNorm(),
        new FuseBias(),
        new Linearize(),
        new FoldConv(),
        new Sparsify(),
        new Quantize(),
    ];

    public static IReadOnlyList<Pass> Passes => All;

    public static Pass Get(string name) => All.FirstOrDefault(p => p.Name == name)
        ?? throw new OnnxModelException($"unknown pass '{name}' (passes: {string.Join(", ", All.Select(p => p.Name))})");
}
