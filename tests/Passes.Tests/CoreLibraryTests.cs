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

/// <summary>The rule registry: every rule onnxopt's passes run is listed once, by a unique name.</summary>
public class RuleRegistryTests
{
    [Fact]
    public void EveryRuleClassOfThePassesIsListedUnderAUniqueName()
    {
        var rules = RuleRegistry.Rules;
        Assert.True(rules.Count > 50, $"{rules.Count} rules");
        var twice = rules.GroupBy(r => r.Rule.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(twice.Count == 0, "listed twice: " + string.Join(", ", twice));
        var listed = rules.Select(r => r.Rule.GetType()).ToHashSet();
        var classes = typeof(BuiltInRules).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(RewriteRule)) && !t.IsAbstract).ToList();
        Assert.True(classes.Count >= 12, $"{classes.Count} rule classes");
        Assert.All(classes, t => Assert.Contains(t, listed));
        Assert.All(rules, r => Assert.NotNull(PassRegistry.Get(r.Pass)));
    }

    [Fact]
    public void OpsetAdaptersAreRulesAtTheOpsetBeforeTheirVersion()
    {
        var slice = Assert.IsType<OpsetAdapter>(RuleRegistry.Find("Slice-to-opset-10")!.Rule);
        Assert.Equal((9L, 9L), (slice.MinOpset, slice.MaxOpset));
        Assert.Equal(["Slice"], slice.RootOps);
        Assert.Equal(UpgradeOpset.Adapters.Count,
            RuleRegistry.Rules.Count(r => r.Pass == "upgrade-opset"));
    }

    [Fact]
    public void AUserRuleIsRegisteredOnceAndFoundByName()
    {
        var rule = new NoOpRule("TestNoOpForRegistry", (_, _, _, _) => null);
        RuleRegistry.Register(rule, "canonicalize");
        Assert.Same(rule, RuleRegistry.Find("remove-no-op-testnoopforregistry")!.Rule);
        Assert.Throws<ArgumentException>(() => RuleRegistry.Register(rule, "canonicalize"));
    }
}
