// entropy (KL divergence, as TensorRT's int8 calibrator): over a 2048-bin histogram of magnitudes, for
// every candidate threshold of i bins (i = 128 ... 2048):
//   P = the first i bins, the counts beyond folded into bin i-1 (clipping);
//   Q = the first i bins merged into 128 quantization levels, each level's count spread back evenly
//       over its non-empty bins (what quantizing to 128 levels keeps of P);
//   KL(P || Q) after normalizing (empty bins smoothed by 1e-4);
// the threshold is the upper edge i w of the candidate with the smallest KL: below the max whenever
// clipping a sparse tail costs less information than the coarser steps it would need.
// Candidates never clip more than 0.1% of the values: KL ignores how far clipped values move, so on
// spiky data (an image background at its minimum) it would otherwise clip a mass of real values.
// Bin 0 is given bin 1's count first (as NVIDIA's pytorch-quantization does): the spike of exact zeros
// a ReLU leaves would otherwise dominate the KL and drag the threshold down.
// Symmetric (int8): one threshold t over |x|, range [-t, t]. Asymmetric (uint8): the positive and the
// negative side each get their own threshold from their own histogram, so a spike on one side (e.g. an
// image's background value) does not clip the other.
namespace OnnxOpt.Calibration;

public sealed class EntropyCalibrator(int targetBins = 128) : HistogramCalibrator
{
    public override (double Min, double Max) Range(RangeKind kind)
    {
        var h = Histogram;
        if (Empty) return (0, 0);
        if (kind == RangeKind.Symmetric)
        {
            var t = Math.Min(Threshold(h.Magnitudes(), targetBins) * h.Width, Math.Max(Math.Abs(h.Min),
                Math.Abs(h.Max)));
            return (-t, t);
        }
        double hi = h.Max > 0 ? Math.Min(h.Max, Threshold(h.Positive, targetBins) * h.Width) : Math.Max(h.Max, 0);
        double lo = h.Min < 0 ? Math.Max(h.Min, -Threshold(h.Negative, targetBins) * h.Width) : Math.Min(h.Min, 0);
        return (lo, hi);
    }

    /// <summary>The number of bins i (target .. counts.Length) whose clipped distribution is closest in KL to its quantized version.</summary>
    public static int Threshold(long[] histogram, int target, double maxClipFraction = 1e-3)
    {
        var counts = (long[])histogram.Clone();
        double total = counts.Sum(c => (double)c);
        int n = counts.Length;
        int last = n;
        while (last > 0 && counts[last - 1] == 0) last--;
        if (last <= target) return Math.Max(last, 1);
        // Smallest i that clips at most maxClipFraction of the values.
        int first = last;
        for (double beyond = 0; first > target
            && beyond + counts[first - 1] <= maxClipFraction * total; first--) beyond += counts[first - 1];
        if (counts.Length > 1) counts[0] = counts[1];
        var p = new double[n];
        var q = new double[n];
        double bestKl = double.PositiveInfinity;
        int best = n;
        double tailFromI = counts.Skip(first).Sum(c => (double)c);
        for (int i = first; i <= n; i++)
        {
            if (i > first) tailFromI -= counts[i - 1];
            for (int k = 0; k < i; k++) p[k] = counts[k];
            p[i - 1] += tailFromI;
            for (int j = 0; j < target; j++)
            {
                int start = (int)((long)j * i / target), stop = (int)((long)(j + 1) * i / target);
                double sum = 0; int nonzero = 0;
                for (int k = start; k < stop; k++) { sum += counts[k]; if (counts[k] != 0) nonzero++; }
                for (int k = start; k < stop; k++) q[k] = counts[k] != 0 && nonzero > 0 ? sum / nonzero : 0;
            }
            var kl = KlDivergence(p, q, i);
            if (kl < bestKl) { bestKl = kl; best = i; }
        }
        return best;
    }

    private static double KlDivergence(double[] p, double[] q, int len)
    {
        const double eps = 1e-4;
        double sp = 0, sq = 0;
        for (int k = 0; k < len; k++) { sp += p[k]; sq += q[k]; }
        if (sp == 0 || sq == 0) return double.PositiveInfinity;
        // Smooth: empty bins get eps, taken evenly from the non-empty ones (as the reference implementations do).
        double Smoothed(double[] d, double total, int k, int zeros, int nonzero) =>
            d[k] == 0 ? eps : d[k] / total - (nonzero > 0 ? eps * zeros / nonzero : 0);
        int zp = 0, zq = 0;
        for (int k = 0; k < len; k++) { if (p[k] == 0) zp++; if (q[k] == 0) zq++; }
        double kl = 0;
        for (int k = 0; k < len; k++)
        {
            if (p[k] == 0) continue;
            var pk = Smoothed(p, sp, k, zp, len - zp);
            var qk = Smoothed(q, sq, k, zq, len - zq);
            if (pk <= 0) continue;
            kl += pk * Math.Log(pk / Math.Max(qk, 1e-12));
        }
        return kl;
    }
}
