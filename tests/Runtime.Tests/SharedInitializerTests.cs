// Shared initializers (SessionSettings.ShareInitializersFrom): large weights reach ORT over the IR's own
// memory instead of a serialized copy. The outputs equal a serialized session's; ORT reads the IR's bytes
// (changing them changes the answer, so nothing was copied); small tensors, graph-input initializers and
// sessions with ORT's rewrites on are serialized as before; no temporary folder is left behind.
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;

namespace OnnxOpt.Tests;

public class SharedInitializerTests
{
    private static readonly SessionSettings Shared = new()
    {
        Optimization = GraphOptimization.Disabled,
        ShareInitializersFrom = 1024,
    };

    // x[2,64] -> MatMul(W[64,64]) -> Add(b[64]) -> Relu; W is 16 KB (shared), b is 256 bytes (serialized).
    private static (Model Model, byte[] Weights) Build()
    {
        var w = new float[64 * 64];
        for (int i = 0; i < w.Length; i++) w[i] = MathF.Sin(i * 0.37f) * 0.1f;
        var bytes = new byte[w.Length * 4];
        Buffer.BlockCopy(w, 0, bytes, 0, bytes.Length);
        var g = new GraphBuilder("shared");
        var x = g.Input("x", DataType.Float, 2, 64);
        var wv = g.Initializer(new Tensor("W", DataType.Float, [64, 64], bytes));
        var bv = g.Initializer("b", Enumerable.Range(0, 64).Select(i => i * 0.01f).ToArray(), 64);
        g.Output(g.Node("Relu", [g.Node("Add", [g.Node("MatMul", [x, wv]), bv])]));
        return (g.Build(), bytes);
    }

    private static readonly Dictionary<string, Tensor> Feed = new()
    {
        ["x"] = Tensor.FromFloats("x", [2, 64], Enumerable.Range(0, 128).Select(i => MathF.Cos(i)).ToArray()),
    };

    [Fact]
    public void OutputsEqualASerializedSession()
    {
        var (m, _) = Build();
        using var plain = InferenceSession.FromModel(m, new SessionSettings { Optimization = GraphOptimization.Disabled });
        using var shared = InferenceSession.FromModel(m, Shared);
        Assert.Equal(plain.Run(Feed)[0].ToFloatArray(), shared.Run(Feed)[0].ToFloatArray());
    }

    [Fact]
    public void OrtReadsTheIrsMemoryWithoutACopy()
    {
        var (m, weights) = Build();
        using var s = InferenceSession.FromModel(m, Shared);
        var before = s.Run(Feed)[0].ToFloatArray();
        Array.Clear(weights); // the IR's bytes: with W = 0 the output is relu(b)
        var after = s.Run(Feed)[0].ToFloatArray();
        Assert.NotEqual(before, after);
        Assert.Equal(Enumerable.Range(0, 128).Select(i => i % 64 * 0.01f), after);
    }

    [Fact]
    public void SerializedWhenOrtsRewritesRun()
    {
        var (m, weights) = Build();
        using var s = InferenceSession.FromModel(m, Shared with { Optimization = GraphOptimization.All });
        var before = s.Run(Feed)[0].ToFloatArray();
        Array.Clear(weights);
        Assert.Equal(before, s.Run(Feed)[0].ToFloatArray()); // ORT holds its own copy
    }

    [Fact]
    public void ExtraOutputsWorkAndGraphInputInitializersAreSerialized()
    {
        var (m, weights) = Build();
        var mm = m.Graph.Nodes.First(n => n.OpType == "MatMul").Output().Name;
        using (var s = InferenceSession.FromModel(m, Shared, [mm]))
        {
            var both = s.Run(Feed, [mm, m.Graph.Outputs[0].Name]);
            Assert.Equal(both[1].ToFloatArray(), both[0].ToFloatArray().Select((v, i) => Math.Max(0, v + i % 64 * 0.01f)));
        }
        m.Graph.AddInputValue(m.Graph.Find("W")!); // an overridable initializer (old models) is never shared
        using var o = InferenceSession.FromModel(m, Shared);
        var before = o.Run(Feed)[0].ToFloatArray();
        Array.Clear(weights);
        Assert.Equal(before, o.Run(Feed)[0].ToFloatArray());
    }

    [Fact]
    public void TheSerializedModelHoldsOnlyReferences()
    {
        var (m, _) = Build();
        var bytes = OnnxExporter.ToBytesWithout(m, t => t.Name == "W", "elsewhere");
        Assert.True(bytes.Length < 1024, $"{bytes.Length} bytes");
        var dir = Paths.TempDir();
        File.WriteAllBytes(Path.Combine(dir, "elsewhere"), []);
        var back = OnnxImporter.Parse(bytes, dir);
        var w = back.Graph.Find("W")!.Initializer!;
        Assert.Equal("elsewhere", w.External!.Location);
        Assert.Equal(64 * 64 * 4, w.External.Length);
        Assert.Equal(0, w.External.Offset);
        Assert.Null(back.Graph.Find("b")!.Initializer!.External); // small ones stay inline
    }

    [Fact]
    public void NoTemporaryFolderIsLeftBehind()
    {
        var (m, _) = Build();
        var before = Folders().ToHashSet();
        using (InferenceSession.FromModel(m, Shared)) { }
        // Other tests' sessions may hold a folder for a moment; a folder left behind never goes away.
        var added = Folders().Where(f => !before.Contains(f)).ToList();
        for (int i = 0; i < 100 && added.Any(Directory.Exists); i++) Thread.Sleep(100);
        Assert.DoesNotContain(added, Directory.Exists);

        static string[] Folders() => Directory.GetDirectories(Path.GetTempPath(), "onnxopt-shared-*");
    }
}
