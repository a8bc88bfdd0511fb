using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Tests;

/// <summary>OnnxOpt.Rewrite, the core under the feature passes: rules, driver, passes, pipelines and their
/// registry on the IR alone.</summary>
public class CoreLibraryTests
{
    [Fact]
    public void TheCoreReferencesNeitherOnnxRuntimeNorTheFeatureLibraries()
    {
        var core = typeof(GreedyRewriteDriver).Assembly;
        Assert.Equal("OnnxOpt.Rewrite", core.GetName().Name);
        foreach (var t in new[] { typeof(RewriteRule), typeof(Pass), typeof(PassContext), typeof(Pipeline),
                     typeof(PipelineRunner), typeof(PassRegistry), typeof(CounterKey), typeof(Decision) })
            Assert.Same(core, t.Assembly);
        var refs = core.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.Contains("OnnxOpt.GraphIR", refs);
        Assert.DoesNotContain(refs, n => n.StartsWith("Microsoft.ML.OnnxRuntime", StringComparison.Ordinal)
            || n is "OnnxOpt.Runtime" or "OnnxOpt.Calibration" or "OnnxOpt.Passes" or "OnnxOpt.Autodiff"
                or "OnnxOpt.Training" or "OnnxOpt.Data" or "Google.Protobuf");
    }

    [Fact]
    public void TheRegistryStartsFromTheFeatureLibrarysPassesInTheirOrder()
    {
        var builtIns = BuiltInPasses.All.Select(p => p.Name).ToList();
        Assert.Equal(builtIns, PassRegistry.Passes.Take(builtIns.Count).Select(p => p.Name));
        Assert.Equal("canonicalize", builtIns[0]);
    }

    [Fact]
    public void AContextWithoutPassDataHasNoDataTheDefaultMetricAndOneLineage()
    {
        var ctx = new PassContext(new Model());
        Assert.Null(ctx.Calibration);
        Assert.Null(ctx.Evaluation);
        Assert.Equal(OnnxOpt.Runtime.Validation.MetricSpec.Default, ctx.Metric);
        Assert.Same(ctx.Lineage, ctx.Lineage);
        var e = Assert.Throws<OnnxModelException>(() => ctx.RequireCalibration("quantize"));
        Assert.Contains("--calib", e.Message);
        var with = PassContexts.Create(new Model(), metric: new(OnnxOpt.Runtime.Validation.MetricKind.Cosine));
        Assert.Equal(OnnxOpt.Runtime.Validation.MetricKind.Cosine, with.Metric.Kind);
    }
}
