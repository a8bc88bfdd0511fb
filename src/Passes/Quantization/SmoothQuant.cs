// smooth{alpha=auto,insert=true}: SmoothQuant (Xiao et al., ICML 2023, "SmoothQuant: Accurate and Efficient
// Post-Training Quantization for Large Language Models"). A transformer's activations have a few channels whose values
// are 10-100x the others' (pretrained BERTs' outlier dimensions), so a per-tensor int8 grid for the activation spends
// its levels on them; the weights are easy. Per input channel j of a group of MatMuls that read the same activation X
// (last axis K, weights W_m [K, N_m] constant), the difficulty moves from X into the weights:
//   s_j = a_j^alpha / w_j^(1 - alpha),  a_j = max |X_j| on the calibration data, w_j = max_m,n |W_m[j, n]|
//   X' = X / s,  W'_m[j, :] = s_j W_m[j, :]       so X' W'_m = X W_m exactly in real arithmetic
// Where 1/s goes:
//   before: LN -> X -> MatMul(W_q), MatMul(W_k), MatMul(W_v)
//   after:  LN(gamma / s, beta / s) -> X' -> MatMul(s W_q), ...            (every reader of X in the group, and X
//           made by LayerNormalization, or by Add(Mul(n, gamma), beta) with constant [K] gamma and beta)
//   after:  X -> Mul(1 / s) -> X' -> MatMul(s W_q), ...                    (otherwise: a post-norm block's LN also
//           feeds the residual Add, a GELU feeds fc2; one element-wise Mul on the group's branch)
// Convs (the same migration on the channel axis of an NCHW map X read by group-1 or depthwise Convs, W [N, K, kh, kw]
// or [K, 1, kh, kw]; s_j multiplies input channel j's taps, the activation's rows are the map's positions):
//   before: conv -> hard-swish -> Mul(gamma) -> Add(beta) -> X -> depthwise(W)       (PP-LCNet's affine blocks)
//   after:  ... -> Mul(gamma / s) -> Add(beta / s) -> X' -> depthwise(s W)           (constants become [K, 1, 1])
//   1/s also goes into a producing Conv's output channels (weight and bias; cross-layer equalization with the alpha
//   chosen by the error it buys) or into the constant of a Mul/Div producer; else an inserted Mul(X, 1/s) [K, 1, 1],
//   which quantize's CNN path does not allow (insert=false: such a group is left). A group of depthwise readers may
//   take alpha 1 (their per-channel weights lose nothing to any s, so X's channels can be made equal). A kh x kw conv
//   is simulated as kh kw [K, N] products of the same sampled rows (the error statistics do not depend on the shift).
//   Measured on the PP-OCRv4 detector (quantize --smooth on with the accuracy-aware search, budget 3 IoU points):
//   fresh pages 0.9644 -> 0.9778 IoU at 1.62x -> 1.48x (bench/ocr/run.sh).
// alpha=auto chooses per group, on sampled calibration rows, the candidate (no smoothing, alpha 0.25, 0.4, 0.5, 0.6,
// 0.75) with the lowest simulated int8 output error sum_m ||X W_m - Qa(X') Qw(W'_m)||^2 (Qa: the per-tensor uint8 grid
// of X' over its calibrated min/max; Qw: per-output-column symmetric int8 at the quantizer's bound), so a group that
// smoothing does not help is left as it is. Exact in float up to rounding (the pass is checked like an exact one).
using OnnxOpt.Autodiff.Kernels;
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record SmoothOptions
{
    [Option("alpha", "migration strength: auto (per group of MatMuls, the candidate of none, 0.25, 0.4, 0.5, 0.6, "
        + "0.75 with the lowest simulated int8 output error on calibration rows) or a number in [0, 1]")]
    public string Alpha { get; init; } = "auto";
    [Option("rows", "calibration rows sampled per group for the error simulation", Min = 16, Max = 65536)]
    public long Rows { get; init; } = 512;
    [Option("insert", "insert Mul(X, 1/s) where X's producer cannot take 1/s (false: such groups are left as they "
        + "are, so the graph keeps its ops)")]
    public bool Insert { get; init; } = true;
    /// <summary>Largest |q| of the int8 weights the simulation assumes (the quantizer's WeightMax).</summary>
    public int WeightMax { get; init; } = 127;
}

/// <summary>One group of MatMuls smoothed (or left): the alpha chosen (null: none), where 1/s went, and the simulated
/// int8 output error relative to the unsmoothed one.</summary>
public sealed record SmoothedGroup(string Input, IReadOnlyList<string> Layers, double? Alpha, string Placement,
    double ErrorRatio) : Decision
{
    /// <summary>max_j a_j / median_j a_j of the activation before smoothing: how much of an outlier it carries.
    /// </summary>
    public double OutlierRatio { get; init; }
}

public sealed class Smooth : Pass<SmoothOptions>
{
    public override string Name => "smooth";
    public override string Summary =>
        "SmoothQuant: activation outlier channels moved into the next MatMuls' weights (before static int8)";
    public override bool IsExact(SmoothOptions options) => true;
    public override DataNeeds Needs(SmoothOptions options) => DataNeeds.Calibration;

    private static readonly double[] Candidates = [0.25, 0.4, 0.5, 0.6, 0.75];
    // A conv group may also equalize its activation fully (alpha 1): a depthwise reader's per-channel weights do not
    // mind any s, so there the activation's error is all that s changes.
    private static readonly double[] ConvCandidates = [.. Candidates, 1.0];

    /// <summary>A group: the activation, its channel axis (last for MatMuls, 1 for Convs), the layers reading it
    /// with constant weights, whether every reader of X is one of them.</summary>
    private sealed record Group(Value X, List<Node> Layers, int K, bool Exclusive, int Axis);

    /// <summary>The channels K a 2-D Conv reads: group 1 with a [N, K, kh, kw] weight, or depthwise (group K,
    /// [K, 1, kh, kw]); null for other convs.</summary>
    private static int? ConvChannels(Node n)
    {
        if (n is not { OpType: "Conv", IsStandard: true }
            || Rewriter.ConstantOf(n.Input(1)) is not { ElementType: DataType.Float, Dims.Length: 4 } w) return null;
        long group = n.GetInt("group", 1);
        return group == 1 ? (int)w.Dims[1] : IsDepthwise(n, w.Dims, (int)group) ? (int)group : null;
    }

    private static bool IsDepthwise(Node n, long[] dims, int k) =>
        k > 1 && n.GetInt("group", 1) == k && dims[0] == k && dims[1] == 1;

    private static List<Group> FindGroups(Graph g)
    {
        var groups = new List<Group>();
        foreach (var x in g.Nodes.SelectMany(n => n.Outputs).OfType<Value>().Distinct())
        {
            if (x.ElementType is not (DataType.Float or DataType.Undefined)) continue;
            // Convs: K from their weights (the same for all), the channel axis 1 of the NCHW map.
            var convs = x.Uses.Where(u => u.InputIndex == 0 && ConvChannels(u.Node) is > 1).Select(u => u.Node)
                .Distinct().ToList();
            if (convs.Count > 0 && convs.Select(n => ConvChannels(n)).Distinct().Count() == 1)
            {
                groups.Add(new Group(x, convs, ConvChannels(convs[0])!.Value,
                    x.Uses.All(u => convs.Contains(u.Node)) && !x.IsGraphOutput, 1));
                continue;
            }
            // MatMuls: K from their [K, N] weights (X's last axis, when its shape is known, must agree), so the
            // groups are the same before shape inference (WhyNoChange) as after it (Run).
            var layers = x.Uses.Where(u => u.InputIndex == 0 && u.Node is { OpType: "MatMul", IsStandard: true }
                    && Rewriter.ConstantOf(u.Node.Input(1)) is { ElementType: DataType.Float, Dims.Length: 2 })
                .Select(u => u.Node).Distinct().ToList();
            var ks = layers.Select(n => Rewriter.ConstantOf(n.Input(1))!.Dims[0]).Distinct().ToList();
            if (layers.Count == 0 || ks.Count != 1 || x.Shape is { Rank: < 2 }
                || x.Shape is { } shape && shape.Dims[^1].Value is { } last && last != ks[0]) continue;
            int k = (int)ks[0];
            groups.Add(new Group(x, layers, k, x.Uses.All(u => layers.Contains(u.Node)) && !x.IsGraphOutput, -1));
        }
        return groups;
    }

    public override string? WhyNoChange(Model model, SmoothOptions options) =>
        FindGroups(model.Graph).Count == 0
            ? "no MatMul with a constant [K, N] weight or Conv with a constant weight reads a float activation" : null;

    public override void Run(PassContext ctx, SmoothOptions o)
    {
        double? fixedAlpha = o.Alpha == "auto" ? null
            : double.TryParse(o.Alpha, System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var a) && a is >= 0 and <= 1 ? a
            : throw new OnnxModelException($"smooth: alpha '{o.Alpha}' is not auto or a number in [0, 1]");
        var calib = ctx.RequireCalibration("smooth");
        var model = ctx.Model;
        ShapeInference.Run(model);
        var found = FindGroups(model.Graph);
        // insert=false: only groups whose producer takes 1/s (smoothing another group never changes which those are).
        var groups = o.Insert ? found : found.Where(x => x.Exclusive && CanAbsorb(x)).ToList();
        if (groups.Count == 0) return;
        var stats = Collect(calib, model, groups, (int)o.Rows);
        int smoothed = 0;
        foreach (var grp in groups)
        {
            var (min, max, rows, count) = stats[grp.X.Name];
            if (count == 0) continue;
            var layers = grp.Layers.Select(n => Layer.Of(n, grp.K)).ToList();
            var act = Enumerable.Range(0, grp.K).Select(j => Math.Max(Math.Abs(min[j]), Math.Abs(max[j]))).ToArray();
            var wmax = new double[grp.K];
            foreach (var l in layers) l.InputMax(wmax);
            var sampled = rows.ToArray();
            int r = sampled.Length / grp.K;
            var reference = layers.Select(l => l.Products(sampled, r, l.W)).ToList();
            double Error(double[]? s) => SimulatedError(sampled, r, grp.K, min, max, layers, reference, s,
                o.WeightMax);
            var none = Error(null);
            double? bestAlpha = null;
            double best = none;
            foreach (var alpha in fixedAlpha is { } f ? [f] : grp.Axis == 1 ? ConvCandidates : Candidates)
            {
                var e = Error(Scales(act, wmax, alpha));
                if (e < best || fixedAlpha is not null) (best, bestAlpha) = (e, alpha);
            }
            var sorted = act.Where(v => v > 0).Order().ToArray();
            var outlier = sorted.Length == 0 ? 1 : sorted[^1] / Math.Max(sorted[sorted.Length / 2], 1e-30);
            string placement = "none";
            if (bestAlpha is { } chosen)
            {
                var s = Scales(act, wmax, chosen);
                placement = Apply(ctx, grp, s, layers);
                smoothed++;
            }
            var decision = new SmoothedGroup(grp.X.Name, grp.Layers.Select(QdqEmitter.Key).ToList(), bestAlpha,
                placement, none > 0 ? best / none : 1);
            ctx.Stats.Decide(decision with { OutlierRatio = Math.Round(outlier, 2) });
        }
        ctx.Rewriter.RemoveUnusedInitializers(model.Graph);
        ctx.Stats.Count(Counters.Smooth.GroupsSmoothed, smoothed);
        ctx.Stats.Count(Counters.Smooth.GroupsLeft, groups.Count - smoothed);
        var chosenGroups = ctx.Stats.Decisions.OfType<SmoothedGroup>().Where(d => d.Alpha is not null).ToList();
        var summary = chosenGroups.Count == 0 ? ""
            : $" (simulated int8 output error {chosenGroups.Average(d => d.ErrorRatio):P0} of the unsmoothed on "
                + $"average; {chosenGroups.Count(d => d.Placement == "mul")} by an inserted Mul)";
        string kinds = groups.All(x => x.Axis == 1) ? "Conv" : groups.Any(x => x.Axis == 1) ? "MatMul/Conv" : "MatMul";
        var left = found.Count - groups.Count;
        ctx.Stats.Notes.Add($"smooth: {smoothed} of {groups.Count} {kinds} groups smoothed{summary}"
            + (left > 0 ? $"; {left} left as they are: no producer takes 1/s (insert=false)" : ""));
    }

    /// <summary>s_j = a_j^alpha / w_j^(1-alpha), 1 where either range is 0, kept within [1e-4, 1e4].</summary>
    private static double[] Scales(double[] act, double[] wmax, double alpha) => act.Select((a, j) =>
        a > 0 && wmax[j] > 0 ? Math.Clamp(Math.Pow(a, alpha) / Math.Pow(wmax[j], 1 - alpha), 1e-4, 1e4) : 1).ToArray();

    /// <summary>A layer reading the group's K channels: its constant weight and where input channel j is in it.
    /// MatMul [K, N]: element j N + o. Conv [N, K, kh, kw]: (o K + j) taps + t, each tap a [K, N] product of the
    /// same input rows (the shifted pixels are treated as the same rows: the error statistics do not depend on the
    /// position). Depthwise [K, 1, kh, kw]: j taps + t, output channel j reading input channel j only.</summary>
    private sealed record Layer(Node Node, float[] W, long[] Dims, int K, bool Conv, bool Depthwise)
    {
        public static Layer Of(Node n, int k)
        {
            var t = Rewriter.ConstantOf(n.Input(1))!;
            bool conv = n.OpType == "Conv";
            return new Layer(n, t.ToFloatArray(), t.Dims, k, conv, conv && IsDepthwise(n, t.Dims, k));
        }

        public int N => (int)Dims[Conv ? 0 : 1];
        public int Taps => Conv ? (int)(Dims[2] * Dims[3]) : 1;
        /// <summary>The axis of the emitter's per-channel weight scales (output channels).</summary>
        public int WeightAxis => Conv ? 0 : 1;

        public int InputChannel(int i) => !Conv ? i / N : Depthwise ? i / Taps : i / Taps % K;

        public float[] Scaled(double[]? s) =>
            s is null ? W : W.Select((w, i) => (float)(w * s[InputChannel(i)])).ToArray();

        public void InputMax(double[] wmax)
        {
            for (int i = 0; i < W.Length; i++)
                wmax[InputChannel(i)] = Math.Max(wmax[InputChannel(i)], Math.Abs(W[i]));
        }

        /// <summary>The rows [r, K] times each tap's [K, N] matrix of weight w (none for a depthwise layer, whose
        /// error is summed per channel).</summary>
        public List<float[]> Products(float[] x, int r, float[] w)
        {
            if (Depthwise) return [];
            if (!Conv) return [DenseProduct.Multiply(x, w, r, K, N)];
            var result = new List<float[]>(Taps);
            for (int t = 0; t < Taps; t++)
            {
                var m = new float[K * N];
                for (int j = 0; j < K; j++)
                    for (int o = 0; o < N; o++) m[j * N + o] = w[(o * K + j) * Taps + t];
                result.Add(DenseProduct.Multiply(x, m, r, K, N));
            }
            return result;
        }
    }

    /// <summary>sum over layers of ||X W - Qa(X / s) Qw(s W)||^2 on the sampled rows (s null: unsmoothed), with the
    /// emitter's own grids: QParams over X's calibrated range, QuantizedWeight per output channel.</summary>
    private static double SimulatedError(float[] x, int r, int k, double[] min, double[] max, List<Layer> layers,
        List<List<float[]>> reference, double[]? s, int qmax)
    {
        double lo = 0, hi = 0;
        for (int j = 0; j < k; j++)
        {
            var sj = s?[j] ?? 1;
            lo = Math.Min(lo, min[j] / sj);
            hi = Math.Max(hi, max[j] / sj);
        }
        var qa = QParams.Activation(lo, hi, DataType.UInt8);
        var xq = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            var v = x[i] / (s?[i % k] ?? 1);
            xq[i] = (float)((Math.Clamp(Math.Round(v / qa.Scale, MidpointRounding.ToEven) + qa.ZeroPoint, qa.QMin,
                qa.QMax) - qa.ZeroPoint) * qa.Scale);
        }
        double err = 0;
        for (int m = 0; m < layers.Count; m++)
        {
            var l = layers[m];
            var qw = QuantizedWeight.Of(l.Scaled(s), l.Dims, l.WeightAxis, qmax);
            long inner = l.Dims.Skip(l.WeightAxis + 1).Aggregate(1L, (a, b) => a * b);
            long channels = l.Dims[l.WeightAxis];
            var wq = qw.Values.Select((q, i) => q * qw.Scales[(int)(i / inner % channels)]).ToArray();
            if (l.Depthwise)
            {
                for (int row = 0; row < r; row++)
                    for (int j = 0; j < k; j++)
                        for (int t = 0; t < l.Taps; t++)
                        {
                            double d = (double)xq[row * k + j] * wq[j * l.Taps + t] - (double)x[row * k + j]
                                * l.W[j * l.Taps + t];
                            err += d * d;
                        }
                continue;
            }
            var products = l.Products(xq, r, wq);
            for (int t = 0; t < products.Count; t++)
            {
                var (y, refY) = (products[t], reference[m][t]);
                for (int i = 0; i < y.Length; i++)
                {
                    double d = y[i] - refY[i];
                    err += d * d;
                }
            }
        }
        return err;
    }

    /// <summary>Scales the group's weights' input channels by s and puts 1/s into X's producer when it can absorb it
    /// (every reader in the group), else inserts Mul(X, 1/s).</summary>
    private static string Apply(PassContext ctx, Group grp, double[] s, List<Layer> layers)
    {
        var rw = ctx.Rewriter;
        var g = ctx.Model.Graph;
        foreach (var l in layers)
        {
            var old = l.Node.Input(1)!;
            rw.SetInput(l.Node, 1, rw.Constant(g, old.Name + "_smoothed", Tensor.FromFloats("", l.Dims, l.Scaled(s))));
        }
        var inv = s.Select(v => (float)(1 / v)).ToArray();
        if (grp.Exclusive && (grp.Axis == 1 ? AbsorbPerChannel(ctx, grp, inv) : Absorb(ctx, grp, inv)))
            return "producer";
        long[] dims = grp.Axis == 1 ? [grp.K, 1, 1] : [grp.K];
        var mul = rw.Insert(g, "Mul", [grp.X, rw.Constant(g, grp.X.Name + "_smooth_scale",
            Tensor.FromFloats("", dims, inv))], grp.X.Name + "_smoothed");
        foreach (var node in grp.Layers) rw.SetInput(node, 0, mul.Output());
        return "mul";
    }

    /// <summary>Whether X's producer can take 1/s (Absorb / AbsorbPerChannel without editing).</summary>
    private static bool CanAbsorb(Group grp) => grp.Axis == 1 ? AbsorbPerChannel(null, grp, []) : Absorb(null, grp, []);

    /// <summary>1/s into LayerNormalization's scale and bias, or into Add(Mul(n, gamma), beta)'s constants (ctx null:
    /// only whether it can).</summary>
    private static bool Absorb(PassContext? ctx, Group grp, float[] inv)
    {
        var p = grp.X.Producer;
        if (p is null || !p.IsStandard) return false;
        List<(Node Node, int Index)> targets;
        if (p.OpType == "LayerNormalization" && p.GetInt("axis", -1) is -1)
            targets = [(p, 1), (p, 2)];
        else if (p.OpType == "Add" && p.Inputs.Count == 2)
        {
            int bi = Rewriter.ConstantOf(p.Input(1)) is not null ? 1 : 0;
            if (p.Input(1 - bi)?.Producer is not { OpType: "Mul", IsStandard: true } mul
                || p.Input(1 - bi)!.Uses.Count != 1) return false;
            int gi = Rewriter.ConstantOf(mul.Input(1)) is not null ? 1 : 0;
            targets = [(p, bi), (mul, gi)];
        }
        else return false;
        // Every target: a constant float [K] (or scalar-free [1..,K]) vector, or absent (LayerNormalization's bias).
        foreach (var (n, i) in targets)
            if (n.Input(i) is { } v && (Rewriter.ConstantOf(v) is not { ElementType: DataType.Float } t
                || t.ElementCount != grp.K || t.Dims.Length == 0 || t.Dims[^1] != grp.K)) return false;
        if (targets.Any(t => t.Node.Input(t.Index) is null && t.Index != 2)) return false;
        if (ctx is null) return true;
        foreach (var (n, i) in targets)
        {
            if (n.Input(i) is not { } v) continue;
            var t = Rewriter.ConstantOf(v)!;
            var values = t.ToFloatArray().Select((x, j) => x * inv[j]).ToArray();
            ctx.Rewriter.SetInput(n, i, ctx.Rewriter.Constant(ctx.Model.Graph, v.Name + "_smoothed",
                Tensor.FromFloats("", t.Dims, values)));
        }
        return true;
    }

    /// <summary>1/s into the producer of an NCHW activation: a Conv's output channels (weight and bias), the
    /// constants of Add(Mul(n, gamma), beta), or the constant of Mul(n, c) / Div(n, c) (a hard-swish's last op), each
    /// a scalar or one value per channel; the new constants are [K, 1, 1] (ctx null: only whether it can).</summary>
    private static bool AbsorbPerChannel(PassContext? ctx, Group grp, float[] inv)
    {
        var p = grp.X.Producer;
        if (p is null || !p.IsStandard) return false;
        if (p.OpType == "Conv" && Rewriter.ConstantOf(p.Input(1)) is { ElementType: DataType.Float } w
            && w.Dims.Length == 4 && w.Dims[0] == grp.K
            && (p.Input(2) is null || Rewriter.ConstantOf(p.Input(2)) is { ElementType: DataType.Float }))
        {
            if (ctx is null) return true;
            var (rw, g) = (ctx.Rewriter, ctx.Model.Graph);
            long inner = w.ElementCount / grp.K;
            var scaled = w.ToFloatArray().Select((x, i) => x * inv[i / inner]).ToArray();
            rw.SetInput(p, 1, rw.Constant(g, p.Input(1)!.Name + "_smoothed", Tensor.FromFloats("", w.Dims, scaled)));
            if (p.Input(2) is { } b)
            {
                var bias = Rewriter.ConstantOf(b)!.ToFloatArray().Select((x, j) => x * inv[j]).ToArray();
                rw.SetInput(p, 2, rw.Constant(g, b.Name + "_smoothed", Tensor.FromFloats("", [grp.K], bias)));
            }
            return true;
        }
        // Targets: (node, constant input, whether the constant divides).
        List<(Node Node, int Index, bool Divides)> targets;
        int ci = Rewriter.ConstantOf(p.Input(1)) is not null ? 1 : 0;
        if (p.OpType == "Add" && p.Inputs.Count == 2)
        {
            if (p.Input(1 - ci)?.Producer is not { OpType: "Mul", IsStandard: true } mul
                || p.Input(1 - ci)!.Uses.Count != 1) return false;
            targets = [(p, ci, false), (mul, Rewriter.ConstantOf(mul.Input(1)) is not null ? 1 : 0, false)];
        }
        else if (p.OpType == "Mul" && p.Inputs.Count == 2) targets = [(p, ci, false)];
        else if (p.OpType == "Div" && p.Inputs.Count == 2 && ci == 1) targets = [(p, 1, true)];
        else return false;
        foreach (var (n, i, _) in targets)
            if (Rewriter.ConstantOf(n.Input(i)) is not { ElementType: DataType.Float } t || !PerChannel(t, grp.K))
                return false;
        if (ctx is null) return true;
        foreach (var (n, i, divides) in targets)
        {
            var c = Rewriter.ConstantOf(n.Input(i))!.ToFloatArray();
            var values = inv.Select((v, j) => c[c.Length == 1 ? 0 : j] * (divides ? 1 / v : v)).ToArray();
            ctx.Rewriter.SetInput(n, i, ctx.Rewriter.Constant(ctx.Model.Graph, n.Input(i)!.Name + "_smoothed",
                Tensor.FromFloats("", [grp.K, 1, 1], values)));
        }
        return true;
    }

    /// <summary>A scalar, or one value per channel of an NCHW tensor ([K, 1, 1] or [1, K, 1, 1]).</summary>
    private static bool PerChannel(Tensor t, int k) => t.ElementCount == 1 && t.Dims.Length <= 4
        || t.ElementCount == k && t.Dims.Length is 3 or 4 && t.Dims[^3] == k;

    /// <summary>Per group activation: per-channel min and max over all calibration data (the group's channel axis),
    /// and up to <paramref name="rows"/> sampled rows of K channels (positions of a map; the same number from each
    /// batch, evenly spaced).</summary>
    private static Dictionary<string, (double[] Min, double[] Max, List<float> Rows, long Count)> Collect(
        CalibrationSource calib, Model model, List<Group> groups, int rows)
    {
        var names = groups.Select(x => x.X.Name).Distinct().ToList();
        var axis = groups.ToDictionary(x => x.X.Name, x => x.Axis);
        var result = names.ToDictionary(n => n, n =>
        {
            int k = groups.First(x => x.X.Name == n).K;
            return (Min: Enumerable.Repeat(double.PositiveInfinity, k).ToArray(),
                Max: Enumerable.Repeat(double.NegativeInfinity, k).ToArray(), Rows: new List<float>(), Count: 0L);
        });
        int samples = Math.Max(1, calib.DataFor(IoInfo.InputsOf(model.Graph)).SampleCount);
        calib.Stream(model, names, (batch, outs) =>
        {
            for (int t = 0; t < names.Count; t++)
            {
                var (min, max, kept, count) = result[names[t]];
                var data = outs[t].ToFloatArray();
                int k = min.Length, n = data.Length / k;
                // Channel j of row p: the last axis (MatMul), or axis 1 of [B, K, H, W] (Conv).
                long hw = axis[names[t]] == 1 ? data.Length / (outs[t].Dims[0] * k) : 1;
                int Index(int p, int j) => hw == 1 ? p * k + j : (int)((p / hw * k + j) * hw + p % hw);
                for (int i = 0; i < data.Length; i++)
                {
                    int j = hw == 1 ? i % k : (int)(i / hw % k);
                    if (data[i] < min[j]) min[j] = data[i];
                    if (data[i] > max[j]) max[j] = data[i];
                }
                int batchSamples = (int)Math.Max(1, outs[t].Dims[0]);
                int want = Math.Max(1, rows * batchSamples / samples);
                int stride = Math.Max(1, n / want);
                for (int row = 0; row < n && kept.Count < rows * k; row += stride)
                    for (int j = 0; j < k; j++) kept.Add(data[Index(row, j)]);
                result[names[t]] = (min, max, kept, count + n);
            }
        }, "smooth: activation ranges");
        return result;
    }
}
