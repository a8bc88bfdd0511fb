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
        Assert.Equal("fold-bn,linearize{max-agreement-drop=0.25,max-count=-1,mode=affine,min-sqnr=0,lambda=2,threshold=0.9,snap=true,"
            + "slope-init=0.1,slope-lr=0.01,others=restore,confidence=0.9,finetune-steps=500,steps=1000,batch=0,lr=0.001,optimizer=adam,"
            + "momentum=0.9,weight-decay=0,schedule=cosine,warmup=0,clip-norm=0,loss=auto,temperature=4,label-weight=0,"
            + "features=,feature-weight=1,params=all,keep-zeros=auto,flip=false,shift=0,mixup=0.4,token-swap=0.15,patience=0,"
            + "seed=1,"
            + "eval-every=0},"
            + "fold-conv{objective=params,allow-border-error=false,max-kernel=15}", text);
        Assert.Equal("fold-bn,linearize{max-agreement-drop=0.25,mode=affine},fold-conv{objective=params}", p.Brief());
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

    private sealed record DemoOptions
    {
        [Option("count", "how many", Min = 1, Max = 8)]
        public long Count { get; init; } = 2;
        [Option("scale", "a factor", Min = 0)]
        public double Scale { get; init; } = 0.5;
        [Option("mode", "which way", Choices = ["up", "down"])]
        public string Mode { get; init; } = "up";
        [Option("dry", "change nothing")]
        public bool Dry { get; init; }
        public string NotAnOption { get; init; } = "x";
    }

    private sealed class DemoPass : Pass<DemoOptions>
    {
        public DemoOptions? Seen { get; private set; }
        public override string Name => "demo";
        public override string Summary => "typed options";
        public override void Run(PassContext ctx, DemoOptions options) => Seen = options;
    }

    [Fact]
    public void TypedOptionsGenerateTheDeclarationsAndBindTheRecord()
    {
        var pass = new DemoPass();
        Assert.Equal(["count", "scale", "mode", "dry"], pass.Options.Select(o => o.Name));
        Assert.Equal([OptionKind.Int, OptionKind.Double, OptionKind.Enum, OptionKind.Bool], pass.Options.Select(o => o.Kind));
        Assert.Equal(2L, pass.Options[0].Default);
        Assert.Equal(["up", "down"], pass.Options[2].Choices);
        Assert.Equal("a factor", pass.Options[1].Description);

        var given = new PassOptions(pass, [new("count", "5"), new("mode", "down")]);
        pass.Run(new PassContext(new Model()), given);
        Assert.Equal(new DemoOptions { Count = 5, Mode = "down" }, pass.Seen);
        Assert.Equal("count=5,mode=down", given.Brief());

        var e = Assert.Throws<OnnxModelException>(() => new PassOptions(pass, [new("count", "9")]));
        Assert.Equal("pass 'demo': option 'count' = '9' is not within 1..8", e.Message);
        e = Assert.Throws<OnnxModelException>(() => new PassOptions(pass, [new("scale", "-1")]));
        Assert.Contains("is not at least 0", e.Message);
    }

    [Fact]
    public void ConvertedPassesKeepTheirOptionsAndRanges()
    {
        Assert.Equal("canonicalize{max-iterations=10,fold-constants=true,max-growth=4}",
            Pipeline.Parse("canonicalize").ToString());
        Assert.Equal("strip{docs=true,value-info=true,names=true,dedupe=true}", Pipeline.Parse("strip").ToString());
        var e = Assert.Throws<OnnxModelException>(() => Pipeline.Parse("canonicalize{max-iterations=0}"));
        Assert.Contains("at least 1", e.Message);
        e = Assert.Throws<OnnxModelException>(() => Pipeline.Parse("fold-conv{max-kernel=0}"));
        Assert.Contains("at least 1", e.Message);
        // Choices written in attributes agree with the libraries' own lists.
        Assert.Equal(OnnxOpt.Calibration.RangeCalibrator.Methods,
            new Quantize().Options.Single(o => o.Name == "calibrate").Choices);
        // (sparsify's obs is not a saliency score: it prunes and updates layer by layer, ObsSparsity)
        Assert.Equal(Saliency.Methods.Append("obs"), new Sparsify().Options.Single(o => o.Name == "method").Choices);
        Assert.Equal(ChannelImportance.Criteria, new Prune().Options.Single(o => o.Name == "criterion").Choices);
        Assert.Equal(ClusterStorage.Formats, new Cluster().Options.Single(o => o.Name == "format").Choices);
        e = Assert.Throws<OnnxModelException>(() => Pipeline.Parse("quantize{percentile=120}"));
        Assert.Contains("within 0..100", e.Message);
    }

    [Fact]
    public void OptionGroupsAreDeclaredInPlaceWithThePassesDefaultsAndBound()
    {
        var distill = new Distill();
        Assert.Equal(new TrainingOptions().Steps, distill.Options.Single(o => o.Name == "steps").Default);
        Assert.Equal(100L, distill.Options.Single(o => o.Name == "eval-every").Default);
        var linearize = new Linearize();
        // linearize omits the group's eval-every and declares its own, last, with default 0.
        Assert.Equal("eval-every", linearize.Options[^1].Name);
        Assert.Equal(0L, linearize.Options[^1].Default);
        Assert.Single(linearize.Options, o => o.Name == "eval-every");

        var bound = Pass<LinearizeOptions>.Bind(new PassOptions(linearize,
            [new("steps", "20"), new("optimizer", "sgd"), new("eval-every", "5"), new("mode", "train")]));
        Assert.Equal(20, bound.Training.Steps);
        Assert.Equal("sgd", bound.Training.Optimizer);
        Assert.Equal(5, bound.EvalEvery);
        Assert.Equal(100, bound.Training.EvalEvery); // omitted from the group: its default stays
        Assert.Equal(1000, Pass<LinearizeOptions>.Bind(linearize.Defaults()).Training.Steps); // fresh per bind
        var e = Assert.Throws<OnnxModelException>(() => Pipeline.Parse("distill{batch=-1}"));
        Assert.Contains("at least 0", e.Message);
    }
}
