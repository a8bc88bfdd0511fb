// The main graph's nodes are imported one at a time from their bytes (MainGraphNodes): the layouts a file may
// have (nodes after the other graph fields, the graph field repeated, which protobuf merges) import to the same
// model as the usual layout, and a malformed node still gets the one-line protobuf error.
using Google.Protobuf;
using OnnxOpt.GraphIR;
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.Tests;

public class StreamedImportTests
{
    private static readonly string Path = System.IO.Path.Combine(Paths.TestModels, "digits/resnet.onnx");

    private static byte[] Message(ModelProto withoutGraph, params IMessage[] graphFields)
    {
        var s = new MemoryStream();
        using (var c = new CodedOutputStream(s, leaveOpen: true))
        {
            withoutGraph.WriteTo(c);
            foreach (var g in graphFields)
            {
                c.WriteTag(7, WireFormat.WireType.LengthDelimited);
                c.WriteMessage(g);
            }
        }
        return s.ToArray();
    }

    private static (ModelProto Model, GraphProto Nodes, GraphProto Others) Parts()
    {
        var mp = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path));
        var nodes = new GraphProto();
        nodes.Node.Add(mp.Graph.Node);
        var others = mp.Graph.Clone();
        others.Node.Clear();
        var rest = mp.Clone();
        rest.Graph = null;
        return (rest, nodes, others);
    }

    [Fact]
    public void NodesAfterTheOtherGraphFieldsImportAsUsual()
    {
        var expected = TextPrinter.Print(OnnxImporter.Load(Path), TextOptions.Full);
        var (rest, nodes, others) = Parts();
        var graph = new MemoryStream();
        others.WriteTo(graph);
        nodes.WriteTo(graph);     // field 1 after fields 2..16: still one graph message
        var s = new MemoryStream();
        s.Write(Message(rest));
        using (var c = new CodedOutputStream(s, leaveOpen: true))
        {
            c.WriteTag(7, WireFormat.WireType.LengthDelimited);
            c.WriteLength((int)graph.Length);
        }
        s.Write(graph.ToArray());
        var split = MainGraphNodes.Split(s.ToArray());
        Assert.NotNull(split);
        Assert.Equal(nodes.Node.Count, split.Value.Spans.Count);
        Assert.Equal(expected, TextPrinter.Print(OnnxImporter.Parse(s.ToArray()), TextOptions.Full));
    }

    [Fact]
    public void ARepeatedGraphFieldIsMergedAsProtobufDoes()
    {
        var expected = TextPrinter.Print(OnnxImporter.Load(Path), TextOptions.Full);
        var (rest, nodes, others) = Parts();
        var bytes = Message(rest, nodes, others);
        Assert.Null(MainGraphNodes.Split(bytes));
        Assert.Equal(expected, TextPrinter.Print(OnnxImporter.Parse(bytes), TextOptions.Full));
    }

    [Fact]
    public void AMalformedNodeIsRefusedInOneLine()
    {
        var (rest, nodes, others) = Parts();
        var graph = new MemoryStream();
        nodes.WriteTo(graph);
        others.WriteTo(graph);
        var g = graph.ToArray();
        // The first node's payload: its first byte becomes a tag with wire type 7, which protobuf refuses.
        Assert.Equal(0x0A, g[0]);
        var payload = 1;
        while (g[payload] >= 0x80) payload++;
        g[payload + 1] = 0x0F;
        var s = new MemoryStream();
        s.Write(Message(rest));
        using (var c = new CodedOutputStream(s, leaveOpen: true))
        {
            c.WriteTag(7, WireFormat.WireType.LengthDelimited);
            c.WriteLength(g.Length);
        }
        s.Write(g);
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Parse(s.ToArray(), source: "bad.onnx"));
        Assert.StartsWith("bad.onnx: not a valid ONNX model (protobuf parse failed", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
