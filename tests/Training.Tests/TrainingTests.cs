// The trainer: every loss's gradient and the parametric activation's against finite differences, shared-weight
// gradients as sums of members, the loss going down on a tiny net, identical bytes from two runs, the
// schedule, the sampler and the buffer arena.
using OnnxOpt.Autodiff;
using OnnxOpt.Autodiff.Kernels;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Training;

namespace OnnxOpt.Tests;

public class TrainingTests
{
    private static float[] Rand(ulong seed, int n, double scale = 1)
    {
        var r = new SplitMix64(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextGaussian() * scale)).ToArray();
    }

    private delegate double Loss(float[] s, float[] grad);

    private static void CheckGradient(Loss loss, float[] s)
    {
        var g = new float[s.Length];
        loss(s, g);
        for (int i = 0; i < s.Length; i++)
        {
            var p = s.ToArray(); var m = s.ToArray();
            const float h = 1e-2f;
            p[i] += h; m[i] -= h;
            double fd = (loss(p, new float[s.Length]) - loss(m, new float[s.Length])) / (2 * h);
            Assert.True(Math.Abs(fd - g[i]) <= 2e-3 * Math.Max(1, Math.Abs(fd)), $"element {i}: analytic {g[i]}, numeric {fd}");
        }
    }

    [Fact]
    public void KlDivergenceGradientMatchesFiniteDifferences()
    {
        var t = Rand(2, 12, 2);
        foreach (var temperature in new[] { 1.0, 4.0 })
            CheckGradient((s, g) => Losses.KlDivergence(s, t, 4, temperature, g), Rand(1, 12, 2));
        var same = Rand(3, 8);
        Assert.Equal(0, Losses.KlDivergence(same, same, 4, 4, new float[8]), 9);
    }

    [Fact]
    public void MeanSquaredAndCrossEntropyGradientsMatchFiniteDifferences()
    {
        var t = Rand(5, 10);
        CheckGradient((s, g) => Losses.MeanSquared(s, t, g, 0.5), Rand(4, 10));
        // The vectorized loop and its scalar tail against the plain sum, on lengths around the vector width and
        // beyond one accumulation block; the gradient is added to what the buffer held.
        foreach (int n in new[] { 1, 7, 16, 33, 4099, 70001 })
        {
            var (a, b) = (Rand(7, n), Rand(8, n));
            var grad = Enumerable.Repeat(0.25f, n).ToArray();
            double expected = 0;
            for (int i = 0; i < n; i++) expected += (double)(a[i] - b[i]) * (a[i] - b[i]);
            Assert.Equal(0.5 * expected / n, Losses.MeanSquared(a, b, grad, 0.5), 1e-6 * (1 + expected / n));
            for (int i = 0; i < n; i++) Assert.Equal(0.25 + (a[i] - b[i]) / n, grad[i], 1e-6);
        }
        long[] labels = [2, 0, 4];
        CheckGradient((s, g) => Losses.CrossEntropy(s, labels, 5, g), Rand(6, 15));
        Assert.Throws<OnnxModelException>(() => Losses.CrossEntropy(Rand(6, 5), [7], 5, new float[5]));
    }

    [Fact]
    public void PooledCosineGradientMatchesFiniteDifferencesAndIgnoresMaskedTokens()
    {
        // [2 samples, 3 tokens, 4 hidden]; the second sample's last token is padding.
        int[] shape = [2, 3, 4];
        var t = Rand(7, 24);
        float[] mask = [1, 1, 1, 1, 1, 0];
        CheckGradient((s, g) => Losses.PooledCosine(s, t, shape, mask, g, 0.7), Rand(8, 24));
        CheckGradient((s, g) => Losses.PooledCosine(s, t, shape, ReadOnlySpan<float>.Empty, g), Rand(8, 24));
        var grad = new float[24];
        Losses.PooledCosine(Rand(8, 24), t, shape, mask, grad);
        Assert.All(grad[20..24], v => Assert.Equal(0f, v));
        // The same embedding, scaled: no loss.
        Assert.Equal(0, Losses.PooledCosine(t.Select(v => 3 * v).ToArray(), t, shape, mask, new float[24]), 9);
    }

    [Fact]
    public void TokenSwapChangesOnlyMaskedTokensAfterTheFirstAndIsSeeded()
    {
        // 3 sentences of 6 tokens; ids 100+ (the largest values: the token input), mask 1 on the first 4 or 5.
        long[] ids = [1, 101, 102, 103, 2, 0, 1, 111, 112, 113, 114, 2, 1, 121, 122, 2, 0, 0];
        long[] mask = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
        var data = TrainingData.Load(OnnxOpt.Data.DataSet.FromTensors(new Dictionary<string, Tensor>
        {
            ["input_ids"] = Tensor.FromInt64s("input_ids", [3, 6], ids),
            ["attention_mask"] = Tensor.FromInt64s("attention_mask", [3, 6], mask),
        }));
        Assert.Equal("input_ids", data.TokenInput);
        var a = data.Gather([0, 1, 2], new SplitMix64(5), tokenSwap: 0.5)["input_ids"].I;
        var b = data.Gather([0, 1, 2], new SplitMix64(5), tokenSwap: 0.5)["input_ids"].I;
        Assert.Equal(a, b);
        Assert.NotEqual(ids, a);
        var live = ids.Where((_, i) => i % 6 > 0 && mask[i] == 1).ToHashSet();
        for (int i = 0; i < ids.Length; i++)
            if (i % 6 == 0 || mask[i] == 0) Assert.Equal(ids[i], a[i]);
            else Assert.Contains(a[i], live);
        Assert.Equal(ids, data.Gather([0, 1, 2], new SplitMix64(5))["input_ids"].I);
    }

    /// <summary>y = relu(x) + a (x - relu(x)) (Layer Folding's parametric activation), then a Gemm.</summary>
    private static Model SlopeNet(float a)
    {
        var b = new GraphBuilder();
        var x = b.Input("x", DataType.Float, 4, 3);
        var r = b.Node("Relu", [x]);
        var slope = b.Initializer("a", [a]);
        var d = b.Node("Sub", [x, r]);
        var y = b.Node("Add", [r, b.Node("Mul", [d, slope])]);
        var w = b.Initializer("w", Rand(9, 6, 0.5), 3, 2);
        b.Output(b.Node("Gemm", [y, w]));
        return b.Build();
    }

    [Fact]
    public void ParametricActivationSlopeGradientMatchesFiniteDifferences()
    {
        var x = new NdArray<double>([4, 3], Rand(8, 12).Select(v => (double)v).ToArray());
        var seed = new NdArray<double>([4, 2], Rand(10, 8).Select(v => (double)v).ToArray());
        double F(float a)
        {
            var ev = new Evaluator<double>(SlopeNet(a));
            var o = ev.Forward(new Dictionary<string, NdArray<double>> { ["x"] = x }).Outputs[0].R;
            return o.Select((v, i) => v * seed.R[i]).Sum();
        }
        foreach (var a in new[] { 0.1f, 0.5f, 0.9f })
        {
            var m = SlopeNet(a);
            var ev = new Evaluator<double>(m);
            var trace = ev.Forward(new Dictionary<string, NdArray<double>> { ["x"] = x });
            var g = ev.Backward(trace, new Dictionary<string, NdArray<double>> { [m.Graph.Outputs[0].Name] = seed }, ["a"]);
            const float h = 1e-3f;
            double fd = (F(a + h) - F(a - h)) / (2 * h);
            Assert.Equal(fd, g["a"].R[0], 4);
        }
    }

    private static Model Mlp(ulong seed)
    {
        var b = new GraphBuilder();
        var x = b.Input("x", DataType.Float, "N", 6);
        var h = b.Node("Relu", [b.Node("Gemm", [x, b.Initializer("w1", Rand(seed, 48, 0.5), 6, 8),
            b.Initializer("b1", Rand(seed + 1, 8, 0.1), 8)])]);
        b.Output(b.Node("Gemm", [h, b.Initializer("w2", Rand(seed + 2, 32, 0.5), 8, 4),
            b.Initializer("b2", Rand(seed + 3, 4, 0.1), 4)]));
        return b.Build();
    }

    private static TrainingData Samples(int n, ulong seed) => TrainingData.FromArrays(
        new Dictionary<string, NdArray<float>> { ["x"] = new([n, 6], Rand(seed, n * 6)) });

    private static (TrainResult Result, Model Student) Distill(TrainSettings s, TrainingData? eval = null)
    {
        var teacherModel = Mlp(1);
        var student = Mlp(100);
        var parameters = ParameterSelection.Select(student, "all");
        var trainer = new Trainer(student, parameters, s);
        using var teacher = new Teacher(new EvaluatorRunner<float>(teacherModel), trainer.TeacherTargets);
        using var evalTeacher = new Teacher(new EvaluatorRunner<float>(teacherModel), [teacherModel.Graph.Outputs[0].Name]);
        var r = trainer.Fit(Samples(96, 7), teacher, eval, eval is null ? null : evalTeacher);
        Trainer.WriteBack(student, parameters, new Rewriter(student).SetInitializer);
        return (r, student);
    }

    [Fact]
    public void DistillationLossDecreasesOnATinyNet()
    {
        foreach (var opt in new[] { OptimizerKind.Adam, OptimizerKind.AdamW, OptimizerKind.Sgd })
        {
            var (r, _) = Distill(new TrainSettings
            {
                Steps = 300,
                Batch = 16,
                LearningRate = opt == OptimizerKind.Sgd ? 0.05 : 0.01,
                Optimizer = opt,
                EvalEvery = 0,
                WeightDecay = opt == OptimizerKind.AdamW ? 1e-4 : 0,
            });
            Assert.True(r.FinalLoss < 0.3 * r.FirstLoss, $"{opt}: loss {r.FirstLoss} -> {r.FinalLoss}");
        }
    }

    [Fact]
    public void MseLossAndEvaluationKeepTheBest()
    {
        var (r, _) = Distill(new TrainSettings
        {
            Steps = 200,
            Batch = 16,
            LearningRate = 0.01,
            Loss = LossKind.Mse,
            EvalEvery = 50
        }, Samples(64, 99));
        Assert.Equal("top1_agreement", r.ScoreMetric);
        Assert.NotNull(r.BestScore);
        Assert.True(r.BestScore >= r.InitialScore);
        Assert.True(r.BestScore > 60, $"agreement {r.BestScore}");
    }

    [Fact]
    public void TwoRunsGiveIdenticalBytes()
    {
        var s = new TrainSettings { Steps = 60, Batch = 16, LearningRate = 0.01, EvalEvery = 0, Seed = 5 };
        var a = OnnxExporter.ToBytes(Distill(s).Student);
        var b = OnnxExporter.ToBytes(Distill(s).Student);
        Assert.Equal(a, b);
        var c = OnnxExporter.ToBytes(Distill(s with { Seed = 6 }).Student);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void SplitRunsGiveTheSameBytesOnOneThreadAsOnAll()
    {
        var s = new TrainSettings { Steps = 40, Batch = 15, LearningRate = 0.01, EvalEvery = 0, Seed = 8 };
        var all = OnnxExporter.ToBytes(Distill(s).Student);
        byte[] one;
        using (Parallelism.Limit(1)) one = OnnxExporter.ToBytes(Distill(s).Student);
        Assert.Equal(all, one);
    }

    /// <summary>The KL distillation loss and its gradients of one whole batch, on one evaluator.</summary>
    private static (double Loss, float[][] Grads) WholeBatch(Model student, List<Parameter> ps, NdArray<float> x,
        NdArray<float> teacher)
    {
        var ev = new Evaluator<float>(student);
        var o = new Dictionary<string, NdArray<float>>();
        foreach (var p in ps) p.Materialize(o);
        var trace = ev.Forward(new Dictionary<string, NdArray<float>> { ["x"] = x }, o);
        var y = trace.Outputs[0];
        var seed = NdArray<float>.Zeros(y.Shape);
        double loss = Losses.KlDivergence(y.R, teacher.R, y.Shape[^1], 4, seed.R);
        var g = ev.Backward(trace, new Dictionary<string, NdArray<float>> { [student.Graph.Outputs[0].Name] = seed },
            ps.SelectMany(p => p.Initializers).Distinct().ToList());
        var grads = ps.Select(p => new float[p.Values.Length]).ToArray();
        for (int k = 0; k < ps.Count; k++) ps[k].Gradient(g, grads[k]);
        return (loss, grads);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SplitBatchesGiveTheWholeBatchsLossAndGradient(bool mixesTheBatch)
    {
        // An MLP treats samples independently (its batches are split in halves); subtracting the batch mean of its
        // logits couples them (not split: the halves' means differ). Either way the trainer's loss and gradient are
        // the whole batch's.
        var m = Mlp(21);
        if (mixesTheBatch)
        {
            var b = new GraphBuilder();
            var x = b.Input("x", DataType.Float, "N", 6);
            var h = b.Node("Relu", [b.Node("Gemm", [x, b.Initializer("w1", Rand(21, 48, 0.5), 6, 8),
                b.Initializer("b1", Rand(22, 8, 0.1), 8)])]);
            var z = b.Node("Gemm", [h, b.Initializer("w2", Rand(23, 32, 0.5), 8, 4),
                b.Initializer("b2", Rand(24, 4, 0.1), 4)]);
            b.Output(b.Node("Sub", [z, b.Node("ReduceMean", [z], OnnxAttribute.IntList("axes", 0),
                OnnxAttribute.Int("keepdims", 1))]));
            m = b.Build();
        }
        var ps = ParameterSelection.Select(m, "all");
        var x0 = new NdArray<float>([13, 6], Rand(31, 78));
        var t0 = new NdArray<float>([13, 4], Rand(32, 52, 2));
        var (loss, grads) = WholeBatch(m, ps, x0, t0);
        var trainer = new Trainer(m, ps, new TrainSettings { Steps = 1, Batch = 13, EvalEvery = 0 });
        var got = ps.Select(p => new float[p.Values.Length]).ToArray();
        double l = trainer.LossAndGradients(new Dictionary<string, NdArray<float>> { ["x"] = x0 }, [t0], null,
            [m.Graph.Outputs[0].Name], ps.SelectMany(p => p.Initializers).Distinct().ToList(), got);
        Assert.Equal(loss, l, 5);
        for (int k = 0; k < ps.Count; k++)
            for (int i = 0; i < got[k].Length; i++)
                Assert.True(Math.Abs(grads[k][i] - got[k][i]) <= 1e-5 * (1 + Math.Abs(grads[k][i])),
                    $"{ps[k].Name}[{i}]: {got[k][i]}, whole batch {grads[k][i]}");
        Assert.Equal(!mixesTheBatch, trainer.SplitsBatches);
    }

    [Fact]
    public void CodebookAndGridGradientsAreSumsOfTheirMembers()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", DataType.Float, 2, 4);
        var w = b.Initializer("w", [0.5f, -0.5f, 0.5f, 0.25f, -0.5f, 0.25f, 0.5f, 0.5f], 4, 2);
        b.Output(b.Node("MatMul", [x, w]));
        var m = b.Build();
        var v = m.Graph.Find("w")!;
        var book = ParameterSelection.Shared(v)!;
        Assert.Equal(3, book.Values.Length);
        var g = new NdArray<float>([4, 2], [1f, 2, 3, 4, 5, 6, 7, 8]);
        var grad = new float[3];
        book.Gradient(new Dictionary<string, NdArray<float>> { ["w"] = g }, grad);
        // 0.5 at 0, 2, 6, 7; -0.5 at 1, 4; 0.25 at 3, 5.
        Assert.Equal([1 + 3 + 7 + 8, 2 + 5, 4 + 6], grad);
        var o = new Dictionary<string, NdArray<float>>();
        book.Materialize(o);
        Assert.Equal(v.Initializer!.ToFloatArray(), o["w"].R);

        var grid = new GridParameter(v, [0.25f, 0.5f], [0, 0, 0, 0, 1, 1, 1, 1], [2, -2, 2, 1, -1, 0.5f, 1, 1]);
        var gg = new float[2];
        grid.Gradient(new Dictionary<string, NdArray<float>> { ["w"] = g }, gg);
        Assert.Equal([1 * 2 - 2 * 2 + 3 * 2 + 4 * 1, -5 + 6 * 0.5f + 7 + 8], gg);
    }

    [Fact]
    public void FakeQuantWeightsSitOnTheirGridAndTrainByTheStraightThroughEstimator()
    {
        // [2, 3] weights, one scale per row (axis 0), Q = 7: row 0 has 0.9 / 0.1 = 9 (clamped to 7); row 1 is inside
        // its grid.
        var v = new GraphBuilder().Initializer("w", [0.36f, -0.12f, 0.9f, 0.5f, -0.26f, 0.05f], 2, 3);
        var p = new FakeQuantParameter(v, [0.1f, 0.25f], axis: 0, qmax: 7);
        var o = new Dictionary<string, NdArray<float>>();
        p.Materialize(o);
        Assert.Equal([4, -1, 7, 2, -1, 0], p.Integers().Select(q => (int)q));
        Assert.Equal(p.Integers().Select((q, i) => q * (i < 3 ? 0.1f : 0.25f)), o["w"].R);
        var g = new NdArray<float>([2, 3], [1f, 2, 3, 4, 5, 6]);
        var grad = new float[8];
        p.Gradient(new Dictionary<string, NdArray<float>> { ["w"] = g }, grad);
        // STE: the gradient passes where the weight is inside the grid, not where it is clamped (0.9).
        Assert.Equal([1f, 2, 0, 4, 5, 6], grad.Take(6));
        // LSQ, in units of the starting scale: s0 * sum g (round(w/s) - w/s) inside, g * Q outside.
        double row0 = 0.1 * (1 * (4 - 3.6) + 2 * (-1 - -1.2) + 3 * 7.0);
        double row1 = 0.25 * (4 * (2 - 2.0) + 5 * (-1 - -1.04) + 6 * (0 - 0.2));
        Assert.Equal(row0, grad[6], 4);
        Assert.Equal(row1, grad[7], 4);
        // The scales are u = s / s0 and stay positive.
        Array.Fill(p.Values, -1f, 6, 2);
        p.Constrain!(p.Values);
        Assert.All(p.Scales(), s => Assert.True(s > 0));
    }

    [Fact]
    public void ScheduleWarmsUpThenDecays()
    {
        var s = new TrainSettings { Steps = 100, LearningRate = 1, WarmupSteps = 10 };
        Assert.Equal(0.1, ParameterOptimizer.Rate(s, 0), 9);
        Assert.Equal(1, ParameterOptimizer.Rate(s, 10), 9);
        Assert.True(ParameterOptimizer.Rate(s, 99) < 0.01);
        var step = s with { Schedule = ScheduleKind.Step, WarmupSteps = 0 };
        Assert.Equal(1, ParameterOptimizer.Rate(step, 39), 9);
        Assert.Equal(0.1, ParameterOptimizer.Rate(step, 40), 9);
        Assert.Equal(0.01, ParameterOptimizer.Rate(step, 85), 9);
    }

    [Fact]
    public void ClippingBoundsTheUpdate()
    {
        var v = new GraphBuilder().Initializer("p", [0f, 0f], 2);
        var p = new DirectParameter(v);
        var opt = new ParameterOptimizer(new TrainSettings
        {
            Optimizer = OptimizerKind.Sgd,
            Momentum = 0,
            LearningRate = 1,
            ClipNorm = 1,
            Schedule = ScheduleKind.Constant
        }, [p]);
        var norm = opt.Step([[30f, 40f]], 0);
        Assert.Equal(50, norm, 6);
        Assert.Equal(-0.6f, p.Values[0], 5);
        Assert.Equal(-0.8f, p.Values[1], 5);
    }

    [Fact]
    public void AutoLossIsKlForLogitsAndMseForMaps()
    {
        var logits = Mlp(3);
        Assert.Equal(LossKind.Kl, new Trainer(logits, ParameterSelection.Select(logits, "all"),
            new TrainSettings { Steps = 1, Loss = LossKind.Auto }).Loss);
        // The detection fixture's first output is a [N, 1, H, W] probability map.
        var map = OnnxImporter.Load(Path.Combine(Paths.TestModels, "detection", "textdet.onnx"));
        Assert.Equal(LossKind.Mse, new Trainer(map, ParameterSelection.Select(map, "all"),
            new TrainSettings { Steps = 1, Loss = LossKind.Auto }).Loss);
    }

    [Fact]
    public void LambMovesEveryTensorByTheLearningRateTimesItsNorm()
    {
        var b = new GraphBuilder();
        var tiny = new DirectParameter(b.Initializer("tiny", [3e-5f, -4e-5f, 1e-5f], 3));
        var large = new DirectParameter(b.Initializer("large", [3f, 4f], 2));
        var opt = new ParameterOptimizer(new TrainSettings
        {
            Optimizer = OptimizerKind.Lamb,
            LearningRate = 1e-2,
            Schedule = ScheduleKind.Constant,
        }, [tiny, large]);
        float[][] before = [tiny.Values.ToArray(), large.Values.ToArray()];
        opt.Step([[0.5f, -2f, 1e-3f], [7f, -0.1f]], 0);
        foreach (var (p, b0) in new[] { tiny, large }.Zip(before))
        {
            double step = Math.Sqrt(p.Values.Zip(b0, (x, y) => (double)(x - y) * (x - y)).Sum());
            double norm = Math.Sqrt(b0.Sum(x => (double)x * x));
            Assert.Equal(1e-2 * norm, step, 1e-2 * norm * 1e-3);
        }
        // Adam would move the tiny tensor by about lr per element, 200 times its norm.
        var adam = new DirectParameter(b.Initializer("tiny2", [3e-5f, -4e-5f, 1e-5f], 3));
        new ParameterOptimizer(new TrainSettings { LearningRate = 1e-2, Schedule = ScheduleKind.Constant }, [adam])
            .Step([[0.5f, -2f, 1e-3f]], 0);
        Assert.True(Math.Abs(adam.Values[0] - 3e-5f) > 1e-3);
    }

    [Fact]
    public void SamplerCoversEveryEpochAndAugmentationIsSeeded()
    {
        var sampler = new BatchSampler(10, 5, new SplitMix64(1));
        var epoch = sampler.Next().Concat(sampler.Next()).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 10), epoch);
        var img = Enumerable.Range(0, 2 * 1 * 4 * 4).Select(i => (float)i).ToArray();
        var data = TrainingData.FromArrays(new Dictionary<string, NdArray<float>> { ["x"] = new([2, 1, 4, 4], img) });
        var a = data.Gather([0, 1], new SplitMix64(3), flip: true, shift: 1)["x"].R;
        var b = data.Gather([0, 1], new SplitMix64(3), flip: true, shift: 1)["x"].R;
        Assert.Equal(a, b);
        var flipped = data.Gather([0], new SplitMix64(0), flip: true, shift: 0)["x"].R;
        var plain = data.Gather([0])["x"].R;
        Assert.True(flipped.SequenceEqual(plain) || flipped[0] == plain[3], "a flip mirrors each row");
    }

    [Fact]
    public void AutoShiftMovesImagesByUpToOneFourteenthOfTheirSide()
    {
        // One bright pixel in the middle of a 28x28 image: shift=auto (TrainSettings.AutoShift) moves it by at most
        // 2 pixels each way, and over 200 draws by exactly 2 somewhere.
        var img = new float[28 * 28];
        img[14 * 28 + 14] = 1;
        var data = TrainingData.FromArrays(new Dictionary<string, NdArray<float>> { ["x"] = new([1, 1, 28, 28], img) });
        var rng = new SplitMix64(5);
        int widest = 0;
        for (int i = 0; i < 200; i++)
        {
            var at = Array.IndexOf(data.Gather([0], rng, shift: TrainSettings.AutoShift)["x"].R, 1f);
            int dy = Math.Abs(at / 28 - 14), dx = Math.Abs(at % 28 - 14);
            Assert.InRange(Math.Max(dy, dx), 0, 2);
            widest = Math.Max(widest, Math.Max(dy, dx));
        }
        Assert.Equal(2, widest);
    }

    [Fact]
    public void MixupBlendsEachSampleWithAnotherOfItsBatchAndIsSeeded()
    {
        // Sample i is the constant image i + 1, so a mixed image is constant too, between two of the values.
        const int n = 8, per = 2 * 3 * 3;
        var img = Enumerable.Range(0, n * per).Select(i => (float)(i / per + 1)).ToArray();
        var data = TrainingData.FromArrays(new Dictionary<string, NdArray<float>> { ["x"] = new([n, 2, 3, 3], img) });
        int[] idx = [0, 1, 2, 3, 4, 5, 6, 7];
        var a = data.Gather(idx, new SplitMix64(5), mixup: 0.4)["x"].R;
        Assert.Equal(a, data.Gather(idx, new SplitMix64(5), mixup: 0.4)["x"].R);
        Assert.Equal(img, data.Gather(idx, new SplitMix64(5))["x"].R);
        int moved = 0;
        for (int i = 0; i < n; i++)
        {
            var s = a.AsSpan(i * per, per).ToArray();
            Assert.All(s, v => Assert.Equal(s[0], v, 5));
            Assert.InRange(s[0], 1f, n);
            if (Math.Abs(s[0] - (i + 1)) > 1e-3) moved++;
        }
        Assert.True(moved >= n / 2, $"only {moved} of {n} samples were mixed");
        // lam ~ Beta(alpha, alpha): symmetric about 1/2, and mostly near 0 or 1 for alpha < 1.
        var rng = new SplitMix64(9);
        var lams = Enumerable.Range(0, 4000).Select(_ =>
        {
            double x = TrainingData.Gamma(0.4, rng), y = TrainingData.Gamma(0.4, rng);
            return x / (x + y);
        }).ToArray();
        Assert.InRange(lams.Average(), 0.47, 0.53);
        Assert.InRange(lams.Count(l => l < 0.1 || l > 0.9) / 4000.0, 0.4, 0.65);
    }

    [Fact]
    public void ArenaRecyclesArraysAndChangesNoResult()
    {
        var m = Mlp(3);
        var x = new NdArray<float>([256, 6], Rand(4, 1536));
        var plain = new Evaluator<float>(m).Forward(new Dictionary<string, NdArray<float>> { ["x"] = x }).Outputs[0].R.ToArray();
        var arena = new BufferArena<float>();
        var ev = new Evaluator<float>(m) { Arena = arena };
        for (int step = 0; step < 3; step++)
        {
            arena.Recycle();
            var y = ev.Forward(new Dictionary<string, NdArray<float>> { ["x"] = x }).Outputs[0].R;
            Assert.Equal(plain, y);
            if (step > 0) Assert.True(arena.Taken > 0);
        }
    }

    [Theory]
    [InlineData(9)]
    [InlineData(8)]
    public void ConvKernelsInATrainingStepMatchFloat64(int size)
    {
        // Conv 3x3, depthwise 3x3 stride 1 (the flipped input gradient) and stride 2 (phased planes), and a 1x1
        // conv, over 5 images (uneven slices) of 9 x 9 and of 8 x 8 (outputs of 64 columns, written straight into
        // y and dX image by image): float32 in an arena, where the forward im2col is kept for the weight
        // gradient, against float64 without one, where it is recomputed (the kernels' own gradients are checked
        // against finite differences in EvaluatorTests).
        var b = new GraphBuilder("convs");
        var x = b.Input("x", DataType.Float, 5, 3, size, size);
        var h = b.Node("Conv", [x, b.Initializer("w1", Rand(11, 6 * 3 * 9, 0.3), 6, 3, 3, 3)],
            OnnxAttribute.IntList("pads", 1, 1, 1, 1));
        h = b.Node("Conv", [h, b.Initializer("w2", Rand(12, 6 * 9, 0.3), 6, 1, 3, 3)], OnnxAttribute.Int("group", 6),
            OnnxAttribute.IntList("pads", 1, 1, 1, 1));
        h = b.Node("Conv", [h, b.Initializer("w3", Rand(13, 6 * 9, 0.3), 6, 1, 3, 3)], OnnxAttribute.Int("group", 6),
            OnnxAttribute.IntList("pads", 1, 1, 1, 1), OnnxAttribute.IntList("strides", 2, 2));
        b.Output(b.Node("Conv", [h, b.Initializer("w4", Rand(14, 4 * 6, 0.3), 4, 6, 1, 1)]));
        var m = b.Build();
        var xs = Rand(15, 5 * 3 * size * size);
        var wrt = new[] { "x", "w1", "w2", "w3", "w4" };
        var ev32 = new Evaluator<float>(m) { Arena = new BufferArena<float>() };
        var ev64 = new Evaluator<double>(m);
        var t64 = ev64.Forward(new Dictionary<string, NdArray<double>> { ["x"] = new([5, 3, size, size], xs.Select(v => (double)v).ToArray()) });
        var y64 = t64.Outputs[0];
        var g64 = ev64.Backward(t64, new Dictionary<string, NdArray<double>>
        {
            [m.Graph.Outputs[0].Name] = new(y64.Shape,
            y64.R.Select((_, i) => Math.Sin(i)).ToArray())
        }, wrt);
        for (int step = 0; step < 2; step++)
        {
            ev32.Arena!.Recycle();
            var t32 = ev32.Forward(new Dictionary<string, NdArray<float>> { ["x"] = new([5, 3, size, size], xs) });
            var y32 = t32.Outputs[0];
            for (int i = 0; i < y32.Length; i++) Assert.Equal(y64.R[i], y32.R[i], 1e-4);
            var g32 = ev32.Backward(t32, new Dictionary<string, NdArray<float>>
            {
                [m.Graph.Outputs[0].Name] = new(y32.Shape,
                y32.R.Select((_, i) => (float)Math.Sin(i)).ToArray())
            }, wrt);
            foreach (var n in wrt)
                for (int i = 0; i < g32[n].Length; i++) Assert.Equal(g64[n].R[i], g32[n].R[i], 1e-3);
        }
    }
}
