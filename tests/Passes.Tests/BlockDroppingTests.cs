// prune{unit=block}: which residual blocks are found (identity and projection skips, torchvision's
// BasicBlocks and inverted residuals), that dropping one equals the original with its branch zeroed (in
// ORT), and the pass's targets and decisions.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class BlockDroppingTests
{
    [Theory]
    [InlineData("digits/resnet.onnx", 4)]
    [InlineData("digits/vgg.onnx", 0)]
    [InlineData("torchvision/resnet18_small.onnx", 8)]
    [InlineData("torchvision/mobilenet_v2_small.onnx", 11)] // width 0.25: the first block is residual too
    public void ResidualBlocksAreFound(string path, int count)
    {
        var m = Run(OnnxImporter.Load(Paths.Model(path)), "canonicalize,fold-bn").After;
        var blocks = BlockDropping.Find(m);
        Assert.Equal(count, blocks.Count);
        foreach (var b in blocks)
        {
            Assert.Contains(b.Kept, b.Add.Inputs);
            Assert.True(b.Macs > 0);
            Assert.DoesNotContain(b.Kept.Producer, b.Branch);
        }
    }

    [Fact]
    public void TheProjectionSideStaysAndTheResidualBranchGoes()
    {
        var m = Run(OnnxImporter.Load(Paths.Model("digits/resnet.onnx")), "canonicalize,fold-bn").After;
        var blocks = BlockDropping.Find(m);
        // blocks 1 and 3 downsample with a 1x1 projection: it is the side kept, the two 3x3 convs go.
        var projected = blocks.Where(b => b.Kept.Producer is { OpType: "Conv" }).ToList();
        Assert.Equal(2, projected.Count);
        Assert.All(projected, b => Assert.Equal(2, b.Branch.Count(n => n.OpType == "Conv")));
    }

    [Theory]
    [InlineData("digits/resnet.onnx")]
    [InlineData("torchvision/mobilenet_v2_small.onnx")]
    public void DroppingABlockEqualsZeroingItsBranch(string path)
    {
        var m = Run(OnnxImporter.Load(Paths.Model(path)), "canonicalize,fold-bn").After;
        for (int i = 0; i < BlockDropping.Find(m).Count; i += 3)
        {
            var dropped = m.Clone();
            BlockDropping.Drop(new Rewriter(dropped), BlockDropping.Find(dropped)[i]);
            Assert.Empty(Verifier.Check(dropped));
            var masked = m.Clone();
            var b = BlockDropping.Find(masked)[i];
            var rw = new Rewriter(masked);
            var branchOut = b.Add.Inputs.First(v => v != b.Kept)!;
            var zero = rw.Constant(masked.Graph, "zero", Tensor.FromFloats("", [], [0f]));
            var zeroed = rw.Insert(masked.Graph, "Mul", [branchOut, zero], "zeroed").Output();
            rw.SetInput(b.Add, Array.IndexOf(b.Add.Inputs.ToArray(), branchOut), zeroed);
            AssertEquivalent(masked, dropped);
            Assert.True(dropped.Graph.Nodes.Count < m.Graph.Nodes.Count);
        }
    }

    [Fact]
    public void DroppingChainedBlocksEqualsZeroingEveryBranch()
    {
        // MobileNetV2's stages chain identity blocks: the kept side of one is the output of the one before.
        var m = Run(OnnxImporter.Load(Paths.Model("torchvision/mobilenet_v2_small.onnx")), "canonicalize,fold-bn").After;
        var dropped = m.Clone();
        var rw = new Rewriter(dropped);
        var replaced = new Dictionary<Value, Value>();
        foreach (var b in BlockDropping.Find(dropped)) BlockDropping.Drop(rw, b, replaced);
        Assert.Empty(Verifier.Check(dropped));
        Assert.Empty(BlockDropping.Find(dropped));
        var masked = m.Clone();
        var mrw = new Rewriter(masked);
        var zero = mrw.Constant(masked.Graph, "zero", Tensor.FromFloats("", [], [0f]));
        foreach (var b in BlockDropping.Find(masked))
        {
            var branchOut = b.Add.Inputs.First(v => v != b.Kept)!;
            var zeroed = mrw.Insert(masked.Graph, "Mul", [branchOut, zero], branchOut.Name + "_zeroed").Output();
            mrw.SetInput(b.Add, Array.IndexOf(b.Add.Inputs.ToArray(), branchOut), zeroed);
        }
        AssertEquivalent(masked, dropped);
    }

    [Fact]
    public void UnitBlockDropsTheLeastDamagingBlocksAndRepairsTheirReaders()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/resnet.onnx"));
        var calib = Calibration.CalibrationSource.FromFolder(Paths.Model("digits/data/calib"));
        var (p, runs) = Run(Run(m, "canonicalize,fold-bn").After,
            "prune{unit=block,ratio=0.5,sensitivity-samples=32,min-speedup=0}", calib);
        var decisions = runs[0].Stats.Decisions.OfType<BlockDropped>().ToList();
        Assert.Equal(4, decisions.Count);
        Assert.Equal(2, decisions.Count(d => d.Dropped));
        Assert.All(decisions, d => Assert.True(d.Damage > 0 && double.IsFinite(d.Damage)));
        Assert.True(ModelStats.Compute(p).TotalMacs < ModelStats.Compute(m).TotalMacs);
        Assert.Equal(4 - 2, BlockDropping.Find(p).Count);
        Assert.Empty(Verifier.Check(p));

        var (v, vruns) = Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), "prune{unit=block,min-speedup=0}", calib);
        Assert.Contains(vruns[0].Stats.Notes, n => n.Contains("no residual block"));
        Assert.Equal(OnnxExporter.ToBytes(OnnxImporter.Load(Paths.Model("digits/vgg.onnx"))), OnnxExporter.ToBytes(v));
    }
}
