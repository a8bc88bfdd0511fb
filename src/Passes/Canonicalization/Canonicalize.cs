// canonicalize: simplifications that never change what the model computes, run to a bounded fixed
// point (max-iterations; the report says whether it converged). Visits subgraphs.
//  - no-ops (NoOpRules, through the greedy rule driver): Identity, inference Dropout, same-type Cast,
//    identity Transpose, shape-preserving Reshape, zero Pad, PRelu slope 1, LeakyRelu alpha 1, an
//    unbounded Clip                                                    ->  uses of y read x
//  - Constant nodes become initializers; Shape(x) with a static shape becomes an int64 initializer; so do
//    Gather/Slice of a Shape over its static dims, and a Reshape's computed target becomes a constant when its
//    unknown entries are the input's own dims (0) or one inferable dim (-1) (PartialShapeRules);
//  - constant folding: every node whose inputs are all constants (no subgraphs, no random ops) is
//    evaluated once in ONNX Runtime and replaced by an initializer of the same name (skipped when the
//    result would be larger than max-growth times its inputs, e.g. Expand/Tile);
//  - dead code: nodes whose outputs nothing reads, and unused initializers, are removed.
// Graph inputs and outputs keep their names; a graph output that is a pure alias of an input stays.
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;

namespace OnnxOpt.Passes;

public sealed record CanonicalizeOptions
{
    [Option("max-iterations", "bound on rounds of the fixed-point loop", Min = 1)]
    public long MaxIterations { get; init; } = 10;
    [Option("fold-constants", "evaluate nodes whose inputs are all constant")]
    public bool FoldConstants { get; init; } = true;
    [Option("max-growth", "skip folding a node whose output is larger than this many times its inputs (+1 KB)",
        Min = 0)]
    public double MaxGrowth { get; init; } = 4.0;
}

public sealed class Canonicalize : Pass<CanonicalizeOptions>
{
    public override string Name => "canonicalize";
    public override string Summary =>
        "remove no-ops (Identity, Dropout, same-type Cast, ...), fold constants in ORT, remove dead code";
    public override void Run(PassContext ctx, CanonicalizeOptions o)
    {
        var rw = ctx.Rewriter;
        var max = o.MaxIterations;
        bool converged = false;
        int rounds = 0;
        while (rounds < max)
        {
            rounds++;
            var before = rw.Changes;
            ShapeInference.Run(ctx.Model);
            var noOps = new GreedyRewriteDriver(NoOpRule.All)
            {
                VisitSubgraphs = true,
                MaxIterations = 1
            }.Run(new RuleContext(ctx));
            ctx.Stats.Count(Counters.Canonicalize.NoOpsRemoved, noOps.Rewrites);
            foreach (var g in ctx.Model.Graph.SelfAndSubgraphs().ToList())
            {
                ctx.Stats.Count(Counters.Canonicalize.ConstantsToInitializers,
                    ConstantsToInitializers(g, new RuleContext(ctx)));
                ctx.Stats.Count(Counters.Canonicalize.ShapesResolved, ResolveShapes(g, new RuleContext(ctx)));
                if (o.FoldConstants)
                    ctx.Stats.Count(Counters.Canonicalize.NodesFolded, FoldConstants(ctx.Model, g, rw, o.MaxGrowth));
                ctx.Stats.Count(Counters.Canonicalize.DeadNodesRemoved, rw.RemoveDeadNodes(g));
                ctx.Stats.Count(Counters.Canonicalize.UnusedInitializersRemoved, rw.RemoveUnusedInitializers(g));
            }
            rw.Finish();
            if (rw.Changes == before) { converged = true; break; }
        }
        ctx.Stats.Count(Counters.Canonicalize.Iterations, rounds);
        ctx.Stats.Count(Counters.Canonicalize.Converged, converged ? 1 : 0);
    }

    /// <summary>Constant nodes, then Shape nodes of static shapes, of one graph become initializers (the two
    /// rules in ConstantRules.cs, one sweep each in graph order).</summary>
    private static long ConstantsToInitializers(Graph g, RuleContext rc) =>
        new GreedyRewriteDriver([new ConstantToInitializerRule()]) { OnlyGraph = g, MaxIterations = 1 }
            .Run(rc).Rewrites
        + new GreedyRewriteDriver([new StaticShapeRule()]) { OnlyGraph = g, MaxIterations = 1 }.Run(rc).Rewrites;

    /// <summary>The partial-shape rules (PartialShapeRules.cs) over one graph, one sweep in graph order.</summary>
    private static long ResolveShapes(Graph g, RuleContext rc) =>
        new GreedyRewriteDriver([new StaticShapeElementsRule(), new ReshapeTargetRule()])
        {
            OnlyGraph = g,
            MaxIterations = 1,
        }.Run(rc).Rewrites;

    private static int FoldConstants(Model model, Graph g, Rewriter rw, double maxGrowth)
    {
        var constant = new HashSet<Value>(g.Initializers.Where(v => !v.IsGraphInput));
        var foldable = new List<Node>();
        foreach (var n in g.Nodes)
        {
            if (!n.IsStandard || n.Inputs.Count == 0 || n.Subgraphs().Any() || OpTraits.Has(n,
                OpTrait.Random)) continue;
            if (n.Inputs.All(i => i is null || constant.Contains(i)) && n.Inputs.Any(i => i is not null))
            {
                foldable.Add(n);
                foreach (var o in n.Outputs) if (o is not null) constant.Add(o);
            }
        }
        // Values to materialize: outputs of foldable nodes read by non-foldable nodes (or graph outputs).
        var set = foldable.ToHashSet();
        var wanted = foldable.SelectMany(n => n.Outputs).Where(o => o is not null && !o.IsGraphOutput &&
            o.Uses.Any(u => !set.Contains(u.Node))).Select(o => o!).ToList();
        if (wanted.Count == 0) return 0;

        var sub = new Model { IrVersion = model.IrVersion };
        sub.OpsetImports.AddRange(model.OpsetImports);
        var sg = sub.Graph;
        foreach (var v in foldable.SelectMany(n => n.Inputs).Where(v => v is not null && v.Producer is null).Distinct())
            sg.AddInitializer(v!.Initializer!);
        foreach (var n in foldable)
        {
            var copy = sg.AddNode(n.OpType, n.Inputs.Select(i => i is null ? null : sg.Find(i.Name)),
                n.Outputs.Select(o => o?.Name ?? ""), n.Domain);
            copy.Attributes.AddRange(n.Attributes);
        }
        foreach (var v in wanted) sg.AddOutput(sg.Find(v.Name)!);
        Tensor[] results;
        try
        {
            using var s = InferenceSession.FromModel(sub,
                new SessionSettings { Optimization = GraphOptimization.Disabled });
            results = s.Run(new Dictionary<string, Tensor>());
        }
        catch (Exception e) when (e is Runtime.OrtException or OnnxModelException)
        {
            return 0; // ORT cannot evaluate it (e.g. an unsupported type): leave the nodes as they are
        }
        int folded = 0;
        for (int i = 0; i < wanted.Count; i++)
        {
            var v = wanted[i];
            var inputBytes = v.Producer!.Inputs.Where(x => x is not null).Sum(x => Rewriter.ConstantOf(x)?.ByteSize ?? 0);
            if (results[i].ByteSize > maxGrowth * inputBytes + 1024) continue;
            ConstantToInitializerRule.Swap(g, rw, v, results[i]);
            folded++;
        }
        return folded;
    }
}
