// Every pass a pipeline string can name. onnxopt's own passes come from the OnnxOpt.Passes library (its
// BuiltInPasses, found by name when it is deployed: this core does not reference it); a library user adds
// theirs with Register(new MyPass()), after which "canonicalize,my-pass{k=v}" parses like any other
// pipeline and `onnxopt passes` (in-process) lists it. Names are unique and use the pipeline grammar's
// characters (letters, digits, '-', '_').
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class PassRegistry
{
    private static readonly Lock Gate = new();
    private static Pass[] _all = BuiltIns();

    /// <summary>onnxopt's own passes, when the OnnxOpt.Passes library is deployed beside this one (it lists them
    /// in BuiltInPasses.All); a program with only this core library starts with none.</summary>
    private static Pass[] BuiltIns() =>
        Type.GetType("OnnxOpt.Passes.BuiltInPasses, OnnxOpt.Passes")?.GetProperty("All")?.GetValue(null) as Pass[]
        ?? [];

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
