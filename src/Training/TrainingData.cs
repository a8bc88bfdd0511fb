// A training set held in memory as float samples (sample-major per input, labels if any), cut into seeded
// minibatches: each epoch is a fresh permutation from the run's SplitMix64 stream, so a seed fixes every
// batch. Optional augmentations for image inputs [N, C, H, W]: horizontal flip (p = 1/2) and a shift by
// up to `shift` pixels in each direction (vacated pixels are zero; negative: 1/14 of the smaller side, at least 1),
// drawn per sample from the same stream.
// Mixup (Zhang et al. 2018) for any float input: sample i becomes lam x_i + (1 - lam) x_j, j another sample
// of the batch, lam ~ Beta(alpha, alpha) per sample (the same lam for every input of the sample). With a
// teacher this needs no labels: the teacher answers the mixed image, so a few hundred samples give the
// student an unbounded set of points between them to match (a distillation regulariser, not a label trick).
// Token swap, its counterpart for token models (the token-id input: integer [N, S], the largest ids): each token
// under the attention mask but the first ([CLS]) becomes, with probability p, a token drawn from the batch's
// (TinyBERT's data augmentation, without a language model: the teacher labels whatever sentence results).
using OnnxOpt.Autodiff;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Training;

public sealed class TrainingData
{
    private readonly List<string> _names = new();
    private readonly List<int[]> _sampleShapes = new();
    private readonly List<float[]> _data = new();
    private readonly List<DataType> _types = new();

    public int Count { get; private set; }
    public long[]? Labels { get; private set; }
    public IReadOnlyList<string> InputNames => _names;
    /// <summary>Whether some input is float (the only kind flips, shifts and mixup change).</summary>
    public bool HasFloatInputs => _types.Any(t => t.IsFloatingPoint());

    /// <summary>The token-id input token swap changes: integer [N, S], not a mask, the largest values; or null.
    /// </summary>
    public string? TokenInput => (_tokenInput ??= new(() => Enumerable.Range(0, _names.Count)
        .Where(k => !_types[k].IsFloatingPoint() && _sampleShapes[k].Length == 1 && !IsMask(k))
        .OrderByDescending(k => _data[k].DefaultIfEmpty().Max()).Select(k => _names[k]).FirstOrDefault())).Value;

    /// <summary>The token input's length per sample (a sentence's tokens, padding included), or null.</summary>
    public long? SequenceLength => TokenInput is { } t ? _sampleShapes[_names.IndexOf(t)][0] : null;

    // Found once: the data does not change after loading (Gather asks every step).
    private Lazy<string?>? _tokenInput;

    private bool IsMask(int k) => _names[k].Contains("mask", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads every sample of the data set (float inputs; integer inputs are kept as their values).</summary>
    public static TrainingData Load(DataSet set, long maxBytes = 4L << 30)
    {
        var d = new TrainingData();
        var parts = new List<List<float[]>>();
        var labels = new List<long>();
        long bytes = 0;
        foreach (var b in set.Batches(64))
        {
            if (d._names.Count == 0)
                foreach (var (name, t) in b.Inputs.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    d._names.Add(name);
                    d._types.Add(t.ElementType);
                    d._sampleShapes.Add(t.Dims.Skip(1).Select(x => checked((int)x)).ToArray());
                    parts.Add(new List<float[]>());
                }
            int n = 0;
            for (int k = 0; k < d._names.Count; k++)
            {
                var t = b.Inputs[d._names[k]];
                n = t.Dims.Length == 0 ? 1 : (int)t.Dims[0];
                var f = t.ToFloatArray();
                bytes += 4L * f.Length;
                if (bytes > maxBytes)
                    throw new OnnxModelException($"training data {set.Description}: more than {maxBytes >> 20} MB; "
                        + "give fewer samples");
                parts[k].Add(f);
            }
            d.Count += n;
            if (b.Labels is { } l) labels.AddRange(l);
        }
        if (d.Count == 0) throw new OnnxModelException($"training data {set.Description} holds no samples");
        for (int k = 0; k < d._names.Count; k++) d._data.Add(parts[k].SelectMany(x => x).ToArray());
        if (labels.Count == d.Count) d.Labels = labels.ToArray();
        return d;
    }

    /// <summary>From arrays already in memory (sample-major, axis 0 the sample).</summary>
    public static TrainingData FromArrays(IReadOnlyDictionary<string, NdArray<float>> inputs, long[]? labels = null)
    {
        var d = new TrainingData();
        foreach (var (name, a) in inputs.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            d._names.Add(name); d._types.Add(DataType.Float);
            d._sampleShapes.Add(a.Shape[1..]); d._data.Add(a.R);
            d.Count = a.Shape[0];
        }
        d.Labels = labels;
        return d;
    }

    public int SampleSize(int input) => NdArray<float>.Size(_sampleShapes[input]);

    /// <summary>The batch of the given samples, as evaluator inputs, optionally augmented.</summary>
    public Dictionary<string, NdArray<float>> Gather(ReadOnlySpan<int> samples, SplitMix64? augment = null,
        bool flip = false, int shift = 0, double mixup = 0, double tokenSwap = 0)
    {
        var r = new Dictionary<string, NdArray<float>>(StringComparer.Ordinal);
        var tokens = augment is not null && tokenSwap > 0 ? TokenInput : null;
        var (partner, lam) = augment is not null && mixup > 0 && samples.Length > 1
            ? MixPairs(samples.Length, mixup, augment) : (null, null);
        for (int k = 0; k < _names.Count; k++)
        {
            int per = SampleSize(k);
            var shape = new[] { samples.Length }.Concat(_sampleShapes[k]).ToArray();
            var a = new float[samples.Length * per];
            for (int i = 0; i < samples.Length; i++)
                Array.Copy(_data[k], (long)samples[i] * per, a, (long)i * per, per);
            if (partner is not null && _types[k] == DataType.Float) Mix(a, per, samples, partner, lam!, _data[k]);
            if (augment is not null && _sampleShapes[k].Length == 3 && _types[k] == DataType.Float)
                Augment(a, samples.Length, _sampleShapes[k], augment, flip, shift);
            if (_names[k] == tokens) SwapTokens(a, samples, per, augment!, tokenSwap);
            r[_names[k]] = _types[k] == DataType.Float ? new NdArray<float>(shape, a)
                : new NdArray<float>(shape, a.Select(v => (long)v).ToArray(), _types[k]);
        }
        return r;
    }

    /// <summary>The same samples as IR tensors (for a teacher run by ONNX Runtime).</summary>
    public Dictionary<string, Tensor> AsTensors(IReadOnlyDictionary<string, NdArray<float>> batch) =>
        batch.ToDictionary(kv => kv.Key, kv => kv.Value.ToTensor(kv.Key,
            _types[_names.IndexOf(kv.Key)] == DataType.Float ? DataType.Float : _types[_names.IndexOf(kv.Key)]));

    /// <summary>Token swap on a batch of token ids [n, per]: positions under the mask (all without one) but the
    /// first take, with probability p, the token at a random such position of the batch.</summary>
    private void SwapTokens(float[] a, ReadOnlySpan<int> samples, int per, SplitMix64 rng, double p)
    {
        var maskInput = Enumerable.Range(0, _names.Count).FirstOrDefault(k => IsMask(k) && SampleSize(k) == per, -1);
        var idx = samples.ToArray();
        bool Live(int i, int t) => t > 0 && (maskInput < 0 || _data[maskInput][(long)idx[i] * per + t] != 0);
        var pool = new List<float>();
        for (int i = 0; i < samples.Length; i++)
            for (int t = 0; t < per; t++)
                if (Live(i, t)) pool.Add(a[i * per + t]);
        if (pool.Count == 0) return;
        for (int i = 0; i < samples.Length; i++)
            for (int t = 0; t < per; t++)
                if (Live(i, t) && rng.NextDouble() < p) a[i * per + t] = pool[(int)(rng.Next() % (ulong)pool.Count)];
    }

    /// <summary>For each sample of a batch, another sample of it (never itself) and lam ~ Beta(alpha, alpha).</summary>
    private static (int[], float[]) MixPairs(int n, double alpha, SplitMix64 rng)
    {
        var partner = new int[n];
        var lam = new float[n];
        for (int i = 0; i < n; i++)
        {
            int j = (int)(rng.Next() % (ulong)(n - 1));
            partner[i] = j >= i ? j + 1 : j;
            double a = Gamma(alpha, rng), b = Gamma(alpha, rng);
            lam[i] = (float)(a + b > 0 ? a / (a + b) : 0.5);
        }
        return (partner, lam);
    }

    private static void Mix(float[] a, int per, ReadOnlySpan<int> samples, int[] partner, float[] lam, float[] data)
    {
        for (int i = 0; i < samples.Length; i++)
        {
            var dst = a.AsSpan(i * per, per);
            var other = data.AsSpan(checked((int)((long)samples[partner[i]] * per)), per);
            float l = lam[i], m = 1 - l;
            for (int e = 0; e < per; e++) dst[e] = l * dst[e] + m * other[e];
        }
    }

    /// <summary>Gamma(shape, 1) by Marsaglia and Tsang (shape &lt; 1 through Gamma(shape + 1) U^(1/shape)).</summary>
    internal static double Gamma(double shape, SplitMix64 rng)
    {
        if (shape < 1) return Gamma(shape + 1, rng) * Math.Pow(1.0 - rng.NextDouble(), 1 / shape);
        double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x = rng.NextGaussian(), v = 1 + c * x;
            if (v <= 0) continue;
            v = v * v * v;
            double u = 1.0 - rng.NextDouble();
            if (Math.Log(u) < 0.5 * x * x + d - d * v + d * Math.Log(v)) return d * v;
        }
    }

    private static void Augment(float[] a, int n, int[] chw, SplitMix64 rng, bool flip, int shift)
    {
        int c = chw[0], h = chw[1], w = chw[2], per = c * h * w;
        if (shift < 0) shift = Math.Max(1, (int)Math.Round(Math.Min(h, w) / 14.0));
        var tmp = new float[per];
        for (int s = 0; s < n; s++)
        {
            bool f = flip && rng.Next() % 2 == 1;
            int dy = shift > 0 ? (int)(rng.Next() % (ulong)(2 * shift + 1)) - shift : 0;
            int dx = shift > 0 ? (int)(rng.Next() % (ulong)(2 * shift + 1)) - shift : 0;
            if (!f && dy == 0 && dx == 0) continue;
            var img = a.AsSpan(s * per, per);
            img.CopyTo(tmp);
            img.Clear();
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                {
                    int sy = y - dy;
                    if (sy < 0 || sy >= h) continue;
                    for (int x = 0; x < w; x++)
                    {
                        int sx = x - dx;
                        if (sx < 0 || sx >= w) continue;
                        int srcX = f ? w - 1 - sx : sx;
                        img[(ch * h + y) * w + x] = tmp[(ch * h + sy) * w + srcX];
                    }
                }
        }
    }
}

/// <summary>Seeded epochs of shuffled sample indices, cut into batches (the last partial batch of an epoch is
/// merged into the next epoch's stream, so every batch is full).</summary>
public sealed class BatchSampler(int count, int batch, SplitMix64 rng)
{
    private int[] _perm = [];
    private int _pos;

    public int[] Next()
    {
        var b = new int[Math.Min(batch, count)];
        for (int i = 0; i < b.Length; i++)
        {
            if (_pos >= _perm.Length) { _perm = Permutation(count, rng); _pos = 0; }
            b[i] = _perm[_pos++];
        }
        return b;
    }

    public static int[] Permutation(int n, SplitMix64 rng)
    {
        var p = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)(rng.Next() % (ulong)(i + 1));
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
