// Every rewrite rule, listed once: name, root ops, domain, opsets, and the pass that runs it. A pass still builds
// the rules it runs (some carry its options or its run's state, as fold-conv's cost model does); the registry is
// where a reader, `onnxopt passes --rules` and the tests find them all. onnxopt's own come from the OnnxOpt.Passes
// library (its BuiltInRules, found by name when it is deployed, as PassRegistry finds its passes); a library user
// adds theirs with Register. Names are unique.
namespace OnnxOpt.Passes;

/// <summary>A rule and the pass that runs it.</summary>
public sealed record RuleEntry(RewriteRule Rule, string Pass);

public static class RuleRegistry
{
    private static readonly Lock Gate = new();
    private static RuleEntry[] _all = BuiltIns();

    private static RuleEntry[] BuiltIns() =>
        Type.GetType("OnnxOpt.Passes.BuiltInRules, OnnxOpt.Passes")?.GetProperty("All")?.GetValue(null)
            as RuleEntry[] ?? [];

    public static IReadOnlyList<RuleEntry> Rules => Volatile.Read(ref _all);

    /// <summary>The rule of that name, or null.</summary>
    public static RuleEntry? Find(string name) => Rules.FirstOrDefault(r => r.Rule.Name == name);

    /// <summary>Lists a rule (run by <paramref name="pass"/>). A name already taken is refused.</summary>
    public static void Register(RewriteRule rule, string pass)
    {
        lock (Gate)
        {
            if (_all.Any(r => r.Rule.Name == rule.Name))
                throw new ArgumentException($"a rule named '{rule.Name}' is already registered");
            Volatile.Write(ref _all, [.. _all, new RuleEntry(rule, pass)]);
        }
    }
}
