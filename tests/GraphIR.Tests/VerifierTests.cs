// The verifier's refusals (and the importer's, which refuses the same problems in files).
using Google.Protobuf;
using OnnxOpt.GraphIR;
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.Tests;

public class VerifierTests
{
    private static Model Small() => TextParser.ParseModel("""
        <ir_version: 8, opset_import: ["" : 13]>
        g (float[2] x) => (float[2] z)
        {
           [n1] y = Relu (x)
           [n2] z = Sigmoid (y)
        }
        """);

    [Fact]
    public void WellFormedModelPasses() => Assert.Empty(Verifier.Check(Small()));

    [Fact]
    public void NodeOrderBrokenIsReportedWithBothNodes()
    {
        var m = Small();
        m.Graph.SetNodeOrder(m.Graph.Nodes.Reverse().ToList());
        var e = Assert.Single(Verifier.Check(m));
        Assert.Contains("'n2'", e);
        Assert.Contains("before node 'n1'", e);
    }

    [Fact]
    public void UseListOutOfSyncIsReported()
    {
        var m = Small();
        var n2 = m.Graph.Nodes[1];
        n2.InputList[0] = m.Graph.Inputs[0]; // bypasses the use-list bookkeeping
        Assert.Contains(Verifier.Check(m), e => e.Contains("does not list the node among its uses"));
    }

    [Fact]
    public void GraphOutputNotProducedIsReported()
    {
        var m = Small();
        var g = m.Graph;
        g.ClearOutputs();
        g.AddOutput(new Value(g, "ghost"));
        Assert.Contains(Verifier.Check(m), e => e.Contains("graph output 'ghost'"));
    }

    private static byte[] ProtoModel(Action<GraphProto> edit)
    {
        var g = new GraphProto { Name = "g" };
        g.Input.Add(new ValueInfoProto { Name = "x", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
        g.Output.Add(new ValueInfoProto { Name = "z" });
        edit(g);
        var m = new ModelProto { IrVersion = 8, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return m.ToByteArray();
    }

    private static NodeProto Node(string op, string name, string[] ins, string[] outs)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.Add(ins);
        n.Output.Add(outs);
        return n;
    }

    [Fact]
    public void ImporterRefusesACycleNamingANode()
    {
        var bytes = ProtoModel(g =>
        {
            g.Node.Add(Node("Add", "a", ["x", "w"], ["y"]));
            g.Node.Add(Node("Relu", "b", ["y"], ["w"]));
            g.Node.Add(Node("Relu", "c", ["y"], ["z"]));
        });
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Parse(bytes));
        Assert.Contains("cycle", e.Message);
        Assert.Matches("node '(a|b)'", e.Message);
    }

    [Fact]
    public void ImporterRefusesADanglingInput()
    {
        var bytes = ProtoModel(g => g.Node.Add(Node("Add", "add0", ["x", "nowhere"], ["z"])));
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Parse(bytes));
        Assert.Contains("'add0'", e.Message);
        Assert.Contains("'nowhere'", e.Message);
        Assert.Contains("dangling", e.Message);
    }

    [Fact]
    public void ImporterRefusesTwoProducers()
    {
        var bytes = ProtoModel(g =>
        {
            g.Node.Add(Node("Relu", "r1", ["x"], ["z"]));
            g.Node.Add(Node("Relu", "r2", ["x"], ["z"]));
        });
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Parse(bytes));
        Assert.Contains("more than one producer", e.Message);
        Assert.Contains("'r2'", e.Message);
    }

    [Fact]
    public void ImporterRefusesUnproducedGraphOutput()
    {
        var bytes = ProtoModel(g => g.Node.Add(Node("Relu", "r1", ["x"], ["y"])));
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Parse(bytes));
        Assert.Contains("graph output 'z'", e.Message);
    }

    [Fact]
    public void ImporterRefusesUnknownOpset()
    {
        var m = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "g" } };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 999 });
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Parse(m.ToByteArray()));
        Assert.Contains("unknown opset", e.Message);
        Assert.Contains("999", e.Message);
    }

    [Fact]
    public void ImporterRefusesTruncatedProtobuf()
    {
        var bytes = OnnxExporter.ToBytes(Small());
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Parse(bytes.AsMemory(0, bytes.Length - 7)));
        Assert.Contains("protobuf parse failed", e.Message);
    }

    [Fact]
    public void ImporterRefusesDataOfTheWrongSize()
    {
        var bytes = ProtoModel(g =>
        {
            g.Initializer.Add(new TensorProto { Name = "w", DataType = 1, Dims = { 4 }, RawData = ByteString.CopyFrom(new byte[12]) });
            g.Node.Add(Node("Add", "a", ["x", "w"], ["z"]));
        });
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Parse(bytes));
        Assert.Contains("initializer 'w'", e.Message);
        Assert.Contains("needs 16", e.Message);
    }

    [Fact]
    public void UnknownFieldsAndDomainsSurviveTheRoundTrip()
    {
        var g = new GraphProto { Name = "g" };
        g.Input.Add(new ValueInfoProto { Name = "x" });
        g.Output.Add(new ValueInfoProto { Name = "z" });
        g.Node.Add(Node("Frobnicate", "f", ["x"], ["z"]));
        g.Node[0].Domain = "com.example";
        var m = new ModelProto { IrVersion = 13, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 21 });
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.example", Version = 3 });
        // A field from a future schema version (number 99, varint 42) on the model and on the node.
        var future = new byte[] { 0x98, 0x06, 42 };
        var bytes = m.ToByteArray().Concat(future).ToArray();
        var model = OnnxImporter.Parse(bytes);
        Assert.NotNull(model.UnknownFields);
        var back = OnnxExporter.ToBytes(model);
        Assert.True(back.AsSpan().EndsWith(future), "the unknown field was dropped");
        Assert.Equal("com.example", OnnxImporter.Parse(back).Graph.Nodes[0].Domain);
    }
}
