// linearize: post-training activation linearization (Layer Folding, Ben Dror et al. 2021, decided
// from calibration data instead of training). For every ReLU, LeakyReLU, PReLU and Clip (ReLU6) that
// sits between foldable linear ops:
//   1. statistics of its input z over the calibration set: fraction < 0, fraction > clip max, and the
//      energy the identity would change, ||min(z,0)||^2/||z||^2 (x (1 - slope)^2 for LeakyRelu/PRelu;
//      + ||z - clip||^2/||z||^2 for Clip);
//   2. exact on the data (no element in a non-linear region) -> always linearized (budget 0 does only these);
//   3. otherwise, most linear first, each is switched in a trial model and the trial's top-1 agreement
//      with the original (cosine of outputs for non-classifiers) is measured in ORT on the calibration
//      set; the switch is kept while the drop stays within max-agreement-drop points (and max-count).
// mode=identity replaces act(z) by z; mode=affine by a per-channel least-squares fit a_c z + b_c,
// folded into the producing Conv/Gemm when it has no other reader (else a Mul+Add). The folds
// themselves are fold-conv's job: run it next ("linearize,fold-conv").
// Main graph only (activations in subgraphs are left alone).
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public sealed record LinearizeOptions
{
    [Option("max-agreement-drop", "largest drop in top-1 agreement with the original, in points (cosine x 100 for "
        + "non-classifiers); 0 = only activations exactly linear on the data", Min = 0)]
    public double MaxAgreementDrop { get; init; } = 0.5;
    [Option("max-count", "most activations to linearize (-1: no limit)", Min = -1)]
    public long MaxCount { get; init; } = -1;
    [Option("mode", "replace act(z) by z, or by a per-channel least-squares a*z+b, or train Layer Folding's slopes "
        + "(TrainedLinearize)", Choices = ["identity", "affine", "train"])]
    public string Mode { get; init; } = "identity";
    [Option("min-sqnr", "also keep the first output's SQNR against the original at or above this many dB (0: no "
        + "SQNR limit)")]
    public double MinSqnr { get; init; }
    [Option("lambda", "mode=train: weight of the penalty lambda * sum |1 - a^2| on the slopes (the paper's 0.25 is "
        + "for cross-entropy; our KL carries T^2)", Min = 0)]
    public double Lambda { get; init; } = 2;
    [Option("threshold", "mode=train: slopes at or above this become the identity")]
    public double Threshold { get; init; } = 0.9;
    [Option("snap", "mode=train: a slope that reaches the threshold is set to 1 and stays there, so the weights "
        + "train on without that activation (false: slopes move freely, the choice comes after)")]
    public bool Snap { get; init; } = true;
    [Option("slope-init", "mode=train: starting slope a (at 0 the penalty has no gradient)")]
    public double SlopeInit { get; init; } = 0.1;
    [Option("slope-lr", "mode=train: learning rate of the slopes (the weights use lr)", Min = 0)]
    public double SlopeLr { get; init; } = 0.01;
    [Option("others", "mode=train: activations not made the identity get their original form back, or keep the "
        + "learned slope", Choices = ["restore", "slope"])]
    public string Others { get; init; } = "restore";
    [Option("confidence", "mode=train: the budget judges the upper bound of the held-out drop at this confidence "
        + "(binomial for accuracy, bootstrap otherwise; 0: the measured drop)", Min = 0, Max = 0.999)]
    public double Confidence { get; init; } = 0.9;
    [Option("finetune-steps", "mode=train: distillation steps of the weights after the choice", Min = 0)]
    public long FinetuneSteps { get; init; } = 500;
    /// <summary>mode=train's training (its eval-every is the one below).</summary>
    [OptionGroup(Omit = ["eval-every"])]
    public TrainingOptions Training { get; init; } = new();
    [Option("eval-every", "with --eval: score the student every this many steps and keep the best (0: no "
        + "selection)", Min = 0)]
    public long EvalEvery { get; init; }
}

public sealed class Linearize : Pass<LinearizeOptions>
{
    public override string Name => "linearize";
    public override string Summary =>
        "replace (nearly) linear ReLU/LeakyReLU/PReLU/Clip activations by identity or a per-channel affine map, "
        + "within an agreement budget measured in ORT";
    public override bool IsExact(LinearizeOptions options) => false;
    public override string BudgetOption => "max-agreement-drop";
    public override DataNeeds Needs(LinearizeOptions options) => DataNeeds.Calibration;

    public override string? WhyNoChange(Model model, LinearizeOptions options)
    {
        var copy = model.Clone();
        ShapeInference.Run(copy);
        var train = options.Mode == "train";
        return ActivationSite.Find(copy.Graph, train, new PassContext(copy)).Any(a => a.Z.Producer is { } p
            && IsLinearProducer(p) && !a.Y.IsGraphOutput) ? null
            : train ? "no eligible activation (the ReLU family, GELU, SiLU or HardSwish after a linear op)"
            : "no eligible activation (the ReLU family after a linear op)";
    }
    public override bool NeedsTeacher(LinearizeOptions options) => options.Mode == "train";
    // The ops whose output may feed an activation (linear or affine: the activation then sits between two
    // foldable ops) and the ops that may read it. Which activations: ActivationSite.
    private static bool IsLinearProducer(Node n) => OpTraits.HasAny(n, OpTrait.Linear | OpTrait.AffineArithmetic);
    private static bool IsLinearConsumer(Node n) =>
        OpTraits.HasAny(n, OpTrait.Linear | OpTrait.AffineArithmetic | OpTrait.LinearReduce | OpTrait.Layout);

    private sealed record Candidate(Node Act, TensorStatistics Stats, bool Exact, double Score, double ClipMin,
        double ClipMax);

    public override void Run(PassContext ctx, LinearizeOptions o)
    {
        var calib = ctx.RequireCalibration(Name);
        var model = ctx.Model;
        ShapeInference.Run(model);
        // mode=train also takes smooth activations (GELU, SiLU, HardSwish): a trained slope can make any of them
        // the identity; the other modes judge piecewise linear ones from their statistics.
        var sites = ActivationSite.Find(model.Graph, o.Mode == "train", ctx);
        var (eligible, zOf) = Eligible(ctx, sites);
        if (eligible.Count == 0) return;
        if (o.Mode == "train")
        {
            TrainedLinearize.Run(ctx, o, eligible, zOf, sites.ToDictionary(s => s.Y.Name, s => s.Kind));
            return;
        }
        var candidates = Candidates(calib, model, eligible);
        // Reference answers of the original model on the calibration set; candidates accepted greedily, most
        // harmless first, while the accumulated drop stays within the budget.
        var reference = Reference.Capture(calib, model);
        var maxCount = o.MaxCount < 0 ? long.MaxValue : o.MaxCount;
        var (accepted, measured, current) = Accept(calib, model, reference, candidates, o, maxCount);
        foreach (var c in candidates)
        {
            var s = c.Stats.Total;
            var decision = accepted.Contains(c) ? (c.Exact ? "linearized (exact on data)" : "linearized")
                : measured.ContainsKey(c.Act) ? "kept (over budget)"
                : accepted.Count >= maxCount ? "kept (max-count)" : "kept (budget 0: not exact)";
            var m = measured.GetValueOrDefault(c.Act);
            var above = double.IsPositiveInfinity(c.ClipMax) ? null : (double?)s.FractionAbove;
            var sqnr = m is null || double.IsPositiveInfinity(m.SqnrDb) ? null : (double?)Math.Round(m.SqnrDb, 3);
            ctx.Stats.Decide(new ActivationDecision(c.Act.ToString(), c.Act.OpType, decision, s.FractionNegative,
                s.NegativeEnergyRatio, above, s.Min, s.Max, c.Score, m?.Agreement, sqnr));
        }
        Apply(model, accepted, o.Mode, ctx.Rewriter);
        ctx.Stats.Count(Counters.Linearize.Candidates, candidates.Count);
        ctx.Stats.Count(Counters.Linearize.Linearized, accepted.Count);
        ctx.Stats.Count(Counters.Linearize.Exactly, accepted.Count(c => c.Exact));
        ctx.Stats.Decide(new LinearizeSummary(reference.Metric, current.Agreement,
            double.IsPositiveInfinity(current.SqnrDb) ? null : Math.Round(current.SqnrDb, 3), reference.Samples));
    }

    /// <summary>The activations that can become linear (between linear ops, not a graph output, read only by
    /// linear ops, constant clip bounds), and the name of each one's input by its output's; the others are
    /// recorded with the reason.</summary>
    private static (List<Node> Eligible, Dictionary<string, string> ZOf) Eligible(PassContext ctx,
        IReadOnlyList<ActivationSite> sites)
    {
        var eligible = new List<Node>();
        var zOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var site in sites)
        {
            var a = site.Act;
            var z = site.Z; var y = a.Output();
            string? why = null;
            if (z.Producer is not { } p || !IsLinearProducer(p)) why = "input not produced by a linear op";
            else if (y.IsGraphOutput) why = "graph output";
            else if (y.Uses.Any(u => !IsLinearConsumer(u.Node))) why = "read by a non-linear op";
            else if (a.OpType == "Clip" && ClipBounds(a) is null) why = "clip bounds not constant";
            if (why is null) { eligible.Add(a); zOf[y.Name] = z.Name; }
            else
            {
                ctx.Stats.Count(Counters.Linearize.NotEligible);
                ctx.Stats.Decide(new ActivationSkipped(a.ToString(), site.Kind, why));
            }
        }
        return (eligible, zOf);
    }

    /// <summary>Each eligible activation's statistics on the calibration data (streamed) and its score, exact
    /// ones first, then by score (the energy linearizing changes), then graph order.</summary>
    private static List<Candidate> Candidates(CalibrationSource calib, Model model, List<Node> eligible)
    {
        var stats = eligible.ToDictionary(a => a, a => new TensorStatistics(a.Input(0)!.Name, ClipBounds(a)?.Max
            ?? double.PositiveInfinity));
        var names = eligible.SelectMany(a => new[] { a.Input(0)!.Name, a.Output().Name }).Distinct().ToList();
        calib.Stream(model, names, (_, outs) =>
        {
            foreach (var a in eligible)
                stats[a].Add(outs[names.IndexOf(a.Input(0)!.Name)], outs[names.IndexOf(a.Output().Name)]);
        }, "linearize: calibration statistics");
        return eligible.Select(a =>
        {
            var s = stats[a].Total;
            var (lo, hi) = ClipBounds(a) ?? (0, double.PositiveInfinity);
            bool exact = a.OpType == "Clip" ? s.Min >= lo && s.Max <= hi : s.NegCount == 0;
            // z -> act(z) changes the negative part by (1 - slope) z: weight its energy by (1 - slope)^2.
            double score = a.OpType == "Clip" ? (lo == 0 ? s.NegativeEnergyRatio : s.FractionNegative) + s.AboveEnergyRatio
                : s.NegativeEnergyRatio * Math.Pow(1 - NegativeSlope(a), 2);
            return new Candidate(a, stats[a], exact, exact ? 0 : score, lo, hi);
        }).OrderBy(c => c.Exact ? 0 : 1).ThenBy(c => c.Score).ThenBy(c => model.Graph.PositionOf(c.Act)).ToList();
    }

    /// <summary>The greedy search: each candidate in order is tried with those already accepted (on a copy) and
    /// kept when the measured agreement drop (and SQNR, if asked) stays within the budget; exact ones always.
    /// </summary>
    private static (List<Candidate> Accepted, Dictionary<Node, FidelityResult> Measured, FidelityResult Current)
        Accept(CalibrationSource calib, Model model, Reference reference, List<Candidate> candidates,
            LinearizeOptions o, long maxCount)
    {
        var accepted = new List<Candidate>();
        var measured = new Dictionary<Node, FidelityResult>();
        var current = new FidelityResult(100, double.PositiveInfinity);
        foreach (var c in candidates)
        {
            if (accepted.Count >= maxCount) break;
            if (!c.Exact && o.MaxAgreementDrop <= 0) continue;
            var trial = model.Clone();
            Apply(trial, accepted.Append(c), o.Mode);
            var f = reference.Measure(calib, trial);
            measured[c.Act] = f;
            var withinBudget = 100 - f.Agreement <= o.MaxAgreementDrop + 1e-9;
            if (c.Exact || (withinBudget && (o.MinSqnr <= 0 || f.SqnrDb >= o.MinSqnr)))
            {
                accepted.Add(c);
                current = f;
            }
        }
        return (accepted, measured, current);
    }

    /// <summary>The slope on negative inputs (Relu 0, LeakyRelu alpha, PRelu the slope farthest from 1).</summary>
    private static double NegativeSlope(Node a) => a.OpType switch
    {
        "LeakyRelu" => a.GetFloat("alpha", 0.01f),
        "PRelu" when Rewriter.ConstantOf(a.Input(1)) is { } t => t.ToDoubleArray().OrderByDescending(v => Math.Abs(1 - v)).FirstOrDefault(),
        _ => 0,
    };

    private static (double Min, double Max)? ClipBounds(Node a)
    {
        if (a.OpType != "Clip") return (0, double.PositiveInfinity);
        double lo = a.Attr("min") is { } amin ? amin.F : double.NegativeInfinity;
        double hi = a.Attr("max") is { } amax ? amax.F : double.PositiveInfinity;
        if (a.Input(1) is { } mn) { if (Rewriter.ConstantOf(mn) is { } t) lo = t.ToDoubleArray()[0]; else return null; }
        if (a.Input(2) is { } mx) { if (Rewriter.ConstantOf(mx) is { } t) hi = t.ToDoubleArray()[0]; else return null; }
        return (lo, hi);
    }

    /// <summary>Applies the chosen linearizations to <paramref name="target"/> (matching nodes by output name).</summary>
    private static void Apply(Model target, IEnumerable<Candidate> chosen, string mode, Rewriter? rw = null)
    {
        rw ??= new Rewriter(target);
        var g = target.Graph;
        foreach (var c in chosen)
        {
            var act = g.Find(c.Act.Output().Name)!.Producer!;
            var z = act.Input(0)!; var y = act.Output();
            if (mode == "affine")
            {
                var fit = c.Stats.AffineFit();
                var p = z.Producer;
                if (p is { OpType: "Conv" or "Gemm" } && z.Uses.Count == 1 && !z.IsGraphOutput && ScaleProducer(rw, p, fit))
                {
                    rw.Replace(y, z);
                    rw.Erase(act);
                    continue;
                }
                if (z.Shape is { Rank: >= 2 } zs)
                {
                    var dims = new long[zs.Rank - 1];
                    dims[0] = fit.Length;
                    for (int i = 1; i < dims.Length; i++) dims[i] = 1;
                    var a = rw.Constant(g,
                        y.Name + "_lin_a", Tensor.FromFloats("", dims, fit.Select(f => (float)f.A).ToArray()));
                    var b = rw.Constant(g,
                        y.Name + "_lin_b", Tensor.FromFloats("", dims, fit.Select(f => (float)f.B).ToArray()));
                    var mul = rw.Insert(g, "Mul", [z, a], y.Name + "_lin_scaled").Output();
                    var add = rw.Insert(g, "Add", [mul, b], y.Name + "_lin").Output();
                    rw.SetType(add, y.Type);
                    rw.Replace(y, add);
                    rw.Erase(act);
                    continue;
                }
            }
            rw.Replace(y, z);
            rw.Erase(act);
        }
        rw.RemoveUnusedInitializers(g);
        rw.Finish();
    }

    /// <summary>Conv/Gemm output channel c scaled by a_c and shifted by b_c, in its weights and bias.</summary>
    private static bool ScaleProducer(Rewriter rw, Node p, (double A, double B)[] fit)
    {
        var wt = Rewriter.ConstantOf(p.Input(1));
        if (wt is not { ElementType: DataType.Float }) return false;
        var w = wt.ToFloatArray();
        var c = fit.Length;
        var transB = p.OpType == "Gemm" && p.GetInt("transB", 0) != 0;
        int rows = p.OpType == "Conv" ? c : (int)wt.Dims[0];
        if (p.OpType == "Conv" ? wt.Dims[0] != c : (transB ? wt.Dims[0] : wt.Dims[1]) != c) return false;
        float[] bias;
        if (p.Input(2) is null) bias = new float[c];
        else if (Rewriter.ConstantOf(p.Input(2)) is { ElementType: DataType.Float } bt
            && bt.ElementCount == c) bias = bt.ToFloatArray();
        else return false;
        var beta = p.OpType == "Gemm" ? p.GetFloat("beta", 1f) : 1f;
        if (p.OpType == "Conv" || transB)
        {
            var per = w.Length / c;
            for (int o = 0; o < c; o++) for (int k = 0; k < per; k++) w[o * per + k] = (float)(w[o * per + k] * fit[o].A);
        }
        else
            for (int r = 0; r < rows; r++) for (int o = 0; o < c; o++) w[r * c + o] = (float)(w[r * c + o] * fit[o].A);
        for (int o = 0; o < c; o++) bias[o] = (float)(beta * bias[o] * fit[o].A + fit[o].B);
        FoldBatchNorm.SetWeight(rw, p, 1, wt.Dims, w, p.Output().Name + "_W");
        if (p.Input(2) is null) rw.SetInput(p, 2, rw.Constant(p.Graph,
            p.Output().Name + "_B", Tensor.FromFloats("", [c], bias)));
        else FoldBatchNorm.SetWeight(rw, p, 2, [c], bias, p.Output().Name + "_B");
        if (p.OpType == "Gemm") rw.SetAttr(p, OnnxAttribute.Float("beta", 1f));
        return true;
    }
}
