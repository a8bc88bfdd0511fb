// Streaming statistics of one activation tensor over calibration data, per tensor and per channel
// (axis 1 of a rank >= 2 tensor): count, min, max, mean, the fraction below 0, the fraction above a
// clip maximum (ReLU6's 6), and the energy of the negative part sum(min(z,0)^2) against the total
// sum(z^2). Updating is O(elements) with O(channels) memory: no activation is kept.
//
// For an activation act(z) these say how linear it is on the data: a ReLU whose input is never
// negative (fraction < 0 == 0) is exactly the identity there; the negative-energy ratio measures
// how much the linearization z -> z would change its output.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Calibration;

public sealed class ChannelStats
{
    public long Count;
    public double Min = double.PositiveInfinity, Max = double.NegativeInfinity, Sum, SumSq, NegCount, AboveCount, NegEnergy, AboveEnergy;
    /// <summary>Sums for a least-squares fit of act(z) ~ a*z + b over the channel.</summary>
    public double SumAct, SumZAct;

    public double Mean => Count == 0 ? 0 : Sum / Count;
    public double FractionNegative => Count == 0 ? 0 : NegCount / Count;
    public double FractionAbove => Count == 0 ? 0 : AboveCount / Count;
    public double NegativeEnergyRatio => SumSq == 0 ? 0 : NegEnergy / SumSq;
    public double AboveEnergyRatio => SumSq == 0 ? 0 : AboveEnergy / SumSq;
}

public sealed class TensorStatistics(string name, double clipMax = double.PositiveInfinity)
{
    public string Name { get; } = name;
    public double ClipMax { get; } = clipMax;
    public ChannelStats Total { get; } = new();
    public ChannelStats[] Channels { get; private set; } = [];

    /// <summary>Per-channel statistics of each named value over the calibration data, in one streaming pass (no
    /// activation kept).</summary>
    public static Dictionary<string, TensorStatistics> Collect(CalibrationSource source, Model model,
        IReadOnlyList<string> names, string? progressLabel = null)
    {
        var distinct = names.Distinct().ToList();
        var stats = distinct.ToDictionary(n => n, n => new TensorStatistics(n), StringComparer.Ordinal);
        if (distinct.Count > 0)
            source.Stream(model, distinct, (_, outs) =>
            {
                for (int i = 0; i < distinct.Count; i++) stats[distinct[i]].Add(outs[i]);
            }, progressLabel);
        return stats;
    }

    /// <summary>Adds a batch. <paramref name="activated"/>, when given, is act(z) for the same elements
    /// (used to fit per-channel affine replacements).</summary>
    public void Add(Tensor z, Tensor? activated = null)
    {
        var x = z.ToFloatArray();
        var y = activated?.ToFloatArray();
        var channels = z.Dims.Length >= 2 ? (int)z.Dims[1] : 1;
        var inner = z.Dims.Length >= 2 ? (int)z.Dims.Skip(2).Aggregate(1L, (a, b) => a * b) : x.Length;
        if (Channels.Length == 0) Channels = Enumerable.Range(0, channels).Select(_ => new ChannelStats()).ToArray();
        if (Channels.Length != channels) throw new OnnxModelException($"value '{Name}' changed its channel count between batches");
        var outer = x.Length / Math.Max(1, channels * inner);
        for (int o = 0; o < outer; o++)
            for (int c = 0; c < channels; c++)
            {
                var s = Channels[c];
                var off = (o * channels + c) * inner;
                for (int i = 0; i < inner; i++)
                {
                    double v = x[off + i];
                    s.Count++;
                    if (v < s.Min) s.Min = v;
                    if (v > s.Max) s.Max = v;
                    s.Sum += v; s.SumSq += v * v;
                    if (v < 0) { s.NegCount++; s.NegEnergy += v * v; }
                    if (v > ClipMax) { s.AboveCount++; s.AboveEnergy += (v - ClipMax) * (v - ClipMax); }
                    if (y is not null) { double a = y[off + i]; s.SumAct += a; s.SumZAct += v * a; }
                }
            }
        Aggregate();
    }

    private void Aggregate()
    {
        var t = Total;
        t.Count = 0; t.Min = double.PositiveInfinity; t.Max = double.NegativeInfinity;
        t.Sum = t.SumSq = t.NegCount = t.AboveCount = t.NegEnergy = t.AboveEnergy = t.SumAct = t.SumZAct = 0;
        foreach (var s in Channels)
        {
            t.Count += s.Count; t.Min = Math.Min(t.Min, s.Min); t.Max = Math.Max(t.Max, s.Max);
            t.Sum += s.Sum; t.SumSq += s.SumSq; t.NegCount += s.NegCount; t.AboveCount += s.AboveCount;
            t.NegEnergy += s.NegEnergy; t.AboveEnergy += s.AboveEnergy; t.SumAct += s.SumAct; t.SumZAct += s.SumZAct;
        }
    }

    /// <summary>Per-channel least-squares fit act(z) ~ a_c*z + b_c (a=1, b=0 for a constant channel).</summary>
    public (double A, double B)[] AffineFit() => Channels.Select(s =>
    {
        var n = (double)s.Count;
        var varZ = s.SumSq / n - s.Mean * s.Mean;
        if (n == 0 || varZ <= 1e-12 * Math.Max(1, s.SumSq / n)) return (1.0, s.Count == 0 ? 0 : s.SumAct / n - s.Mean);
        var cov = s.SumZAct / n - s.Mean * (s.SumAct / n);
        var a = cov / varZ;
        return (a, s.SumAct / n - a * s.Mean);
    }).ToArray();
}
