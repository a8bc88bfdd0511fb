// Masks that survive retraining: after sparsify, distill holds every exactly-zero weight at zero (keep-zeros=auto
// sees the sparse tensors), so the retrained model is exactly as sparse, at the same positions; keep-zeros=false lets
// the zeros grow back. Iterative pruning's rounds retrain with the mask held, to a density that falls every round.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class KeepZerosTests
{
    private static Dictionary<string, float[]> Weights(Model m) => m.Graph.Nodes
        .Where(n => n.OpType is "Conv" or "Gemm").Select(n => n.Input(1)!)
        .ToDictionary(v => v.Name, v => Rewriter.ConstantOf(v)!.ToFloatArray());

    [Fact]
    public void DistillAfterSparsifyKeepsTheZerosWhereTheyAre()
    {
        var m = OnnxImporter.Load(Paths.Model(Path.Combine("digits", "vgg.onnx")));
        var calib = CalibrationSource.FromFolder(Paths.Model(Path.Combine("digits", "data", "calib")));
        const string sparse = "canonicalize,fold-bn,sparsify{method=magnitude,density=0.5,scope=local}";
        var (sparsified, _) = Run(m, sparse, calib);
        var (kept, runs) = Run(m, sparse + ",distill{steps=30,eval-every=0}", calib);
        var (grown, _) = Run(m, sparse + ",distill{steps=30,eval-every=0,keep-zeros=false}", calib);
        var (before, after, free) = (Weights(sparsified), Weights(kept), Weights(grown));
        long zeros = 0, regrown = 0, moved = 0;
        foreach (var (name, w) in before)
            for (int i = 0; i < w.Length; i++)
            {
                if (w[i] != 0) { if (after[name][i] != w[i]) moved++; continue; }
                zeros++;
                Assert.Equal(0f, after[name][i]);
                if (free[name][i] != 0) regrown++;
            }
        Assert.True(zeros > 30000, $"{zeros} zeros after sparsify");
        Assert.True(moved > 10000, $"only {moved} kept weights trained");
        Assert.True(regrown > zeros / 2, $"without keep-zeros only {regrown} of {zeros} zeros grew back");
        Assert.Equal(zeros, Counter(runs, Counters.Training.WeightsHeldAtZero));
    }
}

public class IterativePruningTests
{
    [Theory]
    [InlineData("magnitude,scope=local,rewind=original")]
    [InlineData("obs")]
    public void RoundsReachTheDensityStepByStepEachRetrained(string method)
    {
        var m = OnnxImporter.Load(Paths.Model(Path.Combine("digits", "vgg.onnx")));
        var calib = CalibrationSource.FromFolder(Paths.Model(Path.Combine("digits", "data", "calib")));
        var (after, runs) = Run(m, $"canonicalize,fold-bn,sparsify{{method={method},density=0.3,rounds=3,"
            + "round-steps=20}", calib);
        var rounds = runs.SelectMany(r => r.Stats.Decisions).OfType<SparsifyRound>().ToList();
        Assert.Equal([1, 2, 3], rounds.Select(r => r.Round));
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(Math.Pow(0.3, (i + 1) / 3.0), rounds[i].Target, 1e-6);
            Assert.InRange(rounds[i].Density, rounds[i].Target - 0.02, rounds[i].Target + 0.02);
        }
        Assert.True(rounds.Zip(rounds.Skip(1)).All(p => p.Second.Density < p.First.Density));
        Assert.Equal(3, runs.SelectMany(r => r.Stats.Decisions).OfType<TrainingSummary>().Count());
        Assert.True(PassRegistry.Get("sparsify").NeedsTeacher(new PassOptions(PassRegistry.Get("sparsify"),
            [new("rounds", "2")])));
    }

    [Fact]
    public void NmRoundsTightenThePatternRoundByRound()
    {
        // Gradual 2:4: round 1 keeps 3 of every 4 inputs of a row, round 2 two; the zeros of round 1 stay zero.
        var m = OnnxImporter.Load(Paths.Model(Path.Combine("digits", "vgg.onnx")));
        var calib = CalibrationSource.FromFolder(Paths.Model(Path.Combine("digits", "data", "calib")));
        var (after, runs) = Run(m, "canonicalize,fold-bn,sparsify{method=obs,pattern=2:4,rounds=2,round-steps=20}",
            calib);
        var rounds = runs.SelectMany(r => r.Stats.Decisions).OfType<SparsifyRound>().ToList();
        Assert.Equal([0.75, 0.5], rounds.Select(r => r.Target));
        Assert.InRange(rounds[0].Density, 0.74, 0.77);
        Assert.InRange(rounds[1].Density, 0.49, 0.52);
        foreach (var n in after.Graph.Nodes.Where(n => n.OpType == "Gemm"))
        {
            var op = LinearOp.Of(n)!;
            var kept = new Dictionary<(long, long), int>();
            for (long i = 0; i < op.Weight.Length; i++)
                if (op.Weight[i] != 0)
                {
                    var key = (op.OutputChannelOf(i), op.InputChannelOf(i) / 4);
                    kept[key] = kept.GetValueOrDefault(key) + 1;
                }
            Assert.All(kept.Values, c => Assert.True(c <= 2, $"{n}: {c} of 4 kept"));
        }
        Assert.Equal([4, 3, 3, 2, 2], Enumerable.Range(0, 5).Select(r => Sparsify.RoundKeep(2, 4, r, 4)));
        Assert.Equal(1, Sparsify.RoundKeep(1, 8, 1, 1));
    }
}
