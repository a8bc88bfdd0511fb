// prune: the exactness lane. A pruned model must equal the original with the removed channels zeroed at
// every consumer's input (the masked reference, built here independently of the surgery), in ORT within
// 1e-5, for every rule: chains, residual streams, depthwise blocks, Concat/Split/Slice, Flatten -> Gemm,
// squeeze-excite gates, and the trained digits nets; plus the targets (ratio, scope, round-to, macs).
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class PruneTests
{
    internal static readonly PrunePlan Plan = new("l2", Global: true, RoundTo: 1, MinChannels: 1, MaxRatio: 0.9, new HashSet<string>());

    /// <summary>The original with every consumer's input multiplied by the keep mask of its channels.</summary>
    internal static Model MaskedReference(Model original, PrunePlan plan, double ratio,
        Calibration.CalibrationSource? calib = null)
    {
        var m = original.Clone();
        var d = DependencyGroups.Analyze(m);
        var importance = ChannelImportance.Compute(plan.Criterion, d, m, calib);
        var keep = plan.Keep(d, importance, ratio);
        var rw = new Rewriter(m);
        foreach (var n in m.Graph.Nodes.Where(n => OpTraits.Has(n, OpTrait.Linear)).ToList())
        {
            if (n.Input(0) is not { } x || !d.Segments.TryGetValue(x, out var segs) || LinearOp.Of(n) is not { IsDepthwise: false }) continue;
            var mask = new List<float>();
            foreach (var s in segs)
                for (int c = 0; c < s.Channels; c++)
                {
                    var kept = s.Group < 0 || !keep.TryGetValue(s.Group, out var k) || k.Contains(c);
                    for (long j = 0; j < s.Repeat; j++) mask.Add(kept ? 1f : 0f);
                }
            if (mask.All(v => v == 1f)) continue;
            long[] dims = x.Shape!.Rank == 4 ? [1, mask.Count, 1, 1] : [1, mask.Count];
            var mv = rw.Constant(m.Graph, x.Name + "_mask", Tensor.FromFloats("", dims, mask.ToArray()));
            rw.SetInput(n, 0, rw.Insert(m.Graph, "Mul", [x, mv], x.Name + "_masked").Output());
        }
        rw.Cleanup();
        ShapeInference.Refresh(m);
        return m;
    }

    private static (Model Pruned, List<PassRun> Runs) Pruned(Model m, double ratio, string extra = "") =>
        Run(m, $"prune{{ratio={ratio},round-to=1,recover=none,min-speedup=0{extra}}}");

    private static void AssertExact(Model m, double ratio)
    {
        var (pruned, _) = Pruned(m, ratio);
        Assert.True(ModelStats.Compute(pruned).ParameterCount < ModelStats.Compute(m).ParameterCount, "nothing was pruned");
        AssertEquivalent(MaskedReference(m, Plan, ratio), pruned);
    }

    [Theory]
    [InlineData("digits/vgg.onnx")]
    [InlineData("digits/resnet.onnx")]
    [InlineData("digits/mobilenetv2.onnx")]
    [InlineData("digits/mlp.onnx")]
    public void TrainedNetsEqualTheirMaskedReference(string path)
    {
        var m = OnnxImporter.Load(Paths.Model(path));
        AssertExact(m, 0.5);
        AssertExact(Run(m, "canonicalize,fold-bn").After, 0.3);
    }

    [Theory]
    [InlineData("torchvision/resnet18_small.onnx")]
    [InlineData("torchvision/mobilenet_v2_small.onnx")]
    [InlineData("torchvision/squeezenet1_1.onnx")]
    [InlineData("torchvision/shufflenet_v2_small.onnx")]
    [InlineData("torchvision/efficientnet_b0_small.onnx")]
    public void TorchvisionExportsEqualTheirMaskedReference(string path)
    {
        // torchvision's own blocks as torch.onnx exports them (testmodels/export_torchvision.py): residual
        // BasicBlocks, inverted residuals, fire modules' Concat, channel shuffle (refused: shape ops), SE with SiLU.
        var m = Run(OnnxImporter.Load(Paths.Model(path)), "canonicalize").After;
        var d = DependencyGroups.Analyze(m.Clone());
        Assert.Contains(d.Groups, g => g.Prunable);
        Assert.All(d.Groups.Where(g => !g.Prunable), g => Assert.NotEmpty(g.Reasons));
        AssertExact(m, 0.5);
    }

    private static Model Net(Func<GraphBuilder, Value, Value> body, long c = 4, long hw = 6)
    {
        var b = new GraphBuilder("net");
        var x = b.Input("x", DataType.Float, "N", c, hw, hw);
        b.Output(body(b, x));
        return b.Build();
    }

    public static TheoryData<string> Patterns() =>
        new("concat-split", "slice", "flatten-gemm", "se-gate", "prelu-mul-const", "grouped");

    private static Model Pattern(string name) => name switch
    {
        "grouped" => Net((b, x) =>
        {
            // Produced in 2 groups, read in 4 (blocks of 3 channels), then a grouped conv producing 8 in 4 groups.
            var a = b.Node("Relu", [Conv(b, x, "a", 1, 8, 4, 1)]);
            var g2 = b.Node("Relu", [Conv(b, a, "g2", 2, 12, 4, 3, pad: 1, group: 2)]);
            var g4 = b.Node("Relu", [Conv(b, g2, "g4", 3, 8, 3, 1, group: 4)]);
            return Conv(b, g4, "head", 4, 3, 8, 1);
        }),
        "concat-split" => Net((b, x) =>
        {
            var a = b.Node("Relu", [Conv(b, x, "a", 1, 6, 4, 1)]);
            var c = b.Node("Relu", [Conv(b, x, "c", 2, 10, 4, 3, pad: 1)]);
            var cat = b.Node("Concat", [a, c], OnnxAttribute.Int("axis", 1));
            var head = Conv(b, cat, "head", 3, 3, 16, 1);
            var parts = b.NodeMulti("Split", [cat, b.Initializer("sp", [6L, 10L], 2)], 2, OnnxAttribute.Int("axis", 1));
            return b.Node("Add", [head, Conv(b, parts[1], "tail", 4, 3, 10, 1)]);
        }),
        "slice" => Net((b, x) =>
        {
            var a = Conv(b, x, "a", 1, 6, 4, 1);
            var c = Conv(b, x, "c", 2, 8, 4, 1);
            var cat = b.Node("Concat", [a, c], OnnxAttribute.Int("axis", 1));
            var sl = b.Node("Slice", [cat, b.Initializer("st", [6L], 1), b.Initializer("en", [14L], 1), b.Initializer("ax", [1L], 1)]);
            return Conv(b, b.Node("Relu", [sl]), "out", 3, 3, 8, 1);
        }),
        "flatten-gemm" => Net((b, x) =>
        {
            var a = b.Node("Relu", [Conv(b, x, "a", 1, 6, 4, 3)]);      // [N,6,4,4]
            var f = b.Node("Flatten", [b.Node("MaxPool", [a], OnnxAttribute.IntList("kernel_shape", 2, 2), OnnxAttribute.IntList("strides", 2, 2))]);
            return b.Node("Gemm", [f, W(b, "fw", 2, 5, 24), W(b, "fb", 3, 5)], OnnxAttribute.Int("transB", 1));
        }),
        "se-gate" => Net((b, x) =>
        {
            var a = b.Node("Relu", [Conv(b, x, "a", 1, 8, 4, 1)]);
            var sq = b.Node("Relu", [Conv(b, b.Node("GlobalAveragePool", [a]), "sq", 2, 4, 8, 1)]);
            var gate = b.Node("Sigmoid", [Conv(b, sq, "up", 3, 8, 4, 1)]);
            var dw = b.Node("Relu", [Conv(b, b.Node("Mul", [a, gate]), "dw", 4, 8, 1, 3, pad: 1, group: 8)]);
            return Conv(b, dw, "out", 5, 3, 8, 1);
        }),
        "prelu-mul-const" => Net((b, x) =>
        {
            var a = Conv(b, x, "a", 1, 6, 4, 1);
            var p = b.Node("PRelu", [a, b.Initializer("slope", [0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f], 6, 1, 1)]);
            var s = b.Node("Mul", [b.Initializer("scale", [1f, 2f, 3f, 4f, 5f, 6f], 1, 6, 1, 1), p]);
            var t = b.Node("Add", [s, b.Initializer("shift", [0.5f], 1)]);
            return Conv(b, t, "out", 2, 3, 6, 1);
        }),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Patterns))]
    public void EveryRuleEqualsItsMaskedReference(string name)
    {
        var m = Pattern(name);
        Assert.Contains(DependencyGroups.Analyze(m.Clone()).Groups, g => g.Prunable);
        AssertExact(m, 0.5);
    }

    [Fact]
    public void GroupedConvsKeepTheSameCountInEveryGroup()
    {
        var m = Pattern("grouped");
        var (p, _) = Pruned(m, 0.5, ",scope=local");
        var g2 = p.Graph.Nodes.Where(n => n.OpType == "Conv").ToList()[1];
        var g4 = p.Graph.Nodes.Where(n => n.OpType == "Conv").ToList()[2];
        Assert.Equal(2, g2.GetInt("group", 1));
        Assert.Equal(4, g4.GetInt("group", 1));
        var g2w = g2.Input(1)!.Shape!.Dims.Select(d => d.Value!.Value).ToArray();
        var g4w = g4.Input(1)!.Shape!.Dims.Select(d => d.Value!.Value).ToArray();
        // g2: 12 -> 6 outputs rounded up to its 4 blocks -> 8; inputs 8 -> 4, 2 in each of its 2 groups.
        Assert.Equal([8, 2, 3, 3], g2w);
        // g4: 8 -> 4 outputs, 1 per group; inputs 12 -> 8, 2 in each of its 4 groups.
        Assert.Equal([4, 2, 1, 1], g4w);
        AssertEquivalent(MaskedReference(m, Plan with { Global = false }, 0.5), p);
    }

    [Theory]
    [InlineData("l1")]
    [InlineData("fpgm")]
    [InlineData("activation")]
    [InlineData("bn-scale")]
    [InlineData("synflow")]
    [InlineData("taylor")]
    public void EveryCriterionPrunesExactly(string criterion)
    {
        var m = OnnxImporter.Load(Paths.Model("digits/resnet.onnx"));
        m = Run(m, "canonicalize").After;
        var calib = Calibration.CalibrationSource.FromFolder(Paths.Model("digits/data/calib"));
        var (pruned, runs) = Run(m, $"prune{{ratio=0.4,round-to=1,recover=none,min-speedup=0,criterion={criterion}}}", calib);
        Assert.True(Counter(runs, Counters.Prune.ChannelsRemoved) > 0);
        AssertEquivalent(MaskedReference(m, Plan with { Criterion = criterion }, 0.4, calib), pruned);
    }

    [Fact]
    public void RoundToKeepsMultiplesAndLocalScopePrunesEveryGroupAlike()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/mobilenetv2.onnx"));
        var (p8, runs) = Run(m, "prune{ratio=0.5,round-to=8,scope=local,recover=none,min-speedup=0}");
        var decisions = runs[0].Stats.Decisions.OfType<GroupPruned>().Where(g => g.NotPrunable is null).ToList();
        Assert.All(decisions, g => Assert.True(g.ChannelsAfter % 8 == 0 || g.ChannelsAfter == g.ChannelsBefore, $"group {g.Group}: {g.ChannelsAfter}"));
        Assert.All(decisions, g => Assert.InRange(g.ChannelsAfter, g.ChannelsBefore / 2, g.ChannelsBefore / 2 + 7));
        Assert.Empty(Verifier.Check(p8));
    }

    [Fact]
    public void EveryPrunedGroupReportsItsMembersCostsImportanceAndRepair()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var calib = Calibration.CalibrationSource.FromFolder(Paths.Model("digits/data/calib"));
        var (_, runs) = Run(m, "canonicalize,fold-bn,prune{macs=0.5,min-speedup=0}", calib);
        var pruned = runs[2].Stats.Decisions.OfType<GroupPruned>().Where(g => g.ChannelsAfter < g.ChannelsBefore).ToList();
        Assert.NotEmpty(pruned);
        Assert.All(pruned, g =>
        {
            Assert.NotEmpty(g.Consumers);
            Assert.InRange(g.MacsAfter, 1, g.Macs - 1);
            Assert.InRange(g.ParamsAfter, 1, g.Params - 1);
            Assert.True(g.ImportanceKeptMin >= g.ImportanceRemovedMax, $"group {g.Group}");
            Assert.True(g.ImportanceKeptMean > g.ImportanceRemovedMean);
            Assert.NotNull(g.SqnrDbAfterRepair);
        });
        var json = OptimizeReportWriter.Json(new OptimizeReport
        {
            Pipeline = "prune",
            Exact = false,
            Before = ModelStats.Compute(m),
            After = ModelStats.Compute(m),
            Passes = runs,
        });
        Assert.Contains("\"importance_removed_max\"", json);
        Assert.Contains("\"sqnr_db_after_repair\"", json);
    }

    [Fact]
    public void MacsTargetIsReachedOnThePrunedGraph()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/resnet.onnx"));
        var (p, _) = Run(m, "prune{macs=0.5,round-to=1,recover=none,min-speedup=0}");
        var kept = (double)ModelStats.Compute(p).TotalMacs / ModelStats.Compute(m).TotalMacs;
        Assert.InRange(kept, 0.4, 0.5);
    }

    [Fact]
    public void UnprunableGroupsAndExcludedNodesStayWhole()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var first = m.Graph.Nodes.First(n => n.OpType == "Conv");
        var (p, runs) = Run(m, $"prune{{ratio=0.5,round-to=1,recover=none,min-speedup=0,exclude={first.Name}}}");
        var kept = p.Graph.Nodes.First(n => n.OpType == "Conv");
        Assert.Equal(16, Rewriter.ConstantOf(kept.Input(1))!.Dims[0]);
        Assert.Contains(runs[0].Stats.Decisions.OfType<GroupPruned>(), g => g.NotPrunable?.Contains("excluded") == true);
        Assert.Equal(10, p.Graph.Outputs[0].Shape![1].Value);
    }
}

public class PruneRepairTests
{
    private static readonly Calibration.CalibrationSource Calib = Calibration.CalibrationSource.FromFolder(Paths.Model("digits/data/calib"));
    private static readonly Calibration.CalibrationSource Test = Calibration.CalibrationSource.FromFolder(Paths.Model("digits/data/test"));

    private static OptimizeResult PruneVgg(string recover) =>
        Optimizer.Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), new OptimizeOptions
        {
            Pipeline = Presets.Prune.Build([new("macs", "0.5"), new("recover", recover)]),
            Calibration = Calib,
            Evaluation = Test,
            MaxDrop = 1,
        });

    [Fact]
    public void LeastSquaresRefitRecoversHeldOutAccuracyAtHalfTheMacs()
    {
        // 200 unlabeled calibration images, 500 held out; at 2x fewer MACs the refit keeps the loss within a
        // point where the cut model collapses to chance.
        var fit = PruneVgg("lstsq");
        Assert.True(fit.Report.After.TotalMacs <= fit.Report.Before.TotalMacs / 2);
        Assert.True(fit.Accepted, fit.Verdict);
        Assert.True(fit.Report.Validation!.Drop!.Value.Points <= 1.0);
        var refits = fit.Report.Passes.Single(p => p.Step.StartsWith("prune")).Stats.Decisions.OfType<LayerRefit>().ToList();
        Assert.NotEmpty(refits);
        Assert.All(refits, r => Assert.True(r.SqnrDbAfter > r.SqnrDbBefore, $"{r.Layer}: {r.SqnrDbBefore} -> {r.SqnrDbAfter}"));
        var cut = PruneVgg("none");
        Assert.False(cut.Accepted);
        Assert.True(cut.Report.Validation!.Drop!.Value.Points > 20);
    }

    [Fact]
    public void LeastSquaresNeedsCalibrationDataBeforeAnyPassRuns()
    {
        var e = Assert.Throws<OnnxModelException>(() => Optimizer.Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")),
            new OptimizeOptions { Pipeline = Pipeline.Parse("prune") }));
        Assert.Contains("pass 'prune' needs calibration data", e.Message);
    }

    [Fact]
    public void CholeskySolvesASymmetricSystem()
    {
        double[] a = [4, 2, 2, 3];
        double[] b = [2, 1];
        Assert.True(DenseKernels.CholeskySolve(a, b, 2, 1));
        Assert.Equal(0.5, b[0], 12);
        Assert.Equal(0.0, b[1], 12);
        Assert.False(DenseKernels.CholeskySolve([1, 2, 2, 1], [1, 1], 2, 1)); // not positive definite
    }
}

public class BiasRepairTests
{
    [Fact]
    public void AChannelConstantOnTheDataIsRemovedExactly()
    {
        // Channel 2 of conv a has zero weights and bias 0.7: after ReLU it is 0.7 everywhere, so moving its
        // mean into the 1x1 consumer's bias makes the pruned model compute exactly what the original does.
        var b = new GraphBuilder("dead");
        var x = b.Input("x", DataType.Float, "N", 4, 6, 6);
        var w = Rand(1, 8 * 4);
        for (int i = 0; i < 4; i++) w[2 * 4 + i] = 0;
        var bias = Rand(2, 8);
        bias[2] = 0.7f;
        var a = b.Node("Relu", [b.Node("Conv", [x, b.Initializer("aw", w, 8, 4, 1, 1), b.Initializer("ab", bias, 8)],
            OnnxAttribute.IntList("kernel_shape", 1, 1))]);
        b.Output(Conv(b, a, "out", 3, 3, 8, 1));
        var m = b.Build();
        var pruned = m.Clone();
        var d = DependencyGroups.Analyze(pruned);
        var group = d.Groups.Single(g => g.Prunable);
        var keep = new Dictionary<int, int[]> { [group.Id] = [0, 1, 3, 4, 5, 6, 7] };
        var calib = Calibration.CalibrationSource.FromRandom(8, 3);
        var repair = BiasRepair.Prepare(pruned, group.Consumers.Select(u => u.Node).ToList(), calib);
        var rw = new Rewriter(pruned);
        ChannelSurgery.Apply(pruned, rw, d, keep);
        Assert.Equal(1, repair.Apply(rw, d, keep, new Dictionary<Node, int[]> { [group.Producers[0]] = keep[group.Id] }));
        rw.Cleanup();
        Assert.Empty(Verifier.Check(pruned));
        AssertEquivalent(m, pruned);
    }
}

public class PruneGuardTests
{
    [Fact]
    public void APrunedModelThatIsNotFasterEnoughIsRefused()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var before = OnnxExporter.ToBytes(m);
        var (kept, runs) = Run(m, "prune{ratio=0.5,recover=none,min-speedup=100}");
        var timing = runs[0].Stats.Decisions.OfType<PruneLatency>().Single();
        Assert.False(timing.Kept);
        Assert.True(timing.BeforeMs > 0 && timing.AfterMs > 0);
        Assert.Equal(before, OnnxExporter.ToBytes(kept));
        Assert.Contains(runs[0].Stats.Notes, n => n.Contains("kept the input"));
        var (pruned, runs2) = Run(m, "prune{ratio=0.5,recover=none}");
        Assert.True(runs2[0].Stats.Decisions.OfType<PruneLatency>().Single().Kept); // 2x fewer MACs run faster
        Assert.NotEqual(before, OnnxExporter.ToBytes(pruned));
    }
}

/// <summary>prune's latency check: a pruned model that is not fast enough is given back through the rewriter.</summary>
public class PruneLatencyTests
{
    [Fact]
    public void APrunedModelThatIsNotFastEnoughIsReplacedByTheInput()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var before = TextPrinter.Print(m, TextOptions.Full);
        var (after, runs) = Run(m, "prune{ratio=0.3,min-speedup=50}",
            CalibrationSource.FromFolder(Path.Combine(Paths.Model("digits/data"), "calib")));
        Assert.Equal(1, Counter(runs, Counters.Prune.NotFaster));
        Assert.Equal(before, TextPrinter.Print(after, TextOptions.Full));
        Assert.Contains(runs.SelectMany(r => r.Stats.Notes), n => n.Contains("kept the input"));
    }
}
