// The transformer fusions (fuse: LayerNorm -> LayerNormalization, GELU -> Gelu) and shape specialization
// (fix-dims) on the exported test models: what they fuse, what they refuse, and ORT equivalence within 1e-5 on the
// models' own data (the ViT on the digits images, the BERT-style encoder on its token data).
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests.Passes;

public class TransformerFusionTests
{
    private static Model Load(string name) => OnnxImporter.Load(Paths.Model($"transformers/{name}.onnx"));

    private static DataSet DataOf(string name, Model m) => name.StartsWith("vit", StringComparison.Ordinal)
        ? DataSet.FromFolder(Paths.Model("digits/data/test"), IoInfo.InputsOf(m.Graph))
        : DataSet.FromFolder(Paths.Model("transformers/bert_eval"), IoInfo.InputsOf(m.Graph));

    /// <summary>Same outputs in ORT (no ORT rewrites) within rtol 1e-5 and atol 1e-5, on 64 samples of data.</summary>
    private static void AssertSame(string name, Model before, Model after, int batch = 16)
    {
        var settings = new SessionSettings { Optimization = GraphOptimization.Disabled };
        using var a = InferenceSession.FromModel(before, settings);
        using var b = InferenceSession.FromModel(after, settings);
        var data = DataOf(name, before);
        var report = Validator.Compare(a, b, data, new ValidationOptions { Rtol = 1e-5, Atol = 1e-5, BatchSize = batch });
        Assert.True(report.Passed, string.Join("; ", report.Outputs.Select(o => $"{o.Name}: max abs {o.MaxAbsError}")));
    }

    [Theory]
    [InlineData("vit_op13", 7, 3)]
    [InlineData("vit_op17", 7, 3)]
    [InlineData("bert_op11", 5, 2)]
    [InlineData("bert_op13", 5, 2)]
    public void EveryLayerNormAndGeluFusesExactly(string name, int layerNorms, int gelus)
    {
        var m = Load(name);
        var (after, runs) = Run(m, "upgrade-opset{version=20},fuse");
        Assert.Equal(layerNorms, Count(after, "LayerNormalization"));
        Assert.Equal(gelus, Count(after, "Gelu"));
        Assert.Equal(0, Count(after, "Erf") + Count(after, "ReduceMean"));
        Assert.Equal(name.StartsWith("bert", StringComparison.Ordinal) ? 1 : 0, Count(after, "Tanh")); // the pooler
        if (name != "vit_op17") Assert.Equal(layerNorms, Counter(runs, Counters.Fuse.LayerNorms));
        Assert.Equal(gelus, Counter(runs, Counters.Fuse.Gelus));
        AssertSame(name, m, after);
    }

    [Fact]
    public void BelowTheFusedOpsOpsetTheMatchesAreCountedNotFused()
    {
        var m = Load("bert_op13");
        var (after, runs) = Run(m, "fuse");
        Assert.Equal(0, Count(after, "LayerNormalization") + Count(after, "Gelu"));
        var notes = runs.SelectMany(r => r.Stats.Notes).ToList();
        Assert.Contains(notes, n => n.StartsWith("5 matches of fuse-layernorm not fused", StringComparison.Ordinal)
            && n.Contains("optimize --opset 17"));
        Assert.Contains(notes, n => n.StartsWith("2 matches of fuse-gelu not fused", StringComparison.Ordinal));
        (after, _) = Run(m, "upgrade-opset{version=17},fuse");
        Assert.Equal(5, Count(after, "LayerNormalization"));
        Assert.Equal(0, Count(after, "Gelu"));
    }

    [Fact]
    public void ALayerNormWhoseCentredValueIsReadElsewhereStays()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 17]>
            g (float[2,4] x) => (float[2,4] y, float[2,4] d)
               <float eps = {0.00001}, float two = {2.0}, float[4] w = {1,2,3,4}, float[4] b = {0,0,0,1}>
            {
               m = ReduceMean <axes = [-1]> (x)
               d = Sub (x, m)
               p = Pow (d, two)
               v = ReduceMean <axes = [-1]> (p)
               e = Add (v, eps)
               s = Sqrt (e)
               n = Div (d, s)
               k = Mul (n, w)
               y = Add (k, b)
            }
            """);
        var (after, _) = Run(m, "fuse");
        Assert.Equal(0, Count(after, "LayerNormalization"));
        var (fused, _) = Run(Without(m, "d"), "fuse");
        Assert.Equal(1, Count(fused, "LayerNormalization"));
        AssertEquivalent(Without(m, "d"), fused);
    }

    private static Model Without(Model m, string output)
    {
        var c = m.Clone();
        var keep = c.Graph.Outputs.Where(o => o.Name != output).ToList();
        c.Graph.ClearOutputs();
        foreach (var o in keep) c.Graph.AddOutput(o);
        return c;
    }

    [Theory]
    [InlineData("bert_op11")]
    [InlineData("bert_op13")]
    public void FixDimsFoldsTheShapeChainsOfABertExport(string name)
    {
        var m = Load(name);
        var (after, runs) = Run(m, "fix-dims{dims=batch:4;sequence:32}");
        Assert.Equal(0, Count(after, "Shape"));
        Assert.True(after.Graph.Nodes.Count < m.Graph.Nodes.Count * 2 / 3, $"{m.Graph.Nodes.Count} -> {after.Graph.Nodes.Count}");
        Assert.Equal("[4,32]", after.Graph.Inputs[0].Shape!.ToString().Replace(" ", ""));
        Assert.True(Counter(runs, Counters.Canonicalize.NodesFolded) > 0);
        // The folded Reshape targets copy their leading dims as 0, the exporters' form.
        Assert.Contains(after.Graph.Nodes.Where(n => n.OpType == "Reshape"),
            n => Rewriter.ConstantOf(n.Input(1))!.ToInt64Array() is [0, 0, 4, 16]);
        AssertSame(name, m, after, batch: 4);
    }

    [Fact]
    public void FixDimsRefusesADimTheInputsDoNotHave()
    {
        var e = Assert.Throws<OnnxModelException>(() => Run(Load("bert_op13"), "fix-dims{dims=seq:8}"));
        Assert.Contains("no symbolic dim 'seq' (their dims: batch, sequence)", e.Message);
    }

    [Fact]
    public void TheDefaultPipelineNeverFreezesDimsItWasNotGiven()
    {
        var m = Load("bert_op13");
        var (after, _) = Run(m, Presets.Exact(null, 20).ToString());
        Assert.Equal("batch", after.Graph.Inputs[0].Shape!.Dims[0].Param);
        Assert.Equal("sequence", after.Graph.Inputs[0].Shape!.Dims[1].Param);
        Assert.Equal(5, Count(after, "LayerNormalization"));
        AssertSame("bert_op13", m, after);
    }
}

public class LatencyWarningTests
{
    private static OptimizeReport Report(string pipeline, double a, double b, string model)
    {
        var m = OnnxImporter.Load(Paths.Model(model));
        var stats = ModelStats.Compute(m);
        var ta = Enumerable.Range(0, 50).Select(i => a + 0.001 * (i % 5)).ToArray();
        var tb = Enumerable.Range(0, 50).Select(i => b + 0.001 * (i % 3)).ToArray();
        var l = new LatencyStats(a, a, a, a);
        var lat = new BenchReport(new BenchOptions(), l, new LatencyStats(b, b, b, b))
        {
            SpeedupInterval = BenchReport.MedianInterval(ta, tb),
            PairedSpeedup = BenchReport.MedianRatio(ta, tb),
        };
        return new OptimizeReport
        {
            Pipeline = pipeline,
            Exact = true,
            Before = stats,
            After = stats,
            Passes = [],
            Latency = lat,
        };
    }

    [Fact]
    public void AMeasurablySlowerResultIsSaidAndASpecializedTransformerGetsTheReason()
    {
        var slow = Report("fix-dims{dims=batch:1},fuse", 1.0, 1.3, "transformers/vit_op17.onnx");
        Assert.Contains("runs the result slower than the input", slow.LatencyWarning);
        Assert.Contains("SkipLayerNormalization", slow.LatencyWarning);
        Assert.Contains(slow.LatencyWarning!, slow.Notes);
        Assert.DoesNotContain("SkipLayerNormalization", Report("canonicalize", 1.0, 1.3, "digits/resnet.onnx")
            .LatencyWarning);
        Assert.Null(Report("fix-dims{dims=batch:1}", 1.3, 1.0, "transformers/vit_op17.onnx").LatencyWarning);
    }
}
