// Our ONNX Runtime binding: metadata, every supported element type, intermediate values, errors
// carrying ORT's code, safe disposal over many runs, and concurrent use of one session.
using System.Diagnostics;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;

namespace OnnxOpt.Tests;

public class BindingTests
{
    [Fact]
    public void LoadsOrt130()
    {
        OrtEnvironment.EnsureLoaded();
        Assert.Equal("1.30.0", OrtEnvironment.Version);
    }

    [Fact]
    public void ReadsInputAndOutputMetadataWithSymbols()
    {
        using var s = InferenceSession.FromModel(OnnxImporter.Load(Paths.Model("digits/resnet.onnx")));
        var i = Assert.Single(s.Inputs);
        Assert.Equal("input", i.Name);
        Assert.Equal(DataType.Float, i.ElementType);
        Assert.Equal("[N,1,16,16]", i.Shape!.ToString());
        Assert.Equal("[N,10]", Assert.Single(s.Outputs).Shape!.ToString());
    }

    public static TheoryData<DataType> Types() => new(DataType.Float, DataType.Float16, DataType.Int8, DataType.UInt8,
        DataType.Int32, DataType.Int64, DataType.Bool, DataType.Double);

    [Theory]
    [MemberData(nameof(Types))]
    public void EveryElementTypeRoundTripsThroughIdentity(DataType t)
    {
        var b = new GraphBuilder("id");
        var x = b.Input("x", t, "N", 3);
        b.Output(b.Node("Identity", [x]));
        using var s = InferenceSession.FromModel(b.Build());
        var bytes = Enumerable.Range(0, (int)t.ByteCount(6)).Select(i => (byte)(t == DataType.Bool ? i % 2 : (i * 37 + 11) % 120)).ToArray();
        var input = new Tensor("x", t, [2, 3], bytes);
        var y = Assert.Single(s.Run(new Dictionary<string, Tensor> { ["x"] = input }));
        Assert.Equal(t, y.ElementType);
        Assert.Equal(new long[] { 2, 3 }, y.Dims);
        Assert.Equal(bytes, y.RawData.ToArray());
    }

    [Fact]
    public void IntermediateValuesCanBeRead()
    {
        var m = OnnxImporter.Load(Paths.Model("ops/activations.onnx"));
        var relu = m.Graph.Nodes.First(n => n.OpType == "Relu").Output().Name;
        using var s = InferenceSession.FromModel(m, extraOutputs: [relu]);
        Assert.Single(m.Graph.Outputs); // the caller's model is untouched
        var x = Tensor.FromFloats("x", [1, 4, 3, 3], Enumerable.Range(0, 36).Select(i => i - 18f).ToArray());
        var outs = s.Run(new Dictionary<string, Tensor> { ["x"] = x }, [relu]);
        Assert.Equal(Enumerable.Range(0, 36).Select(i => Math.Max(0, i - 18f)), outs[0].ToFloatArray());
    }

    [Fact]
    public void OrtErrorsCarryOrtsCodeAndMessage()
    {
        var e = Assert.Throws<OrtException>(() => InferenceSession.FromBytes(new byte[] { 1, 2, 3, 4, 5 }));
        Assert.Equal(7, e.Code); // INVALID_PROTOBUF
        Assert.Contains("INVALID_PROTOBUF", e.Message);
    }

    [Fact]
    public void WrongInputsAreRefusedByName()
    {
        using var s = InferenceSession.FromModel(OnnxImporter.Load(Paths.Model("ops/gemm_matmul.onnx")));
        var e = Assert.Throws<OnnxModelException>(() => s.Run(new Dictionary<string, Tensor> { ["x"] = Tensor.FromFloats("x", [1, 15], new float[15]) }));
        Assert.Contains("input 'x' expects shape [N,16]", e.Message);
        e = Assert.Throws<OnnxModelException>(() => s.Run(new Dictionary<string, Tensor>()));
        Assert.Contains("'x'", e.Message);
    }

    [Fact]
    public void OneSessionServesSeveralThreads()
    {
        using var s = InferenceSession.FromModel(OnnxImporter.Load(Paths.Model("digits/mlp.onnx")));
        var inputs = Enumerable.Range(0, 8).Select(k => Tensor.FromFloats("input", [1, 64], Enumerable.Range(0, 64).Select(i => (float)Math.Sin(i * (k + 1))).ToArray())).ToArray();
        var expected = inputs.Select(t => s.Run(new Dictionary<string, Tensor> { ["input"] = t })[0].ToFloatArray()).ToArray();
        Parallel.For(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var k = i % inputs.Length;
            var y = s.Run(new Dictionary<string, Tensor> { ["input"] = inputs[k] })[0].ToFloatArray();
            Assert.Equal(expected[k], y);
        });
    }

    [Fact]
    public void DisposedSessionIsNotUsable()
    {
        var s = InferenceSession.FromModel(OnnxImporter.Load(Paths.Model("ops/gemm_matmul.onnx")));
        s.Dispose();
        s.Dispose();
        Assert.Throws<ObjectDisposedException>(() => s.Run(new Dictionary<string, Tensor> { ["x"] = Tensor.FromFloats("x", [1, 16], new float[16]) }));
    }
}

/// <summary>Memory measurements need the process to themselves: xunit runs this collection alone.</summary>
[CollectionDefinition("memory", DisableParallelization = true)]
public sealed class MemoryCollection;

[Collection("memory")]
public class BindingLeakTests
{
    [Fact]
    public void TenThousandRunsDoNotLeak()
    {
        using var s = InferenceSession.FromModel(OnnxImporter.Load(Paths.Model("ops/gemm_matmul.onnx")));
        var feed = new Dictionary<string, Tensor> { ["x"] = Tensor.FromFloats("x", [4, 16], new float[64]) };
        for (int i = 0; i < 1000; i++) s.Run(feed);
        GC.Collect(); GC.WaitForPendingFinalizers();
        var before = Process.GetCurrentProcess().WorkingSet64;
        for (int i = 0; i < 10_000; i++) s.Run(feed);
        GC.Collect(); GC.WaitForPendingFinalizers();
        var grown = Process.GetCurrentProcess().WorkingSet64 - before;
        Assert.True(grown < 16 << 20, $"working set grew by {grown >> 20} MB over 10,000 runs");
    }
}

public class SessionSettingsTests
{
    private static Dictionary<string, Tensor> Feed(int batch) =>
        new() { ["x"] = Tensor.FromFloats("x", [batch, 16], Enumerable.Range(0, batch * 16).Select(i => i * 0.01f).ToArray()) };

    [Fact]
    public void FreeDimensionOverrideFixesTheSymbolicBatch()
    {
        var m = OnnxImporter.Load(Paths.Model("ops/gemm_matmul.onnx"));
        using var free = InferenceSession.FromModel(m);
        using var fixedN = InferenceSession.FromModel(m, new SessionSettings { FreeDimensions = new Dictionary<string, long> { ["N"] = 2 } });
        Assert.Equal(free.Run(Feed(2))[0].ToFloatArray(), fixedN.Run(Feed(2))[0].ToFloatArray());
        Assert.Equal("[2,16]", fixedN.Inputs[0].Shape!.ToString());
        Assert.Throws<OnnxModelException>(() => fixedN.Run(Feed(3)));
    }

    [Fact]
    public void ConfigEntriesReachOrt()
    {
        // x * (c1 + c2): ORT's constant folding removes the Add unless the entry turns that transformer off.
        var b = new GraphBuilder("fold");
        var x = b.Input("x", DataType.Float, "N", 4);
        var sum = b.Node("Add", [b.Initializer("c1", [1f, 2f, 3f, 4f], 4), b.Initializer("c2", [1f, 1f, 1f, 1f], 4)]);
        b.Output(b.Node("Mul", [x, sum]));
        var m = b.Build();
        List<string> OpsOrtRuns(IReadOnlyDictionary<string, string> entries)
        {
            var path = Path.Combine(Paths.TempDir(), "optimized.onnx");
            var settings = new SessionSettings { Optimization = GraphOptimization.Basic, OptimizedModelPath = path, ConfigEntries = entries };
            using (InferenceSession.FromModel(m, settings)) { }
            return OnnxImporter.Load(path).Graph.Nodes.Select(n => n.OpType).ToList();
        }
        Assert.Equal(["Mul"], OpsOrtRuns(new Dictionary<string, string>()));
        Assert.Equal(["Add", "Mul"], OpsOrtRuns(new Dictionary<string, string>
        {
            ["optimization.disable_specified_optimizers"] = "ConstantFolding",
        }));
    }

    [Fact]
    public void ParallelExecutionComputesTheSame()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/resnet.onnx"));
        using var seq = InferenceSession.FromModel(m);
        using var par = InferenceSession.FromModel(m, new SessionSettings { ParallelExecution = true, InterOpThreads = 2 });
        var x = new Dictionary<string, Tensor>
        {
            ["input"] = Tensor.FromFloats("input", [2, 1, 16, 16], Enumerable.Range(0, 512).Select(i => MathF.Sin(i)).ToArray()),
        };
        Assert.Equal(seq.Run(x)[0].ToFloatArray(), par.Run(x)[0].ToFloatArray());
    }
}
