// percentile (default 99.999): clip the rarest values. Symmetric: t is the p-th percentile of |x|,
// range [-t, t]. Asymmetric: (100 - p)% of the values are cut from each tail, hi from the top and lo
// from the bottom of the signed distribution. A quantile is read as the outer edge of the bin where
// the cumulative count reaches it, and never exceeds the observed min/max.
namespace OnnxOpt.Calibration;

public sealed class PercentileCalibrator(double percentile = 99.999) : HistogramCalibrator
{
    public double Percentile { get; } = percentile;

    public override (double Min, double Max) Range(RangeKind kind)
    {
        var h = Histogram;
        if (Empty) return (0, 0);
        var w = h.Width;
        var tail = (1 - Percentile / 100) * h.Count;
        if (kind == RangeKind.Symmetric)
        {
            var mag = h.Magnitudes();
            double above = 0;
            int i = SignedHistogram.Bins - 1;
            while (i > 0 && above + mag[i] <= tail) above += mag[i--];
            var t = Math.Min((i + 1) * w, Math.Max(Math.Abs(h.Min), Math.Abs(h.Max)));
            return (-t, t);
        }
        // Signed order: Negative[Bins-1] (most negative) ... Negative[0], Positive[0] ... Positive[Bins-1].
        double hi = h.Max, lo = h.Min, acc = 0;
        for (int i = SignedHistogram.Bins - 1; i >= 0; i--)
        {
            if (acc + h.Positive[i] > tail) { hi = Math.Min(hi, (i + 1) * w); break; }
            acc += h.Positive[i];
            if (i == 0) hi = Math.Min(hi, 0);
        }
        acc = 0;
        for (int i = SignedHistogram.Bins - 1; i >= 0; i--)
        {
            if (acc + h.Negative[i] > tail) { lo = Math.Max(lo, -(i + 1) * w); break; }
            acc += h.Negative[i];
            if (i == 0) lo = Math.Max(lo, 0);
        }
        return (lo, Math.Max(hi, lo));
    }
}
