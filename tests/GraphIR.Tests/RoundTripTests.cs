// Lossless round trip over every model we can find: import -> export is a fixed point, keeps every
// protobuf field (tensor data compared by value, since typed fields become raw_data), and the text
// form survives print -> parse -> print.
using Google.Protobuf;
using OnnxOpt.GraphIR;
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.Tests;

public class RoundTripTests
{
    private static void ForEachModel(Action<string> check, IEnumerable<string> models)
    {
        var failures = new List<string>();
        int count = 0;
        foreach (var path in models)
        {
            count++;
            try { check(path); }
            catch (Exception e) { failures.Add($"{path}: {e.GetType().Name}: {e.Message.Split('\n')[0]}"); }
        }
        Assert.True(count > 0, "no models found");
        Assert.True(failures.Count == 0, $"{failures.Count} of {count} models failed:\n" + string.Join("\n", failures.Take(40)));
        Console.WriteLine($"checked {count} models");
    }

    [OnnxTestDataFact]
    public void BackendModels_ExportIsLosslessAndAFixedPoint() => ForEachModel(CheckLossless, ModelCorpus.OnnxBackendModels());

    [Fact]
    public void TestModels_ExportIsLosslessAndAFixedPoint() => ForEachModel(CheckLossless, ModelCorpus.TestModels());

    [OnnxTestDataFact]
    public void BackendModels_TextPrintParsePrintIsIdentity() => ForEachModel(CheckText, ModelCorpus.OnnxBackendModels());

    [Fact]
    public void TestModels_TextPrintParsePrintIsIdentity() => ForEachModel(CheckText, ModelCorpus.TestModels());

    private static void CheckLossless(string path)
    {
        var original = File.ReadAllBytes(path);
        var m1 = OnnxImporter.Load(path);
        Assert.Empty(Verifier.Check(m1));
        var bytes1 = OnnxExporter.ToBytes(m1);
        Assert.True(bytes1.AsSpan().SequenceEqual(OnnxExporter.ToBytesAsOneMessage(m1)),
            "the streamed export differs from the whole message's serialization");
        var m2 = OnnxImporter.Parse(bytes1, Path.GetDirectoryName(path));
        var bytes2 = OnnxExporter.ToBytes(m2);
        Assert.True(bytes1.AsSpan().SequenceEqual(bytes2), "second export differs from the first");
        Assert.Equal(TextPrinter.Print(m1, TextOptions.Full), TextPrinter.Print(m2, TextOptions.Full));

        var a = ModelProto.Parser.ParseFrom(original);
        var b = ModelProto.Parser.ParseFrom(bytes1);
        ProtoNormalizer.Normalize(a);
        ProtoNormalizer.Normalize(b);
        if (!a.Equals(b))
            throw new Xunit.Sdk.XunitException("exported protobuf differs from the original: " + FirstDifference(a.ToString(), b.ToString()));
    }

    private static string FirstDifference(string a, string b)
    {
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i]) i++;
        var s = Math.Max(0, i - 60);
        return $"original ...{a.Substring(s, Math.Min(160, a.Length - s))}... vs ours ...{b.Substring(s, Math.Min(160, b.Length - s))}...";
    }

    private static void CheckText(string path)
    {
        var m = OnnxImporter.Load(path);
        var text = TextPrinter.Print(m, TextOptions.Full);
        var parsed = TextParser.ParseModel(text);
        Assert.Equal(text, TextPrinter.Print(parsed, TextOptions.Full));
    }
}

/// <summary>Test oracle: rewrites every tensor's typed data fields (float_data, int32_data, ...)
/// into raw_data, written independently of the importer, so protos compare by value.</summary>
internal static class ProtoNormalizer
{
    public static void Normalize(ModelProto m)
    {
        if (m.Graph is not null) Graph(m.Graph);
        foreach (var f in m.Functions)
            foreach (var n in f.Node) Node(n);
        foreach (var f in m.Functions)
            foreach (var a in f.AttributeProto) Attr(a);
    }

    private static void Graph(GraphProto g)
    {
        foreach (var t in g.Initializer) Tensor(t);
        foreach (var s in g.SparseInitializer) Sparse(s);
        foreach (var n in g.Node) Node(n);
    }

    private static void Node(NodeProto n) { foreach (var a in n.Attribute) Attr(a); }

    private static void Attr(AttributeProto a)
    {
        if (a.T is not null) Tensor(a.T);
        foreach (var t in a.Tensors) Tensor(t);
        if (a.G is not null) Graph(a.G);
        foreach (var g in a.Graphs) Graph(g);
        if (a.SparseTensor is not null) Sparse(a.SparseTensor);
        foreach (var s in a.SparseTensors) Sparse(s);
    }

    private static void Sparse(SparseTensorProto s)
    {
        if (s.Values is not null) Tensor(s.Values);
        if (s.Indices is not null) Tensor(s.Indices);
    }

    private static void Tensor(TensorProto t)
    {
        if (t.DataType == (int)DataType.String || t.DataLocation == TensorProto.Types.DataLocation.External) return;
        if (t.HasRawData) return;
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        switch ((DataType)t.DataType)
        {
            case DataType.Float: case DataType.Complex64: foreach (var v in t.FloatData) w.Write(v); break;
            case DataType.Double: case DataType.Complex128: foreach (var v in t.DoubleData) w.Write(v); break;
            case DataType.Int64: foreach (var v in t.Int64Data) w.Write(v); break;
            case DataType.UInt64: foreach (var v in t.Uint64Data) w.Write(v); break;
            case DataType.UInt32: foreach (var v in t.Uint64Data) w.Write((uint)v); break;
            case DataType.Int32: foreach (var v in t.Int32Data) w.Write(v); break;
            case DataType.Int16:
            case DataType.UInt16:
            case DataType.Float16:
            case DataType.BFloat16:
                foreach (var v in t.Int32Data) w.Write((ushort)v); break;
            default: foreach (var v in t.Int32Data) w.Write((byte)v); break;
        }
        t.FloatData.Clear(); t.DoubleData.Clear(); t.Int64Data.Clear(); t.Uint64Data.Clear(); t.Int32Data.Clear();
        t.RawData = ByteString.CopyFrom(ms.ToArray());
    }
}
