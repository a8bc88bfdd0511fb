// Which measure a budget is judged on (--metric, --output, --pool), and how the default is chosen from the output:
//   accuracy   labels given and the output is [batch, classes]: reference accuracy - candidate accuracy, in points
//   agreement  [batch, classes]: 100 - top-1 agreement (%); on pooled embeddings: 100 - nearest-neighbour agreement
//              (the share of samples whose most similar other sample, by cosine, is the same for both models)
//   cosine     100 x (1 - cosine); on pooled embeddings the mean over samples of each sample's cosine
//   sqnr       the noise power as a share of the signal power, in %: 100 x 10^(-SQNR/10) (20 dB -> 1 point)
//   iou:T      a probability or score map (a text detector's): the elements above T in each model, compared as
//              sets, IoU = |A and B| / |A or B| over every sample; the drop is 100 x (1 - IoU)
//   agreement on a [batch, positions, classes] output (a recognizer's per-position softmax): the share of
//              positions whose argmax over the last axis is the same, 100 - that %
// Pooling: a [batch, sequence, hidden] output of a model with an attention_mask input is, by default, scored as
// the masked mean over the sequence, e(i) = sum_t m(i,t) h(i,t) / sum_t m(i,t): the sentence embedding a sentence
// encoder is used for. Default metric: accuracy with labels on a classifier, agreement on a classifier, cosine
// otherwise (pooled or not). The resolved choice is said in every report.
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Runtime.Validation;

public enum MetricKind { Auto, Accuracy, Agreement, Cosine, Sqnr, Iou }

public enum Pooling { Auto, None, Mean }

/// <summary>What the user asked for (Auto: chosen from the output's shape).</summary>
public sealed record MetricSpec(MetricKind Kind = MetricKind.Auto, string? Output = null, Pooling Pool = Pooling.Auto)
{
    public static readonly MetricSpec Default = new();

    /// <summary>iou: the score above which an element counts as on (iou:0.3).</summary>
    public double Threshold { get; init; } = 0.5;

    public static MetricKind ParseKind(string? s) => Parse(s).Kind;

    /// <summary>"--metric" text: a kind, and for iou its threshold ("iou:0.3", default 0.5).</summary>
    public static (MetricKind Kind, double Threshold) Parse(string? s)
    {
        var text = s?.ToLowerInvariant();
        if (text is not null && text.StartsWith("iou", StringComparison.Ordinal))
        {
            if (text == "iou") return (MetricKind.Iou, 0.5);
            if (text[3] == ':' && double.TryParse(text[4..], System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var t) && double.IsFinite(t))
                return (MetricKind.Iou, t);
            throw new OnnxModelException($"--metric {s}: expected iou:THRESHOLD, e.g. iou:0.3");
        }
        return (text switch
        {
            null or "" or "auto" => MetricKind.Auto,
            "accuracy" => MetricKind.Accuracy,
            "agreement" => MetricKind.Agreement,
            "cosine" => MetricKind.Cosine,
            "sqnr" => MetricKind.Sqnr,
            _ => throw new OnnxModelException(
                $"--metric {s}: expected accuracy, agreement, cosine, sqnr, iou:T or auto"),
        }, 0.5);
    }

    public static Pooling ParsePool(string? s) => s?.ToLowerInvariant() switch
    {
        null or "" or "auto" => Pooling.Auto,
        "none" => Pooling.None,
        "mean" => Pooling.Mean,
        _ => throw new OnnxModelException($"--pool {s}: expected mean, none or auto"),
    };
}

/// <summary>The measure in force: on which output, pooled by which mask input, and how it reads.</summary>
public sealed record ResolvedMetric(MetricKind Kind, string Output, string? MaskInput)
{
    public bool Pooled => MaskInput is not null;

    /// <summary>iou: the threshold; agreement on a [batch, positions, classes] output: per position.</summary>
    public double Threshold { get; init; } = 0.5;
    public bool PerPosition { get; init; }

    public string Name => Kind switch
    {
        MetricKind.Accuracy => "accuracy",
        MetricKind.Agreement => Pooled ? "neighbour agreement" : PerPosition ? "per-position agreement"
            : "top-1 agreement",
        MetricKind.Cosine => "cosine",
        MetricKind.Iou => FormattableString.Invariant($"IoU above {Threshold:G4}"),
        _ => "SQNR",
    };

    /// <summary>"cosine of the mean-pooled last_hidden_state (masked by attention_mask)".</summary>
    public string Description => Pooled
        ? $"{Name} of the mean-pooled {Output} (masked by {MaskInput})"
        : $"{Name} of {Output}";

    public static ResolvedMetric Resolve(MetricSpec spec, IReadOnlyList<IoInfo> outputs, IReadOnlyList<IoInfo> inputs,
        bool hasLabels)
    {
        var output = spec.Output is null ? outputs[0]
            : outputs.FirstOrDefault(o => o.Name == spec.Output) ?? throw new OnnxModelException(
                $"--output {spec.Output}: the model has no output '{spec.Output}' (outputs: "
                + string.Join(", ", outputs.Select(o => o.Name)) + ")");
        var rank = output.Shape?.Rank;
        var mask = inputs.FirstOrDefault(i => i.Range?.IsMask == true && i.Name.Contains("mask",
            StringComparison.OrdinalIgnoreCase)) ?? inputs.FirstOrDefault(i => i.Range?.IsMask == true);
        string? pooledBy = spec.Pool switch
        {
            Pooling.Mean => rank is 3 or null ? mask?.Name ?? throw new OnnxModelException(
                "--pool mean: the model has no attention mask input to pool with") : throw new OnnxModelException(
                $"--pool mean: output '{output.Name}' is not [batch, sequence, hidden]"),
            Pooling.None => null,
            _ => rank == 3 ? mask?.Name : null,
        };
        bool classifier = pooledBy is null && rank == 2 && output.Shape!.Dims[1].Value is not 1;
        var kind = spec.Kind;
        if (kind == MetricKind.Auto)
            kind = classifier ? (hasLabels ? MetricKind.Accuracy : MetricKind.Agreement) : MetricKind.Cosine;
        if (kind == MetricKind.Accuracy && (!hasLabels || !classifier))
            throw new OnnxModelException($"--metric accuracy needs labels (labels.npy) and a [batch, classes] "
                + $"output; '{output.Name}' " + (classifier ? "has no labels" : "is not one"));
        bool perPosition = kind == MetricKind.Agreement && !classifier && pooledBy is null && rank >= 3;
        if (kind == MetricKind.Agreement && !classifier && pooledBy is null && !perPosition)
            throw new OnnxModelException($"--metric agreement: '{output.Name}' is neither [batch, classes], "
                + "[batch, positions, classes] nor a pooled embedding (--pool mean)");
        return new ResolvedMetric(kind, output.Name, pooledBy)
        {
            Threshold = spec.Threshold,
            PerPosition = perPosition,
        };
    }
}

/// <summary>Mean-pooled embeddings of both models, sample by sample, for the pooled cosine and the
/// nearest-neighbour agreement.</summary>
public sealed class PooledComparison
{
    private readonly List<double[]> _ref = [], _cand = [];

    public int Samples => _ref.Count;

    /// <summary>Adds a batch: outputs [batch, sequence, hidden], mask [batch, sequence] (any numeric type).</summary>
    public void Add(Tensor reference, Tensor candidate, Tensor mask)
    {
        _ref.AddRange(Pool(reference, mask));
        _cand.AddRange(Pool(candidate, mask));
    }

    public static List<double[]> Pool(Tensor h, Tensor mask)
    {
        if (h.Dims.Length != 3) throw new OnnxModelException($"pooling needs a [batch, sequence, hidden] output, not "
            + $"[{string.Join(",", h.Dims)}]");
        var (b, s, d) = ((int)h.Dims[0], (int)h.Dims[1], (int)h.Dims[2]);
        var m = mask.ToDoubleArray();
        if (m.Length != b * s) throw new OnnxModelException($"mask [{string.Join(",", mask.Dims)}] does not match the "
            + $"output's [batch, sequence] = [{b},{s}]");
        var v = h.ToFloatArray();
        var result = new List<double[]>(b);
        for (int i = 0; i < b; i++)
        {
            var e = new double[d];
            double w = 0;
            for (int t = 0; t < s; t++)
            {
                var mt = m[i * s + t];
                if (mt == 0) continue;
                w += mt;
                for (int k = 0; k < d; k++) e[k] += mt * v[((long)i * s + t) * d + k];
            }
            if (w > 0) for (int k = 0; k < d; k++) e[k] /= w;
            result.Add(e);
        }
        return result;
    }

    /// <summary>Each sample's cosine between the two models' embeddings.</summary>
    public IEnumerable<double> SampleCosines() => _ref.Zip(_cand, CosineOf);

    /// <summary>Mean over samples of the cosine between the two models' embeddings.</summary>
    public double MeanCosine => _ref.Count == 0 ? 1 : _ref.Zip(_cand, CosineOf).Average();

    /// <summary>% of samples whose nearest other sample (by cosine) is the same under both models.</summary>
    public double NeighbourAgreement
    {
        get
        {
            if (_ref.Count < 2) return 100;
            var a = Nearest(_ref);
            var b = Nearest(_cand);
            return Fidelity.Percent(a.Zip(b).LongCount(p => p.First == p.Second), a.Length);
        }
    }

    private static int[] Nearest(List<double[]> e)
    {
        var n = e.Count;
        var norm = e.Select(x => Math.Sqrt(x.Sum(v => v * v))).ToArray();
        var best = new int[n];
        for (int i = 0; i < n; i++)
        {
            double top = double.NegativeInfinity;
            for (int j = 0; j < n; j++)
            {
                if (j == i) continue;
                double dot = 0;
                for (int k = 0; k < e[i].Length; k++) dot += e[i][k] * e[j][k];
                var c = norm[i] == 0 || norm[j] == 0 ? 0 : dot / (norm[i] * norm[j]);
                if (c > top) { top = c; best[i] = j; }
            }
        }
        return best;
    }

    private static double CosineOf(double[] x, double[] y)
    {
        double dot = 0, xx = 0, yy = 0;
        for (int k = 0; k < x.Length; k++) { dot += x[k] * y[k]; xx += x[k] * x[k]; yy += y[k] * y[k]; }
        return Fidelity.Cosine(dot, xx, yy);
    }
}

/// <summary>The budget's measure on one comparison: the reference's and candidate's values where they have one
/// (accuracy), the candidate's agreement or similarity otherwise, and the drop in points.</summary>
public sealed record MetricResult(ResolvedMetric Metric, double Value, double DropPoints, double? ReferenceValue = null)
{
    /// <summary>The measure's per-sample sums, for the drop's confidence bound (null: not a sum over
    /// samples).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public SampleTally? Tally { get; init; }

    /// <summary>The drop's one-sided upper bound at this confidence (SampleTally); the drop itself for confidence 0
    /// or a measure without per-sample sums.</summary>
    public double UpperDrop(double confidence) => Tally?.Upper(confidence) ?? DropPoints;

    public override string ToString() => Metric.Kind switch
    {
        MetricKind.Accuracy => FormattableString.Invariant(
            $"{Metric.Description}: {ReferenceValue:F2}% -> {Value:F2}% (drop {DropPoints:F2} points)"),
        MetricKind.Agreement => FormattableString.Invariant(
            $"{Metric.Description}: {Value:F2}% (drop {DropPoints:F2} points)"),
        MetricKind.Cosine => FormattableString.Invariant(
            $"{Metric.Description}: {Value:F6} (drop {DropPoints:F3} points)"),
        MetricKind.Iou => FormattableString.Invariant(
            $"{Metric.Description}: {Value:F4} (drop {DropPoints:F2} points)"),
        _ => FormattableString.Invariant($"{Metric.Description}: {Value:F1} dB (drop {DropPoints:F3} points)"),
    };
}
