// prune{allocate=sensitivity}: the MACs model the greedy search uses equals the MACs of the pruned graph for
// any allocation; the allocation meets its target (MACs or channel ratio) as measured on the result, and
// reports every group's damage table.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class SensitivityAllocationTests
{
    [Theory]
    [InlineData("digits/resnet.onnx")]
    [InlineData("digits/mobilenetv2.onnx")]
    [InlineData("digits/mlp.onnx")]
    [InlineData("torchvision/squeezenet1_1.onnx")]
    [InlineData("torchvision/efficientnet_b0_small.onnx")]
    public void TheMacsModelEqualsTheMacsOfThePrunedGraph(string path)
    {
        var m = Run(OnnxImporter.Load(Paths.Model(path)), "canonicalize").After;
        var d = DependencyGroups.Analyze(m);
        var model = new MacsModel(m, d);
        Assert.Equal(ModelStats.Compute(m).TotalMacs, model.Macs(new Dictionary<int, int>()), 6);
        var rng = new Random(3);
        for (int trial = 0; trial < 3; trial++)
        {
            var counts = d.Groups.Where(g => g.Prunable).ToDictionary(g => g.Id, g => rng.Next(1, g.Channels + 1));
            var pruned = m.Clone();
            var pd = DependencyGroups.Analyze(pruned);
            var keep = counts.ToDictionary(kv => kv.Key, kv => Enumerable.Range(0, kv.Value).ToArray());
            ChannelSurgery.Apply(pruned, new Rewriter(pruned), pd, keep);
            ShapeInference.Refresh(pruned);
            Assert.Equal(ModelStats.Compute(pruned).TotalMacs, model.Macs(counts), 6);
        }
    }

    [Fact]
    public void SensitivityAllocationMeetsItsTargetsAndReportsTheDamageTable()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var calib = Calibration.CalibrationSource.FromFolder(Paths.Model("digits/data/calib"));
        var (p, runs) = Run(Run(m, "canonicalize,fold-bn").After,
            "prune{macs=0.5,allocate=sensitivity,sensitivity-samples=32,min-speedup=0}", calib);
        Assert.True(ModelStats.Compute(p).TotalMacs <= 0.5 * ModelStats.Compute(m).TotalMacs);
        var table = runs[0].Stats.Decisions.OfType<GroupSensitivity>().ToList();
        Assert.NotEmpty(table);
        Assert.All(table, row =>
        {
            Assert.Equal(row.Kept.Length, row.Damage.Length);
            Assert.True(row.Kept.Zip(row.Kept.Skip(1)).All(x => x.First > x.Second), "candidates descend");
            Assert.All(row.Damage, v => Assert.True(v >= 0 && double.IsFinite(v)));
            Assert.True(row.Chosen == row.Channels || row.Kept.Contains(row.Chosen));
        });
        Assert.Contains(table, row => row.Chosen < row.Channels);

        var (r, rruns) = Run(m, "prune{ratio=0.3,allocate=sensitivity,recover=none,sensitivity-samples=16,min-speedup=0}",
            calib);
        var groups = rruns[0].Stats.Decisions.OfType<GroupPruned>().Where(g => g.NotPrunable is null).ToList();
        Assert.True(groups.Sum(g => g.ChannelsBefore - g.ChannelsAfter) >= 0.3 * groups.Sum(g => g.ChannelsBefore));
        Assert.Empty(Verifier.Check(r));
    }
}
