// Model.Clone: a deep copy that exports to the same bytes as the original over every backend test model
// and test model (subgraphs, functions, value_info, sparse and external tensors included), and that can be
// rewritten without touching the original; and the graph's indexes (input/output membership, node names)
// stay right through edits.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class CloneTests
{
    private static void CloneExportsTheSameBytes(IEnumerable<string> models)
    {
        var failures = new List<string>();
        int count = 0;
        foreach (var path in models)
        {
            count++;
            var m = OnnxImporter.Load(path);
            var c = m.Clone();
            if (!OnnxExporter.ToBytes(c).AsSpan().SequenceEqual(OnnxExporter.ToBytes(m))) failures.Add(path);
            else if (Verifier.Check(c) is { Count: > 0 } errs && Verifier.Check(m).Count == 0) failures.Add($"{path}: {errs[0]}");
        }
        Assert.True(count > 0, "no models found");
        Assert.True(failures.Count == 0, $"{failures.Count} of {count} clones differ:\n" + string.Join("\n", failures.Take(20)));
    }

    [OnnxTestDataFact]
    public void BackendModelsCloneToTheSameBytes() => CloneExportsTheSameBytes(ModelCorpus.OnnxBackendModels());

    [Fact]
    public void TestModelsCloneToTheSameBytes() => CloneExportsTheSameBytes(ModelCorpus.TestModels());

    [Fact]
    public void TheCopyIsIndependent()
    {
        var m = OnnxImporter.Load(Path.Combine(Paths.TestModels, "digits/resnet.onnx"));
        var before = OnnxExporter.ToBytes(m);
        var c = m.Clone();
        var relu = c.Graph.Nodes.First(n => n.OpType == "Relu");
        relu.OpType = "Sigmoid";
        relu.Name = "changed";
        c.Graph.Rename(c.Graph.Initializers[0], "renamed");
        Assert.NotSame(m.Graph.Initializers[0], c.Graph.Initializers[0]);
        Assert.Equal(before, OnnxExporter.ToBytes(m));
        Assert.NotEqual(before, OnnxExporter.ToBytes(c));
        Assert.All(c.Graph.Nodes, n => Assert.Same(c.Graph, n.Graph));
        Assert.All(c.Graph.Nodes.SelectMany(n => n.Inputs).Where(v => v is not null), v => Assert.Same(c.Graph, v!.Graph));
    }

    [Fact]
    public void SubgraphsReadTheCopysOuterValues()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (bool c, float[2] x) => (float[2] y)
            {
               y = If (c) <then_branch: graph = t () => (float[2] a) { a = Relu (x) },
                           else_branch: graph = e () => (float[2] b) { b = Neg (x) }>
            }
            """);
        var c = m.Clone();
        var x = c.Graph.Inputs[1];
        var inner = c.Graph.Nodes[0].Subgraphs().First().Nodes[0];
        Assert.Same(x, inner.Input(0));
        Assert.Contains(x.Uses, u => u.Node == inner);
        Assert.Same(c.Graph, c.Graph.Nodes[0].Subgraphs().First().Parent);
    }

    [Fact]
    public void MembershipAndNodeNameIndexesFollowEdits()
    {
        var b = new GraphBuilder("idx");
        var x = b.Input("x", DataType.Float, 2);
        var y = b.Node("Relu", [x]);
        b.Output(y);
        var g = b.Build().Graph;
        Assert.True(x.IsGraphInput);
        Assert.True(y.IsGraphOutput);
        Assert.Equal("Relu_0_1", g.FreshNodeName("Relu_0"));
        g.Nodes[0].Name = "other";
        Assert.Equal("Relu_0", g.FreshNodeName("Relu_0"));
        Assert.Equal("other_1", g.FreshNodeName("other"));
        g.ClearOutputs();
        Assert.False(y.IsGraphOutput);
        g.AddOutput(y);
        g.AddOutput(y);
        g.SetOutput(0, x);
        Assert.True(y.IsGraphOutput);
        Assert.True(x.IsGraphOutput);
        g.SetOutput(1, x);
        Assert.False(y.IsGraphOutput);
    }
}

public class ShapeConsistencyTests
{
    [Fact]
    public void TestModelsDeclareWhatTheyInfer()
    {
        foreach (var path in ModelCorpus.TestModels())
        {
            var m = OnnxImporter.Load(path);
            ShapeInference.Run(m);
            Assert.True(Verifier.CheckShapes(m) is { Count: 0 } e || false, $"{path}: {string.Join("; ", Verifier.CheckShapes(m).Take(3))}");
        }
    }

    [OnnxTestDataFact]
    public void BackendModelsDeclareWhatTheyInfer()
    {
        var failures = new List<string>();
        foreach (var path in ModelCorpus.OnnxBackendModels())
        {
            var m = OnnxImporter.Load(path);
            try
            {
                ShapeInference.Run(m);
                if (Verifier.CheckShapes(m) is { Count: > 0 } e) failures.Add($"{path}: {e[0]}");
            }
            catch (OnnxModelException) { }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} models:\n" + string.Join("\n", failures.Take(30)));
    }

    [Fact]
    public void AStaleShapeIsReportedAndRefreshFixesIt()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[1,4] x) => (float[1,2] y)
               <float[4,3] w = {1,1,1,1,1,1,1,1,1,1,1,1}, float[3,2] v = {1,1,1,1,1,1}>
            {
               h = MatMul (x, w)
               y = MatMul (h, v)
            }
            """);
        ShapeInference.Run(m);
        Assert.Empty(Verifier.CheckShapes(m));
        // Prune one column of w and the matching row of v without touching h's declared type.
        m.Graph.SetInitializerData(m.Graph.Find("w")!, Tensor.FromFloats("w", [4, 2], new float[8]));
        m.Graph.SetInitializerData(m.Graph.Find("v")!, Tensor.FromFloats("v", [2, 2], new float[4]));
        var e = Assert.Single(Verifier.CheckShapes(m));
        Assert.Equal("value 'h' (output of node MatMul -> 'h') is declared float[1,3] but infers as float[1,2]", e);
        ShapeInference.Refresh(m);
        Assert.Equal("[1,2]", m.Graph.Find("h")!.Shape!.ToString());
        Assert.Empty(Verifier.CheckShapes(m));
    }
}
