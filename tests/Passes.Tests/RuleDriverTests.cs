// The rule layer: the greedy driver (worklist, fixed point, iteration and rewrite bounds, converged flag,
// per-rule applied/failed counts with reasons), root ops, opset ranges and benefits; and the rules the
// passes are built from saying why they did not match.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class RuleDriverTests
{
    private static Model Chain(params string[] ops)
    {
        var b = new GraphBuilder("chain");
        var x = b.Input("x", DataType.Float, "N", 4);
        Value h = x;
        foreach (var op in ops) h = b.Node(op, [h]);
        b.Output(h);
        return b.Build();
    }

    /// <summary>Renames one op type to another (a rewrite that a second rule can undo).</summary>
    private sealed class Retype(string from, string to, int benefit = 1, long minOpset = 1) : RewriteRule<Node>
    {
        public override string Name => $"{from}-to-{to}";
        public override IReadOnlyList<string> RootOps { get; } = [from];
        public override int Benefit => benefit;
        public override long MinOpset => minOpset;
        public override RuleMatch<Node> Match(Node n, RuleContext ctx) =>
            n.Input(0)?.Producer is { OpType: "Sigmoid" } ? new NoMatch("after a Sigmoid") : n;
        public override void Apply(Node n, Node m, RuleContext ctx) => ctx.Rewriter.SetOpType(n, to);
    }

    private static (Model, DriverResult, PassContext) Drive(Model m, GreedyRewriteDriver d)
    {
        var ctx = new PassContext(m);
        return (m, d.Run(new RuleContext(ctx)), ctx);
    }

    [Fact]
    public void RunsToAFixedPointAndCountsWhyMatchesFailed()
    {
        var (m, r, ctx) = Drive(Chain("Relu", "Sigmoid", "Relu", "Tanh"), new GreedyRewriteDriver([new Retype("Relu", "Elu")]));
        Assert.Equal(["Elu", "Sigmoid", "Relu", "Tanh"], m.Graph.Nodes.Select(n => n.OpType));
        Assert.True(r.Converged);
        Assert.Equal(2, r.Iterations);
        var s = Assert.Single(r.Rules);
        Assert.Equal(1, s.Applied);
        Assert.Equal(1, s.Failures["after a Sigmoid"]); // the same node retried in iteration 2 counts once
        Assert.Same(s, Assert.Single(ctx.Stats.Rules));
    }

    [Fact]
    public void RulesThatUndoEachOtherStopAtTheIterationBound()
    {
        var d = new GreedyRewriteDriver([new Retype("Relu", "Elu"), new Retype("Elu", "Relu")]) { MaxIterations = 3, MaxRewrites = 50 };
        var (_, r, _) = Drive(Chain("Relu"), d);
        Assert.False(r.Converged);
        Assert.True(r.Rewrites <= 50);
        Assert.Equal(50, r.Rewrites); // the rewrite bound, reached in the first iteration's worklist
    }

    [Fact]
    public void HigherBenefitIsTriedFirstAndOpsetRangesAreRespected()
    {
        var (m, _, _) = Drive(Chain("Relu"), new GreedyRewriteDriver([new Retype("Relu", "Elu"), new Retype("Relu", "Selu", benefit: 5)]));
        Assert.Equal("Selu", m.Graph.Nodes[0].OpType);
        var (m2, r2, _) = Drive(Chain("Relu"), new GreedyRewriteDriver([new Retype("Relu", "Elu", minOpset: 99)]));
        Assert.Equal("Relu", m2.Graph.Nodes[0].OpType);
        Assert.Equal(0, r2.Rules[0].Applied);
        Assert.Empty(r2.Rules[0].Failures); // never tried: the model's opset is outside the rule's range
    }

    [Fact]
    public void WorklistRevisitsNodesARewriteMadeMatchable()
    {
        // Identity -> Identity -> Relu: removing the first makes the second's input a graph input; both go in one iteration.
        var (m, r, _) = Drive(Chain("Identity", "Identity", "Relu"), new GreedyRewriteDriver(NoOpRule.All) { MaxIterations = 1 });
        Assert.Equal(["Relu"], m.Graph.Nodes.Select(n => n.OpType));
        Assert.Equal(2, r.Rewrites);
        Assert.Empty(Verifier.Check(m));
    }

    /// <summary>Fuses Relu(Neg(x)) into one new node: an insertion, a replace and two nodes left dead.</summary>
    private sealed class FuseNegRelu : RewriteRule<Node>
    {
        public override string Name => "fuse-neg-relu";
        public override IReadOnlyList<string> RootOps { get; } = ["Relu"];
        public override RuleMatch<Node> Match(Node n, RuleContext ctx) =>
            n.Input(0)?.Producer is { OpType: "Neg" } neg && neg.Output().Uses.Count == 1 ? neg : new NoMatch("no Neg");
        public override void Apply(Node n, Node neg, RuleContext ctx)
        {
            var f = ctx.Rewriter.Insert(n.Graph, "NegRelu", [neg.Input(0)], "negrelu");
            ctx.Rewriter.Replace(n.Output(), f.Output());
        }
    }

    [Fact]
    public void RewritesKeepTheOrderWithoutResortingAndCleanUpOnlyWhatTheyLeftDead()
    {
        // Neg -> Relu -> Sigmoid -> Neg -> Relu: each pair fuses; the new node stands where its root stood
        // (the insertion point), the old pair is erased by the driver's local clean-up, nothing else moves.
        var m = Chain("Neg", "Relu", "Sigmoid", "Neg", "Relu");
        var sigmoid = m.Graph.Nodes[2];
        var label = sigmoid.OrderLabel;
        var (_, r, _) = Drive(m, new GreedyRewriteDriver([new FuseNegRelu()]) { CleanupAfterRewrite = true });
        Assert.Equal(["NegRelu", "Sigmoid", "NegRelu"], m.Graph.Nodes.Select(n => n.OpType));
        Assert.Equal(2, r.Rewrites);
        Assert.Equal(label, sigmoid.OrderLabel); // never re-sorted or relabelled
        Assert.Empty(Verifier.Check(m));
    }

    [Fact]
    public void DriverWorkGrowsLinearlyWithTheGraph()
    {
        // Rule attempts (matches tried) per node stay constant as the chain grows: the worklist revisits only
        // what a rewrite touched. 2,000 and 16,000 nodes, half of them Identity.
        long Attempts(int n)
        {
            var m = Chain(Enumerable.Range(0, n).Select(i => i % 2 == 0 ? "Relu" : "Identity").ToArray());
            var (_, r, _) = Drive(m, new GreedyRewriteDriver(NoOpRule.All) { MaxIterations = 1 });
            Assert.Equal(n / 2, r.Rewrites);
            Assert.Equal(n / 2, m.Graph.NodeCount);
            Assert.Empty(Verifier.Check(m));
            return r.Rewrites + r.Rules.Sum(s => s.Failures.Values.Sum());
        }
        Assert.Equal(Attempts(2_000) * 8, Attempts(16_000));
    }

    [Theory]
    [InlineData("x", "t = Transpose <perm: ints = [1, 0]> (x)", "not an identity permutation")]
    [InlineData("x", "t = LeakyRelu <alpha: float = 0.2> (x)", "alpha is not 1")]
    [InlineData("x", "t = Cast <to: int = 7> (x)", "casts to another type")]
    [InlineData("x", "t = Clip (x, lo)", "has a bound")]
    public void NoOpRulesSayWhyANodeIsNotANoOp(string _, string line, string reason)
    {
        var m = TextParser.ParseModel($$"""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[4,4] x) => (float[4,4] y)
               <float lo = {0}>
            {
               {{line}}
               y = Relu (t)
            }
            """);
        ShapeInference.Run(m);
        var ctx = new PassContext(m);
        var r = new GreedyRewriteDriver(NoOpRule.All).Run(new RuleContext(ctx));
        Assert.Equal(0, r.Rewrites);
        Assert.Contains(r.Rules, s => s.Failures.ContainsKey(reason));
    }

    [Fact]
    public void FuseBiasAndFoldBnReportTheirRulesInTheirPassRuns()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,4] x) => (float[N,3] y)
               <float[3,4] w = {1,0,0,0, 0,1,0,0, 0,0,1,0}, float[3] c = {1,2,3}, float[3] d = {1,1,1}>
            {
               h = Gemm <transB: int = 1> (x, w, c)
               e = Relu (h)
               y = Add (e, d)
            }
            """);
        var (_, runs) = Run(m, "fuse-bias");
        var rule = Assert.Single(runs[0].Stats.Rules);
        Assert.Equal("fuse-bias", rule.Rule);
        Assert.Equal(0, rule.Applied);
        Assert.Equal(1, rule.Failures["Relu has no bias to fold into"]);
    }
}
