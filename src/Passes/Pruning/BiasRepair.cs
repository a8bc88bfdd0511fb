// prune{recover=bias}: the removed channels' mean contribution moves into each consumer's bias.
//   For a consumer y_o = b_o + sum_p sum_k W[o, p, k] x_p(k), removing input positions R changes y_o by
//   sum_(p in R) sum_k W[o, p, k] x_p(k); replacing x_p by its calibration mean m_p (over samples and
//   positions) gives the correction  b_o += sum_(p in R) m_p sum_k W[o, p, k].
//   Exact for channels that are constant on the data (dead ReLUs, saturated clips), and away from zero-padded
//   borders; cheap: one pass over the calibration data before the surgery.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class BiasRepair
{
    private readonly Dictionary<Node, (double[] Means, double[] Sums, int Cout, int In)> _plan = new();

    /// <summary>Before the surgery: every consumer's input means and its weights summed over the kernel.</summary>
    public static BiasRepair Prepare(Model model, IReadOnlyList<Node> consumers, CalibrationSource calib)
    {
        var r = new BiasRepair();
        var names = consumers.Select(u => u.Input(0)!.Name).Distinct().ToList();
        // The axis each input's channels are on: the one its consumers reduce over (a Conv's axis 1, a MatMul's or
        // Gemm's last).
        var lastAxis = consumers.Where(u => u.OpType is "MatMul" or "Gemm").Select(u => u.Input(0)!.Name).ToHashSet();
        var means = names.ToDictionary(n => n, _ => (double[]?)null);
        long samples = 0;
        calib.Stream(model, names, (_, outs) =>
        {
            samples += outs[0].Dims[0];
            for (int i = 0; i < names.Count; i++)
            {
                var t = outs[i];
                var axis = lastAxis.Contains(names[i]) ? t.Dims.Length - 1 : 1;
                var width = (int)t.Dims[axis];
                var inner = t.Dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
                // Positions per sample and channel: the mean is over them, then over samples.
                var per = (double)t.ElementCount / Math.Max(1, t.Dims[0] * width);
                var acc = means[names[i]] ??= new double[width];
                var data = t.ToFloatArray();
                for (long e = 0; e < data.Length; e++) acc[(int)(e / inner % width)] += data[e] / per;
            }
        }, "prune: input means");
        foreach (var u in consumers)
        {
            if (LinearOp.Of(u) is not { Groups: 1 } op || means[u.Input(0)!.Name] is not { } m) continue;
            var cout = op.OutChannels;
            var cin = op.InChannels;
            long Stride(int axis) => op.WeightDims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
            var (so, si) = (Stride(op.OutAxis), Stride(op.InAxis));
            var sums = new double[cout * cin];
            for (long i = 0; i < op.Weight.Length; i++)
                sums[(int)(i / so % cout) * cin + (int)(i / si % cin)] += op.Weight[i];
            r._plan[u] = (m.Select(v => v / samples).ToArray(), sums, cout, cin);
        }
        return r;
    }

    /// <summary>After a surgery that left <paramref name="u"/> reading only the input positions
    /// <paramref name="kept"/> (of the original's): adds the removed positions' mean contribution to its bias.
    /// False when the consumer was not prepared.</summary>
    public bool ApplyRemoved(Rewriter rw, Node u, IReadOnlySet<long> kept)
    {
        if (!_plan.TryGetValue(u, out var plan)) return false;
        var (means, sums, cout, cin) = plan;
        var delta = new double[cout];
        for (int p = 0; p < cin; p++)
        {
            if (kept.Contains(p)) continue;
            for (int o = 0; o < cout; o++) delta[o] += means[p] * sums[o * cin + p];
        }
        var op = LinearOp.Of(u)!;
        op.Write(rw, op.WeightDims, op.Weight, op.Bias.Select((b, j) => (float)(b + delta[j])).ToArray());
        return true;
    }

    /// <summary>After the surgery: adds the removed positions' mean contribution to each consumer's bias.</summary>
    public int Apply(Rewriter rw, DependencyGroups d, IReadOnlyDictionary<int, int[]> keep,
        IReadOnlyDictionary<Node, int[]> keptOutputs)
    {
        int repaired = 0;
        foreach (var (u, (means, sums, cout, cin)) in _plan)
        {
            if (u.IsErased || !d.Segments.TryGetValue(u.Input(0)!, out var segs)) continue;
            var kept = ChannelSurgery.KeptPositions(segs, d, keep).ToHashSet();
            var delta = new double[cout];
            for (int p = 0; p < cin; p++)
            {
                if (kept.Contains(p)) continue;
                for (int o = 0; o < cout; o++) delta[o] += means[p] * sums[o * cin + p];
            }
            var op = LinearOp.Of(u)!;
            var outs = keptOutputs.GetValueOrDefault(u) ?? Enumerable.Range(0, cout).ToArray();
            var bias = op.Bias.Select((b, j) => (float)(b + delta[outs[j]])).ToArray();
            op.Write(rw, op.WeightDims, op.Weight, bias);
            repaired++;
        }
        return repaired;
    }
}
