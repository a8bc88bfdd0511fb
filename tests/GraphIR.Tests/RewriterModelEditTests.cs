// The rewriter's model-level edits: the IR version and the main graph change only through it, each counted
// as one change.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class RewriterModelEditTests
{
    private static Model Chain()
    {
        var b = new GraphBuilder("chain");
        var x = b.Input("x", DataType.Float, 1, 4);
        b.Output(b.Node("Relu", [b.Node("Relu", [x])]));
        return b.Build();
    }

    [Fact]
    public void ReplaceGraphPutsASnapshotBackAsTheMainGraph()
    {
        var m = Chain();
        var snapshot = m.Clone();
        var rw = new Rewriter(m);
        var first = m.Graph.Nodes[0];
        rw.Replace(first.Output(), first.Input(0)!);
        rw.Erase(first);
        Assert.Single(m.Graph.Nodes);
        var changes = rw.Changes;
        rw.ReplaceGraph(snapshot.Graph);
        Assert.Equal(changes + 1, rw.Changes);
        Assert.Equal(TextPrinter.Print(snapshot), TextPrinter.Print(m));
        Assert.Empty(Verifier.Check(m));
        var sub = new Graph("body") { Parent = m.Graph };
        Assert.Throws<InvalidOperationException>(() => rw.ReplaceGraph(sub));
    }

    [Fact]
    public void SetIrVersionCountsAChangeOnlyWhenItChanges()
    {
        var m = Chain();
        var rw = new Rewriter(m);
        var changes = rw.Changes;
        rw.SetIrVersion(m.IrVersion);
        Assert.Equal(changes, rw.Changes);
        rw.SetIrVersion(m.IrVersion + 1);
        Assert.Equal(changes + 1, rw.Changes);
    }
}
