// AdaRound (Nagel, Amjad, van Baalen, Louizos, Blankevoort, ICML 2020, "Up or Down? Adaptive Rounding for
// Post-Training Quantization"): each integer weight is rounded up or down, whichever the layer's output needs,
// instead of to the nearest level.
//   before: q = clamp(round(W / s))                             (round-to-nearest, per output channel scale s)
//   after:  q = clamp(floor(W / s) + r), r in {0, 1} chosen by
//           min_V  sum_o d_o^T H d_o / E_rtn  +  lambda * mean_i (1 - |2 h(V_i) - 1|^beta)
//           d = s (floor(W / s) + h(V)) - W,   h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)
//           with H = sum x x^T of the layer's input on calibration data (LayerHessian), so the first term is the
//           layer's output error relative to round-to-nearest's (E_rtn), and zeta = 1.1, gamma = -0.1; with
//           the error so normalized, lambda = 10 (chosen on a conv fed correlated inputs, at int8 and int4)
// V starts where h(V) = W / s - floor(W / s); Adam on the exact gradient (H is the whole sample: no batches);
// beta anneals 20 -> 2 after the first 20% of the iterations (the warm-up, without the regularizer), and r is
// h(V) >= 0.5 at the end. Any number of bits (qmax: 127 for int8, 7 for int4, 63 with reduce-range). A layer
// keeps round-to-nearest when the learned rounding does not lower its error on the sampled rows.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record AdaRoundSettings
{
    public int Iterations { get; init; } = 500;
    public double LearningRate { get; init; } = 0.05;
    public double Lambda { get; init; } = 10;
}

public static class AdaRound
{
    private const double Zeta = 1.1, Gamma = -0.1;

    /// <summary>Integers per weight (rows layout of <paramref name="h"/>) and the layer's error with
    /// round-to-nearest and with the result, on the rows H was gathered from.</summary>
    public static (int[] Q, double ErrorNearest, double ErrorLearned) Round(LayerHessian h, double[] w,
        IReadOnlyList<float> rowScales, int qmax, AdaRoundSettings settings)
    {
        int k = h.K, rows = h.Op.OutChannels, n = rows * k;
        var floor = new double[n];
        var v = new double[n];
        var nearest = new int[n];
        for (int i = 0; i < n; i++)
        {
            double s = rowScales[i / k], x = w[i] / s;
            floor[i] = Math.Floor(x);
            nearest[i] = (int)Math.Clamp(Math.Round(x, MidpointRounding.ToEven), -qmax, qmax);
            var frac = Math.Clamp(x - floor[i], 0.01, 0.99);
            v[i] = -Math.Log((Zeta - Gamma) / (frac - Gamma) - 1);
        }
        double Err(IReadOnlyList<int> q)
        {
            var d = new double[n];
            for (int i = 0; i < n; i++) d[i] = rowScales[i / k] * q[i] - w[i];
            return h.Error(d);
        }
        var eNearest = Err(nearest);
        if (eNearest <= 0) return (nearest, eNearest, eNearest);
        var m = new double[n];
        var m2 = new double[n];
        var grad = new double[n];
        int warm = settings.Iterations / 5;
        const double b1 = 0.9, b2 = 0.999;
        for (int it = 0; it < settings.Iterations; it++)
        {
            double beta = it < warm ? 0 : 20 - 18.0 * (it - warm) / Math.Max(1, settings.Iterations - warm);
            Parallel.For(0, rows, o =>
            {
                var hg = h.H[o / h.RowsPerGroup];
                double s = rowScales[o];
                var d = new double[k];
                var g = new double[k];
                for (int a = 0; a < k; a++)
                {
                    int i = o * k + a;
                    d[a] = s * Math.Clamp(floor[i] + Soft(v[i]), -qmax, qmax) - w[i];
                }
                for (int a = 0; a < k; a++) if (d[a] != 0) DenseKernels.Axpy(d[a], hg.AsSpan(a * k, k), g);
                for (int a = 0; a < k; a++)
                {
                    int i = o * k + a;
                    double sig = 1 / (1 + Math.Exp(-v[i]));
                    double raw = sig * (Zeta - Gamma) + Gamma;
                    double dh = raw is > 0 and < 1 ? sig * (1 - sig) * (Zeta - Gamma) : 0;
                    double gi = 2 * g[a] * s * dh / eNearest;
                    if (beta > 0 && dh != 0)
                    {
                        double u = 2 * Math.Clamp(raw, 0, 1) - 1;
                        gi += settings.Lambda / n * -beta * Math.Pow(Math.Abs(u), beta - 1) * Math.Sign(u) * 2 * dh;
                    }
                    grad[i] = gi;
                }
            });
            double c1 = 1 - Math.Pow(b1, it + 1), c2 = 1 - Math.Pow(b2, it + 1);
            for (int i = 0; i < n; i++)
            {
                m[i] = b1 * m[i] + (1 - b1) * grad[i];
                m2[i] = b2 * m2[i] + (1 - b2) * grad[i] * grad[i];
                v[i] -= settings.LearningRate * (m[i] / c1) / (Math.Sqrt(m2[i] / c2) + 1e-12);
            }
        }
        var learned = new int[n];
        for (int i = 0; i < n; i++) learned[i] = (int)Math.Clamp(floor[i] + (Soft(v[i]) >= 0.5 ? 1 : 0), -qmax, qmax);
        var eLearned = Err(learned);
        return eLearned < eNearest ? (learned, eNearest, eLearned) : (nearest, eNearest, eNearest);
    }

    private static double Soft(double v) => Math.Clamp(1 / (1 + Math.Exp(-v)) * (Zeta - Gamma) + Gamma, 0, 1);
}

/// <summary>A layer whose int8 weights AdaRound or GPTQ rounded: its output error on the sampled rows with
/// round-to-nearest and with the learned rounding, and the share of weights rounded the other way.</summary>
public sealed record RoundedLayer(string Node, string Op, string Decision) : Decision
{
    public string? Method { get; init; }
    public double? ErrorNearest { get; init; }
    public double? ErrorLearned { get; init; }
    public double? FlippedShare { get; init; }
    public string? Reason { get; init; }
}

public static class LearnedRounding
{
    /// <summary>Int8 weights rounded by <paramref name="method"/> (adaround or gptq; weight layout, by
    /// QdqEmitter.Key) for every layer quantize would quantize, with a decision per layer.</summary>
    public static Dictionary<string, sbyte[]> Run(Model model, CalibrationSource calib, QuantizeOptions qo,
        string method, AdaRoundSettings settings, int maxRows, PassStats stats)
    {
        ShapeInference.Run(model);
        bool perChannel = qo.PerChannel && (model.OpsetVersion("") ?? 1) >= 13;
        var none = new HashSet<string>();
        var ops = model.Graph.Nodes.Where(n => n.IsStandard && n.OpType is "Conv" or "Gemm" or "MatMul"
                && QdqEmitter.Selected(n, qo, none) && n.Input(0) is { } x && Rewriter.ConstantOf(x) is null)
            .Select(LinearOp.Of).OfType<LinearOp>().ToList();
        var (layers, refused) = LayerHessian.Collect(model, calib, ops, maxRows, $"quantize: {method} statistics");
        foreach (var (n, why) in refused)
            stats.Decide(new RoundedLayer(QdqEmitter.Key(n), n.OpType, "nearest") { Reason = why });
        var result = new Dictionary<string, sbyte[]>(StringComparer.Ordinal);
        foreach (var (node, h) in layers)
        {
            var op = h.Op;
            var q = QuantizedWeight.Of(op.Weight, op.WeightDims, QdqEmitter.WeightAxis(node, perChannel), qo.WeightMax);
            var scales = Enumerable.Range(0, op.OutChannels).Select(o => q.Scales[q.Scales.Length == 1 ? 0 : o])
                .ToArray();
            var (ints, before, after) = method == "gptq" ? GptqRows(h, scales, qo.WeightMax)
                : AdaRound.Round(h, h.Rows(), scales, qo.WeightMax, settings);
            var layout = h.FromRows(ints.Select(v => (double)v).ToArray());
            var values = layout.Select(v => (sbyte)v).ToArray();
            int flipped = values.Where((v, i) => v != q.Values[i]).Count();
            var key = QdqEmitter.Key(node);
            stats.Decide(new RoundedLayer(key, node.OpType, after < before ? "learned" : "nearest")
            {
                Method = method,
                ErrorNearest = before,
                ErrorLearned = after,
                FlippedShare = Math.Round((double)flipped / values.Length, 6),
            });
            if (after < before) result[key] = values;
        }
        stats.Count(Counters.Quantize.RoundedBy(method), result.Count);
        if (layers.Count > 0)
        {
            var gain = layers.Values.Count == 0 ? 0 : stats.Decisions.OfType<RoundedLayer>()
                .Where(d => d.ErrorNearest > 0).Average(d => d.ErrorLearned!.Value / d.ErrorNearest!.Value);
            stats.Notes.Add($"{method}: {result.Count} of {layers.Count} layers rounded by it; layer output error "
                + $"{gain:P0} of round-to-nearest's on average "
                + $"({layers.Values.First().SampledRows} sampled rows each)");
        }
        return result;
    }

    /// <summary>GPTQ with each row's fixed int8 scale, group by group; the integers and the layer's error with
    /// round-to-nearest and GPTQ (round-to-nearest kept when GPTQ is not better).</summary>
    private static (int[] Q, double ErrorNearest, double ErrorLearned) GptqRows(LayerHessian h, float[] scales,
        int qmax)
    {
        var w = h.Rows();
        int k = h.K, per = h.RowsPerGroup;
        var nearest = w.Select((v, i) => (int)Math.Clamp(Math.Round(v / scales[i / k], MidpointRounding.ToEven), -qmax,
            qmax)).ToArray();
        double Err(int[] q) => h.Error(q.Select((v, i) => scales[i / k] * v - w[i]).ToArray());
        var grid = new RowScaleGrid(scales, qmax, k); // records the integers; each group's rows are updated in a copy
        for (int g = 0; g < h.Groups; g++)
        {
            var rows = w.AsSpan(g * per * k, per * k).ToArray();
            if (!Gptq.Run(rows, per, g * per, k, h.H[g], grid)) return (nearest, Err(nearest), Err(nearest));
        }
        var (e0, e1) = (Err(nearest), Err(grid.Values));
        return e1 < e0 ? (grid.Values, e0, e1) : (nearest, e0, e0);
    }
}
