// linearize: calibration statistics, the exact (budget 0) rule, the measured budget, affine mode,
// and the report of every decision.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Data;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class LinearizeTests
{
    /// <summary>conv -> relu(a) -> conv -> relu(b) -> gemm; relu(a)'s input is made non-negative on all
    /// data by a large positive bias, relu(b)'s is not.</summary>
    private static Model Net()
    {
        var b = new GraphBuilder("lin");
        var x = b.Input("x", DataType.Float, "N", 2, 6, 6);
        var c1 = b.Node("Conv", [x, W(b, "w1", 1, 4, 2, 3, 3), b.Initializer("b1", [50f, 50f, 50f, 50f], 4)],
            OnnxAttribute.IntList("kernel_shape", 3, 3), OnnxAttribute.IntList("pads", 1, 1, 1, 1));
        var r1 = b.Node("Relu", [c1]);
        var c2 = Conv(b, r1, "c2", 3, 4, 4, 1);
        var r2 = b.Node("Relu", [b.Node("Add", [c2, b.Initializer("shift", [-50f, -50f, -50f, -50f], 4, 1, 1)])]);
        var f = b.Node("Flatten", [b.Node("GlobalAveragePool", [r2])]);
        b.Output(b.Node("Gemm", [f, W(b, "fc", 5, 3, 4), W(b, "fcb", 6, 3)], OnnxAttribute.Int("transB", 1)));
        return b.Build();
    }

    private static CalibrationSource Calib => CalibrationSource.FromRandom(40, 5, new Dictionary<string, long> { ["N"] = 1 });

    [Fact]
    public void StatisticsStreamPerTensorAndPerChannel()
    {
        var s = new TensorStatistics("z", clipMax: 6);
        s.Add(Tensor.FromFloats("z", [1, 2, 2], [-1, 2, 7, 3]));
        s.Add(Tensor.FromFloats("z", [1, 2, 2], [-3, 0, 1, 1]));
        Assert.Equal(8, s.Total.Count);
        Assert.Equal(-3, s.Total.Min);
        Assert.Equal(7, s.Total.Max);
        Assert.Equal(10.0 / 8, s.Total.Mean, 12);
        Assert.Equal(2.0 / 8, s.Total.FractionNegative, 12);
        Assert.Equal(1.0 / 8, s.Total.FractionAbove, 12);
        Assert.Equal(10.0 / (1 + 4 + 49 + 9 + 9 + 0 + 1 + 1), s.Total.NegativeEnergyRatio, 12);
        Assert.Equal(2, s.Channels.Length);
        Assert.Equal(-3, s.Channels[0].Min);
        Assert.Equal(7, s.Channels[1].Max);
    }

    [Fact]
    public void AffineFitRecoversALinearMap()
    {
        var s = new TensorStatistics("z");
        var z = Enumerable.Range(0, 20).Select(i => i * 0.5f - 5).ToArray();
        s.Add(Tensor.FromFloats("z", [1, 1, 20], z), Tensor.FromFloats("a", [1, 1, 20], z.Select(v => 3 * v - 2).ToArray()));
        var (a, b) = s.AffineFit()[0];
        Assert.Equal(3, a, 9);
        Assert.Equal(-2, b, 9);
    }

    [Fact]
    public void BudgetZeroLinearizesOnlyWhatIsExactlyLinearOnTheData()
    {
        var m = Net();
        var (after, runs) = Run(m, "linearize{max-agreement-drop=0}", Calib);
        Assert.Equal(1, Count(after, "Relu"));
        Assert.Equal(1, Counter(runs, Counters.Linearize.Exactly));
        var decisions = runs[0].Stats.Decisions.OfType<ActivationDecision>().ToList();
        Assert.Contains(decisions, d => d.Decision == "linearized (exact on data)");
        Assert.Contains(decisions, d => d.Decision == "kept (budget 0: not exact)");
        AssertEquivalent(m, after); // exact on this data: same outputs
    }

    [Fact]
    public void BudgetZeroGolden() => Golden.Assert("passes/linearize-budget0.txt",
        TextPrinter.Print(Run(Net(), "linearize{max-agreement-drop=0}", Calib).After));

    [Fact]
    public void LinearizeThenFoldReducesDepthExactlyWhenTheActivationIsInactive()
    {
        var m = Net();
        var before = ModelStats.Compute(OnnxImporter.Parse(OnnxExporter.ToBytes(m)));
        var (after, _) = Run(m, "linearize{max-agreement-drop=0},fold-conv{objective=depth},fuse-bias,canonicalize", Calib);
        var stats = ModelStats.Compute(after);
        Assert.Equal(before.NonLinearDepth - 1, stats.NonLinearDepth);
        Assert.Equal(Count(m, "Conv") - 1, Count(after, "Conv"));
        AssertEquivalent(m, after);
    }

    [Fact]
    public void AGenerousBudgetLinearizesMoreAndRecordsTheMeasuredAgreement()
    {
        var (after, runs) = Run(Net(), "linearize{max-agreement-drop=100}", Calib);
        Assert.Equal(0, Count(after, "Relu"));
        var measured = runs[0].Stats.Decisions.OfType<ActivationDecision>().Select(d => d.AgreementAfter).ToList();
        Assert.NotEmpty(measured);
        Assert.All(measured, v => Assert.NotNull(v));
    }

    [Fact]
    public void AnSqnrFloorKeepsActivationsWhoseRemovalDistortsTheOutput()
    {
        // relu(b) is far from linear: removing it costs far more than 60 dB of output SQNR.
        var (after, runs) = Run(Net(), "linearize{max-agreement-drop=100,min-sqnr=60}", Calib);
        Assert.Equal(1, Count(after, "Relu"));
        var kept = runs[0].Stats.Decisions.OfType<ActivationDecision>().Single(d => d.Decision == "kept (over budget)");
        var sqnr = kept.SqnrDbAfter!.Value;
        Assert.True(sqnr < 60, $"sqnr {sqnr}");
    }

    [Fact]
    public void MaxCountLimitsTheNumberOfSwitches()
    {
        var (after, _) = Run(Net(), "linearize{max-agreement-drop=100,max-count=1}", Calib);
        Assert.Equal(1, Count(after, "Relu"));
    }

    [Fact]
    public void AffineModeFoldsTheFitIntoTheProducer()
    {
        var (after, runs) = Run(Net(), "linearize{max-agreement-drop=100,mode=affine}", Calib);
        Assert.Equal(0, Count(after, "Relu"));
        Assert.Equal(1, Count(after, "Mul")); // relu(a)'s fit folds into its conv; relu(b) follows an Add: Mul+Add
        Assert.Equal(2, Counter(runs, Counters.Linearize.Linearized));
    }

    [Fact]
    public void WithoutCalibrationDataLinearizeSaysWhatItNeeds()
    {
        var e = Assert.Throws<OnnxModelException>(() => Run(Net(), "linearize"));
        Assert.Contains("--calib", e.Message);
    }

    [Fact]
    public void ALayerFoldingTrainedNetFoldsExactlyToFewerMacs()
    {
        // testmodels/train_layerfolding.py trained this MobileNetV2-style net with Layer Folding's
        // linearity loss: 10 of its 12 PReLU slopes became 1. canonicalize removes those, fold-conv merges
        // the blocks that pay, and the result is exact on held-out data.
        var dir = Path.Combine(Paths.TestModels, "digits");
        var m = OnnxImporter.Load(Path.Combine(dir, "mobilenetv2_lf.onnx"));
        var before = ModelStats.Compute(OnnxImporter.Load(Path.Combine(dir, "mobilenetv2_lf.onnx")));
        var (after, runs) = Run(m, "canonicalize,fold-bn,linearize{max-agreement-drop=0},fold-conv,fuse-bias,canonicalize",
            CalibrationSource.FromFolder(Path.Combine(dir, "data", "calib")));
        var stats = ModelStats.Compute(after);
        Assert.Equal(12, before.NonLinearDepth);
        Assert.Equal(2, stats.NonLinearDepth);
        Assert.True(stats.TotalMacs < 0.75 * before.TotalMacs, $"MACs {before.TotalMacs} -> {stats.TotalMacs}");
        Assert.True(Counter(runs, Counters.FoldConv.ConvConvBiasMap) >= 2);
        using var a = Runtime.InferenceSession.FromModel(m);
        using var b = Runtime.InferenceSession.FromModel(after);
        var v = Runtime.Validation.Validator.Compare(a, b, DataSet.FromFolder(Path.Combine(dir, "data", "test"), a.Inputs));
        Assert.True(v.Passed, $"max abs {v.Outputs[0].MaxAbsError}");
        Assert.Equal(v.ReferenceAccuracy, v.CandidateAccuracy);
    }
}
