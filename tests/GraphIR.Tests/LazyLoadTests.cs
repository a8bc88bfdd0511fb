// Lazy loading of large models (LazyModelReader): with the threshold lowered to 0, every test model loads
// through the wire-level scan and exports to exactly the bytes the eager path gives; weights are read only
// when used, once per tensor however often the model is cloned; a truncated file is refused in one line.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

[Collection("lazy threshold")]
public class LazyLoadTests
{
    private static IEnumerable<string> Models() => Directory.EnumerateFiles(Paths.TestModels, "*.onnx",
        SearchOption.AllDirectories).Order(StringComparer.Ordinal);

    private static T Lazily<T>(Func<T> f)
    {
        var old = LazyModelReader.Threshold;
        LazyModelReader.Threshold = 0;
        try { return f(); }
        finally { LazyModelReader.Threshold = old; }
    }

    [Fact]
    public void EveryTestModelExportsTheSameBytesWhenLoadedLazily()
    {
        foreach (var path in Models())
        {
            var eager = OnnxExporter.ToBytes(OnnxImporter.Load(path));
            var lazy = Lazily(() => OnnxImporter.Load(path));
            Assert.Equal(eager, OnnxExporter.ToBytes(lazy));
        }
    }

    [Fact]
    public void WeightsAreReadOnUseAndCopiesShareTheRead()
    {
        var path = Paths.Model("digits/vgg.onnx");
        var m = Lazily(() => OnnxImporter.Load(path));
        var w = m.Graph.Initializers.First(v => v.Initializer!.ElementCount > 100).Initializer!;
        Assert.False(w.IsLoaded);
        Assert.Equal(OnnxImporter.Load(path).Graph.Find(w.Name)!.Initializer!.RawData.ToArray(), w.RawData.ToArray());
        var clone = m.Clone();
        var copy = clone.Graph.Find(w.Name)!.Initializer!;
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(copy.RawData, out var a));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(w.RawData, out var b));
        Assert.Same(a.Array, b.Array);
    }

    [Fact]
    public void ATruncatedLargeModelIsRefusedInOneLine()
    {
        var bytes = File.ReadAllBytes(Paths.Model("digits/vgg.onnx"));
        var path = Path.Combine(Paths.TempDir(), "cut.onnx");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<OnnxModelException>(() => Lazily(() => OnnxImporter.Load(path)));
        Assert.Contains("cut.onnx", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }
}
