// Channel lineage and the features a pruned student is trained on: every value prune records is, on the recorded
// channels, the masked reference's value (the original with the removed channels zeroed at every consumer's
// input); a second prune composes; distill{features=blocks} matches the layer inputs on their kept channels, and
// block-steps trains each block alone toward the teacher's value at its end before the end-to-end run.
using OnnxOpt.Autodiff;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Training;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class ChannelLineageTests
{
    private static Dictionary<string, NdArray<float>> Feed(Model m)
    {
        var x = m.Graph.Inputs.Single(i => !i.IsInitializer);
        var dims = x.Shape!.Dims.Select((d, i) => i == 0 ? 2 : (int)d.Value!.Value).ToArray();
        return new() { [x.Name] = new NdArray<float>(dims, Rand(5, dims.Aggregate(1, (a, b) => a * b), 1f)) };
    }

    [Theory]
    [InlineData("digits/vgg.onnx")]
    [InlineData("digits/resnet.onnx")]
    [InlineData("digits/mobilenetv2.onnx")]
    [InlineData("torchvision/resnet18_small.onnx")]
    [InlineData("torchvision/mobilenet_v2_small.onnx")]
    [InlineData("torchvision/efficientnet_b0_small.onnx")]
    public void EveryRecordedValueIsTheMaskedReferenceOnItsKeptChannels(string path)
    {
        var m = Run(OnnxImporter.Load(Paths.Model(path)), "canonicalize,fold-bn").After;
        var pruned = m.Clone();
        var ctx = new PassContext(pruned);
        PipelineRunner.Run(pruned, Pipeline.Parse("prune{ratio=0.5,round-to=1,recover=none,min-speedup=0}"), ctx,
            verifyEach: true);
        var reference = PruneTests.MaskedReference(m, PruneTests.Plan, 0.5);
        var feed = Feed(m);
        var (a, b) = (new Evaluator<float>(pruned).Forward(feed), new Evaluator<float>(reference).Forward(feed));
        int compared = 0;
        foreach (var name in ctx.Lineage.Values)
        {
            if (pruned.Graph.Find(name) is null) continue;
            var kept = ctx.Lineage.Of(name)!;
            var (s, t) = (a[name], Trainer.TakeChannels(b[name], kept.Axis, kept.Kept));
            Assert.Equal(t.Shape, s.Shape);
            Assert.True(kept.Kept.Length < b[name].Shape[kept.Axis], name);
            double scale = t.R.Max(Math.Abs);
            for (int i = 0; i < s.Length; i++)
                Assert.True(Math.Abs(s.R[i] - t.R[i]) <= 1e-4 * (1 + scale), $"{name}[{i}]: {s.R[i]} vs {t.R[i]}");
            compared++;
        }
        Assert.True(compared >= 3, $"{compared} values compared");
    }

    [Fact]
    public void ASecondCutComposesWithTheFirst()
    {
        var lineage = new ChannelLineage();
        lineage.Record("x", 1, [0, 2, 3, 5, 7]);
        lineage.Record("x", 1, [1, 3, 4]);
        Assert.Equal([2, 5, 7], lineage.Of("x")!.Kept);
        Assert.Null(lineage.Of("y"));
        Assert.Throws<InvalidOperationException>(() => lineage.Record("x", 2, [0]));
        // End to end: two prunes in one pipeline still explain every pruned value's channel count.
        var m = Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), "canonicalize,fold-bn").After;
        var twice = m.Clone();
        var ctx = new PassContext(twice);
        const string cut = "prune{ratio=0.3,round-to=1,recover=none,min-speedup=0,scope=local}";
        PipelineRunner.Run(twice, Pipeline.Parse(cut + "," + cut), ctx, verifyEach: true);
        var feed = Feed(m);
        var (a, b) = (new Evaluator<float>(twice).Forward(feed), new Evaluator<float>(m).Forward(feed));
        foreach (var name in ctx.Lineage.Values.Where(n => twice.Graph.Find(n) is not null))
        {
            var kept = ctx.Lineage.Of(name)!;
            Assert.Equal(a[name].Shape, Trainer.TakeChannels(b[name], kept.Axis, kept.Kept).Shape);
        }
        // The first conv reads the image, so its kept output channels are the original's exactly.
        var first = twice.Graph.Nodes.First(n => n.OpType == "Conv").Output().Name;
        var k = ctx.Lineage.Of(first)!;
        Assert.InRange(k.Kept.Length, 1, b[first].Shape[1] * 6 / 10);
        var (s, t) = (a[first], Trainer.TakeChannels(b[first], k.Axis, k.Kept));
        Assert.All(s.R.Zip(t.R), p => Assert.Equal(p.Second, p.First, 4));
    }

    [Fact]
    public void BlockFeaturesTrainOnTheKeptChannelsAndBlocksTrainAlone()
    {
        var data = Paths.Model("digits/data");
        var m = Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), "canonicalize,fold-bn").After;
        var student = m.Clone();
        var calib = CalibrationSource.FromFolder(Path.Combine(data, "calib"));
        var ctx = PassContexts.Create(student, calib);
        ctx.Original = m;
        PipelineRunner.Run(student, Pipeline.Parse("prune{ratio=0.5,recover=none,min-speedup=0},"
            + "distill{steps=30,features=blocks,block-steps=20,lr=0.002}"), ctx, verifyEach: true);
        var stats = ctx.Stats;
        Assert.True(stats[Counters.Training.FeaturesOnKeptChannels] >= 3);
        // A block without parameters (a pool between two matched values) has nothing to train.
        Assert.InRange(stats[Counters.Training.BlocksReconstructed], 3, stats[Counters.Training.FeaturesMatched]);
        var runs = stats.Decisions.OfType<TrainingSummary>().ToList();
        Assert.Equal(stats[Counters.Training.BlocksReconstructed] + 1, runs.Count);
        Assert.All(runs.SkipLast(1), r => Assert.StartsWith("distill block '", r.Stage));
        // Blocks after the first pruned one start off their target and get closer to it.
        Assert.Contains(runs.SkipLast(1), r => r.FirstLoss > 0.01 && r.FinalLoss < 0.8 * r.FirstLoss);
        Assert.Equal(30, runs[^1].Steps);
    }

    [Fact]
    public void BlockFeaturesWithoutASharedLayerInputAreRefused()
    {
        var m = Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), "canonicalize,fold-bn").After;
        var teacher = m.Clone();
        var outputs = teacher.Graph.Outputs.ToHashSet();
        var rw = new Rewriter(teacher);
        foreach (var v in teacher.Graph.Nodes.Select(n => n.Output()).Where(v => !outputs.Contains(v)).ToList())
            rw.Rename(v, v.Name + "_t");
        var calib = CalibrationSource.FromFolder(Path.Combine(Paths.Model("digits/data"), "calib"));
        var ctx = PassContexts.Create(m.Clone(), calib);
        ctx.Original = teacher;
        var pass = new Distill();
        var e = Assert.Throws<OnnxModelException>(() => pass.Run(ctx, new PassOptions(pass,
            [new("steps", "1"), new("features", "blocks")])));
        Assert.Contains("features=blocks finds no layer input shared with the teacher", e.Message);
    }
}
