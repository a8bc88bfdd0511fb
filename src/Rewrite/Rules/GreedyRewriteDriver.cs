// Runs rules to a fixed point, as MLIR's greedy pattern driver does:
//   worklist := every node of the graph (and of its subgraphs when asked), in topological order;
//   pop the earliest node; try the rules rooted at its op type (highest benefit first), with the
//   rewriter's insertion point at that node; when one applies, (when asked) erase what the rewrite left
//   dead, and push the nodes the rewriter's journal names: inserted nodes, rewired nodes, users of
//   replaced values and producers of erased nodes' inputs (whose fan-out changed) - the places a new
//   match can appear. The order stays valid by construction (the Rewriter keeps it), so a rewrite costs
//   what it touches: no re-sort, no re-index, no whole-graph clean-up (unused initializers go once at
//   the end of the pass over a graph).
//   An iteration ends when the worklist is empty; the driver iterates until one applies nothing
//   (converged) or MaxIterations is reached (not converged), and never applies more than
//   MaxRewrites rewrites in all (a guard against rules that undo each other).
// Reported per rule: how often it applied, and for the nodes it was tried on and did not rewrite, the
// reason its last match failed (each node counted once, however often it was retried).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>What one rule did in one driver run.</summary>
public sealed class RuleStats(string rule)
{
    public string Rule { get; } = rule;
    public long Applied { get; internal set; }
    /// <summary>Reason -> nodes whose last match failed for it.</summary>
    public SortedDictionary<string, long> Failures { get; } = new(StringComparer.Ordinal);
}

public sealed record DriverResult(bool Converged, int Iterations, long Rewrites, IReadOnlyList<RuleStats> Rules);

public sealed class GreedyRewriteDriver(IReadOnlyList<RewriteRule> rules)
{
    public int MaxIterations { get; init; } = 10;
    public long MaxRewrites { get; init; } = 100_000;
    /// <summary>Also visit nodes of subgraphs (If/Loop/Scan bodies).</summary>
    public bool VisitSubgraphs { get; init; }
    /// <summary>Visit this graph alone (the main graph or one subgraph); null: as VisitSubgraphs says.</summary>
    public Graph? OnlyGraph { get; init; }
    /// <summary>After each rewrite, also remove dead nodes and unused initializers (else only re-sort).</summary>
    public bool CleanupAfterRewrite { get; init; }
    /// <summary>Called after each rewrite and its cleanup with the nodes it touched (e.g. shape inference of
    /// that region, for rules that read shapes).</summary>
    public Action<IReadOnlyList<Node>>? AfterRewrite { get; init; }
    /// <summary>Called before each iteration (e.g. shape inference for rules that read shapes).</summary>
    public Action? BeforeIteration { get; init; }

    public DriverResult Run(RuleContext ctx)
    {
        var stats = rules.Select(r => new RuleStats(r.Name)).ToList();
        var ordered = rules.Select((r, i) => (Rule: r, Stats: stats[i], Order: i))
            .OrderByDescending(x => x.Rule.Benefit).ThenBy(x => x.Order).ToList();
        var lastFailure = new Dictionary<(int Rule, Node Node), string>();
        long rewrites = 0;
        int iteration = 0;
        bool converged = false;
        while (iteration < MaxIterations && rewrites < MaxRewrites)
        {
            iteration++;
            BeforeIteration?.Invoke();
            long before = rewrites;
            var graphs = OnlyGraph is { } only ? [only]
                : VisitSubgraphs ? ctx.Model.Graph.SelfAndSubgraphs().ToList() : [ctx.Model.Graph];
            foreach (var g in graphs)
                rewrites += Drain(g, ctx, ordered, rewrites, lastFailure);
            if (rewrites == before) { converged = true; break; }
        }
        foreach (var ((rule, node), why) in lastFailure)
            if (!node.IsErased) stats[rule].Failures[why] = stats[rule].Failures.GetValueOrDefault(why) + 1;
        ctx.Stats.MergeRules(stats);
        return new DriverResult(converged, iteration, rewrites, stats);
    }

    private long Drain(Graph g, RuleContext ctx, List<(RewriteRule Rule, RuleStats Stats, int Order)> ordered,
        long done,
        Dictionary<(int Rule, Node Node), string> lastFailure)
    {
        var rw = ctx.Rewriter;
        rw.TakeTouched();
        // The worklist, earliest node first by its order label when pushed (labels only guide the visiting
        // order, so one that moved since is harmless), then by push order: deterministic.
        var work = new PriorityQueue<Node, (long Order, long Seq)>();
        long seq = 0;
        var queued = new HashSet<Node>();
        void Push(Node n)
        {
            if (n.IsErased || !n.InGraph || n.Graph != g || !queued.Add(n)) return;
            work.Enqueue(n, (n.OrderLabel, seq++));
        }
        foreach (var n in g.Nodes) Push(n);
        long applied = 0;
        var opset = ctx.Opset;
        try
        {
            while (done + applied < MaxRewrites && work.TryDequeue(out var node, out _))
            {
                queued.Remove(node);
                if (node.IsErased) continue;
                foreach (var (rule, st, order) in ordered)
                {
                    if (!rule.AppliesTo(node, opset)) continue;
                    rw.InsertionPoint = node;
                    var why = rule.TryRewrite(node, ctx);
                    rw.InsertionPoint = null;
                    if (why is not null)
                    {
                        lastFailure[(order, node)] = why;
                        continue;
                    }
                    lastFailure.Remove((order, node));
                    st.Applied++;
                    applied++;
                    var touched = rw.TakeTouched();
                    if (CleanupAfterRewrite) rw.EraseIfDead(touched);
                    AfterRewrite?.Invoke(touched);
                    foreach (var n in touched)
                    {
                        Push(n);
                        if (n.IsErased) continue;
                        foreach (var o in n.Outputs)
                            if (o is not null) foreach (var u in o.Uses) Push(u.Node);
                    }
                    break;
                }
            }
        }
        finally { rw.InsertionPoint = null; }
        if (CleanupAfterRewrite && applied > 0) rw.RemoveUnusedInitializers(g);
        rw.Finish();
        return applied;
    }
}
