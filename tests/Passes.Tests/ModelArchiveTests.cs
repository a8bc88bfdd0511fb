// pack/unpack (ModelArchive, Huffman): canonical Huffman round trips; a clustered model's archive unpacks
// to the same bytes (dense and sparse, float and lut formats); a model with nothing clustered still packs;
// a truncated, tampered or foreign file is refused with one line.
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
