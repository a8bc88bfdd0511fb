// Recovery training through the passes, end to end on the trained digits nets (short runs, so CI stays fast):
// distill after prune pulls the pruned model toward the original; Layer Folding's train mode linearizes within
// its budget and folds exactly; trained centroids beat untrained ones and every storage format stores them
// exactly; the teacher is the pipeline's input; two runs give the same bytes.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Data;
using OnnxOpt.Runtime;
using OnnxOpt.Training;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class RecoveryTrainingTests
{
    [Theory]
    [InlineData("transformers/bert_medium.onnx", "transformers/bert_medium_data", 16)]
    [InlineData("transformers/bert_op13.onnx", "transformers/bert_data", 64)]
    [InlineData("digits/vgg.onnx", "digits/data/calib", 64)]
    public void TheAutomaticBatchHoldsAboutTwoThousandTokens(string model, string data, int expected)
    {
        // batch=0 (the default): 64 images, 64 sentences of 32 tokens, 16 of 128.
        var m = OnnxImporter.Load(Paths.Model(model));
        var set = CalibrationSource.FromFolder(Paths.Model(data)).DataFor(IoInfo.InputsOf(m.Graph));
        Assert.Equal(expected, Trainer.AutoBatch(TrainingData.Load(set)));
        Assert.Equal(0, new TrainingOptions().Batch);
    }

    private static readonly string Data = Paths.Model("digits/data");

    private static OptimizeResult Optimize(string model, string pipeline) => Optimizer.Run(
        OnnxImporter.Load(Paths.Model(model)), new OptimizeOptions
        {
            Pipeline = Pipeline.Parse(pipeline),
            Calibration = CalibrationSource.FromFolder(Path.Combine(Data, "calib")),
            Evaluation = CalibrationSource.FromFolder(Path.Combine(Data, "test")),
            MaxDrop = 100,
        });

    private static float[][] Outputs(byte[] model)
    {
        using var s = InferenceSession.FromBytes(model, new SessionSettings { Optimization = GraphOptimization.All });
        return DataSet.Random(s.Inputs, 4, 5, new Dictionary<string, long> { ["N"] = 2 }).Batches(2)
            .SelectMany(b => s.Run(b.Inputs).Select(t => t.ToFloatArray())).ToArray();
    }

    private static double Accuracy(OptimizeResult r) => r.Report.Validation!.Report.CandidateAccuracy!.Value * 100;

    [Fact]
    public void DistillAfterPruneRecoversAccuracyAndRecordsTheRun()
    {
        const string prune = "canonicalize,fold-bn,prune{macs=0.4,recover=none,min-speedup=0}";
        var pruned = Optimize("digits/vgg.onnx", prune);
        var distilled = Optimize("digits/vgg.onnx", prune + ",distill{steps=80,eval-every=40,lr=0.002}");
        Assert.True(Accuracy(distilled) > Accuracy(pruned) + 1, $"{Accuracy(pruned)} -> {Accuracy(distilled)}");
        var summary = distilled.Report.Passes[^1].Stats.Decisions.OfType<TrainingSummary>().Single();
        Assert.Equal(80, summary.Steps);
        Assert.True(summary.FinalLoss < summary.FirstLoss);
        Assert.Equal("accuracy", summary.Metric);
        Assert.True(summary.ScoreBest >= summary.ScoreBefore);
        Assert.False(summary.TeacherCached); // mixup and shifts (the defaults): the teacher answers every new batch
        var plain = Optimize("digits/vgg.onnx", prune + ",distill{steps=10,mixup=0,shift=0}");
        Assert.True(plain.Report.Passes[^1].Stats.Decisions.OfType<TrainingSummary>().Single().TeacherCached);
        // Same seed, same bytes.
        var again = Optimize("digits/vgg.onnx", prune + ",distill{steps=80,eval-every=40,lr=0.002}");
        Assert.Equal(distilled.Bytes, again.Bytes);
    }

    [Fact]
    public void AFewHeldOutSamplesDoNotChooseTheTrainingPoint()
    {
        // Without --eval the driver holds 50 of the 200 calibration images out: too few to choose among ten
        // points, so distillation trains to the end.
        var r = Optimizer.Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), new OptimizeOptions
        {
            Pipeline = Pipeline.Parse("canonicalize,fold-bn,prune{macs=0.4,min-speedup=0},distill{steps=60,eval-every=20}"),
            Calibration = CalibrationSource.FromFolder(Path.Combine(Data, "calib")),
            MaxDrop = 100,
        });
        var stats = r.Report.Passes[^1].Stats;
        Assert.Contains(stats.Notes, n => n.StartsWith("distill: 50 held-out samples are too few", StringComparison.Ordinal));
        var summary = stats.Decisions.OfType<TrainingSummary>().Single();
        Assert.Equal((60, 60), (summary.BestStep, summary.Steps));
        // With the 500 test images the points every 20 steps are scored and the best kept: no such note.
        var chosen = Optimize("digits/vgg.onnx", "canonicalize,fold-bn,prune{macs=0.4,min-speedup=0},distill{steps=60,eval-every=20}");
        Assert.DoesNotContain(chosen.Report.Passes[^1].Stats.Notes, n => n.Contains("too few", StringComparison.Ordinal));
        // Trained to the end: the same bytes as eval-every=0.
        var noSelection = Optimizer.Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), new OptimizeOptions
        {
            Pipeline = Pipeline.Parse("canonicalize,fold-bn,prune{macs=0.4,min-speedup=0},distill{steps=60,eval-every=0}"),
            Calibration = CalibrationSource.FromFolder(Path.Combine(Data, "calib")),
            MaxDrop = 100,
        });
        Assert.Equal(noSelection.Bytes, r.Bytes);
    }

    [Fact]
    public void ShiftTakesPixelsOrAutoAndNothingElse()
    {
        var e = Assert.Throws<OnnxModelException>(() => Optimize("digits/mlp.onnx", "distill{steps=1,shift=two}"));
        Assert.Contains("shift=two: give a number of pixels (0 or more) or auto", e.Message);
        var n = Assert.Throws<OnnxModelException>(() => Optimize("digits/mlp.onnx", "distill{steps=1,shift=-2}"));
        Assert.Contains("shift=-2", n.Message);
    }

    [Fact]
    public void DistillFeaturesAutoMatchesThePooledFeaturesAndBiasesOnlyTouchesBiases()
    {
        var m = Run(OnnxImporter.Load(Paths.Model("digits/resnet.onnx")), "canonicalize,fold-bn").After;
        var calib = CalibrationSource.FromFolder(Path.Combine(Data, "calib"));
        var student = m.Clone();
        // A perturbed bias the distillation must pull back.
        var fc = student.Graph.Nodes.Last(n => n.OpType == "Gemm");
        var b = fc.Input(2)!;
        new Rewriter(student).SetInitializer(b, Tensor.FromFloats(b.Name, b.Initializer!.Dims,
            b.Initializer.ToFloatArray().Select((v, i) => v + (i % 3) * 0.7f).ToArray()));
        var ctx = PassContexts.Create(student, calib);
        ctx.Original = m;
        var biases = student.Graph.Nodes.SelectMany(ParameterSelection.Trainable).Where(t => t.Bias)
            .Select(t => t.Value.Name).ToHashSet();
        var before = student.Graph.Initializers.Where(v => v != b).ToDictionary(v => v.Name, v => v.Initializer!.ToFloatArray());
        var pass = new Distill();
        pass.Run(ctx, new PassOptions(pass, [new("steps", "60"), new("params", "biases"), new("features", "auto"),
            new("lr", "0.01")]));
        var s = ctx.Stats.Decisions.OfType<TrainingSummary>().Single();
        Assert.True(s.FinalLoss < 0.5 * s.FirstLoss, $"{s.FirstLoss} -> {s.FinalLoss}");
        foreach (var v in student.Graph.Initializers)
            if (before.TryGetValue(v.Name, out var old) && !biases.Contains(v.Name))
                Assert.Equal(old, v.Initializer!.ToFloatArray());
    }

    [Fact]
    public void TrainedLayerFoldingLinearizesWithinBudgetAndFoldsExactly()
    {
        var log = new StringWriter();
        var r = Optimizer.Run(OnnxImporter.Load(Paths.Model("digits/resnet.onnx")), new OptimizeOptions
        {
            Pipeline = Pipeline.Parse("canonicalize,fold-bn,linearize{mode=train,steps=200,finetune-steps=40,"
                + "max-agreement-drop=1.5},canonicalize,fold-conv"),
            Calibration = CalibrationSource.FromFolder(Path.Combine(Data, "calib")),
            Evaluation = CalibrationSource.FromFolder(Path.Combine(Data, "test")),
            MaxDrop = 100,
            Log = log,
        });
        // Each trial is judged by the upper bound of its held-out drop at 90%, which the log gives with the drop.
        Assert.Matches(@"linearize: \d+ of 9 linearized: accuracy drop -?[0-9.]+ points, at most [0-9.]+ at 90%", log.ToString());
        var run = r.Report.Passes.Single(p => p.Step.StartsWith("linearize", StringComparison.Ordinal));
        var summary = run.Stats.Decisions.OfType<TrainedLinearizeSummary>().Single();
        Assert.Equal(9, summary.Candidates);
        Assert.True(summary.DropPoints is null || summary.DropPoints <= 1.5);
        Assert.Equal(summary.Linearized, run.Stats.Decisions.OfType<SlopeDecision>().Count(d => d.Decision == "linearized"));
        Assert.All(run.Stats.Decisions.OfType<SlopeDecision>(), d => Assert.InRange(d.Slope, 0, 1));
        Assert.True(summary.Linearized > 0, "slopes reached the threshold");
        Assert.True(r.Report.After.NonLinearDepth < r.Report.Before.NonLinearDepth);
        Assert.True(r.Accepted);
    }

    [Fact]
    public void SnappedSlopesStayAtOneAndFreeSlopesDoNot()
    {
        // A low threshold: slopes cross it early. Snapped, each one that did is exactly 1 from then on; free, they
        // are left wherever training took them.
        List<SlopeDecision> Slopes(string snap) => Optimize("digits/resnet.onnx", "canonicalize,fold-bn,linearize{"
            + $"mode=train,steps=60,slope-lr=0.05,finetune-steps=0,threshold=0.3,max-agreement-drop=100,snap={snap}}}")
            .Report.Passes.Single(p => p.Step.StartsWith("linearize", StringComparison.Ordinal))
            .Stats.Decisions.OfType<SlopeDecision>().ToList();
        var snapped = Slopes("true");
        Assert.Contains(snapped, d => d.Slope >= 0.3);
        Assert.All(snapped.Where(d => d.Slope >= 0.3), d => Assert.Equal(1.0, d.Slope));
        Assert.Contains(Slopes("false"), d => d.Slope is >= 0.3 and < 1);
    }

    [Fact]
    public void TrainedCentroidsBeatUntrainedOnesAndEveryFormatStoresThem()
    {
        const string bits = "canonicalize,fold-bn,cluster{bits=2";
        var plain = Optimize("digits/vgg.onnx", bits + "}");
        var trained = Optimize("digits/vgg.onnx", bits + ",train-steps=60,train-lr=0.001}");
        static double agreement(OptimizeResult x) => x.Report.Validation!.Report.Outputs[0].Top1Agreement!.Value;
        Assert.True(agreement(trained) > agreement(plain), $"{agreement(plain)} -> {agreement(trained)}");
        var d = trained.Report.Passes[^1].Stats.Decisions.OfType<WeightClustered>().ToList();
        Assert.All(d, w => Assert.True(w.DistinctAfter <= 4, w.Weight));
        var lut = Optimize("digits/vgg.onnx", bits + ",train-steps=60,train-lr=0.001,format=lut}");
        Assert.Equal(Outputs(trained.Bytes), Outputs(lut.Bytes));
        Assert.True(lut.Bytes.Length < trained.Bytes.Length);
    }

    [Fact]
    public void TrainRestTrainsTheBiasesWithTheCentroidsAndOnlyThen()
    {
        const string pipeline = "canonicalize,fold-bn,cluster{bits=3,min-elements=64,train-steps=30,train-lr=0.001,";
        var folded = Run(OnnxImporter.Load(Paths.Model("digits/mobilenetv2.onnx")), "canonicalize,fold-bn").After;
        var with = Optimize("digits/mobilenetv2.onnx", pipeline + "train-rest=true}");
        var without = Optimize("digits/mobilenetv2.onnx", pipeline + "train-rest=false}");
        List<float[]> Biases(Model m) => m.Graph.Nodes.Where(n => n.OpType == "Conv" && n.Inputs.Count > 2)
            .Select(n => n.Inputs[2]!.Initializer!.ToFloatArray()).ToList();
        Assert.Equal(Biases(folded), Biases(without.Model));
        Assert.All(Biases(folded).Zip(Biases(with.Model)), p => Assert.NotEqual(p.First, p.Second));
        static TrainingSummary Summary(OptimizeResult r) => r.Report.Passes[^1].Stats.Decisions
            .OfType<TrainingSummary>().Single();
        Assert.True(Summary(with).Parameters > Summary(without).Parameters);
        Assert.All(with.Report.Passes[^1].Stats.Decisions.OfType<WeightClustered>(),
            w => Assert.True(w.DistinctAfter <= 8, w.Weight));
    }
}
