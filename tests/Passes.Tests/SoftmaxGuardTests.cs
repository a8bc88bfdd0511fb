// guard-masked-softmax (fuse): a masked attention Softmax reads Max(X, rowmax(X) - 80), equal in ORT to the original
// on masked inputs, only where AttentionView finds a mask, once, and the attention view still reads through it.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class SoftmaxGuardTests
{
    private static Model Load(string name) => OnnxImporter.Load(Paths.Model($"transformers/{name}.onnx"));
    private const string GuardOnly = "fuse{layernorm=false,gelu=false,hardswish=false}";

    [Theory]
    [InlineData("bert_op11")]
    [InlineData("bert_op13")]
    public void MaskedAttentionSoftmaxesAreGuardedAndEqual(string name)
    {
        var m = Run(Load(name), "canonicalize").After;
        var (after, runs) = Run(m, GuardOnly);
        Assert.Equal(2, Counter(runs, Counters.Fuse.SoftmaxGuards));
        foreach (var sm in after.Graph.Nodes.Where(n => n.OpType == "Softmax"))
            Assert.True(SoftmaxGuard.IsGuard(sm.Input(0)!.Producer), $"{sm} reads {sm.Input(0)!.Producer}");
        // Random masks of 0/1: masked keys sit 10,000 below their row's max, under the guard's clamp.
        var report = AssertEquivalent(m, after, samples: 8);
        Assert.All(report.Outputs, o => Assert.True(o.MaxAbsError < 1e-5, $"{o.Name}: {o.MaxAbsError}"));
        // The attention blocks are still found (through the guard), with their masks.
        var views = AttentionView.All(after.Graph);
        Assert.Equal(2, views.Count);
        Assert.All(views, v => Assert.NotNull(v.Mask));
        Assert.Equal(2, TransformerSummary.Of(after.Graph)?.Layers);
        // Once: a second fuse finds every Softmax guarded.
        var (again, runs2) = Run(after, GuardOnly);
        Assert.Equal(0, Counter(runs2, Counters.Fuse.SoftmaxGuards));
        Assert.Equal(Count(after, "Max"), Count(again, "Max"));
    }

    [Fact]
    public void SoftmaxWithoutAMaskIsLeftAlone()
    {
        // The ViT's attention has no mask: no key is far below its row's max, the guard would only cost.
        var (after, runs) = Run(Run(Load("vit_op17"), "canonicalize").After, GuardOnly);
        Assert.Equal(0, Counter(runs, Counters.Fuse.SoftmaxGuards));
        Assert.Equal(0, Count(after, "Max"));
        var (off, offRuns) = Run(Run(Load("bert_op13"), "canonicalize").After, GuardOnly.TrimEnd('}')
            + ",softmax-guard=false}");
        Assert.Equal(0, Counter(offRuns, Counters.Fuse.SoftmaxGuards));
        Assert.Equal(0, Count(off, "ReduceMax"));
    }
}
