// External data: lazy reading, writing with a threshold, automatic use past protobuf's 2 GB limit,
// and refusal of locations that are absolute or escape the model's folder.
using Google.Protobuf;
using OnnxOpt.GraphIR;
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.Tests;

public class ExternalDataTests
{
    private static Model WithWeights()
    {
        var b = new GraphBuilder("g");
        var x = b.Input("x", DataType.Float, 4);
        var w = b.Initializer("w", Enumerable.Range(0, 4).Select(i => i * 0.5f).ToArray(), 4);
        var big = b.Initializer("big", Enumerable.Range(0, 3000).Select(i => (float)Math.Sin(i)).ToArray(), 3000);
        var y = b.Node("Add", [x, w]);
        var s = b.Node("ReduceSum", [big]);
        b.Output(b.Node("Mul", [y, s]));
        return b.Build();
    }

    [Fact]
    public void ThresholdMovesLargeTensorsOutAndContentSurvives()
    {
        var dir = Paths.TempDir();
        var m = WithWeights();
        var path = Path.Combine(dir, "m.onnx");
        OnnxExporter.Save(m, path, new ExportOptions { ExternalDataThreshold = 1024 });
        Assert.True(File.Exists(path + ".data"));
        Assert.Equal(12000, new FileInfo(path + ".data").Length);
        var back = OnnxImporter.Load(path);
        var big = back.Graph.Find("big")!.Initializer!;
        Assert.NotNull(big.External);
        Assert.False(big.IsLoaded); // lazy until read
        Assert.Null(back.Graph.Find("w")!.Initializer!.External);
        Assert.Equal(TextPrinter.Print(m, TextOptions.Full), TextPrinter.Print(back, TextOptions.Full));
        Assert.True(big.IsLoaded);
    }

    [Fact]
    public void ClonesShareOneReadOfExternalData()
    {
        var path = Path.Combine(Paths.TempDir(), "m.onnx");
        OnnxExporter.Save(WithWeights(), path, new ExportOptions { ExternalDataThreshold = 1024 });
        var m = OnnxImporter.Load(path);
        var copy = m.Clone();
        var a = copy.Graph.Find("big")!.Initializer!;
        var b = m.Graph.Find("big")!.Initializer!;
        Assert.False(a.IsLoaded || b.IsLoaded);
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(a.RawData, out var sa));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(b.RawData, out var sb));
        Assert.Same(sa.Array, sb.Array); // a large model and its rewrite hold its weights once
    }

    [Fact]
    public void ModelsPastTheProtobufLimitGoExternalAutomatically()
    {
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "huge.onnx");
        // The real limit is 2 GB; a lowered one exercises the same path without writing gigabytes.
        OnnxExporter.Save(WithWeights(), path, new ExportOptions { ProtobufLimit = 10_000 });
        Assert.True(File.Exists(path + ".data"));
        Assert.True(new FileInfo(path).Length < 2000);
        Assert.Equal(TextPrinter.Print(WithWeights(), TextOptions.Full), TextPrinter.Print(OnnxImporter.Load(path), TextOptions.Full));
    }

    [Fact]
    public void OutputIsDeterministic()
    {
        var dir = Paths.TempDir();
        var a = Path.Combine(dir, "a.onnx");
        var b = Path.Combine(dir, "b.onnx");
        OnnxExporter.Save(WithWeights(), a, new ExportOptions { ExternalDataThreshold = 100, ExternalDataFile = "w.bin" });
        var first = (File.ReadAllBytes(a), File.ReadAllBytes(Path.Combine(dir, "w.bin")));
        OnnxExporter.Save(WithWeights(), b, new ExportOptions { ExternalDataThreshold = 100, ExternalDataFile = "w.bin" });
        Assert.Equal(first.Item1, File.ReadAllBytes(b));
        Assert.Equal(first.Item2, File.ReadAllBytes(Path.Combine(dir, "w.bin")));
    }

    private static string ModelWithLocation(string dir, string location)
    {
        var g = new GraphProto { Name = "g" };
        var t = new TensorProto { Name = "w", DataType = 1, Dims = { 2 }, DataLocation = TensorProto.Types.DataLocation.External };
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        g.Initializer.Add(t);
        g.Output.Add(new ValueInfoProto { Name = "w" });
        var m = new ModelProto { IrVersion = 8, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        var path = Path.Combine(dir, "m.onnx");
        File.WriteAllBytes(path, m.ToByteArray());
        return path;
    }

    [Theory]
    [InlineData("../secret.bin", "escapes")]
    [InlineData("sub/../../secret.bin", "escapes")]
    [InlineData("/etc/passwd", "absolute")]
    [InlineData("missing.bin", "not found")]
    public void BadLocationsAreRefusedNamingTheTensor(string location, string why)
    {
        var parent = Paths.TempDir();
        var dir = Path.Combine(parent, "model");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(parent, "secret.bin"), new byte[8]);
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Load(ModelWithLocation(dir, location)));
        Assert.Contains("'w'", e.Message);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void ALinkThatLeavesTheFolderIsRefused()
    {
        var parent = Paths.TempDir();
        var dir = Path.Combine(parent, "model");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(parent, "secret.bin"), new byte[8]);
        File.CreateSymbolicLink(Path.Combine(dir, "link.bin"), Path.Combine(parent, "secret.bin"));
        var e = Assert.Throws<OnnxModelException>(() => OnnxImporter.Load(ModelWithLocation(dir, "link.bin")));
        Assert.Contains("link that escapes", e.Message);
    }

    [Fact]
    public void TooShortDataFileIsReportedOnRead()
    {
        var dir = Paths.TempDir();
        File.WriteAllBytes(Path.Combine(dir, "w.bin"), new byte[4]);
        var m = OnnxImporter.Load(ModelWithLocation(dir, "w.bin"));
        var e = Assert.Throws<OnnxModelException>(() => m.Graph.Find("w")!.Initializer!.RawData);
        Assert.Contains("too short", e.Message);
    }
}
