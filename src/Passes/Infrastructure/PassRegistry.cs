// Every pass a pipeline string can name. onnxopt's own passes are registered here; a library user adds
// theirs with Register(new MyPass()), after which "canonicalize,my-pass{k=v}" parses like any other
// pipeline and `onnxopt passes` (in-process) lists it. Names are unique and use the pipeline grammar's
// characters (letters, digits, '-', '_').
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class PassRegistry
{
    private static readonly Lock Gate = new();
    private static Pass[] _all =
    [
        new Canonicalize(),
        new FixDims(),
        new Fuse(),
        new FoldBatchNorm(),
        new FuseBias(),
        new FoldAffine(),
        new Strip(),
        new Linearize(),
        new FoldConv(),
        new Sparsify(),
        new Equalize(),
        new Smooth(),
        new BiasCorrect(),
        new Quantize(),
        new Prune(),
        new Cluster(),
        new RoundFp16(),
        new Distill(),
        new UpgradeOpset(),
    ];

    public static IReadOnlyList<Pass> Passes => Volatile.Read(ref _all);

    public static Pass Get(string name) => Passes.FirstOrDefault(p => p.Name == name)
        ?? throw new OnnxModelException(
            $"unknown pass '{name}' (passes: {string.Join(", ", Passes.Select(p => p.Name))})");

    /// <summary>Adds a pass so pipeline strings can name it. A name already taken is refused.</summary>
    public static void Register(Pass pass)
    {
        if (pass.Name.Length == 0 || !pass.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw new ArgumentException($"pass name '{pass.Name}' must be letters, digits, '-' or '_'");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var o in pass.Options)
            if (!names.Add(o.Name)) throw new ArgumentException($"pass '{pass.Name}' declares option '{o.Name}' twice");
        lock (Gate)
        {
            if (_all.Any(p => p.Name == pass.Name))
                throw new ArgumentException($"a pass named '{pass.Name}' is already registered");
            Volatile.Write(ref _all, [.. _all, pass]);
        }
    }
}
