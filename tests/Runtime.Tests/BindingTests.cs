// Our ONNX Runtime binding: metadata, every supported element type, intermediate values, errors
// carrying ORT's code, safe disposal over many runs, and concurrent use of one session.
using System.Diagnostics;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Native;

namespace OnnxOpt.Tests;

public class BindingTests
{
    [Fact]
    public void LoadsOrt130()
    {
        OrtLibrary.EnsureLoaded();
        Assert.Equal("1.30.0", OrtLibrary.Version);
    }

    [Fact]
    public void ReadsInputAndOutputMetadataWithSymbols()
    {
        using var s = InferenceSession.FromModel(OnnxImporter.Load(Cli.Model("digits/resnet.onnx")));
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
        var m = OnnxImporter.Load(Cli.Model("ops/activations.onnx"));
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
        using var s = InferenceSession.FromModel(OnnxImporter.Load(Cli.Model("ops/gemm_matmul.onnx")));
        var e = Assert.Throws<OnnxModelException>(() => s.Run(new Dictionary<string, Tensor> { ["x"] = Tensor.FromFloats("x", [1, 15], new float[15]) }));
        Assert.Contains("input 'x' expects shape [N,16]", e.Message);
        e = Assert.Throws<OnnxModelException>(() => s.Run(new Dictionary<string, Tensor>()));
        Assert.Contains("'x'", e.Message);
    }

    [Fact]
    public void OneSessionServesSeveralThreads()
    {
        using var s = InferenceSession.FromModel(OnnxImporter.Load(Cli.Model("digits/mlp.onnx")));
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
        var s = InferenceSession.FromModel(OnnxImporter.Load(Cli.Model("ops/gemm_matmul.onnx")));
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
        using var s = InferenceSession.FromModel(OnnxImporter.Load(Cli.Model("ops/gemm_matmul.onnx")));
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
