// linearize{mode=train}: Layer Folding as its authors train it (Ben Dror et al. 2021), with distillation
// instead of labels. Every eligible activation (between foldable linear ops, as linearize decides: the ReLU
// family, and GELU, SiLU and HardSwish in one node or as exported, ActivationSite) becomes
//   y = act(z) + a * (z - act(z))          (= a z + (1 - a) act(z); one learnable scalar a per activation)
// and the weights and slopes train together toward the teacher (the pipeline's input) under
//   loss = distillation + lambda * sum_a (1 - a^2),   a clipped to [0, 1] after each step.
// The penalty pulls every a toward 1 (the identity) and the distillation term holds back the activations the
// network needs. a starts at slope-init: at a = 0 the penalty's gradient -2 lambda a vanishes and, the
// student being the teacher, so does the distillation's, so training would never leave the start.
// With snap (the default), a slope that reaches the threshold is set to 1 there and stays 1: the weights train
// on without that activation, so its removal is already paid for when the choice is made (without it, the
// weights learn to lean on the last 10% of each activation, and removing them all at once costs points).
// Then, most linear first (snapped ones in the order they snapped), the activations with a >= threshold
// become the identity; the others keep their learned slope (others=slope: Relu/LeakyRelu as
// LeakyRelu(alpha = a + (1 - a) alpha), Clip and PRelu as the act + a (z - act) form; a snapped one given
// back gets its original form) or get their original form back (others=restore), a distillation fine-tune
// of the weights follows (finetune-steps), and the drop
// is measured in ORT on --eval (else the calibration set). Over budget (max-agreement-drop), the least
// linear quarter of the chosen activations is given back and the fine-tune redone, down to none; nothing
// is written into the model unless a set meets the budget. Run `canonicalize,fold-conv` next to fold the
// identities exactly:  before: Conv -> Relu -> Conv   after: Conv -> Conv  (-> one Conv after fold-conv).
using System.Globalization;
using OnnxOpt.GraphIR;
using OnnxOpt.Training;

namespace OnnxOpt.Passes;

/// <summary>One activation under Layer Folding's training: its learned slope and what became of it.</summary>
public sealed record SlopeDecision(string Activation, string Op, double Slope, string Decision) : Decision;

public sealed record TrainedLinearizeSummary(int Candidates, int AboveThreshold, int Linearized, int Attempts,
    string DropMetric, double? DropPoints, double Budget) : Decision
{
    public string Summary => "linearize{mode=train}";
}

internal static class TrainedLinearize
{
    /// <param name="zOf">Each activation's output name -> its input's (a decomposed GELU's x).</param>
    /// <param name="kindOf">Each activation's output name -> what it is, for the report.</param>
    public static void Run(PassContext ctx, LinearizeOptions o, IReadOnlyList<Node> eligible,
        IReadOnlyDictionary<string, string> zOf, IReadOnlyDictionary<string, string> kindOf)
    {
        ctx.RequireCalibration("linearize");
        var teacher = Recovery.TeacherModel(ctx);
        if (o.SlopeInit is < 0 or > 1)
            throw new OnnxModelException($"linearize: slope-init = {o.SlopeInit} is not in [0, 1]");
        var settings = Distill.Settings(ctx, teacher, o.Training with { EvalEvery = o.EvalEvery });

        var (work, learned) = TrainSlopes(ctx, o, eligible, zOf, kindOf, teacher, settings);
        var above = learned.Where(s => s.A >= o.Threshold).Select(s => s.Act).ToList();
        var slopeOf = learned.ToDictionary(s => s.Act, s => s.A);
        bool keepSlopes = o.Others == "slope";
        var (accepted, chosen, drop, attempts, metric) = LinearizeWithinBudget(ctx, o, eligible, zOf, teacher,
            settings, work, above, keepSlopes ? slopeOf : Restored(slopeOf));
        double threshold = o.Threshold, budget = o.MaxAgreementDrop;
        foreach (var (act, op, a, _) in learned)
        {
            var what = chosen.Contains(act) ? "linearized" : accepted is null ? "kept (no set within budget)"
                : !keepSlopes || a < 1e-6 || a >= 1 ? "kept" : a >= threshold ? "learned slope (over budget)"
                : "learned slope";
            ctx.Stats.Decide(new SlopeDecision(act, op, Math.Round(a, 6), what));
        }
        ctx.Stats.Decide(new TrainedLinearizeSummary(eligible.Count, above.Count, chosen.Count, attempts,
            metric, drop is { } x ? Math.Round(x, 4) : null, budget));
        ctx.Stats.Count(Counters.Linearize.Candidates, eligible.Count);
        ctx.Stats.Count(Counters.Linearize.Linearized, chosen.Count);
        if (accepted is null)
        {
            ctx.Stats.Notes.Add("linearize{mode=train}: no set of activations met the budget; the model is unchanged");
            return;
        }
        Apply(ctx.Rewriter, ctx.Model, eligible, zOf, chosen, keepSlopes ? slopeOf : Restored(slopeOf));
        CopyWeights(accepted, ctx.Model, ctx.Rewriter);
        ctx.Rewriter.RemoveUnusedInitializers(ctx.Model.Graph);
        ctx.Rewriter.Finish();
    }

    /// <summary>Step 1: slopes and weights train together on a copy of the model (each activation a + slope (z - a),
    /// the slopes pushed toward 0 or 1 by lambda |1 - s^2|, snapped to 1 at the threshold). Returns the trained copy
    /// and the slopes, most linear first (snapped ones by when they snapped, then by value).</summary>
    private static (Model Work, List<(string Act, string Op, double A, int At)> Learned) TrainSlopes(PassContext ctx,
        LinearizeOptions o, IReadOnlyList<Node> eligible, IReadOnlyDictionary<string, string> zOf,
        IReadOnlyDictionary<string, string> kindOf, Model teacher, Training.TrainSettings settings)
    {
        var calib = ctx.RequireCalibration("linearize");
        var work = ctx.Model.Clone();
        var wctx = PassContexts.Create(work, calib, ctx.Log, ctx.Evaluation);
        // The caller's deadline (compress's --time-budget) stops these trainings too.
        (wctx.Original, wctx.Stats, wctx.Deadline) = (teacher, ctx.Stats, ctx.Deadline);
        var slopes = new List<(string Act, string Op, Value Slope)>();
        foreach (var act in eligible)
        {
            var a = work.Graph.Find(act.Output().Name)!.Producer!;
            var z = work.Graph.Find(zOf[a.Output().Name])!;
            slopes.Add((a.Output().Name, kindOf[a.Output().Name], InsertSlope(wctx.Rewriter, a, z, o.SlopeInit)));
        }
        wctx.Rewriter.Finish();
        var parameters = ParameterSelection.Select(work, o.Training.Params, keepZeros: o.Training.KeepZeros);
        // snap: the step at which each slope reached the threshold (then it is 1 for good); -1 while it has not.
        var snappedAt = slopes.Select(_ => -1).ToArray();
        for (int si = 0; si < slopes.Count; si++)
            parameters.Add(SlopeParameter(slopes[si].Slope, si, snappedAt, o, settings.LearningRate));
        Recovery.Train(wctx, "linearize: slopes", parameters, settings);
        var learned = slopes.Select((s, i) => (s.Act, s.Op,
            A: (double)work.Graph.Find(s.Slope.Name)!.Initializer!.ToFloatArray()[0], At: snappedAt[i]))
            .OrderBy(s => s.At < 0 ? int.MaxValue : s.At).ThenByDescending(s => s.A)
            .ThenBy(s => s.Act, StringComparer.Ordinal).ToList();
        if (o.Snap)
            ctx.Log.WriteLine($"linearize: {snappedAt.Count(t => t >= 0)} of {slopes.Count} slopes snapped to 1");
        return (work, learned);
    }

    /// <summary>A slope as a trained parameter: its own learning rate, the penalty lambda |1 - s^2|, clamped to
    /// [0, 1], and with snap held at 1 from the step it reaches the threshold (recorded in snappedAt[index]).
    /// </summary>
    private static DirectParameter SlopeParameter(Value slope, int index, int[] snappedAt, LinearizeOptions o,
        double learningRate)
    {
        double lambda = o.Lambda, threshold = o.Threshold;
        bool snap = o.Snap;
        int calls = 0;
        return new DirectParameter(slope)
        {
            LearningRateScale = o.SlopeLr / learningRate,
            Penalty = (v, g) =>
            {
                double pen = 0;
                for (int i = 0; i < v.Length; i++)
                {
                    double a = v[i], r = 1 - a * a;
                    pen += lambda * Math.Abs(r);
                    g[i] += (float)(-2 * lambda * a * Math.Sign(r));
                }
                return pen;
            },
            Constrain = v =>
            {
                calls++;
                for (int i = 0; i < v.Length; i++)
                {
                    v[i] = Math.Clamp(v[i], 0f, 1f);
                    if (snap && snappedAt[index] < 0 && v[i] >= threshold) snappedAt[index] = calls;
                    if (snappedAt[index] >= 0) v[i] = 1f;
                }
            },
        };
    }

    /// <summary>Step 2: the k most linear activations become the identity (k = all above the threshold, then 3/4 of
    /// it while over budget), each set fine-tuned and judged by the upper bound of its drop on held-out data.
    /// Returns the first set within the budget (accepted null: none).</summary>
    private static (Model? Accepted, HashSet<string> Chosen, double? Drop, int Attempts, string Metric)
        LinearizeWithinBudget(PassContext ctx, LinearizeOptions o, IReadOnlyList<Node> eligible,
        IReadOnlyDictionary<string, string> zOf, Model teacher, Training.TrainSettings settings, Model work,
        List<string> above, Dictionary<string, double> slopes)
    {
        var calib = ctx.RequireCalibration("linearize");
        var data = ctx.Evaluation ?? calib;
        var reference = Reference.Capture(data, teacher.Clone()); // streaming infers shapes: not on the input
        double budget = o.MaxAgreementDrop;
        var ft = settings with { Steps = checked((int)o.FinetuneSteps) };
        for (int k = above.Count, attempts = 1; ; attempts++)
        {
            var set = above.Take(k).ToHashSet(StringComparer.Ordinal);
            var trial = ctx.Model.Clone();
            var tctx = PassContexts.Create(trial, calib, ctx.Log, ctx.Evaluation);
            (tctx.Original, tctx.Stats, tctx.Deadline) = (teacher, ctx.Stats, ctx.Deadline);
            CopyWeights(work, trial, tctx.Rewriter);
            Apply(tctx.Rewriter, trial, eligible, zOf, set, slopes);
            if (ft.Steps > 0)
                Recovery.Train(tctx, $"linearize: fine-tune ({k} linearized)",
                    ParameterSelection.Select(trial, o.Training.Params, keepZeros: o.Training.KeepZeros), ft);
            // Judged by the drop's upper bound: on 50 held-out samples an accuracy drop of 0 can hide six changed
            // answers (Fashion-MNIST ResNet: 9 -> 4 non-linear layers passed a 1-point budget at 0 and lost 5.0
            // points on the test split).
            var f = reference.Measure(data, trial);
            var d = reference.UpperDrop(f, o.Confidence);
            var bound = o.Confidence > 0
                ? FormattableString.Invariant($", at most {d:F2} at {o.Confidence * 100:G3}%") : "";
            ctx.Log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"linearize: {k} of {eligible.Count} linearized: {reference.DropMetric} drop {reference.Drop(f):F2} "
                    + $"points{bound} (budget {budget:G3})"));
            if (d <= budget + 1e-9) return (trial, set, reference.Drop(f), attempts, reference.DropMetric);
            if (k == 0) return (null, [], null, attempts, reference.DropMetric);
            k = k * 3 / 4;
        }
    }

    /// <summary>others=restore: every activation not made the identity gets its original form back (slope 0).</summary>
    private static Dictionary<string, double> Restored(Dictionary<string, double> slopes) =>
        slopes.ToDictionary(kv => kv.Key, _ => 0.0, StringComparer.Ordinal);

    /// <summary>y = act(z) + a (z - act(z)) in place of act's output; returns the slope initializer.</summary>
    private static Value InsertSlope(Rewriter rw, Node act, Value z, double init)
    {
        var g = act.Graph;
        var y = act.Output();
        var uses = y.Uses.ToList();
        var a = rw.Constant(g, y.Name + "_slope", Tensor.FromFloats("", [], [(float)init]));
        var d = rw.Insert(g, "Sub", [z, y], y.Name + "_neg").Output();
        var m = rw.Insert(g, "Mul", [d, a], y.Name + "_neg_scaled").Output();
        var o = rw.Insert(g, "Add", [y, m], y.Name + "_param").Output();
        foreach (var v in new[] { d, m, o }) rw.SetType(v, y.Type);
        foreach (var u in uses) rw.SetInput(u.Node, u.InputIndex, o);
        return a;
    }

    /// <summary>The chosen activations become the identity, the others their learned slope.</summary>
    private static void Apply(Rewriter rw, Model m, IReadOnlyList<Node> eligible,
        IReadOnlyDictionary<string, string> zOf, HashSet<string> identity, Dictionary<string, double> slope)
    {
        foreach (var orig in eligible)
        {
            var act = m.Graph.Find(orig.Output().Name)!.Producer!;
            var z = m.Graph.Find(zOf[orig.Output().Name])!;
            var a = slope[orig.Output().Name];
            if (identity.Contains(orig.Output().Name))
            {
                rw.Replace(act.Output(), z);
                rw.Erase(act);
            }
            else if (a < 1e-6 || a >= 1) continue; // a snapped slope given back: its original form
            else if (act.OpType is "Relu" or "LeakyRelu")
            {
                double alpha = act.OpType == "Relu" ? 0 : act.GetFloat("alpha", 0.01f);
                if (act.OpType == "Relu") rw.SetOpType(act, "LeakyRelu");
                rw.SetAttr(act, OnnxAttribute.Float("alpha", (float)(alpha + a * (1 - alpha))));
            }
            else InsertSlope(rw, act, z, a);
        }
        // A decomposed activation's other nodes are dead once its product is gone.
        rw.RemoveDeadNodes(m.Graph);
        rw.RemoveUnusedInitializers(m.Graph);
        rw.Finish();
    }

    /// <summary>Every float initializer of <paramref name="to"/> takes the value of the same name and shape in
    /// <paramref name="from"/>.</summary>
    private static void CopyWeights(Model from, Model to, Rewriter rw)
    {
        foreach (var v in to.Graph.Initializers.ToList())
        {
            if (v.Initializer is not { ElementType: DataType.Float } t) continue;
            if (from.Graph.Find(v.Name)?.Initializer is { ElementType: DataType.Float } s
                && s.Dims.SequenceEqual(t.Dims)
                && !s.ContentEquals(t))
                rw.SetInitializer(v, s);
        }
    }
}
