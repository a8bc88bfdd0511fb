// pack/unpack (ModelArchive, Huffman): canonical Huffman round trips; a clustered model's archive unpacks
// to the same bytes (dense and sparse, float and lut formats); a model with nothing clustered still packs;
// fp16-exact floats (round-fp16) and small clustered tensors are stored compactly and restored exactly; a
// version 1 archive (testmodels/archive) still unpacks to the bytes it was made from; a truncated, tampered
// or foreign file is refused with one line.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class ModelArchiveTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1000)]
    [InlineData(16, 5000)]
    [InlineData(256, 20000)]
    public void HuffmanRoundTripsAndFavoursFrequentSymbols(int alphabet, int count)
    {
        var r = new Random(alphabet);
        var symbols = Enumerable.Range(0, count).Select(_ => (int)(Math.Pow(r.NextDouble(), 3) * alphabet)).ToArray();
        var freq = new long[alphabet];
        foreach (var s in symbols) freq[s]++;
        var lengths = Huffman.Lengths(freq);
        var data = Huffman.Encode(symbols, lengths, out var bits);
        Assert.Equal(symbols, Huffman.Decode(data, bits, symbols.Length, lengths));
        var entropy = freq.Where(f => f > 0).Sum(f => -f * Math.Log2((double)f / count));
        Assert.True(bits <= entropy + count, $"{bits} bits for entropy {entropy:F0}"); // within 1 bit per symbol
    }

    [Theory]
    [InlineData("digits/vgg.onnx", "cluster{bits=4}")]
    [InlineData("digits/resnet.onnx", "cluster{bits=3,per-channel=true}")]
    [InlineData("digits/mlp.onnx", "cluster{bits=5,format=lut}")]
    [InlineData("digits/vgg.onnx", "sparsify{method=magnitude,density=0.2},cluster{bits=4}")]
    public void AClusteredModelUnpacksToTheSameBytes(string path, string pipeline)
    {
        var clustered = OnnxExporter.ToBytes(Run(OnnxImporter.Load(Paths.Model(path)), "canonicalize,fold-bn," + pipeline)
            .After);
        var archive = ModelArchive.Pack(clustered, out var report);
        Assert.True(report.BytesRestored);
        Assert.Equal(clustered, ModelArchive.Unpack(archive));
        Assert.True(report.TensorsCoded > 0);
        Assert.True(report.PackedBytes < report.ZippedBytes, $"packed {report.PackedBytes}, zipped {report.ZippedBytes}");
        if (pipeline.StartsWith("sparsify", StringComparison.Ordinal)) Assert.True(report.TensorsSparse > 0);
    }

    [Fact]
    public void AModelWithNothingClusteredStillPacks()
    {
        var raw = File.ReadAllBytes(Paths.Model("digits/vgg.onnx"));
        var archive = ModelArchive.Pack(raw, out var report);
        Assert.Equal(0, report.TensorsCoded);
        var back = ModelArchive.Unpack(archive);
        AssertEquivalent(OnnxImporter.Parse(raw), OnnxImporter.Parse(back));
        Assert.Equal(back, ModelArchive.Unpack(ModelArchive.Pack(back, out var again)));
        Assert.True(again.BytesRestored);
    }

    [Fact]
    public void AVersionOneArchiveStillUnpacksToItsBytes()
    {
        // Made by the version 1 writer (a8f6069) from mlp.onnx with
        // canonicalize,sparsify{method=magnitude,density=0.05},cluster{bits=4}: two sparse tensors, one dense.
        var v1 = File.ReadAllBytes(Path.Combine(Paths.TestModels, "archive", "mlp_sparse_c4.v1.onnxz"));
        Assert.Equal(1, BitConverter.ToUInt16(v1, 6));
        var model = ModelArchive.Unpack(v1, "mlp_sparse_c4.v1.onnxz");
        Assert.Equal("e49e9aa31732e8b77aae6b2abe74a3b543124378d34549391c6776f83222d663",
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(model)));
        var v2 = ModelArchive.Pack(model, out var report);
        Assert.Equal(ModelArchive.Version, BitConverter.ToUInt16(v2, 6));
        Assert.True(report.BytesRestored);
        Assert.Equal(3, report.TensorsSparse);
        Assert.True(v2.Length < v1.Length * 0.8, $"version 2 {v2.Length} B, version 1 {v1.Length} B");
    }

    [Fact]
    public void HalfExactFloatsAndSmallClustersAreStoredCompactlyAndRestored()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/mobilenetv2.onnx"));
        var clustered = Run(m, "canonicalize,fold-bn,cluster{bits=4,min-elements=16}").After;
        var rounded = Run(clustered, "round-fp16").After;
        var plain = ModelArchive.Pack(OnnxExporter.ToBytes(clustered), out var before);
        var bytes = OnnxExporter.ToBytes(rounded);
        var half = ModelArchive.Pack(bytes, out var after);
        Assert.True(before.BytesRestored && after.BytesRestored);
        Assert.Equal(bytes, ModelArchive.Unpack(half));
        // Every weight from 16 elements is coded (the 16-element kernels too), the biases are held as fp16.
        Assert.Equal(0, before.TensorsHalf);
        Assert.True(before.TensorsCoded >= 17, $"{before.TensorsCoded} coded");
        Assert.True(after.TensorsHalf >= 17, $"{after.TensorsHalf} as fp16");
        Assert.True(half.Length < plain.Length - 1500, $"fp16 {half.Length} B, float {plain.Length} B");
    }

    [Fact]
    public void TruncatedTamperedOrForeignArchivesAreRefused()
    {
        var clustered = OnnxExporter.ToBytes(Run(OnnxImporter.Load(Paths.Model("digits/mlp.onnx")), "cluster{bits=4}").After);
        var archive = ModelArchive.Pack(clustered, out _);
        void Refused(byte[] bytes, string why)
        {
            var e = Assert.Throws<OnnxModelException>(() => ModelArchive.Unpack(bytes, "x.onnxz"));
            Assert.Contains("x.onnxz", e.Message);
            Assert.Contains(why, e.Message);
            Assert.DoesNotContain("\n", e.Message);
        }
        Refused(archive[..^10], "truncated");
        var tampered = archive.ToArray();
        tampered[archive.Length / 2] ^= 0x40;
        Refused(tampered, "checksum");
        Refused(clustered, "no ONNXZ header");
        var future = archive.ToArray();
        future[6] = 9;
        Refused(future, "version 9");
    }
}
