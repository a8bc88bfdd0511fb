// A histogram of a stream of values in bounded memory: 2048 bins of width w for the non-negative
// values [0, 2048 w) and 2048 for the magnitudes of the negative ones, both anchored at 0. When a
// value falls outside, w doubles and adjacent bin pairs merge (bin i takes 2i and 2i+1), so the range
// grows without losing or moving any count. Exact count, min and max ride along.
//   width from the first non-zero batch: w = max|x| / 2048 (slightly widened so max falls inside)
//   bin of x >= 0: floor(x / w); of x < 0: floor(-x / w) in the negative half
namespace OnnxOpt.Calibration;

public sealed class SignedHistogram
{
    public const int Bins = 2048;

    public long[] Positive { get; } = new long[Bins];
    public long[] Negative { get; } = new long[Bins];
    /// <summary>Bin width (0 until a non-zero value is seen).</summary>
    public double Width { get; private set; }
    public long Count { get; private set; }
    public double Min { get; private set; } = double.PositiveInfinity;
    public double Max { get; private set; } = double.NegativeInfinity;
    private long _pendingZeros;

    public void Add(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) return;
        double amax = 0, mn = double.PositiveInfinity, mx = double.NegativeInfinity;
        foreach (var f in values)
        {
            if (float.IsNaN(f)) throw new OnnxOpt.GraphIR.OnnxModelException("a calibrated tensor holds NaN");
            if (f < mn) mn = f;
            if (f > mx) mx = f;
        }
        amax = Math.Max(Math.Abs(mn), Math.Abs(mx));
        Min = Math.Min(Min, mn); Max = Math.Max(Max, mx); Count += values.Length;
        if (amax == 0) { if (Width == 0) _pendingZeros += values.Length; else Positive[0] += values.Length; return; }
        if (double.IsInfinity(amax)) throw new OnnxOpt.GraphIR.OnnxModelException("a calibrated tensor holds an infinite value");
        if (Width == 0) { Width = amax / Bins * (1 + 1e-6); Positive[0] += _pendingZeros; _pendingZeros = 0; }
        while (amax >= Width * Bins) Grow();
        var inv = 1 / Width;
        foreach (var f in values)
        {
            if (f >= 0) Positive[Math.Min((int)(f * inv), Bins - 1)]++;
            else Negative[Math.Min((int)(-f * inv), Bins - 1)]++;
        }
    }

    private void Grow()
    {
        foreach (var h in new[] { Positive, Negative })
        {
            for (int i = 0; i < Bins / 2; i++) h[i] = h[2 * i] + h[2 * i + 1];
            Array.Clear(h, Bins / 2, Bins / 2);
        }
        Width *= 2;
    }

    /// <summary>Counts of |x| per bin (negative and non-negative halves added).</summary>
    public long[] Magnitudes()
    {
        var r = new long[Bins];
        for (int i = 0; i < Bins; i++) r[i] = Positive[i] + Negative[i];
        r[0] += _pendingZeros;
        return r;
    }
}
