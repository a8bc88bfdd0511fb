// Structured pruning on the exported transformers (testmodels/transformers): channels on the last axis of
// [batch, sequence, C] MatMul outputs, followed through bias Adds and GELU (Erf or Tanh form) into the second
// MLP projection. Exactness: the pruned model equals the original with the removed channels zeroed at the
// consumer's input, in ORT. The residual stream stays unprunable with a reason (LayerNorm statistics).
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class TransformerPruneTests
{
    private static Model Load(string name) => OnnxImporter.Load(Paths.Model($"transformers/{name}.onnx"));

    [Theory]
    [InlineData("vit_op13", 3)]
    [InlineData("vit_op17", 3)]
    [InlineData("bert_op11", 2)]
    [InlineData("bert_op13", 2)]
    [InlineData("bert_medium", 4)]
    public void MlpNeuronsAreGroupsOnTheLastAxis(string name, int blocks)
    {
        var d = DependencyGroups.Analyze(Run(Load(name), "canonicalize").After);
        var prunable = d.Groups.Where(g => g.Prunable).ToList();
        Assert.Equal(blocks, prunable.Count);
        foreach (var g in prunable)
        {
            // fc1 (with its bias Add) produces, fc2 reads, on the last axis.
            var producer = Assert.Single(g.Producers);
            Assert.Equal("MatMul", producer.OpType);
            var consumer = Assert.Single(g.Consumers);
            Assert.Equal("MatMul", consumer.Node.OpType);
            Assert.Equal(consumer.Node.Input(0)!.Shape!.Rank - 1, d.ChannelAxis(consumer.Node.Input(0)!));
            Assert.Contains(g.Tied, n => n.OpType == "Add");
        }
        Assert.All(d.Groups.Where(g => !g.Prunable), g => Assert.NotEmpty(g.Reasons));
    }

    [Fact]
    public void LayerNormOverTheChannelsIsTheReasonTheHiddenStreamStays()
    {
        var d = DependencyGroups.Analyze(Run(Load("vit_op17"), "canonicalize").After);
        Assert.Contains(d.Groups.SelectMany(g => g.Reasons), r => r.Contains("LayerNormalization normalizes"));
    }

    [Theory]
    [InlineData("vit_op13")]
    [InlineData("vit_op17")]
    [InlineData("bert_op11")]
    [InlineData("bert_op13")]
    [InlineData("bert_medium")]
    public void PrunedTransformersEqualTheOriginalWithTheRemovedNeuronsZeroed(string name)
    {
        var m = Run(Load(name), "canonicalize").After;
        var (pruned, _) = Run(m, "prune{ratio=0.5,round-to=1,recover=none,min-speedup=0}");
        Assert.True(ModelStats.Compute(pruned).ParameterCount < ModelStats.Compute(m).ParameterCount);
        // The reference: fc2 reads its input times the keep mask of fc1's channels.
        var reference = m.Clone();
        var d = DependencyGroups.Analyze(reference);
        var plan = new PrunePlan("l2", true, 1, 1, 0.9, new HashSet<string>());
        var keep = plan.Keep(d, ChannelImportance.Compute("l2", d, reference, null), 0.5);
        Assert.NotEmpty(keep);
        var rw = new Rewriter(reference);
        foreach (var (id, kept) in keep)
        {
            var g = d.Groups[id];
            var mask = Enumerable.Range(0, g.Channels).Select(c => kept.Contains(c) ? 1f : 0f).ToArray();
            foreach (var u in g.Consumers)
            {
                var x = u.Node.Input(0)!;
                var mv = rw.Constant(reference.Graph, x.Name + "_mask", Tensor.FromFloats("", [mask.Length], mask));
                rw.SetInput(u.Node, 0, rw.Insert(reference.Graph, "Mul", [x, mv], x.Name + "_masked").Output());
            }
        }
        rw.Cleanup();
        ShapeInference.Refresh(reference);
        AssertEquivalent(reference, pruned);
    }

    [Fact]
    public void LeastSquaresRepairRefitsTheSecondProjectionOnEveryToken()
    {
        var m = Run(Load("vit_op17"), "canonicalize").After;
        var calib = CalibrationSource.FromFolder(Paths.Model("digits/data/calib"));
        var (_, runs) = Run(m, "prune{ratio=0.6,round-to=1,recover=lstsq,min-speedup=0}", calib);
        var refits = runs.SelectMany(r => r.Stats.Decisions).OfType<LayerRefit>().ToList();
        Assert.Equal(3, refits.Count);
        Assert.All(refits, r => Assert.True(r.SqnrDbAfter > r.SqnrDbBefore + 1, $"{r.Layer}: {r.SqnrDbBefore} -> {r.SqnrDbAfter}"));
    }

    [Fact]
    public void BiasRepairAveragesOverTokensOnTheLastAxis()
    {
        var m = Run(Load("bert_op13"), "canonicalize").After;
        var calib = CalibrationSource.FromFolder(Paths.Model("transformers/bert_data"));
        var (none, _) = Run(m, "prune{ratio=0.5,round-to=1,recover=none,min-speedup=0}");
        var (bias, runs) = Run(m, "prune{ratio=0.5,round-to=1,recover=bias,min-speedup=0}", calib);
        Assert.Equal(2, Counter(runs, Counters.Prune.BiasesRepaired));
        var eval = CalibrationSource.FromFolder(Paths.Model("transformers/bert_eval"));
        double Error(Model candidate) => Fidelity(m, candidate, eval);
        Assert.True(Error(bias) < Error(none), $"bias repair {Error(bias)} vs none {Error(none)}");
    }

    [Theory]
    [InlineData("vit_op13")]
    [InlineData("vit_op17")]
    [InlineData("bert_op11")]
    [InlineData("bert_op13")]
    public void EveryAttentionBlockHasPrunableHeads(string name)
    {
        var groups = AttentionHeads.Analyze(Run(Load(name), "canonicalize").After);
        Assert.Equal(name.StartsWith("vit") ? 3 : 2, groups.Count);
        Assert.All(groups, g => Assert.True(g.Prunable, string.Join("; ", g.Reasons)));
        Assert.All(groups, g => Assert.Equal((4, 16), (g.Heads, g.HeadSize)));
        // Split reshapes (one fused, or three) and the merge.
        Assert.All(groups, g => Assert.Equal(name.StartsWith("vit") ? 2 : 4, g.ShapeEdits.Count));
    }

    [Theory]
    [InlineData("vit_op13")]
    [InlineData("vit_op17")]
    [InlineData("bert_op11")]
    [InlineData("bert_op13")]
    [InlineData("bert_medium")]
    public void PrunedHeadsEqualTheOriginalWithTheirOutputRowsZeroed(string name)
    {
        var m = Run(Load(name), "canonicalize").After;
        var (pruned, runs) = Run(m, "prune{unit=head,ratio=0.5,recover=none,min-speedup=0}");
        var decisions = runs.SelectMany(r => r.Stats.Decisions).OfType<HeadsPruned>().ToList();
        Assert.Equal(decisions.Sum(d => d.HeadsBefore - d.HeadsAfter), Counter(runs, Counters.Prune.HeadsRemoved));
        Assert.True(Counter(runs, Counters.Prune.HeadsRemoved) >= 4);
        // The reference: each removed head's rows of the output projection zeroed.
        var reference = m.Clone();
        var groups = AttentionHeads.Analyze(reference);
        var rw = new Rewriter(reference);
        foreach (var d in decisions.Where(d => d.Kept is not null))
        {
            var g = groups.Single(x => x.Name == d.Attention);
            var kept = d.Kept!.Split(',').Select(int.Parse).ToHashSet();
            var o = LinearOp.Of(g.View.Output!.MatMul)!;
            var w = o.Weight.ToArray();
            var cols = (int)o.WeightDims[1];
            for (int h = 0; h < g.Heads; h++)
                if (!kept.Contains(h))
                    for (int r = h * g.HeadSize; r < (h + 1) * g.HeadSize; r++) Array.Clear(w, r * cols, cols);
            o.Write(rw, o.WeightDims, w, o.Bias);
        }
        AssertEquivalent(reference, pruned);
        // Every split Reshape now says how many heads are left, wherever its target comes from.
        Assert.Equal(decisions.Select(d => d.HeadsAfter), AttentionHeads.Analyze(pruned).Select(g => g.Heads));
    }

    [Fact]
    public void TaylorRanksHeadsByTheirMeasuredEffect()
    {
        // Michel et al.'s criterion: removing the half it ranks lowest hurts less than removing the half l2 ranks
        // lowest, on held-out digits.
        var m = Run(Load("vit_op17"), "canonicalize").After;
        var calib = CalibrationSource.FromFolder(Paths.Model("digits/data/calib"));
        var test = CalibrationSource.FromFolder(Paths.Model("digits/data/test"));
        var (taylor, _) = Run(m, "prune{unit=head,ratio=0.5,criterion=taylor,recover=none,min-speedup=0}", calib);
        var (l2, _) = Run(m, "prune{unit=head,ratio=0.5,criterion=l2,recover=none,min-speedup=0}", calib);
        Assert.True(Fidelity(m, taylor, test) < Fidelity(m, l2, test));
    }

    [Fact]
    public void DamageIsTheMeasuredEffectOfRemovingEachHead()
    {
        var m = Run(Load("bert_op13"), "canonicalize").After;
        var calib = CalibrationSource.FromFolder(Paths.Model("transformers/bert_data"));
        var groups = AttentionHeads.Analyze(m);
        var damage = AttentionHeads.Importance("damage", groups, m, calib, 32);
        // Removing the head damage ranks lowest in each block hurts less than removing the highest.
        var eval = CalibrationSource.FromFolder(Paths.Model("transformers/bert_eval"));
        foreach (var g in groups)
        {
            var order = damage[g.Id].Select((v, h) => (v, h)).OrderBy(x => x.v).Select(x => x.h).ToArray();
            Model Without(int head)
            {
                var c = m.Clone();
                var cg = AttentionHeads.Analyze(c)[g.Id];
                AttentionHeads.Apply(c, new Rewriter(c), cg, Enumerable.Range(0, g.Heads).Where(h => h != head).ToArray());
                return c;
            }
            Assert.True(Fidelity(m, Without(order[0]), eval) < Fidelity(m, Without(order[^1]), eval));
        }
        Assert.Throws<OnnxModelException>(() => Run(m, "prune{criterion=damage,min-speedup=0}", calib));
    }

    [Fact]
    public void LeastSquaresRepairsTheOutputProjectionsAfterHeadPruning()
    {
        var m = Run(Load("bert_op13"), "canonicalize").After;
        var calib = CalibrationSource.FromFolder(Paths.Model("transformers/bert_data"));
        var eval = CalibrationSource.FromFolder(Paths.Model("transformers/bert_eval"));
        var (none, _) = Run(m, "prune{unit=head,ratio=0.5,recover=none,min-speedup=0}", calib);
        var (lstsq, runs) = Run(m, "prune{unit=head,ratio=0.5,recover=lstsq,min-speedup=0}", calib);
        var (bias, biasRuns) = Run(m, "prune{unit=head,ratio=0.5,recover=bias,min-speedup=0}", calib);
        Assert.Equal(2, Counter(runs, Counters.Prune.LayersRefitted));
        Assert.Equal(2, Counter(biasRuns, Counters.Prune.BiasesRepaired));
        Assert.True(Fidelity(m, lstsq, eval) < Fidelity(m, none, eval));
        Assert.True(Fidelity(m, bias, eval) < Fidelity(m, none, eval));
    }

    [Fact]
    public void AnExcludedProjectionKeepsItsBlocksHeads()
    {
        var m = Run(Load("vit_op17"), "canonicalize").After;
        var (_, runs) = Run(m, "prune{unit=head,ratio=0.5,recover=none,min-speedup=0,exclude=/blocks.0/qkv/MatMul}");
        var decisions = runs.SelectMany(r => r.Stats.Decisions).OfType<HeadsPruned>().ToList();
        Assert.Equal(4, decisions.Single(d => d.Attention.Contains("/blocks.0/")).HeadsAfter);
        Assert.True(decisions.Sum(d => d.HeadsBefore - d.HeadsAfter) > 0);
    }

    [Fact]
    public void HeadPruningOfAModelWithoutAttentionSaysSo()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var why = new Prune().WhyNoChange(m, new PruneOptions { Unit = "head" });
        Assert.Equal("no attention block (Softmax over Q K^T)", why);
    }

    [Fact]
    public void DistillationAfterPruningRecoversTheEncoderAndIsDeterministic()
    {
        // Heads and MLP neurons removed, then the pooled-cosine distillation toward the original trains through
        // LayerNorm, Softmax, the Tanh GELU, the attention MatMuls and the frozen embeddings.
        var m = Run(Load("bert_op13"), "canonicalize").After;
        var calib = CalibrationSource.FromFolder(Paths.Model("transformers/bert_data"));
        var eval = CalibrationSource.FromFolder(Paths.Model("transformers/bert_eval"));
        const string cut = "prune{unit=head,ratio=0.5,recover=none,min-speedup=0},"
            + "prune{ratio=0.5,round-to=1,recover=none,min-speedup=0}";
        const string train = ",distill{steps=40,batch=16,lr=0.002,loss=cosine,eval-every=0}";
        var (pruned, _) = Run(m, cut, calib);
        var (a, runs) = Run(m, cut + train, calib);
        var (b, _) = Run(m, cut + train, calib);
        Assert.Equal(OnnxExporter.ToBytes(a), OnnxExporter.ToBytes(b));
        var summary = runs.SelectMany(r => r.Stats.Decisions).OfType<TrainingSummary>().Single();
        Assert.True(summary.FinalLoss < summary.FirstLoss / 2, $"{summary.FirstLoss} -> {summary.FinalLoss}");
        // The embedding tables (Gather) stay as they were.
        var table = m.Graph.Nodes.First(n => n.OpType == "Gather" && n.Input(0)!.IsInitializer).Input(0)!.Name;
        Assert.Equal(m.Graph.Find(table)!.Initializer!.ToFloatArray(), a.Graph.Find(table)!.Initializer!.ToFloatArray());
        Assert.True(Fidelity(m, a, eval) < Fidelity(m, pruned, eval));
    }

    /// <summary>Mean squared error of the first output against the reference's on the data.</summary>
    private static double Fidelity(Model reference, Model candidate, CalibrationSource data)
    {
        var outputs = new List<float[]>[2];
        var models = new[] { reference, candidate };
        for (int i = 0; i < 2; i++)
        {
            var list = outputs[i] = new List<float[]>();
            data.Stream(models[i], [models[i].Graph.Outputs[0].Name], (_, outs) => list.Add(outs[0].ToFloatArray()));
        }
        double sum = 0;
        long count = 0;
        for (int b = 0; b < outputs[0].Count; b++)
            for (int j = 0; j < outputs[0][b].Length; j++, count++)
                sum += Math.Pow(outputs[0][b][j] - outputs[1][b][j], 2);
        return sum / count;
    }
}
