// Pipelines are strings that round-trip; options are declared once and checked.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Tests;

public class PipelineTests
{
    [Fact]
    public void NormalizedPipelineRoundTrips()
    {
        var p = Pipeline.Parse(" fold-bn , linearize{ mode=affine ,max-agreement-drop=0.25}, fold-conv{objective=params}");
        var text = p.ToString();
        Assert.Equal("fold-bn,linearize{max-agreement-drop=0.25,max-count=-1,mode=affine,min-sqnr=0},fold-conv{objective=params,allow-border-error=false,max-kernel=15}", text);
        Assert.Equal(text, Pipeline.Parse(text).ToString());
    }

    [Theory]
    [InlineData("fold-bn,nosuchpass", "unknown pass 'nosuchpass'")]
    [InlineData("fold-conv{objectiv=macs}", "pass 'fold-conv' has no option 'objectiv'")]
    [InlineData("fold-conv{objective=speed}", "one of macs|params|latency|depth")]
    [InlineData("linearize{max-count=many}", "not an integer")]
    [InlineData("fold-bn{x=1}", "it takes none")]
    [InlineData("fold-conv{objective=macs", "not closed")]
    [InlineData("", "empty pipeline")]
    public void BadPipelinesAreRefusedClearly(string text, string message)
    {
        var e = Assert.Throws<OnnxModelException>(() => Pipeline.Parse(text));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void JsonConfigGivesTheSamePipeline()
    {
        var path = Path.Combine(Paths.TempDir(), "p.json");
        File.WriteAllText(path, """{"passes": ["fold-bn", {"name": "linearize", "options": {"mode": "affine", "max-agreement-drop": 0.25}}]}""");
        Assert.Equal(Pipeline.Parse("fold-bn,linearize{mode=affine,max-agreement-drop=0.25}").ToString(), Pipeline.FromArgument("@" + path).ToString());
    }
}
