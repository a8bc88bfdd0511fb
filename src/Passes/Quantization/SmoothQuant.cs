// smooth{alpha=auto}: SmoothQuant (Xiao et al., ICML 2023, "SmoothQuant: Accurate and Efficient Post-Training
// Quantization for Large Language Models"). A transformer's activations have a few channels whose values are 10-100x
// the others' (pretrained BERTs' outlier dimensions), so a per-tensor int8 grid for the activation spends its levels on
// them; the weights are easy. Per input channel j of a group of MatMuls that read the same activation X (last axis K,
// weights W_m [K, N_m] constant), the difficulty moves from X into the weights:
//   s_j = a_j^alpha / w_j^(1 - alpha),  a_j = max |X_j| on the calibration data, w_j = max_m,n |W_m[j, n]|
//   X' = X / s,  W'_m[j, :] = s_j W_m[j, :]       so X' W'_m = X W_m exactly in real arithmetic
// Where 1/s goes:
//   before: LN -> X -> MatMul(W_q), MatMul(W_k), MatMul(W_v)
//   after:  LN(gamma / s, beta / s) -> X' -> MatMul(s W_q), ...            (every reader of X in the group, and X
//           made by LayerNormalization, or by Add(Mul(n, gamma), beta) with constant [K] gamma and beta)
//   after:  X -> Mul(1 / s) -> X' -> MatMul(s W_q), ...                    (otherwise: a post-norm block's LN also
//           feeds the residual Add, a GELU feeds fc2; one element-wise Mul on the group's branch)
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

    /// <summary>A group: the activation, the MatMuls reading it with constant [K, N] weights, whether every reader
    /// of X is one of them.</summary>
    private sealed record Group(Value X, List<Node> Layers, int K, bool Exclusive);

    private static List<Group> FindGroups(Graph g)
    {
        var groups = new List<Group>();
        foreach (var x in g.Nodes.SelectMany(n => n.Outputs).OfType<Value>().Distinct())
        {
            if (x.ElementType != DataType.Float || x.Shape is not { Rank: >= 2 } shape || !shape.Dims[^1].IsKnown)
                continue;
            int k = (int)shape.Dims[^1].Value!.Value;
            var layers = x.Uses.Where(u => u.InputIndex == 0 && u.Node is { OpType: "MatMul", IsStandard: true }
                    && Rewriter.ConstantOf(u.Node.Input(1)) is { ElementType: DataType.Float, Dims.Length: 2 } w
                    && w.Dims[0] == k)
                .Select(u => u.Node).Distinct().ToList();
            if (layers.Count == 0) continue;
            groups.Add(new Group(x, layers, k, x.Uses.All(u => layers.Contains(u.Node)) && !x.IsGraphOutput));
        }
        return groups;
    }

    public override string? WhyNoChange(Model model, SmoothOptions options) =>
        FindGroups(model.Graph).Count == 0 ? "no MatMul with a constant [K, N] weight reads a float activation" : null;

    public override void Run(PassContext ctx, SmoothOptions o)
    {
        double? fixedAlpha = o.Alpha == "auto" ? null
            : double.TryParse(o.Alpha, System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var a) && a is >= 0 and <= 1 ? a
            : throw new OnnxModelException($"smooth: alpha '{o.Alpha}' is not auto or a number in [0, 1]");
        var calib = ctx.RequireCalibration("smooth");
        var model = ctx.Model;
        ShapeInference.Run(model);
        var groups = FindGroups(model.Graph);
        if (groups.Count == 0) return;
        var stats = Collect(calib, model, groups, (int)o.Rows);
        int smoothed = 0;
        foreach (var grp in groups)
        {
            var (min, max, rows, count) = stats[grp.X.Name];
            if (count == 0) continue;
            var weights = grp.Layers.Select(n => Rewriter.ConstantOf(n.Input(1))!.ToFloatArray()).ToList();
            var ns = grp.Layers.Select(n => (int)Rewriter.ConstantOf(n.Input(1))!.Dims[1]).ToList();
            var act = Enumerable.Range(0, grp.K).Select(j => Math.Max(Math.Abs(min[j]), Math.Abs(max[j]))).ToArray();
            var wmax = new double[grp.K];
            for (int m = 0; m < weights.Count; m++)
                for (int j = 0; j < grp.K; j++)
                    for (int c = 0; c < ns[m]; c++)
                        wmax[j] = Math.Max(wmax[j], Math.Abs(weights[m][j * ns[m] + c]));
            var sampled = rows.ToArray();
            int r = sampled.Length / grp.K;
            var reference = weights.Select((w, m) => DenseProduct.Multiply(sampled, w, r, grp.K, ns[m])).ToList();
            double Error(double[]? s) => SimulatedError(sampled, r, grp.K, min, max, weights, ns, reference, s,
                o.WeightMax);
            var none = Error(null);
            double? bestAlpha = null;
            double best = none;
            foreach (var alpha in fixedAlpha is { } f ? [f] : Candidates)
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
                placement = Apply(ctx, grp, s, weights, ns);
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
        ctx.Stats.Notes.Add($"smooth: {smoothed} of {groups.Count} MatMul groups smoothed{summary}");
    }

    /// <summary>s_j = a_j^alpha / w_j^(1-alpha), 1 where either range is 0, kept within [1e-4, 1e4].</summary>
    private static double[] Scales(double[] act, double[] wmax, double alpha) => act.Select((a, j) =>
        a > 0 && wmax[j] > 0 ? Math.Clamp(Math.Pow(a, alpha) / Math.Pow(wmax[j], 1 - alpha), 1e-4, 1e4) : 1).ToArray();

    /// <summary>sum_m ||X W_m - Qa(X / s) Qw(s W_m)||^2 on the sampled rows (s null: unsmoothed), with the
    /// emitter's own grids: QParams over X's calibrated range, QuantizedWeight per output column.</summary>
    private static double SimulatedError(float[] x, int r, int k, double[] min, double[] max, List<float[]> weights,
        List<int> ns, List<float[]> reference, double[]? s, int qmax)
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
        for (int m = 0; m < weights.Count; m++)
        {
            int n = ns[m];
            var scaled = weights[m].Select((w, i) => (float)(w * (s?[i / n] ?? 1))).ToArray();
            var qw = QuantizedWeight.Of(scaled, [k, n], 1, qmax);
            var wq = qw.Values.Select((q, i) => q * qw.Scales[i % n]).ToArray();
            var y = DenseProduct.Multiply(xq, wq, r, k, n);
            var refY = reference[m];
            for (int i = 0; i < y.Length; i++)
            {
                double d = y[i] - refY[i];
                err += d * d;
            }
        }
        return err;
    }

    /// <summary>Scales the group's weight rows by s and puts 1/s into X's producer when it can absorb it (every
    /// reader in the group; LayerNormalization or Add(Mul(n, gamma), beta)), else inserts Mul(X, 1/s).</summary>
    private static string Apply(PassContext ctx, Group grp, double[] s, List<float[]> weights, List<int> ns)
    {
        var rw = ctx.Rewriter;
        var g = ctx.Model.Graph;
        for (int m = 0; m < grp.Layers.Count; m++)
        {
            var node = grp.Layers[m];
            var w = (float[])weights[m].Clone();
            for (int j = 0; j < grp.K; j++)
                for (int c = 0; c < ns[m]; c++) w[j * ns[m] + c] = (float)(w[j * ns[m] + c] * s[j]);
            var old = node.Input(1)!;
            rw.SetInput(node, 1, rw.Constant(g, old.Name + "_smoothed", Tensor.FromFloats("", [grp.K, ns[m]], w)));
        }
        var inv = s.Select(v => (float)(1 / v)).ToArray();
        if (grp.Exclusive && Absorb(ctx, grp, inv)) return "producer";
        var mul = rw.Insert(g, "Mul", [grp.X, rw.Constant(g, grp.X.Name + "_smooth_scale",
            Tensor.FromFloats("", [grp.K], inv))], grp.X.Name + "_smoothed");
        foreach (var node in grp.Layers) rw.SetInput(node, 0, mul.Output());
        return "mul";
    }

    /// <summary>1/s into LayerNormalization's scale and bias, or into Add(Mul(n, gamma), beta)'s constants.</summary>
    private static bool Absorb(PassContext ctx, Group grp, float[] inv)
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

    /// <summary>Per group activation: per-channel min and max over all calibration data (last axis), and up to
    /// <paramref name="rows"/> sampled rows (the same number from each batch, evenly spaced).</summary>
    private static Dictionary<string, (double[] Min, double[] Max, List<float> Rows, long Count)> Collect(
        CalibrationSource calib, Model model, List<Group> groups, int rows)
    {
        var names = groups.Select(x => x.X.Name).Distinct().ToList();
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
                for (int i = 0; i < data.Length; i++)
                {
                    int j = i % k;
                    if (data[i] < min[j]) min[j] = data[i];
                    if (data[i] > max[j]) max[j] = data[i];
                }
                int batchSamples = (int)Math.Max(1, outs[t].Dims[0]);
                int want = Math.Max(1, rows * batchSamples / samples);
                int stride = Math.Max(1, n / want);
                for (int row = 0; row < n && kept.Count < rows * k; row += stride)
                    kept.AddRange(data.AsSpan(row * k, k).ToArray());
                result[names[t]] = (min, max, kept, count + n);
            }
        }, "smooth: activation ranges");
        return result;
    }
}
