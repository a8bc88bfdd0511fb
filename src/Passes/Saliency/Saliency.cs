// Weight saliency and the masks it implies, for `onnxopt score` and the sparsify pass.
//
// synflow (Tanaka et al. 2020): n rounds (default 100); round k scores the masked linearized network
//   (SynFlowNetwork) and keeps the weights whose score is above the k-th threshold, so that the density
//   after round k is d^(k/n) (exponential schedule); the threshold is global over all prunable weights
//   (scope=global) or per layer (scope=local). As in the reference code, with m weights the
//   floor((1 - d_k) m) lowest scores (and ties with the highest of them) are pruned.
// magnitude: one shot, score |w|, the same threshold at density d (the baseline that collapses layers).
// obd / fisher (need calibration data): one shot, Optimal Brain Damage's 1/2 H_ii w^2 with the Hessian diagonal of
//   the distillation loss (SecondOrderSaliency), the same threshold.
// Reported per layer (from the first round, on the unpruned network): the total score, its
// conservation deviation |total - R| / R (0 in bias-free homogeneous nets, where every layer's total is
// R), and per-filter scores; from the final masks: kept weights, density, and layer collapse (a layer
// with no weight left).
using System.Diagnostics;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record SaliencyOptions
{
    public string Method { get; init; } = "synflow";
    public int Iterations { get; init; } = 100;
    public double Density { get; init; } = 0.1;
    public string Scope { get; init; } = "global";
    /// <summary>scope=local: how the density is shared between layers (DensityAllocation).</summary>
    public string Allocation { get; init; } = "uniform";
    public string Precision { get; init; } = "float64";
    public IReadOnlyDictionary<string, int[]> InputShapes { get; init; } = new Dictionary<string, int[]>();
    public OnnxOpt.Data.ProgressSink? Progress { get; init; }
    /// <summary>The samples obd and fisher estimate the Hessian diagonal on.</summary>
    public OnnxOpt.Calibration.CalibrationSource? Calibration { get; init; }

    /// <summary>"x:1x3x224x224;y:1x8" or "x=1x3x224x224" entries into input shapes.</summary>
    public static Dictionary<string, int[]> ParseShapes(IEnumerable<string> specs)
    {
        var r = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var spec in specs.SelectMany(s => s.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            var sep = spec.LastIndexOfAny([':', '=']);
            var dims = sep > 0 ? spec[(sep + 1)..].Split('x') : [];
            if (sep <= 0 || dims.Length == 0 || !dims.All(d => int.TryParse(d, out var v) && v > 0))
                throw new OnnxModelException($"input shape '{spec}': expected NAME=1x3x224x224");
            r[spec[..sep]] = dims.Select(int.Parse).ToArray();
        }
        return r;
    }
}

public sealed record LayerSaliency(string Layer, string OpType, string Weight, long[] Shape, long Weights,
    double ScoreTotal,
    double ConservationDeviation, long Kept, double Density, bool Collapsed, double[] FilterScores);

public sealed record SaliencyResult(SaliencyOptions Options, double R, int Rounds, IReadOnlyList<LayerSaliency> Layers,
    IReadOnlyDictionary<string, bool[]> Masks, IReadOnlyDictionary<string, double[]> Scores, double Seconds, double MsPerRound)
{
    // Scores: per-weight scores of the first round (the unpruned network), by weight name.
    public bool LayerCollapse => Layers.Any(l => l.Collapsed);
    public long Weights => Layers.Sum(l => l.Weights);
    public long Kept => Layers.Sum(l => l.Kept);
    /// <summary>Why some of the result is what it is (attention query/key projections collapsing under SynFlow).
    /// </summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}

public static class Saliency
{
    public static readonly string[] Methods = ["synflow", "magnitude", "obd", "fisher"];

    public static SaliencyResult Score(Model model, SaliencyOptions o)
    {
        Check(o);
        // Weights held in Constant nodes (older exporters) become initializers of a copy, under the same
        // names; a model below opset 13 is upgraded in that copy (the evaluator knows the current ops).
        var old = (model.OpsetVersion("") ?? 13) < 13;
        if (old || model.Graph.Nodes.Any(n => n is { OpType: "Constant", IsStandard: true }))
        {
            model = model.Clone();
            var prep = (old ? "upgrade-opset{version=13}," : "") + "canonicalize";
            PipelineRunner.Run(model, Pipeline.Parse(prep), new PassContext(model));
        }
        var prunables = PrunableWeights(model);
        var sw = Stopwatch.StartNew();
        var masks = prunables.ToDictionary(p => p.Weight.Name, p => Enumerable.Repeat(true,
            (int)p.Weight.Initializer!.ElementCount).ToArray(), StringComparer.Ordinal);
        Dictionary<string, double[]> first;
        double r = double.NaN;
        int rounds = 1;
        bool rescaled = false;
        if (o.Method == "magnitude")
        {
            first = prunables.ToDictionary(p => p.Weight.Name,
                p => p.Weight.Initializer!.ToDoubleArray().Select(Math.Abs).ToArray(), StringComparer.Ordinal);
            Prune(prunables, first, masks, o.Density, o.Scope, o.Allocation);
        }
        else if (o.Method is "obd" or "fisher")
        {
            var calib = o.Calibration ?? throw new OnnxModelException(
                $"saliency method '{o.Method}' needs calibration data (--calib DIR): it measures the loss's Hessian");
            first = SecondOrderSaliency.Compute(model, prunables.Select(p => p.Weight.Name).Distinct().ToList(), calib,
                o.Method).Saliency;
            Prune(prunables, first, masks, o.Density, o.Scope, o.Allocation);
        }
        else
        {
            (first, r, rescaled) = SynFlowRounds(model, prunables, masks, o);
            rounds = o.Iterations;
        }
        sw.Stop();
        var layers = prunables.Select(p =>
        {
            var s = first[p.Weight.Name];
            var m = masks[p.Weight.Name];
            var filterOf = p.FilterOf();
            var filters = new double[p.Filters];
            for (int i = 0; i < s.Length; i++) filters[filterOf[i]] += s[i];
            var total = s.Sum();
            long kept = m.LongCount(b => b);
            return new LayerSaliency(p.Layer, p.Node.OpType, p.Weight.Name, p.Dims, s.Length, total,
                o.Method == "synflow" && r != 0 ? Math.Abs(total - r) / r : double.NaN, kept, (double)kept / s.Length, kept == 0, filters);
        }).ToList();
        return new SaliencyResult(o, r, rounds, layers, masks, first, sw.Elapsed.TotalSeconds,
            sw.Elapsed.TotalMilliseconds / rounds)
        {
            Notes = o.Method == "synflow"
                ? [.. AttentionNotes(model, layers), .. rescaled ? new[] { RescaledNote } : []] : [],
        };
    }

    private static void Check(SaliencyOptions o)
    {
        if (!Methods.Contains(o.Method))
            throw new OnnxModelException($"unknown saliency method '{o.Method}' (methods: "
                + $"{string.Join(", ", Methods)})");
        if (o.Density is <= 0 or > 1) throw new OnnxModelException($"density {o.Density} must be in (0, 1]");
        if (o.Iterations < 1) throw new OnnxModelException("iterations must be at least 1");
        if (o.Scope is not ("global" or "local"))
            throw new OnnxModelException($"scope '{o.Scope}' must be global or local");
        if (o.Allocation != "uniform" && o.Scope != "local")
            throw new OnnxModelException($"allocation={o.Allocation} shares the density between layers: it needs "
                + "scope=local (scope=global already lets the scores choose)");
        if (o.Precision is not ("float64" or "float32"))
            throw new OnnxModelException($"precision '{o.Precision}' must be float64 or float32");
    }

    // SynFlow's rounds (Tanaka et al.): each scores |W| * dR/d|W| on the all-ones input of the masked net and
    // prunes to density^(k/n); the first round's scores and R are what the report shows.
    private static (Dictionary<string, double[]> First, double R, bool Rescaled) SynFlowRounds(Model model,
        List<PrunableWeight> prunables, Dictionary<string, bool[]> masks, SaliencyOptions o)
    {
        var net = SynFlowNetwork.Build(model, prunables, o.InputShapes);
        ISynFlowRunner runner = o.Precision == "float32" ? new SynFlowRunner<float>(net)
            : new SynFlowRunner<double>(net);
        Dictionary<string, double[]> first = null!;
        double r = double.NaN;
        bool rescaled = false;
        for (int k = 1; k <= o.Iterations; k++)
        {
            var (rk, scores) = runner.Round(masks);
            if (k == 1 && OutOfRange(rk, scores, o.Precision))
            {
                // The signal left the precision's range with depth: unit mean row sums (SynFlowNetwork header).
                runner.Rescale();
                rescaled = true;
                (rk, scores) = runner.Round(masks);
            }
            if (!double.IsFinite(rk) || scores.Values.Any(s => s.Any(v => !double.IsFinite(v))))
                throw new OnnxModelException($"SynFlow overflowed in {o.Precision} (R = {rk:G4} in round {k}) even "
                    + "with every layer rescaled to unit mean row sum");
            if (k == 1) { first = scores; r = rk; }
            Prune(prunables, scores, masks, Math.Pow(o.Density, (double)k / o.Iterations), o.Scope, o.Allocation);
            o.Progress?.Invoke("synflow rounds", k, o.Iterations);
        }
        return (first, r, rescaled);
    }

    private const string RescaledNote = "SynFlow's signal left the number range unscaled (it grows geometrically with "
        + "depth): every layer's |W| was scaled to unit mean row sum, which multiplies all scores of a bias-free chain "
        + "by one factor (the ranking is unchanged) and reweighs biases and skip paths";

    /// <summary>R or a score overflowed, or R underflowed towards 0 where ties would decide the ranking.</summary>
    private static bool OutOfRange(double r, Dictionary<string, double[]> scores, string precision)
    {
        double limit = precision == "float32" ? 1e30 : 1e250;
        return !double.IsFinite(r) || Math.Abs(r) > limit || (r != 0 && Math.Abs(r) < 1 / limit)
            || scores.Values.Any(s => s.Any(v => !double.IsFinite(v)));
    }

    public static List<PrunableWeight> PrunableWeights(Model model)
    {
        var p = OnnxOpt.Passes.PrunableWeight.Find(model.Graph);
        if (p.Count == 0) throw new OnnxModelException("the model has no prunable weights (initializer weights of Conv, ConvTranspose, Gemm or MatMul)");
        return p;
    }

    /// <summary>Keeps, globally or per layer, the weights scoring above the floor((1-d) m)-th lowest score.</summary>
    private static void Prune(List<PrunableWeight> prunables, Dictionary<string, double[]> scores, Dictionary<string,
        bool[]> masks, double density, string scope, string allocation)
    {
        if (scope == "local")
        {
            var densities = DensityAllocation.Densities(prunables.Select(p => p.Dims).ToList(), density, allocation);
            for (int l = 0; l < prunables.Count; l++)
            {
                var p = prunables[l];
                var s = scores[p.Weight.Name];
                var t = Threshold(s, (long)Math.Floor((1 - densities[l]) * s.Length));
                var m = masks[p.Weight.Name];
                for (int i = 0; i < s.Length; i++) m[i] = m[i] && s[i] > t;
            }
            return;
        }
        var all = prunables.SelectMany(p => scores[p.Weight.Name]).ToArray();
        var th = Threshold(all, (long)Math.Floor((1 - density) * all.Length));
        foreach (var p in prunables)
        {
            var s = scores[p.Weight.Name]; var m = masks[p.Weight.Name];
            for (int i = 0; i < s.Length; i++) m[i] = m[i] && s[i] > th;
        }
    }

    /// <summary>The k-th smallest of non-negative values (1-based; -inf when k = 0, so that nothing is
    /// pruned). Radix select on the IEEE bits, which order non-negative doubles: four passes of 16 bits,
    /// each counting only the values that share the prefix found so far; no copy, no sort.</summary>
    internal static double Threshold(double[] values, long k)
    {
        if (k <= 0) return double.NegativeInfinity;
        if (values.Any(v => !(v >= 0))) throw new ArgumentException("scores must be non-negative numbers");
        k = Math.Min(k, values.Length);
        ulong prefix = 0;
        var counts = new long[1 << 16];
        for (int shift = 48; shift >= 0; shift -= 16)
        {
            Array.Clear(counts);
            ulong highMask = shift == 48 ? 0 : ~0UL << (shift + 16);
            foreach (var v in values)
            {
                var bits = (ulong)BitConverter.DoubleToInt64Bits(v);
                if ((bits & highMask) == prefix) counts[(bits >> shift) & 0xFFFF]++;
            }
            int bucket = 0;
            while (k > counts[bucket]) k -= counts[bucket++];
            prefix |= (ulong)bucket << shift;
        }
        return BitConverter.Int64BitsToDouble((long)prefix);
    }

    /// <summary>SynFlow gives an attention block's query and key projections no saliency: with the all-ones input
    /// every key is the same, so the Softmax's gradient to its scores vanishes. Said rather than left as an
    /// unexplained collapse.</summary>
    private static List<string> AttentionNotes(Model model, IReadOnlyList<LayerSaliency> layers)
    {
        var collapsed = layers.Where(l => l.Collapsed).Select(l => l.Layer).ToHashSet(StringComparer.Ordinal);
        if (collapsed.Count == 0) return [];
        var copy = model.Clone();
        ShapeInference.Run(copy);
        var qk = AttentionView.All(copy.Graph).SelectMany(a => new[] { a.Query.MatMul, a.Key.MatMul })
            .Select(n => n.ToString()).Where(collapsed.Contains).Distinct().ToList();
        return qk.Count == 0 ? [] : [$"{qk.Count} attention query/key projections collapse under SynFlow: with an "
            + "all-ones input every key is the same, so the attention Softmax passes them no gradient; their scores "
            + "say nothing about them (score them with method=magnitude, or prune heads as units)"];
    }
}
