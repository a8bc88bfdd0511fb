// A library user's pass: one class and one Register call, then named in a pipeline string with its
// declared options, run by the optimize driver, validated by its declared exactness.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

/// <summary>Removes Identity nodes: an example of a pass a library user writes.</summary>
public sealed class DropNodesPass : Pass
{
    public override string Name => "test-drop-identity";
    public override string Summary => "remove Identity nodes (an example of a user's pass)";
    public static readonly CounterKey Removed = new("removed");
    public override IReadOnlyList<PassOption> Options { get; } = [PassOption.Int("max", -1, "most nodes to remove (-1: all)")];

    public override void Run(PassContext ctx, PassOptions o)
    {
        long left = o.Int("max");
        foreach (var n in ctx.Model.Graph.Nodes.Where(n => n.OpType == "Identity").ToList())
        {
            if (left == 0 || !Rewriter.CanReplace(n.Output(), n.Input(0)!)) continue;
            ctx.Rewriter.Replace(n.Output(), n.Input(0)!);
            ctx.Rewriter.Erase(n);
            ctx.Stats.Count(Removed);
            left--;
        }
    }
}

public class PassRegistryTests
{
    private static readonly Lazy<bool> Registered = new(() => { PassRegistry.Register(new DropNodesPass()); return true; });

    [Fact]
    public void ARegisteredPassIsNamedInAPipelineAndRunByTheDriver()
    {
        Assert.True(Registered.Value);
        var p = Pipeline.Parse("test-drop-identity{max=1},canonicalize");
        Assert.Equal("test-drop-identity{max=1},canonicalize{max-iterations=10,fold-constants=true,max-growth=4}", p.ToString());
        Assert.Equal(p.ToString(), Pipeline.Parse(p.ToString()).ToString());
        var m = OnnxImporter.Load(Path.Combine(Paths.TestModels, "digits/resnet.onnx"));
        var r = Optimizer.Run(m, new OptimizeOptions { Pipeline = Pipeline.Parse("test-drop-identity"), Validate = true });
        Assert.Equal(2, r.Report.Passes[0].Stats[DropNodesPass.Removed]);
        Assert.Equal(0, Count(r.Model, "Identity"));
        Assert.True(r.Accepted);
        Assert.Equal(ValidationMode.Tolerance, r.Report.Validation!.Mode);
        var e = Assert.Throws<OnnxModelException>(() => Pipeline.Parse("test-drop-identity{min=1}"));
        Assert.Contains("has no option 'min'", e.Message);
    }

    [Fact]
    public void NamesAreUniqueAndFitThePipelineGrammar()
    {
        Assert.True(Registered.Value);
        Assert.Throws<ArgumentException>(() => PassRegistry.Register(new DropNodesPass()));
        Assert.Throws<ArgumentException>(() => PassRegistry.Register(new Canonicalize()));
        Assert.Contains(PassRegistry.Passes, p => p.Name == "test-drop-identity");
    }
}
