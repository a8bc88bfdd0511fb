// Channel importance for prune: one score per channel of every prunable dependency group, divided by the
// group's mean so that groups rank on one scale (Torch-Pruning's mean normalizer).
//   l2 / l1    mean over the group's members (producer rows W_p[c], consumer input slices W_u[:, c]) of
//              ||.||_2 / ||.||_1 (Torch-Pruning's default: L2, mean reduction);
//   fpgm       sum of L2 distances of filter c to the layer's other filters (He et al. CVPR 2019: a filter
//              near the geometric median is the most replaceable), averaged over the producers;
//   bn-scale   |gamma_c| of the BatchNormalizations tied to the group (Network Slimming), averaged; groups
//              without one are ranked by l2 and counted in a note;
//   synflow    per-filter SynFlow (Tanaka et al. 2020): the sum of |w dR/dw| over channel c's weights in the
//              group's members, on the linearized all-ones network (one round, nothing masked);
//   activation mean |a_c| on calibration data, where the group's consumers read it;
//   taylor     first-order Taylor estimate of the output change when channel c is removed (Molchanov et al.
//              CVPR 2019, with the dense model's outputs as the reference instead of labels): for each
//              sample, dy ~ -sum_p a_c(p) dy/da_c(p); with a random sign probe r on the outputs,
//              E[(sum_p a_c(p) d(r.y)/da_c(p))^2] = ||dy||^2, so importance = mean over samples and probes
//              of that square, summed over every read of the group (gradients by our own autodiff).
using OnnxOpt.Autodiff;
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class ChannelImportance
{
    /// <summary>prune's criteria (damage ranks attention heads only: AttentionHeads).</summary>
    public static readonly string[] Criteria =
        ["l2", "l1", "fpgm", "bn-scale", "synflow", "activation", "taylor", "obd", "fisher", "damage"];

    /// <summary>Criteria that run the model on calibration data.</summary>
    public static bool NeedsData(string criterion) =>
        criterion is "activation" or "taylor" or "obd" or "fisher" or "damage";

    /// <summary>Per prunable group, each channel's importance over the group's mean.</summary>
    public static Dictionary<int, double[]> Compute(string criterion, DependencyGroups d, Model model,
        CalibrationSource? calib = null, List<string>? notes = null) => criterion switch
        {
            "l2" or "l1" => Norms(d, criterion == "l2"),
            "fpgm" => PerGroup(d, GeometricMedianDistance),
            "bn-scale" => BatchNormScale(d, notes),
            "synflow" => SynFlow(d, model),
            "activation" => Activation(d, model, Require(calib, criterion)),
            "taylor" => Taylor(d, model, Require(calib, criterion)),
            "obd" or "fisher" => SecondOrder(d, model, Require(calib, criterion), criterion),
            "damage" => throw new OnnxModelException("prune criterion 'damage' ranks attention heads (unit=head); "
                + "for channels use allocate=sensitivity"),
            _ => throw new OnnxModelException(
                $"unknown prune criterion '{criterion}' (criteria: {string.Join(", ", Criteria)})"),
        };

    private static CalibrationSource Require(CalibrationSource? calib, string criterion) => calib
        ?? throw new OnnxModelException($"prune criterion '{criterion}' needs calibration data (--calib DIR)");

    private static Dictionary<int, double[]> PerGroup(DependencyGroups d, Func<DependencyGroup, double[]> score) =>
        d.Groups.Where(g => g.Prunable).ToDictionary(g => g.Id, g => Normalized(score(g)));

    private static Dictionary<int, double[]> Norms(DependencyGroups d, bool l2) => PerGroup(d, g =>
    {
        var sum = SumOverMembers(g, op => op.Weight.Select(w => l2 ? (double)w * w : Math.Abs(w)).ToArray());
        return sum.Select(v => l2 ? Math.Sqrt(v) : v).ToArray();
    });

    /// <summary>Mean over the group's producers and consumers of the per-weight values summed per channel.</summary>
    private static double[] SumOverMembers(DependencyGroup g, Func<LinearOp, double[]> perWeight)
    {
        var sum = new double[g.Channels];
        int members = 0;
        foreach (var p in g.Producers)
        {
            var op = LinearOp.Of(p)!;
            Accumulate(sum, op, perWeight(op), op.OutAxis, 0, 1);
            members++;
        }
        foreach (var u in g.Consumers)
        {
            var op = LinearOp.Of(u.Node)!;
            Accumulate(sum, op, perWeight(op), op.InAxis, u.Offset, u.Repeat);
            members++;
        }
        for (int c = 0; c < sum.Length; c++) sum[c] /= Math.Max(1, members);
        return sum;
    }

    // Adds values[i] of every weight whose index on `axis` falls in channel c's positions. A grouped conv's input
    // channel of weight element i is (its output channel's group) * Cin/G + (its column).
    private static void Accumulate(double[] sum, LinearOp op, double[] values, int axis, long offset, long repeat)
    {
        var dims = op.WeightDims;
        var inner = dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
        var n = dims[axis];
        bool groupedInput = op.Groups > 1 && !op.IsDepthwise && axis == op.InAxis;
        long perOut = op.OutChannels / Math.Max(1, op.Groups);
        for (long i = 0; i < values.Length; i++)
        {
            var pos = (groupedInput ? i / (n * inner) / perOut * n + i / inner % n : i / inner % n) - offset;
            if (pos < 0 || pos >= sum.Length * repeat) continue;
            sum[(int)(pos / repeat)] += values[i];
        }
    }

    private static double[] Normalized(double[] imp)
    {
        var mean = imp.Average();
        return imp.Select(v => mean > 0 ? v / mean : 1).ToArray();
    }

    private static double[] GeometricMedianDistance(DependencyGroup g)
    {
        var total = new double[g.Channels];
        foreach (var p in g.Producers)
        {
            var op = LinearOp.Of(p)!;
            var (_, rows, _) = op.KeepOutputs(Enumerable.Range(0, g.Channels).ToArray());
            var k = rows.Length / g.Channels;
            for (int a = 0; a < g.Channels; a++)
                for (int b = a + 1; b < g.Channels; b++)
                {
                    double s = 0;
                    for (int i = 0; i < k; i++) { var e = rows[a * k + i] - rows[b * k + i]; s += e * e; }
                    var dist = Math.Sqrt(s);
                    total[a] += dist;
                    total[b] += dist;
                }
        }
        return total;
    }

    private static Dictionary<int, double[]> BatchNormScale(DependencyGroups d, List<string>? notes)
    {
        var l2 = Norms(d, l2: true);
        int fallback = 0;
        var result = new Dictionary<int, double[]>();
        foreach (var g in d.Groups.Where(g => g.Prunable))
        {
            var sum = new double[g.Channels];
            int count = 0;
            foreach (var bn in g.Tied.Where(n => n.OpType == "BatchNormalization").Distinct())
            {
                if (Rewriter.ConstantOf(bn.Input(1))?.ToDoubleArray() is not { } gamma
                    || OffsetIn(d, bn.Input(0)!, g.Id) is not long offset) continue;
                for (int c = 0; c < g.Channels; c++) sum[c] += Math.Abs(gamma[offset + c]);
                count++;
            }
            if (count == 0) { fallback++; result[g.Id] = l2[g.Id]; }
            else result[g.Id] = Normalized(sum);
        }
        if (fallback > 0)
            notes?.Add($"prune: criterion=bn-scale: {fallback} group(s) have no BatchNormalization left "
                + "(run prune before fold-bn); ranked by l2");
        return result;
    }

    /// <summary>Where the group's channels start on a feature map's channel axis (null: not there once).</summary>
    private static long? OffsetIn(DependencyGroups d, Value v, int group)
    {
        if (!d.Segments.TryGetValue(v, out var segs)) return null;
        long at = 0;
        long? found = null;
        foreach (var s in segs)
        {
            if (s.Group == group)
            {
                if (found is not null || s.Repeat != 1) return null;
                found = at;
            }
            at += s.Channels * s.Repeat;
        }
        return found;
    }

    private static Dictionary<int, double[]> SynFlow(DependencyGroups d, Model model)
    {
        var scores = Saliency.Score(model, new SaliencyOptions { Iterations = 1, Density = 1 }).Scores;
        return PerGroup(d, g => SumOverMembers(g, op =>
            scores.TryGetValue(op.Node.Input(1)!.Name, out var s) ? s : new double[op.Weight.Length]));
    }

    /// <summary>obd / fisher: Optimal Brain Damage's 1/2 H_ii w_i^2 (SecondOrderSaliency) summed over each channel's
    /// weights in the group's members.</summary>
    private static Dictionary<int, double[]> SecondOrder(DependencyGroups d, Model model, CalibrationSource calib,
        string method)
    {
        var weights = d.Groups.Where(g => g.Prunable)
            .SelectMany(g => g.Producers.Concat(g.Consumers.Select(u => u.Node)))
            .Select(n => n.Input(1)).OfType<Value>().Where(v => v.Initializer is { ElementType: DataType.Float })
            .Select(v => v.Name).Distinct().ToList();
        var scores = SecondOrderSaliency.Compute(model, weights, calib, method).Saliency;
        return PerGroup(d, g => SumOverMembers(g, op =>
            scores.TryGetValue(op.Node.Input(1)!.Name, out var s) ? s : new double[op.Weight.Length]));
    }

    /// <summary>Where each prunable group's channels are read by a linear op (distinct values).</summary>
    /// <summary>Where each prunable group's channels are read by a linear op (distinct values), and on which axis (a
    /// Conv's 1, a MatMul's or Gemm's last: -1).</summary>
    private static List<(DependencyGroup Group, string Value, long Offset, long Repeat, int Axis)> Reads(
        DependencyGroups d) =>
        d.Groups.Where(g => g.Prunable)
            .SelectMany(g => g.Consumers.Select(u => (Group: g, Value: u.Node.Input(0)!.Name, u.Offset, u.Repeat,
                Axis: u.Node.OpType is "Conv" or "ConvTranspose" ? 1 : -1)))
            .Distinct().ToList(); // consumers of a residual stream read the same value

    /// <summary>Calls <paramref name="visit"/>(sample, group channel, offset of its run) for every run of a read
    /// value along its channel axis that belongs to the group's channels: [N, C, H, W] (axis 1: one run of H*W
    /// per sample and channel) or [N, tokens.., C] (axis -1: one element per sample, token and channel).</summary>
    private static void ForChannels(ReadOnlySpan<long> dims, int axis, long offset, long repeat, int channels,
        Action<long, int, long> visit)
    {
        if (axis < 0) axis += dims.Length;
        var width = dims[axis];
        long inner = 1, outer = 1;
        for (int i = axis + 1; i < dims.Length; i++) inner *= dims[i];
        for (int i = 0; i < axis; i++) outer *= dims[i];
        var perSample = Math.Max(1, outer / Math.Max(1, dims[0]));
        for (long o = 0; o < outer; o++)
            for (long ch = 0; ch < width; ch++)
            {
                var pos = ch - offset;
                if (pos < 0 || pos >= channels * repeat) continue;
                visit(o / perSample, (int)(pos / repeat), (o * width + ch) * inner);
            }
    }

    private static Dictionary<int, double[]> Activation(DependencyGroups d, Model model, CalibrationSource calib)
    {
        var reads = Reads(d);
        var names = reads.Select(r => r.Value).Distinct().ToList();
        var sums = reads.ToDictionary(r => r, r => new double[r.Group.Channels]);
        calib.Stream(model, names, (_, outs) =>
        {
            var byName = names.Select((n, i) => (n, outs[i])).ToDictionary(x => x.n, x => x.Item2);
            foreach (var r in reads)
            {
                var t = byName[r.Value];
                var data = t.ToFloatArray();
                var axis = r.Axis < 0 ? t.Dims.Length + r.Axis : r.Axis;
                var inner = t.Dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
                var s = sums[r];
                ForChannels(t.Dims, r.Axis, r.Offset, r.Repeat, r.Group.Channels, (_, c, at) =>
                {
                    for (long i = 0; i < inner; i++) s[c] += Math.Abs(data[at + i]);
                });
            }
        }, "prune: activations");
        return PerGroup(d, g =>
        {
            var total = new double[g.Channels];
            foreach (var r in reads.Where(r => r.Group == g))
                for (int c = 0; c < g.Channels; c++) total[c] += sums[r][c];
            return total;
        });
    }

    private static Dictionary<int, double[]> Taylor(DependencyGroups d, Model model, CalibrationSource calib)
    {
        var reads = Reads(d);
        var names = reads.Select(r => r.Value).Distinct().ToList();
        var sums = d.Groups.Where(g => g.Prunable).ToDictionary(g => g.Id, g => new double[g.Channels]);
        // Samples: the batch axis of the output and of every read activation (a malformed model whose output lost
        // its batch axis must not index past the per-sample sums).
        RandomProbes.Run(model, calib, names, "prune: taylor", "taylor", (trace, output) =>
            reads.Select(r => trace[r.Value].Shape.FirstOrDefault(1)).Append(trace[output].Shape.FirstOrDefault(1))
                .Max(), (trace, grads, n) =>
            {
                // Per sample and group channel: sum over every read and position of a * g, then squared.
                var dots = sums.ToDictionary(kv => kv.Key, kv => new double[n * kv.Value.Length]);
                foreach (var rd in reads)
                {
                    var a = trace[rd.Value];
                    var ga = grads[rd.Value].R;
                    var ar = a.R;
                    var dims = a.Shape.Select(x => (long)x).ToArray();
                    var axis = rd.Axis < 0 ? dims.Length + rd.Axis : rd.Axis;
                    var inner = dims.Skip(axis + 1).Aggregate(1L, (p, q) => p * q);
                    var dot = dots[rd.Group.Id];
                    var channels = rd.Group.Channels;
                    ForChannels(dims, rd.Axis, rd.Offset, rd.Repeat, channels, (sample, c, at) =>
                    {
                        double s = 0;
                        for (long i = 0; i < inner; i++) s += (double)ar[at + i] * ga[at + i];
                        dot[sample * channels + c] += s;
                    });
                }
                foreach (var (id, dot) in dots)
                {
                    var s = sums[id];
                    for (int i = 0; i < dot.Length; i++) s[i % s.Length] += dot[i] * dot[i];
                }
            });
        return sums.ToDictionary(kv => kv.Key, kv => Normalized(kv.Value));
    }
}
