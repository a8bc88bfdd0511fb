// mse: the range that minimizes the expected squared quantization error, estimated from the histogram
// at bin centres c with counts n:
//   error(c) = (c - hi)^2 above the range, (lo - c)^2 below it, step^2 / 12 inside (uniform rounding),
//   step = (hi - lo) / 255 (uint8) or 2t / 254 (int8 symmetric);
// candidates shrink the observed range by k/200, k = 1 ... 200.
namespace OnnxOpt.Calibration;

public sealed class MseCalibrator : HistogramCalibrator
{
    private const int Candidates = 200;

    public override (double Min, double Max) Range(RangeKind kind)
    {
        var h = Histogram;
        if (Empty) return (0, 0);
        double lo0 = Math.Min(h.Min, 0), hi0 = Math.Max(h.Max, 0), w = h.Width;
        if (kind == RangeKind.Symmetric) { var t0 = Math.Max(-lo0, hi0); lo0 = -t0; hi0 = t0; }
        double levels = kind == RangeKind.Symmetric ? 254 : 255;
        double bestErr = double.PositiveInfinity, bestLo = lo0, bestHi = hi0;
        for (int k = 1; k <= Candidates; k++)
        {
            double lo = lo0 * k / Candidates, hi = hi0 * k / Candidates;
            double step = (hi - lo) / levels, inside = step * step / 12, err = 0;
            for (int i = 0; i < SignedHistogram.Bins; i++)
            {
                double c = (i + 0.5) * w;
                if (h.Positive[i] != 0) err += h.Positive[i] * (c > hi ? (c - hi) * (c - hi) : inside);
                if (h.Negative[i] != 0) err += h.Negative[i] * (-c < lo ? (lo + c) * (lo + c) : inside);
            }
            if (err < bestErr) { bestErr = err; bestLo = lo; bestHi = hi; }
        }
        return (bestLo, bestHi);
    }
}
