// fuse{layernorm=true,gelu=true,hardswish=true,softmax-guard=true}: decomposed activations and norms become the
// standard ops that ONNX Runtime runs as one kernel, exactly (the optimize driver checks the result against the
// original in ORT), and masked attention Softmaxes are kept out of denormal arithmetic:
//   LayerNormFusion  ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add -> LayerNormalization   (opset >= 17)
//   GeluFusion       x * 0.5 * (1 + Erf(x / sqrt 2)) and its tanh form -> Gelu                  (opset >= 20)
//   HardSwishFusion  x * Clip(x + 3, 0, 6) / 6 and its variants -> HardSwish  (opset >= 14; from 6: x * HardSigmoid(x))
//   SoftmaxGuard     masked attention Softmax(X) -> Softmax(Max(X, rowmax(X) - 80)): no denormal exp (opset >= 8)
// The opset is never raised here: below a rule's opset its patterns are counted and the note says which opset
// fuses them (optimize --opset N, or upgrade-opset{version=N} first in the pipeline).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record FuseOptions
{
    [Option("layernorm", "decomposed LayerNorm -> LayerNormalization (opset 17)")]
    public bool LayerNorm { get; init; } = true;
    [Option("gelu", "Erf and Tanh GELU -> Gelu (opset 20)")]
    public bool Gelu { get; init; } = true;
    [Option("hardswish", "x * Clip(x + 3, 0, 6) / 6 -> HardSwish (opset 14; x * HardSigmoid(x) from opset 6)")]
    public bool HardSwish { get; init; } = true;
    [Option("softmax-guard", "masked attention Softmax(X) -> Softmax(Max(X, rowmax(X) - 80)): the masked keys' "
        + "exponentials stay out of denormal arithmetic (equal up to float rounding)")]
    public bool SoftmaxGuard { get; init; } = true;
}

public sealed class Fuse : Pass<FuseOptions>
{
    public override string Name => "fuse";
    public override string Summary =>
        "decomposed LayerNorm, GELU and hard-swish -> LayerNormalization, Gelu and HardSwish (exact)";
    public override bool VisitsSubgraphs => true;

    public override void Run(PassContext ctx, FuseOptions o)
    {
        var rules = new List<(RewriteRule Rule, CounterKey What)>();
        if (o.LayerNorm) rules.Add((new LayerNormFusion(), Counters.Fuse.LayerNorms));
        if (o.Gelu) rules.Add((new GeluFusion(), Counters.Fuse.Gelus));
        if (o.HardSwish) rules.Add((new HardSwishFusion(), Counters.Fuse.HardSwishes));
        if (o.SoftmaxGuard) rules.Add((new SoftmaxGuard(), Counters.Fuse.SoftmaxGuards));
        ShapeInference.Run(ctx.Model);
        var rc = new RuleContext(ctx);
        var opset = rc.Opset;
        foreach (var (rule, _) in rules.Where(r => opset < r.Rule.MinOpset))
        {
            var found = Candidates(rule, ctx.Model, rc);
            if (found > 0)
                ctx.Stats.Notes.Add($"{found} matches of {rule.Name} not fused: the model is at opset {opset} and "
                    + $"the fused op needs {rule.MinOpset} (optimize --opset {rule.MinOpset}, or "
                    + $"upgrade-opset{{version={rule.MinOpset}}} before fuse)");
        }
        var usable = rules.Where(r => opset >= r.Rule.MinOpset).ToList();
        if (usable.Count == 0) return;
        var result = new GreedyRewriteDriver(usable.Select(r => r.Rule).ToList()) { VisitSubgraphs = true }.Run(rc);
        foreach (var (rule, what) in usable)
            ctx.Stats.Count(what, result.Rules.FirstOrDefault(s => s.Rule == rule.Name)?.Applied ?? 0);
        foreach (var g in ctx.Model.Graph.SelfAndSubgraphs()) ctx.Rewriter.RemoveUnusedInitializers(g);
        ShapeInference.InferNodes(ctx.Model, ctx.Model.Graph.Nodes);
    }

    private static int Candidates(RewriteRule rule, Model m, RuleContext rc) =>
        m.Graph.SelfAndSubgraphs().SelectMany(g => g.Nodes)
            .Count(n => n.IsStandard && rule.RootOps.Contains(n.OpType) && rule.Matches(n, rc));
}
