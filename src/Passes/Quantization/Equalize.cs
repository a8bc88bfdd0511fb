// equalize{max-sweeps=20,ranges=weights,absorb-bias=false}: cross-layer equalization (Nagel, van Baalen,
// Blankevoort, Welling, ICCV 2019, "Data-Free Quantization Through Weight Equalization and Bias Correction"),
// exact in float.
//   before: y = W2 f(W1 x + b1) + b2, channel i of W1 spanning r1_i = max|W1[i,...]| and its input column
//           of W2 r2_i = max|W2[:,i,...]|; after BatchNorm folding these ranges differ by orders of magnitude
//           between channels (a depthwise conv's most of all), and one per-tensor int8 grid fits none of them.
//   after:  W1[i] / s_i, b1_i / s_i, W2[:,i] * s_i with s_i = sqrt(r1_i / r2_i), so both ranges become
//           sqrt(r1_i r2_i): the same output for any f with f(x / s) = f(x) / s for s > 0 (positively
//           homogeneous, per channel).
// Pairs: a Conv (group 1 or depthwise), Gemm or MatMul with a constant weight, then any chain of single-use,
// channel-wise homogeneous ops (Relu, LeakyRelu, PRelu, MaxPool, AveragePool, GlobalAveragePool,
// GlobalMaxPool, Identity; Flatten of a [N, C, 1, 1] map, which keeps channel i at i), then a second such op
// reading those channels on the same axis. A chain of three
// layers (conv -> depthwise -> conv) is two pairs sharing the middle one; sweeps repeat over all pairs until
// no scale moves by more than 1e-4 (or max-sweeps). Refused, with the reason (report and WhyNoChange): Clip/
// ReLU6, HardSwish, Sigmoid, Tanh and other ops whose bounds or shape do not scale; a value with several
// readers (a residual); a channel axis that changes (Flatten, Reshape); grouped (not depthwise) convs.
// ranges=activations (needs calibration data): with per-channel int8 weights the weight ranges no longer matter and
// the per-tensor activation between the layers is what loses the small channels; s_i = sqrt(a_i / r2_i) then balances
// channel i's activation range a_i (measured where the second layer reads it) against the second layer's weight
// range, both becoming sqrt(a_i r2_i) (SmoothQuant's migration, alpha = 0.5). One pass, still exact in float.
// absorb-bias=true (high-bias absorption, section 4.1 of the paper; needs calibration data): equalizing scales a
// channel's bias with it, and a large bias widens the activation range int8 must cover. Where the first layer's
// output z_i never falls below c_i = max(0, min z_i) on the calibration data and the ops between commute with
// subtracting a constant for z >= c (Relu, LeakyRelu, PRelu, max/average pooling without counted padding,
// Identity, Flatten):
//   before: y = W2 f(z) + b2            after: z' = z - c (b1 - c),  y = W2 f(z') + (b2 + W2 c)
// with W2 c summed over the second layer's kernel, so the second layer must read every tap (a Conv without
// padding, a Gemm, a 2-D MatMul). Exact wherever z >= c, i.e. on the calibration data; elsewhere the output
// moves by W2 (f(z) - f(z') - c), at most W2 c.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record EqualizeOptions
{
    [Option("max-sweeps", "passes over all pairs before stopping (each pass moves every scale toward its fixed point)")]
    public int MaxSweeps { get; init; } = 20;
    [Option("ranges", "what each channel's scale balances: the two layers' weight ranges (data-free, for per-tensor "
        + "weights), or the activation range between them against the second layer's weights (needs --calib; for "
        + "per-channel weights, whose int8 error is then in the activations)", Choices = ["weights", "activations"])]
    public string Ranges { get; init; } = "weights";
    [Option("absorb-bias", "high-bias absorption: each channel's smallest output on the calibration data moved "
        + "into the next layer's bias (needs --calib; exact on those samples)")]
    public bool AbsorbBias { get; init; }
}

/// <summary>A pair equalize scaled, or a layer it could not pair, with the reason.</summary>
public sealed record EqualizedPair(string First, string Second, string Decision) : Decision
{
    public string? Through { get; init; }
    public string? Reason { get; init; }
    /// <summary>Per-tensor int8 SQNR of the first and second weight before and after (dB, the mean over output
    /// channels).</summary>
    public double? FirstSqnrDbBefore { get; init; }
    public double? FirstSqnrDbAfter { get; init; }
    public double? SecondSqnrDbBefore { get; init; }
    public double? SecondSqnrDbAfter { get; init; }
    /// <summary>absorb-bias: channels whose constant moved to the second layer, and the mean share of the channel's
    /// largest output it removed (the activation range int8 covers shrinks by that share).</summary>
    public int? AbsorbedChannels { get; init; }
    public double? AbsorbedRangeShare { get; init; }
}

public sealed class Equalize : Pass<EqualizeOptions>
{
    public override string Name => "equalize";
    public override string Summary =>
        "cross-layer equalization: per-channel weight ranges of consecutive layers balanced (exact; before int8)";
    public override bool IsExact(EqualizeOptions options) => !options.AbsorbBias;
    public override DataNeeds Needs(EqualizeOptions options) =>
        options.AbsorbBias || options.Ranges == "activations" ? DataNeeds.Calibration : DataNeeds.None;

    /// <summary>Ops between two layers that commute with a positive per-channel scale.</summary>
    private static readonly HashSet<string> Homogeneous = new(StringComparer.Ordinal)
    {
        "Relu", "LeakyRelu", "PRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Identity",
    };

    /// <summary>Ops a user might expect to pass, and why they do not.</summary>
    private static string? WhyNot(Node n) => n.OpType switch
    {
        "Clip" => "Clip (ReLU6) between them: its bounds do not scale with the channel",
        "HardSwish" or "HardSigmoid" or "Sigmoid" or "Tanh" or "Gelu" or "Elu" or "Selu" or "Softplus" =>
            $"{n.OpType} between them is not positively homogeneous",
        "Flatten" or "Reshape" or "Transpose" => $"{n.OpType} between them moves the channel axis",
        _ => null,
    };

    /// <summary>A scored pair: the first layer, the ops between, the second layer.</summary>
    private sealed record Pair(Node First, List<Node> Through, Node Second);

    public override string? WhyNoChange(Model model, EqualizeOptions options)
    {
        var (pairs, refused) = FindPairs(model.Graph);
        if (pairs.Count > 0) return null;
        return refused.Count == 0 ? "no two consecutive linear layers with constant weights"
            : $"no pair of layers can be equalized ({refused[0].Reason}{(refused.Count > 1 ? ", ..." : "")})";
    }

    public override void Run(PassContext ctx, EqualizeOptions o)
    {
        if (o.MaxSweeps < 1) throw new OnnxModelException("equalize: max-sweeps must be at least 1");
        var (pairs, refused) = FindPairs(ctx.Model.Graph);
        foreach (var r in refused) ctx.Stats.Decide(r);
        ctx.Stats.Count(Counters.Equalize.PairsRefused, refused.Count);
        if (pairs.Count == 0) return;
        // Every layer's weight and bias as arrays, updated in place over the sweeps, written once at the end.
        var ops = pairs.SelectMany(p => new[] { p.First, p.Second }).Distinct()
            .ToDictionary(n => n, n => LinearOp.Of(n)!);
        var weights = ops.ToDictionary(kv => kv.Key, kv => kv.Value.Weight.ToArray());
        var biases = ops.ToDictionary(kv => kv.Key, kv => kv.Value.Bias.ToArray());
        var before = weights.ToDictionary(kv => kv.Key, kv => PerTensorSqnrDb(ops[kv.Key], kv.Value));
        int sweeps = 0;
        if (o.Ranges == "activations")
        {
            BalanceActivations(ctx, pairs, ops, weights, biases);
            sweeps = 1;
        }
        else for (; sweeps < o.MaxSweeps; sweeps++)
        {
            double moved = 0;
            foreach (var p in pairs)
            {
                var (a, b) = (ops[p.First], ops[p.Second]);
                var r1 = OutRanges(a, weights[p.First]);
                var r2 = InRanges(b, weights[p.Second]);
                var s = new double[r1.Length];
                for (int i = 0; i < s.Length; i++)
                {
                    s[i] = r1[i] > 0 && r2[i] > 0 ? Math.Sqrt(r1[i] / r2[i]) : 1;
                    moved = Math.Max(moved, Math.Abs(Math.Log(s[i])));
                }
                ScaleOut(a, weights[p.First], biases[p.First], s);
                ScaleIn(b, weights[p.Second], s);
            }
            if (moved < 1e-4) { sweeps++; break; }
        }
        var rw = ctx.Rewriter;
        foreach (var (n, op) in ops)
        {
            var hadBias = n.OpType != "MatMul" && n.Input(2) is not null;
            if (hadBias || op.Bias.Length == 0 || biases[n].Any(v => v != 0))
                op.Write(rw, op.WeightDims, weights[n], biases[n]);
            else op.WriteWeight(rw, weights[n]);
        }
        var absorbed = o.AbsorbBias ? AbsorbBias(ctx, pairs) : [];
        foreach (var p in pairs)
        {
            var a = absorbed.GetValueOrDefault(p);
            ctx.Stats.Decide(new EqualizedPair(Label(p.First), Label(p.Second), "equalized")
            {
                AbsorbedChannels = o.AbsorbBias ? a.Channels : null,
                AbsorbedRangeShare = o.AbsorbBias ? Math.Round(a.Share, 6) : null,
                Through = p.Through.Count == 0 ? null : string.Join(",", p.Through.Select(t => t.OpType)),
                FirstSqnrDbBefore = before[p.First],
                FirstSqnrDbAfter = PerTensorSqnrDb(ops[p.First], weights[p.First]),
                SecondSqnrDbBefore = before[p.Second],
                SecondSqnrDbAfter = PerTensorSqnrDb(ops[p.Second], weights[p.Second]),
            });
        }
        ctx.Stats.Count(Counters.Equalize.PairsEqualized, pairs.Count);
        ctx.Stats.Count(Counters.Equalize.Sweeps, sweeps);
        var gain = ops.Keys.Average(n => PerTensorSqnrDb(ops[n], weights[n]) - before[n]);
        ctx.Stats.Notes.Add($"{pairs.Count} pairs over {ops.Count} layers in {sweeps} sweeps: per-tensor int8 weight "
            + $"SQNR per channel {gain:+0.0;-0.0} dB on average");
    }

    /// <summary>ranges=activations: s_i = sqrt(a_i / r2_i), a_i the largest |value| of channel i where the second
    /// layer reads it (calibration data), r2_i the second layer's input-channel weight range, so both become
    /// sqrt(a_i r2_i) (SmoothQuant's migration at alpha 0.5, through the homogeneous ops CLE allows). One pass over
    /// the pairs from the last: a pair changes only its first layer's output scale and its second layer's input
    /// columns, so the ranges measured on the original model stay right for the pairs before it.</summary>
    private static void BalanceActivations(PassContext ctx, List<Pair> pairs, Dictionary<Node, LinearOp> ops,
        Dictionary<Node, float[]> weights, Dictionary<Node, float[]> biases)
    {
        var calib = ctx.RequireCalibration("equalize{ranges=activations}");
        Value Read(Pair p) => p.Through.Count == 0 ? p.First.Output() : p.Through[^1].Output();
        var stats = TensorStatistics.Collect(calib, ctx.Model, pairs.Select(p => Read(p).Name).ToList(),
            "equalize: activation ranges");
        foreach (var p in Enumerable.Reverse(pairs))
        {
            var (a, b) = (ops[p.First], ops[p.Second]);
            var channels = stats[Read(p).Name].Channels;
            if (channels.Length != a.OutChannels)
            {
                ctx.Stats.Notes.Add($"equalize: {Label(p.First)} -> {Label(p.Second)} kept: its channels are not on "
                    + "axis 1 where the second layer reads them");
                continue;
            }
            var r2 = InRanges(b, weights[p.Second]);
            var s = channels.Select((c, i) =>
            {
                var act = Math.Max(Math.Abs(c.Min), Math.Abs(c.Max));
                return act > 0 && r2[i] > 0 && double.IsFinite(act) ? Math.Sqrt(act / r2[i]) : 1;
            }).ToArray();
            ScaleOut(a, weights[p.First], biases[p.First], s);
            ScaleIn(b, weights[p.Second], s);
        }
    }

    /// <summary>Ops between the layers that commute with z -> z - c where z >= c >= 0.</summary>
    private static bool ShiftCommutes(Node n) => n.OpType switch
    {
        "Relu" or "LeakyRelu" or "PRelu" or "MaxPool" or "GlobalMaxPool" or "GlobalAveragePool" or "Identity"
            or "Flatten" => true,
        "AveragePool" => n.GetInt("count_include_pad", 0) == 0 || NoPads(n),
        _ => false,
    };

    private static bool NoPads(Node n) => (n.Attr("pads")?.Ints ?? []).All(p => p == 0)
        && (n.GetString("auto_pad") ?? "NOTSET") is "NOTSET" or "VALID";

    /// <summary>High-bias absorption on the equalized model (see the header): per pair, the channels moved and the
    /// mean share of their range removed.</summary>
    private static Dictionary<Pair, (int Channels, double Share)> AbsorbBias(PassContext ctx, List<Pair> pairs)
    {
        var calib = ctx.RequireCalibration("equalize{absorb-bias=true}");
        var usable = new List<Pair>();
        foreach (var p in pairs)
        {
            string? why = !p.Through.All(ShiftCommutes) ? "an op between them does not commute with a shift"
                : p.Second.OpType == "Conv" && !NoPads(p.Second) ? $"{p.Second} pads its input"
                : p.Second.OpType == "MatMul" && p.Second.Input(0)?.Shape is not { Rank: 2 }
                    ? $"{p.Second} has no bias input" : p.First.OpType == "MatMul"
                    && p.First.Input(0)?.Shape is not { Rank: 2 } ? $"{p.First} has no bias input" : null;
            if (why is null) usable.Add(p);
            else ctx.Stats.Notes.Add($"absorb-bias: {Label(p.First)} -> {Label(p.Second)} left: {why}");
        }
        var result = new Dictionary<Pair, (int, double)>();
        if (usable.Count == 0) return result;
        var stats = TensorStatistics.Collect(calib, ctx.Model, usable.Select(p => p.First.Output().Name).ToList(),
            "equalize: output minima");
        // Bias shifts per layer, summed over the pairs it is first (-c) or second (+W2 c) in.
        var shift = new Dictionary<Node, double[]>();
        double[] ShiftOf(LinearOp op) => shift.TryGetValue(op.Node, out var d) ? d
            : shift[op.Node] = new double[op.OutChannels];
        foreach (var p in usable)
        {
            var (a, b) = (LinearOp.Of(p.First)!, LinearOp.Of(p.Second)!);
            var channels = stats[p.First.Output().Name].Channels;
            if (channels.Length != a.OutChannels) continue;
            var c = channels.Select(s => s.Count > 0 ? Math.Max(0, s.Min) : 0).ToArray();
            var first = ShiftOf(a);
            for (int i = 0; i < c.Length; i++) first[i] -= c[i];
            var second = ShiftOf(b);
            for (long k = 0; k < b.Weight.Length; k++)
                second[b.OutputChannelOf(k)] += b.Weight[k] * c[b.InputChannelOf(k)];
            var moved = Enumerable.Range(0, c.Length).Where(i => c[i] > 0).ToList();
            result[p] = (moved.Count, moved.Count == 0 ? 0 : moved.Average(i => c[i] / channels[i].Max));
        }
        foreach (var (node, d) in shift)
        {
            var op = LinearOp.Of(node)!;
            op.Write(ctx.Rewriter, op.WeightDims, op.Weight, op.Bias.Select((v, i) => (float)(v + d[i])).ToArray());
        }
        var total = result.Values.Sum(r => r.Item1);
        ctx.Stats.Count(Counters.Equalize.ChannelsAbsorbed, total);
        ctx.Stats.Notes.Add($"absorb-bias: {total} channels' smallest outputs moved into the next layer's bias over "
            + $"{result.Count} pairs (exact on the calibration samples)");
        return result;
    }

    private static (List<Pair> Pairs, List<EqualizedPair> Refused) FindPairs(Graph g)
    {
        var pairs = new List<Pair>();
        var refused = new List<EqualizedPair>();
        foreach (var n in g.Nodes)
        {
            if (!Pairable(n, out _)) continue;
            var (second, through, why) = Follow(n);
            if (second is not null) pairs.Add(new Pair(n, through, second));
            else if (why is not null) refused.Add(new EqualizedPair(Label(n), "", "refused") { Reason = why });
        }
        return (pairs, refused);
    }

    /// <summary>From a layer's output through homogeneous ops to the next layer; else why not (null when the
    /// chain simply ends: a graph output, a Softmax, an op that is no layer).</summary>
    private static (Node? Second, List<Node> Through, string? Why) Follow(Node first)
    {
        var through = new List<Node>();
        var v = first.Output();
        bool convAxis = first.OpType == "Conv";
        while (true)
        {
            if (v.IsGraphOutput) return (null, through, null);
            if (v.Uses.Count != 1)
                return (null, through, v.Uses.Count == 0 ? null
                    : $"'{v.Name}' has {v.Uses.Count} readers (a residual or a branch)");
            var (next, index) = (v.Uses[0].Node, v.Uses[0].InputIndex);
            if (!next.IsStandard || index != 0) return (null, through, null);
            if (Homogeneous.Contains(next.OpType))
            {
                if (!PReluPerChannel(next, first))
                    return (null, through, $"{next} has a slope per element, not per channel");
            }
            else if (next.OpType == "Flatten" && convAxis && FlattensChannelsOnly(next)) convAxis = false;
            else if (Pairable(next, out var notPairable))
                return convAxis == (next.OpType == "Conv") ? (next, through, null)
                    : (null, through, $"{next} reads the channels on another axis");
            else if (next.OpType is "Conv" or "Gemm" or "MatMul") return (null, through, notPairable);
            else return (null, through, WhyNot(next));
            through.Add(next);
            v = next.Output();
        }
    }

    /// <summary>Flatten(axis 1) of a [N, C, 1, ...] map: channel i stays at index i.</summary>
    private static bool FlattensChannelsOnly(Node flatten) =>
        flatten.GetInt("axis", 1) == 1 && flatten.Input(0)?.Shape is { } s && s.Rank >= 2
        && Enumerable.Range(2, s.Rank - 2).All(k => s[k].Value == 1);

    private static string Label(Node n) => n.Name ?? n.Output().Name;

    /// <summary>A linear op with a constant weight whose channels equalize can scale.</summary>
    private static bool Pairable(Node n, out string? why)
    {
        why = null;
        if (!n.IsStandard || n.OpType is not ("Conv" or "Gemm" or "MatMul"))
        {
            why = $"{n} is not a layer";
            return false;
        }
        if (n.OpType == "Gemm" && n.GetInt("transA", 0) != 0) { why = $"{n} has transA"; return false; }
        if (!LinearOp.TryOf(n, out var op, out var reason)) { why = $"{n}: {reason}"; return false; }
        if (op!.Groups != 1 && !op.IsDepthwise) { why = $"{n} is a grouped conv (group {op.Groups})"; return false; }
        return true;
    }

    /// <summary>PRelu commutes with the scale when its slope is a scalar or one per channel; the rest always.</summary>
    private static bool PReluPerChannel(Node n, Node layer) =>
        n.OpType != "PRelu" || Rewriter.ConstantOf(n.Input(1)) is { } slope
            && (slope.ElementCount == 1 || slope.ElementCount == LinearOp.Of(layer)!.OutChannels);

    /// <summary>max |W| over each output channel's weights.</summary>
    private static double[] OutRanges(LinearOp op, float[] w) => Ranges(w, op.OutChannels, op.OutputChannelOf);

    /// <summary>max |W| over the weights that read each input channel.</summary>
    private static double[] InRanges(LinearOp op, float[] w) => Ranges(w, op.InChannels, op.InputChannelOf);

    private static double[] Ranges(float[] w, int channels, Func<long, int> channelOf)
    {
        var r = new double[channels];
        for (long i = 0; i < w.Length; i++)
        {
            var c = channelOf(i);
            r[c] = Math.Max(r[c], Math.Abs(w[i]));
        }
        return r;
    }

    private static void ScaleOut(LinearOp op, float[] w, float[] b, double[] s)
    {
        for (long i = 0; i < w.Length; i++) w[i] = (float)(w[i] / s[op.OutputChannelOf(i)]);
        for (int c = 0; c < b.Length; c++) b[c] = (float)(b[c] / s[c]);
    }

    private static void ScaleIn(LinearOp op, float[] w, double[] s)
    {
        for (long i = 0; i < w.Length; i++) w[i] = (float)(w[i] * s[op.InputChannelOf(i)]);
    }

    /// <summary>The mean over output channels of each channel's SQNR when the whole tensor shares one symmetric
    /// int8 grid (per-tensor int8): a channel far below the largest keeps few of the 255 levels, which the
    /// tensor's own SQNR (dominated by the largest channels) does not show. Each channel's figure is capped at
    /// 100 dB (exact).</summary>
    internal static double PerTensorSqnrDb(LinearOp op, float[] w)
    {
        double max = 0;
        foreach (var x in w) max = Math.Max(max, Math.Abs(x));
        if (max == 0) return 100;
        var step = max / 127;
        var signal = new double[op.OutChannels];
        var noise = new double[op.OutChannels];
        for (long i = 0; i < w.Length; i++)
        {
            var c = op.OutputChannelOf(i);
            var e = w[i] - Math.Round(w[i] / step) * step;
            signal[c] += (double)w[i] * w[i];
            noise[c] += e * e;
        }
        var db = Enumerable.Range(0, signal.Length).Where(c => signal[c] > 0)
            .Select(c => noise[c] == 0 ? 100 : Math.Min(100, 10 * Math.Log10(signal[c] / noise[c]))).ToList();
        return db.Count == 0 ? 100 : db.Average();
    }
}
