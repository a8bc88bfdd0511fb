// Dependency groups: which channels go together, on graphs built in code for each rule (chains, residual
// streams, depthwise ties, Concat offsets, Split, Flatten -> Gemm, squeeze-excite gates) and on the trained
// digits nets; every unprunable group says why, and no test model makes the analysis fail.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class DependencyGroupsTests
{
    private static DependencyGroups Groups(Func<GraphBuilder, Value, Value> body, long c = 4, long hw = 6)
    {
        var b = new GraphBuilder("g");
        var x = b.Input("x", DataType.Float, "N", c, hw, hw);
        b.Output(body(b, x));
        return DependencyGroups.Analyze(b.Build());
    }

    private static DependencyGroup ProducedBy(DependencyGroups d, string output) =>
        d.Groups.Single(g => g.Producers.Any(p => p.Output().Name == output));

    [Fact]
    public void AChainGivesOneGroupPerConvTiedToItsBatchNorm()
    {
        var b = new GraphBuilder("chain");
        var x = b.Input("x", DataType.Float, "N", 3, 6, 6);
        var c1 = Conv(b, x, "c1", 1, 8, 3, 3, pad: 1);
        var bn = b.Node("BatchNormalization", [c1, W(b, "g", 2, 8), W(b, "be", 3, 8), W(b, "mu", 4, 8), b.Initializer("var", Enumerable.Repeat(1f, 8).ToArray(), 8)]);
        var c2 = Conv(b, b.Node("Relu", [bn]), "c2", 5, 5, 8, 1);
        b.Output(c2);
        var d = DependencyGroups.Analyze(b.Build());
        var g = ProducedBy(d, c1.Name);
        Assert.True(g.Prunable);
        Assert.Equal(8, g.Channels);
        Assert.Equal(c2.Producer, Assert.Single(g.Consumers).Node);
        Assert.Equal("BatchNormalization", Assert.Single(g.Tied).OpType);
        Assert.Contains("reaches graph output", Assert.Single(ProducedBy(d, c2.Name).Reasons));
        Assert.Contains("channels of graph input 'x'", d.Groups.Single(x => x.Producers.Count == 0).Reasons[0]);
    }

    [Fact]
    public void ResidualAddCouplesBothBranchesIntoOneGroup()
    {
        Value cA = null!, cB = null!;
        var d = Groups((b, x) =>
        {
            cA = Conv(b, x, "a", 1, 6, 4, 3, pad: 1);
            cB = Conv(b, cA, "b", 2, 6, 6, 3, pad: 1);
            var sum = b.Node("Add", [cA, b.Node("Relu", [cB])]);
            return Conv(b, sum, "head", 3, 2, 6, 1);
        });
        var g = ProducedBy(d, cA.Name);
        Assert.Same(g, ProducedBy(d, cB.Name));
        Assert.Equal(2, g.Producers.Count);
        Assert.Equal(2, g.Consumers.Count); // conv b reads it, and the head reads the sum
        Assert.True(g.Prunable);
    }

    [Fact]
    public void DepthwiseConvTiesItsInputAndOutput()
    {
        Value pw = null!;
        var d = Groups((b, x) =>
        {
            pw = Conv(b, x, "pw", 1, 8, 4, 1);
            var dw = Conv(b, pw, "dw", 2, 8, 1, 3, pad: 1, group: 8);
            return Conv(b, dw, "proj", 3, 4, 8, 1);
        });
        var g = ProducedBy(d, pw.Name);
        Assert.Contains(g.Tied, n => n.GetInt("group", 1) == 8);
        Assert.Equal("proj", g.Consumers.Single().Node.Input(1)!.Name[..4]);
    }

    [Fact]
    public void GroupedConvSplitsItsGroupsIntoEqualBlocks()
    {
        Value c = null!, grouped = null!;
        var d = Groups((b, x) =>
        {
            c = Conv(b, x, "c", 1, 8, 4, 1);
            grouped = b.Node("Relu", [Conv(b, c, "grouped", 2, 12, 4, 3, pad: 1, group: 2)]);
            var finer = Conv(b, grouped, "finer", 3, 8, 3, 1, group: 4);
            return Conv(b, finer, "head", 4, 3, 8, 1);
        });
        Assert.Equal(2, ProducedBy(d, c.Name).Blocks);
        var g = ProducedBy(d, grouped.Producer!.Input(0)!.Name);
        Assert.Equal(4, g.Blocks); // produced in 2 groups, read in 4: blocks of 3
        Assert.True(g.Prunable);

        // A grouped conv reading two channel groups at once is refused, with the reason.
        var cat = Groups((b, x) =>
        {
            var both = b.Node("Concat", [Conv(b, x, "a", 1, 4, 4, 1), Conv(b, x, "e", 2, 4, 4, 1)],
                OnnxAttribute.Int("axis", 1));
            return Conv(b, Conv(b, both, "gc", 3, 8, 4, 1, group: 2), "head", 4, 3, 8, 1);
        });
        Assert.Contains(cat.Groups, x => x.Reasons.Any(r => r.Contains("grouped") && r.Contains("not one channel group")));
    }

    [Fact]
    public void ConcatShiftsConsumerOffsetsAndSplitTakesWholeSegments()
    {
        Value a = null!, c = null!, head = null!;
        var d = Groups((b, x) =>
        {
            a = Conv(b, x, "a", 1, 3, 4, 1);
            c = Conv(b, x, "c", 2, 5, 4, 1);
            var cat = b.Node("Concat", [a, c], OnnxAttribute.Int("axis", 1));
            head = Conv(b, cat, "head", 3, 2, 8, 1);
            var parts = b.NodeMulti("Split", [cat, b.Initializer("sp", [3L, 5L], 2)], 2, OnnxAttribute.Int("axis", 1));
            return b.Node("Add", [head, Conv(b, parts[1], "tail", 4, 2, 5, 1)]);
        });
        var ga = ProducedBy(d, a.Name);
        var gc = ProducedBy(d, c.Name);
        Assert.Equal(0, ga.Consumers.Single(u => u.Node == head.Producer).Offset);
        Assert.Equal(3, gc.Consumers.Single(u => u.Node == head.Producer).Offset);
        Assert.Equal(2, gc.Consumers.Count); // head, and tail through the Split's second part
        Assert.True(ga.Prunable && gc.Prunable);
    }

    [Fact]
    public void SplitCuttingAGroupIsRefused()
    {
        Value a = null!;
        var d = Groups((b, x) =>
        {
            a = Conv(b, x, "a", 1, 6, 4, 1);
            var parts = b.NodeMulti("Split", [a, b.Initializer("sp", [2L, 4L], 2)], 2, OnnxAttribute.Int("axis", 1));
            return b.Node("Add", [Conv(b, parts[0], "p", 2, 3, 2, 1), Conv(b, parts[1], "q", 3, 3, 4, 1)]);
        });
        Assert.Contains(ProducedBy(d, a.Name).Reasons, r => r.Contains("cuts a channel group"));
    }

    [Fact]
    public void FlattenMapsEachChannelToItsFeaturesOfTheGemm()
    {
        Value a = null!;
        var d = Groups((b, x) =>
        {
            a = Conv(b, x, "a", 1, 5, 4, 3);          // [N,5,4,4]
            var f = b.Node("Flatten", [b.Node("Relu", [a])]);
            return b.Node("Gemm", [f, W(b, "fw", 2, 3, 80), W(b, "fb", 3, 3)], OnnxAttribute.Int("transB", 1));
        });
        var u = ProducedBy(d, a.Name).Consumers.Single();
        Assert.Equal("Gemm", u.Node.OpType);
        Assert.Equal(16, u.Repeat);
    }

    [Fact]
    public void SqueezeExciteGateJoinsTheGateConvWithTheFeatureMap()
    {
        Value a = null!, up = null!;
        var d = Groups((b, x) =>
        {
            a = Conv(b, x, "a", 1, 6, 4, 1);
            var squeeze = Conv(b, b.Node("GlobalAveragePool", [a]), "sq", 2, 2, 6, 1);
            up = Conv(b, b.Node("Relu", [squeeze]), "up", 3, 6, 2, 1);
            var gated = b.Node("Mul", [a, b.Node("Sigmoid", [up])]);
            return Conv(b, gated, "out", 4, 3, 6, 1);
        });
        Assert.Same(ProducedBy(d, a.Name), ProducedBy(d, up.Name));
        Assert.True(ProducedBy(d, a.Name).Prunable);
    }

    [Fact]
    public void AnOpWithAnUnknownChannelMappingIsNeverGuessed()
    {
        Value a = null!;
        var d = Groups((b, x) =>
        {
            a = Conv(b, x, "a", 1, 6, 4, 1);
            return Conv(b, b.Node("Softmax", [a], OnnxAttribute.Int("axis", 1)), "out", 2, 3, 6, 1);
        });
        Assert.Contains(ProducedBy(d, a.Name).Reasons, r => r.Contains("channel mapping of Softmax unknown"));
        Assert.Contains(d.Groups, g => g.Reasons.Any(r => r.Contains("mapping unknown")));
    }

    [Fact]
    public void ExcludedNodesKeepTheirChannels()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var conv = m.Graph.Nodes.First(n => n.OpType == "Conv");
        var d = DependencyGroups.Analyze(m, new HashSet<string> { conv.Name! });
        Assert.Contains(d.Groups, g => g.Producers.Contains(conv) && g.Reasons.Any(r => r.Contains("excluded")));
    }

    [Theory]
    [InlineData("digits/vgg.onnx", 8, 6)]
    [InlineData("digits/resnet.onnx", 9, 5)] // two residual groups read a BN bias through an Identity (see below)
    [InlineData("digits/mobilenetv2.onnx", 11, 9)]
    [InlineData("digits/mlp.onnx", 4, 2)]
    public void TrainedNetsGroupAsTheirArchitectureSays(string path, int groups, int prunable)
    {
        var d = DependencyGroups.Analyze(OnnxImporter.Load(Paths.Model(path)));
        Assert.Equal(groups, d.Groups.Count);
        Assert.Equal(prunable, d.Groups.Count(g => g.Prunable));
        Assert.All(d.Groups.Where(g => !g.Prunable), g => Assert.NotEmpty(g.Reasons));
    }

    [Fact]
    public void EveryTestModelIsAnalyzedWithoutFailing()
    {
        foreach (var path in ModelCorpus.TestModels())
        {
            var m = OnnxImporter.Load(path);
            var d = DependencyGroups.Analyze(m);
            Assert.All(d.Groups, g => Assert.True(g.Prunable || g.Reasons.Count > 0, path));
            Assert.NotNull(DependencyGroupsWriter.Json(d));
        }
    }
}

public class DependencyGroupsParameterTests
{
    [Fact]
    public void ABatchNormWhoseParameterIsComputedIsNotSliced()
    {
        // torch.onnx shares equal tensors through Identity nodes (the digits ResNet has two): the group is
        // refused until canonicalize turns them back into initializers.
        var m = OnnxImporter.Load(Paths.Model("digits/resnet.onnx"));
        Assert.Contains(DependencyGroups.Analyze(m).Groups, g => g.Reasons.Any(r => r.Contains("not a constant (canonicalize first)")));
        var c = PassTestKit.Run(m, "canonicalize").After;
        Assert.DoesNotContain(DependencyGroups.Analyze(c).Groups, g => g.Reasons.Any(r => r.Contains("not a constant")));
    }
}

public class PruneEveryModelTests
{
    [Fact]
    public void NoTestModelMakesPruneFail()
    {
        var failures = new List<string>();
        foreach (var path in ModelCorpus.TestModels())
        {
            foreach (var pipeline in new[] { "prune{ratio=0.3,recover=none,min-speedup=0}",
                "prune{unit=block,ratio=0.5,recover=none,min-speedup=0,sensitivity-samples=2}" })
            {
                try { PassTestKit.Run(OnnxImporter.Load(path), pipeline, Calibration.CalibrationSource.FromRandom(2, 1)); }
                catch (Exception e)
                {
                    failures.Add($"{Path.GetFileName(path)} {pipeline}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
