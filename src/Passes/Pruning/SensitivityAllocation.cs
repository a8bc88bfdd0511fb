// prune{allocate=sensitivity}: per-group pruning ratios from measured damage (AIMET's greedy
// compression-ratio selection; SPDY's idea of a per-layer damage table), instead of one global threshold.
//   1. For every prunable group g and candidate kept count k (1/8 .. max-ratio of its channels removed,
//      rounded up to round-to, at least min-channels), prune g alone to its k most important channels,
//      repaired as the final model will be (recover=), and measure on calibration data the damage
//        D_g(k) = sum ||y' - y||^2 / sum ||y||^2   over the float graph outputs y.
//   2. Predicted loss of an allocation = sum_g D_g(k_g) (damages taken as additive). Greedy: from the
//      dense model, repeatedly take the one-step cut (group g to its next smaller candidate) with the least
//      added damage per MAC (or channel, for a ratio target) saved, until the target is met.
//   MACs of an allocation are computed per linear op as base MACs x the kept fraction of its output
//   channels x (not depthwise) the kept fraction of its input channels, which is exact for the ops
//   ModelStats counts; prune measures the result on the pruned graph.
// Cost: per candidate, one pruned and repaired copy and one pass over up to `sensitivity-samples`
// calibration samples (about 7 candidates a group).
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>One group's measured damage at each candidate kept count, and the count allocation chose.</summary>
public sealed record GroupSensitivity(int Group, int Channels, int[] Kept, double[] Damage, int Chosen) : Decision;

public static class SensitivityAllocation
{
    /// <summary>Kept channel counts per prunable group that meet the target: <paramref name="macs"/> (fraction of
    /// MACs kept) when >= 0, else <paramref name="ratio"/> of the prunable channels removed.</summary>
    public static (Dictionary<int, int> Counts, List<GroupSensitivity> Table) Allocate(Model model,
        DependencyGroups d, PrunePlan plan, Dictionary<int, double[]> importance, CalibrationSource calib,
        double ratio, double macs, int samples,
        Action<Model, DependencyGroups, Dictionary<int, int[]>> cut, ProgressSink? progress = null)
    {
        var reference = Outputs(model, calib, samples);
        var groups = d.Groups.Where(g => g.Prunable && importance.ContainsKey(g.Id)).ToList();
        var candidates = groups.ToDictionary(g => g.Id, g => Candidates(g.Channels, plan, g.Blocks));
        var damage = new Dictionary<int, double[]>();
        int done = 0, total = candidates.Values.Sum(c => c.Length);
        foreach (var g in groups)
        {
            var ks = candidates[g.Id];
            damage[g.Id] = new double[ks.Length];
            for (int i = 0; i < ks.Length; i++)
            {
                var trial = model.Clone();
                var td = DependencyGroups.Analyze(trial, plan.Exclude);
                var keep = new Dictionary<int, int[]> { [g.Id] = PrunePlan.TopK(importance[g.Id], ks[i], g.Blocks) };
                cut(trial, td, keep);
                damage[g.Id][i] = Damage(reference, Outputs(trial, calib, samples));
                progress?.Invoke("prune: sensitivity", ++done, total);
            }
        }

        var counts = groups.ToDictionary(g => g.Id, g => g.Channels);
        var step = groups.ToDictionary(g => g.Id, _ => -1); // index into candidates; -1: dense
        var cost = new MacsModel(model, d);
        double dense = cost.Macs(counts);
        int prunable = groups.Sum(g => g.Channels);
        bool Met() => macs >= 0 ? cost.Macs(counts) <= macs * dense
            : prunable - counts.Values.Sum() >= ratio * prunable;
        while (!Met())
        {
            (int Id, double Score, double Saved)? best = null;
            foreach (var g in groups)
            {
                var next = step[g.Id] + 1;
                if (next >= candidates[g.Id].Length) continue;
                var before = step[g.Id] < 0 ? 0 : damage[g.Id][step[g.Id]];
                var added = Math.Max(0, damage[g.Id][next] - before);
                var old = counts[g.Id];
                double saved;
                if (macs >= 0)
                {
                    var m0 = cost.Macs(counts);
                    counts[g.Id] = candidates[g.Id][next];
                    saved = m0 - cost.Macs(counts);
                    counts[g.Id] = old;
                }
                else saved = old - candidates[g.Id][next];
                if (saved <= 0) continue;
                var score = added / saved;
                if (best is null || score < best.Value.Score || (score == best.Value.Score && saved > best.Value.Saved))
                    best = (g.Id, score, saved);
            }
            if (best is null) break;
            step[best.Value.Id]++;
            counts[best.Value.Id] = candidates[best.Value.Id][step[best.Value.Id]];
        }
        var table = groups.Select(g => new GroupSensitivity(g.Id, g.Channels, candidates[g.Id], damage[g.Id],
            counts[g.Id])).ToList();
        return (counts, table);
    }

    /// <summary>Kept counts to try, descending: 1/8, 2/8, ... of the channels removed, up to max-ratio.</summary>
    internal static int[] Candidates(int channels, PrunePlan plan, int blocks = 1)
    {
        var result = new SortedSet<int>(Comparer<int>.Create((a, b) => b.CompareTo(a)));
        for (int eighth = 1; eighth <= 7; eighth++)
        {
            var r = Math.Min(eighth / 8.0, plan.MaxRatio);
            var n = plan.Rounded(channels - (int)Math.Floor(r * channels), channels, blocks);
            if (n < channels) result.Add(n);
        }
        return result.ToArray();
    }

    internal static List<double[]> Outputs(Model model, CalibrationSource calib, int samples)
    {
        var names = model.Graph.Outputs.Where(o => o.ElementType.IsFloatingPoint()).Select(o => o.Name).ToList();
        if (names.Count == 0) throw new OnnxModelException("prune allocate=sensitivity needs a float graph output");
        using var session = calib.RunnerFor(model, []);
        var data = calib.DataFor(session.Inputs);
        var result = new List<double[]>();
        int seen = 0;
        foreach (var batch in data.Batches(Math.Min(calib.BatchFor(model, names, session, data), Math.Max(1, samples))))
        {
            if (seen >= samples) break;
            foreach (var t in session.Run(batch.Inputs, names)) result.Add(t.ToDoubleArray());
            seen += (int)(batch.Inputs.Values.First().Dims.FirstOrDefault());
        }
        return result;
    }

    internal static double Damage(List<double[]> reference, List<double[]> trial)
    {
        double err = 0, norm = 0;
        for (int i = 0; i < reference.Count; i++)
            for (int j = 0; j < reference[i].Length; j++)
            {
                var e = trial[i][j] - reference[i][j];
                err += e * e;
                norm += reference[i][j] * reference[i][j];
            }
        return err / Math.Max(norm, 1e-30);
    }
}

/// <summary>MACs of the linear ops as a function of every group's kept channel count.</summary>
internal sealed class MacsModel
{
    private readonly List<(long Base, List<ChannelSegment> Out, List<ChannelSegment>? In)> _ops = new();

    public MacsModel(Model model, DependencyGroups d)
    {
        foreach (var n in model.Graph.Nodes)
        {
            if (ModelStats.Macs(n, out _) is not long m || m == 0) continue;
            var outs = n.Output() is { } y && d.Segments.TryGetValue(y, out var o) ? o : [];
            var depthwise = LinearOp.Of(n) is { IsDepthwise: true };
            var ins = !depthwise && n.Input(0) is { } x && d.Segments.TryGetValue(x, out var i) ? i : null;
            _ops.Add((m, outs, ins));
        }
    }

    public double Macs(IReadOnlyDictionary<int, int> kept) =>
        _ops.Sum(op => op.Base * Fraction(op.Out, kept) * (op.In is null ? 1 : Fraction(op.In, kept)));

    private static double Fraction(List<ChannelSegment> segs, IReadOnlyDictionary<int, int> kept)
    {
        if (segs.Count == 0) return 1;
        double all = 0, left = 0;
        foreach (var s in segs)
        {
            all += s.Channels * s.Repeat;
            left += (s.Group >= 0 && kept.TryGetValue(s.Group, out var k) ? k : s.Channels) * s.Repeat;
        }
        return left / all;
    }
}
