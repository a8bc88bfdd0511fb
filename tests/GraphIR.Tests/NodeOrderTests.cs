// The graph keeps topological order by construction (Graph.cs header): insertion at the rewriter's
// insertion point, a reader moved after a later producer with its dependents, passing cycles left to the
// sort, and a whole sort only when an edit could not be repaired locally. After every edit the verifier
// (which checks order) must find nothing.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class NodeOrderTests
{
    /// <summary>x -> a -> b -> c -> y, plus an independent z = Neg(x) at the end.</summary>
    private static (Model M, Node A, Node B, Node C, Node Z) Chain()
    {
        var gb = new GraphBuilder("order");
        var x = gb.Input("x", DataType.Float, "N", 4);
        var a = gb.Node("Relu", [x]);
        var b = gb.Node("Sigmoid", [a]);
        var c = gb.Node("Tanh", [b]);
        var z = gb.Node("Neg", [x]);
        gb.Output(c);
        gb.Output(z);
        var m = gb.Build();
        return (m, a.Producer!, b.Producer!, c.Producer!, z.Producer!);
    }

    private static string Order(Model m) => string.Join(" ", m.Graph.Nodes.Select(n => n.OpType));

    [Fact]
    public void ReadingALaterValueMovesTheReaderAndItsDependentsAfterItsProducer()
    {
        var (m, _, b, c, z) = Chain();
        Assert.Equal("Relu Sigmoid Tanh Neg", Order(m));
        // Sigmoid now reads Neg's output, which comes later: Sigmoid and Tanh (which reads it) move after Neg.
        m.Graph.SetInput(b, 0, z.Output());
        Assert.Equal("Relu Neg Sigmoid Tanh", Order(m));
        Assert.Empty(Verifier.Check(m));
        Assert.False(m.Graph.OrderMayBeBroken);
        Assert.True(Graph.Precedes(z, b) && Graph.Precedes(b, c));
    }

    [Fact]
    public void RewriterInsertsAtTheInsertionPointWhenTheInputsAllowElseAtTheEnd()
    {
        var (m, a, b, c, z) = Chain();
        var rw = new Rewriter(m) { InsertionPoint = b };
        var early = rw.Insert(m.Graph, "Abs", [a.Output()], "early");
        var late = rw.Insert(m.Graph, "Abs", [z.Output()], "late");
        Assert.Equal("Relu Abs Sigmoid Tanh Neg Abs", Order(m));
        Assert.Same(early, m.Graph.Nodes[1]);
        Assert.Same(late, m.Graph.Nodes[^1]);
        rw.Replace(b.Output(), early.Output());
        Assert.Empty(Verifier.Check(m));
        _ = c;
    }

    [Fact]
    public void APassingCycleIsLeftToTheSortAndAStandingOneIsNamed()
    {
        var (m, a, b, _, _) = Chain();
        // Relu reads Sigmoid's output (a cycle), then reads x again: the sort restores a valid order.
        m.Graph.SetInput(a, 0, b.Output());
        Assert.True(m.Graph.OrderMayBeBroken);
        m.Graph.SetInput(a, 0, m.Graph.Inputs[0]);
        new Rewriter(m).Finish();
        Assert.False(m.Graph.OrderMayBeBroken);
        Assert.Empty(Verifier.Check(m));

        m.Graph.SetInput(a, 0, b.Output());
        var e = Assert.Throws<OnnxModelException>(() => new Rewriter(m).Finish());
        Assert.Contains("cycle", e.Message);
    }

    [Fact]
    public void ManyInsertionsAtOnePlaceRelabelAndKeepTheOrder()
    {
        var (m, a, b, _, _) = Chain();
        var rw = new Rewriter(m) { InsertionPoint = b };
        var prev = a.Output();
        // 200 insertions between Relu and Sigmoid exhaust the label gap several times.
        for (int i = 0; i < 200; i++) prev = rw.Insert(m.Graph, "Abs", [prev], "abs").Output();
        rw.SetInput(b, 0, prev);
        Assert.Empty(Verifier.Check(m));
        var nodes = m.Graph.Nodes;
        for (int i = 1; i < nodes.Count; i++) Assert.True(nodes[i - 1].OrderLabel < nodes[i].OrderLabel);
        Assert.Equal(204, m.Graph.NodeCount);
        Assert.Equal(2, m.Graph.PositionOf(nodes[2]));
    }

    [Fact]
    public void IteratingNodesWhileErasingSeesTheListAsItWas()
    {
        var (m, _, _, _, z) = Chain();
        var rw = new Rewriter(m);
        int seen = 0;
        foreach (var n in m.Graph.Nodes)
        {
            seen++;
            if (n == z) continue;
        }
        var nodes = m.Graph.Nodes;
        m.Graph.ClearOutputs();
        m.Graph.AddOutput(z.Output());
        Assert.Equal(3, rw.RemoveDeadNodes(m.Graph));
        Assert.Equal(4, nodes.Count);
        Assert.Equal(4, seen);
        Assert.Equal("Neg", Order(m));
    }
}
