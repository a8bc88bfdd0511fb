// cluster: every storage format decodes in ORT to exactly the clustered float weights (bit-identical
// outputs), per tensor and per channel, on conv, depthwise and Gemm/MatMul nets; clusters per slice are at
// most K; min-sqnr picks bits per layer; zeros survive; weighting and determinism; refusals.
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class ClusterTests
{
    private static float[][] Outputs(Model m)
    {
        using var s = InferenceSession.FromModel(m, new SessionSettings { Optimization = GraphOptimization.All });
        var result = new List<float[]>();
        foreach (var b in DataSet.Random(s.Inputs, 4, 5, new Dictionary<string, long> { ["N"] = 2 }).Batches(2))
            result.AddRange(s.Run(b.Inputs).Select(t => t.ToFloatArray()));
        return result.ToArray();
    }

    [Theory]
    [InlineData("digits/vgg.onnx", false)]
    [InlineData("digits/vgg.onnx", true)]
    [InlineData("digits/mobilenetv2.onnx", true)]
    [InlineData("digits/mlp.onnx", false)]
    [InlineData("digits/mlp.onnx", true)]
    public void EveryFormatDecodesToTheClusteredWeightsExactly(string path, bool perChannel)
    {
        var m = OnnxImporter.Load(Paths.Model(path));
        var (f, runs) = Run(m, $"canonicalize,fold-bn,cluster{{bits=4,per-channel={perChannel.ToString().ToLowerInvariant()}}}");
        var reference = Outputs(f);
        var smaller = OnnxExporter.ToBytes(f).Length;
        foreach (var format in new[] { "lut", "lut4" })
        {
            var (x, xr) = Run(m, $"canonicalize,fold-bn,cluster{{bits=4,format={format},"
                + $"per-channel={perChannel.ToString().ToLowerInvariant()}}}");
            Assert.All(xr[2].Stats.Decisions.OfType<WeightClustered>(), d => Assert.Equal(format, d.Format));
            Assert.Equal(reference, Outputs(x));
            var size = OnnxExporter.ToBytes(x).Length;
            Assert.True(size < smaller, $"{format}: {size} bytes, not below {smaller}");
            smaller = size;
        }
        var decisions = runs[2].Stats.Decisions.OfType<WeightClustered>().ToList();
        Assert.NotEmpty(decisions);
        Assert.All(decisions, d => Assert.True(d.Clusters <= 16 && d.Bits <= 4));
        Assert.All(decisions, d => Assert.True(perChannel || d.DistinctAfter <= 16, d.Weight));
    }

    [Fact]
    public void Int4RunsGemmWeightsAsMatMulNBitsDecodingToTheGridValues()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/mlp.onnx"));
        var (q, runs) = Run(m, "cluster{format=int4,int4-accuracy-level=0}");
        Assert.Equal(3, Count(q, "MatMulNBits"));
        Assert.Equal(0, Count(q, "Gemm"));
        Assert.All(runs[0].Stats.Decisions.OfType<WeightClustered>(), d => Assert.Equal("int4", d.Format));
        // The float model holding the same grid values computes the same outputs (ORT's 4-bit kernel).
        var reference = m.Clone();
        var rw = new Rewriter(reference);
        foreach (var p in PrunableWeight.Find(reference.Graph))
            rw.SetInitializer(p.Weight, Tensor.FromFloats(p.Weight.Name, p.Dims, BlockGrid4.Fit(p).Values));
        AssertEquivalent(reference, q);
        // Each block of 32 has at most 16 distinct values on an evenly spaced grid.
        var w = BlockGrid4.Fit(PrunableWeight.Find(m.Graph)[0]).Values;
        var k = (int)PrunableWeight.Find(m.Graph)[0].Dims[1];
        var block = w.Take(32).Distinct().Order().ToArray();
        Assert.InRange(block.Length, 2, 16);
        var step = block.Zip(block.Skip(1)).Select(x => x.Second - x.First).Min();
        Assert.All(block, v => Assert.Equal(0, Math.Round((v - block[0]) / step) - (v - block[0]) / step, 3));
        Assert.True(k >= 32);
    }

    [Theory]
    [InlineData(96)]    // 3 blocks of 32: each row's zero points end on half a byte
    [InlineData(160)]   // 5 blocks
    [InlineData(64)]
    [InlineData(40)]    // a partial block
    public void Int4ZeroPointsArePaddedPerRowSoAnyKLoadsAndRuns(int k)
    {
        var rng = new Random(k);
        var w = Enumerable.Range(0, k * 24).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var b = new GraphBuilder("odd-k");
        var x = b.Input("x", DataType.Float, "N", k);
        b.Output(b.Node("MatMul", [x, b.Initializer("w", w, k, 24)]));
        var m = b.Build();
        var (q, _) = Run(m, "cluster{format=int4,int4-accuracy-level=0,min-elements=16}");
        var nbits = q.Graph.Nodes.Single(n => n.OpType == "MatMulNBits");
        int blocks = (k + 31) / 32;
        Assert.Equal(24 * ((blocks + 1) / 2), Rewriter.ConstantOf(nbits.Input(3))!.ElementCount);
        var reference = m.Clone();
        var rw = new Rewriter(reference);
        foreach (var p in PrunableWeight.Find(reference.Graph))
            rw.SetInitializer(p.Weight, Tensor.FromFloats(p.Weight.Name, p.Dims, BlockGrid4.Fit(p).Values));
        AssertEquivalent(reference, q);
    }

    [Fact]
    public void PerChannelClustersEachOutputChannelSeparately()
    {
        var m = Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), "canonicalize,fold-bn").After;
        var (c, _) = Run(m, "cluster{clusters=3,per-channel=true}");
        foreach (var p in PrunableWeight.Find(c.Graph).Where(p => p.Weight.Initializer!.ElementCount >= 256))
        {
            var w = p.Weight.Initializer!.ToFloatArray();
            var of = p.FilterOf();
            foreach (var ch in of.Distinct())
                Assert.True(w.Where((_, i) => of[i] == ch).Distinct().Count() <= 3);
        }
    }

    [Fact]
    public void MinSqnrPicksTheFewestBitsPerLayer()
    {
        var m = Run(OnnxImporter.Load(Paths.Model("digits/resnet.onnx")), "canonicalize,fold-bn").After;
        var (_, runs) = Run(m, "cluster{min-sqnr=15}");
        var d = runs[0].Stats.Decisions.OfType<WeightClustered>().ToList();
        Assert.All(d, x => Assert.True(x.SqnrDb >= 15, $"{x.Weight}: {x.SqnrDb}"));
        var (_, lower) = Run(m, $"cluster{{bits={d.Max(x => x.Bits) - 1}}}");
        // One fewer bit than the largest chosen misses the target somewhere: the choice is the fewest bits.
        Assert.Contains(lower[0].Stats.Decisions.OfType<WeightClustered>(), x => x.SqnrDb < 15);
        Assert.True(d.Select(x => x.Bits).Distinct().Count() > 1, "bits differ by layer");
    }

    [Fact]
    public void ZerosOfASparseModelSurviveAsTheirOwnCentroid()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var (sparse, _) = Run(m, "canonicalize,fold-bn,sparsify{method=magnitude,density=0.3}");
        var (c, runs) = Run(sparse, "cluster{bits=3}");
        Assert.All(runs[0].Stats.Decisions.OfType<WeightClustered>(), d => Assert.True(d.ZeroKept));
        foreach (var p in PrunableWeight.Find(c.Graph))
        {
            var before = sparse.Graph.Find(p.Weight.Name)!.Initializer!.ToFloatArray();
            var after = p.Weight.Initializer!.ToFloatArray();
            for (int i = 0; i < before.Length; i++) Assert.Equal(before[i] == 0, after[i] == 0);
        }
    }

    [Theory]
    [InlineData("magnitude")]
    [InlineData("fisher")]
    [InlineData("synflow")]
    public void WeightingChangesTheCentroidsAndIsDeterministic(string weighting)
    {
        var m = Run(OnnxImporter.Load(Paths.Model("digits/mlp.onnx")), "canonicalize").After;
        var calib = Calibration.CalibrationSource.FromFolder(Paths.Model("digits/data_mlp/calib"));
        var plain = OnnxExporter.ToBytes(Run(m, "cluster{bits=3}").After);
        var a = OnnxExporter.ToBytes(Run(m, $"cluster{{bits=3,weighting={weighting}}}", calib).After);
        var b = OnnxExporter.ToBytes(Run(m, $"cluster{{bits=3,weighting={weighting}}}", calib).After);
        Assert.Equal(a, b);
        Assert.NotEqual(plain, a);
    }

    [Fact]
    public void Lut4RefusesMoreThanSixteenClusters()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var e = Assert.Throws<OnnxModelException>(() => Run(m, "cluster{bits=5,format=lut4}"));
        Assert.Contains("at most 16 clusters", e.Message);
    }
}
