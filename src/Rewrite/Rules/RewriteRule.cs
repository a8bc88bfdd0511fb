// A local rewrite, as MLIR's patterns and ONNX Runtime's rewrite rules are built:
//   - a name, the root op types it is tried on (with their domain and an opset range), a benefit
//     (rules on the same root are tried highest benefit first, then in registration order);
//   - Match(root): pure, no mutation; it returns what Apply needs, or the reason it did not match
//     ("fan-out", "weights not constant float", "cost model"), which the driver counts per rule;
//   - Apply(root, match): the rewrite, every mutation through ctx.Rewriter.
// Whole-graph work (calibration, search, scoring) stays a Pass; a pass runs its rules with the
// GreedyRewriteDriver.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>The outcome of a match: a value for Apply, or why the rule does not apply.</summary>
public readonly struct RuleMatch<T> where T : class
{
    private RuleMatch(T? value, string? reason) { Value = value; Reason = reason; }

    public T? Value { get; }
    /// <summary>Why the rule did not match (null on success).</summary>
    public string? Reason { get; }
    public bool Succeeded => Value is not null;

    public static implicit operator RuleMatch<T>(T value) => new(value, null);
    public static implicit operator RuleMatch<T>(NoMatch no) => new(null, no.Reason);
}

/// <summary>A failed match and its reason: <c>return new NoMatch("intermediate value is read elsewhere")</c>.</summary>
public readonly record struct NoMatch(string Reason);

/// <summary>What a rule sees: the pass context (model, rewriter, statistics, data). A rule that depends on its
/// pass's options takes the typed options record when the pass builds it.</summary>
public sealed class RuleContext(PassContext pass)
{
    public PassContext Pass { get; } = pass;
    public Rewriter Rewriter => Pass.Rewriter;
    public Model Model => Pass.Model;
    public PassStats Stats => Pass.Stats;
    public long Opset => Pass.Model.OpsetVersion("") ?? 13;
}

public abstract class RewriteRule
{
    public abstract string Name { get; }
    /// <summary>Op types this rule is tried on (in <see cref="Domain"/>).</summary>
    public abstract IReadOnlyList<string> RootOps { get; }
    /// <summary>"" is the default ai.onnx domain.</summary>
    public virtual string Domain => "";
    /// <summary>The default-domain opsets the rule is valid for, inclusive.</summary>
    public virtual long MinOpset => 1;
    public virtual long MaxOpset => long.MaxValue;
    /// <summary>Rules sharing a root are tried highest first.</summary>
    public virtual int Benefit => 1;

    /// <summary>
    /// Matches and, on success, applies; returns null when applied, else the reason it did not match.</summary>
    internal abstract string? TryRewrite(Node root, RuleContext ctx);

    /// <summary>Whether the rule's (pure) match succeeds on <paramref name="root"/>, whatever the opset: what a
    /// pass reports as found but not rewritten.</summary>
    public abstract bool Matches(Node root, RuleContext ctx);

    public bool AppliesTo(Node n, long opset) =>
        (n.Domain == Domain || (Model.IsDefaultDomain(n.Domain) && Model.IsDefaultDomain(Domain)))
        && RootOps.Contains(n.OpType) && opset >= MinOpset && opset <= MaxOpset;

    public override string ToString() => Name;
}

/// <summary>A rule whose match carries a typed value to its rewrite.</summary>
public abstract class RewriteRule<TMatch> : RewriteRule where TMatch : class
{
    public abstract RuleMatch<TMatch> Match(Node root, RuleContext ctx);
    public abstract void Apply(Node root, TMatch match, RuleContext ctx);

    public sealed override bool Matches(Node root, RuleContext ctx) => Match(root, ctx).Succeeded;

    internal sealed override string? TryRewrite(Node root, RuleContext ctx)
    {
        var m = Match(root, ctx);
        if (!m.Succeeded) return m.Reason ?? "no match";
        Apply(root, m.Value!, ctx);
        return null;
    }
}
