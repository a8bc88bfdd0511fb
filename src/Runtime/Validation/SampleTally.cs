// The upper confidence bound of a measured drop. Choosing the best of many candidates on one evaluation set
// overfits it (the winner's drop is the one that came out lowest by chance), so a search judges a candidate by
// how large its drop could be, not by the drop it happened to show:
//   accuracy (paired, binomial): per sample d_i = ref_correct_i - cand_correct_i in {-1, 0, 1}; the drop is
//     mean(d) = (n10 - n01) / n and its variance (q - drop^2) / n with q = (n10 + n01) / n the share of samples the
//     two models score differently. The bound is drop + z sqrt((q~ - drop^2) / n), z the normal quantile of the
//     confidence, q~ = (n10 + n01 + z^2/2) / (n + z^2) (the Wilson/Agresti adjustment: no disagreement in n samples
//     still leaves width once they differ at all; when no sample scores differently the bound is the drop, as the
//     bootstrap's would be).
//   every other measure (agreement, cosine, IoU, SQNR, per-position agreement): the percentile bootstrap over
//     samples: each sample adds a small vector of sums (agreeing rows and rows; dot product and energies; ...), the
//     measure is a function of their totals, and the bound is the confidence quantile of the drop over 1,000
//     resamples (seeded, so the bound is deterministic).
// Before: drop 0.40 on 500 samples. After: drop 0.40, upper bound at 90% 0.95 (judged against max-drop).
namespace OnnxOpt.Runtime.Validation;

/// <summary>Per-sample sums of one measure, and its drop's upper confidence bound.</summary>
public sealed class SampleTally
{
    /// <summary>How a measure is computed from the totals of the per-sample sums.</summary>
    public enum Form
    {
        /// <summary>(reference correct, candidate correct): 100 (sum0 - sum1) / n; the paired binomial bound.</summary>
        Accuracy,
        /// <summary>(hits, count): 100 (1 - sum0 / sum1) (agreement, IoU, mean of per-sample cosines).</summary>
        Ratio,
        /// <summary>(dot, reference energy, candidate energy): 100 (1 - cosine).</summary>
        Cosine,
        /// <summary>(signal energy, error energy): 100 error / signal (SQNR's drop).</summary>
        Noise,
    }

    private readonly Form _form;
    private readonly List<double[]> _samples = [];
    private const int Resamples = 1000;

    public SampleTally(Form form) => _form = form;

    public int Count => _samples.Count;

    /// <summary>One sample's sums (as many as the form takes).</summary>
    public void Add(params double[] sums) => _samples.Add(sums);

    /// <summary>The drop in points of the totals.</summary>
    public double Drop() => DropOf(Totals(i => i));

    /// <summary>The one-sided upper bound of the drop at this confidence (between 0.5 and 1); the drop itself for
    /// a confidence of 0 or without samples.</summary>
    public double Upper(double confidence, int seed = 1)
    {
        var drop = Drop();
        if (confidence <= 0 || _samples.Count == 0 || double.IsNaN(drop)) return drop;
        if (confidence >= 1) throw new ArgumentOutOfRangeException(nameof(confidence), "must be below 1");
        var z = NormalQuantile(confidence);
        if (_form == Form.Accuracy)
        {
            double n = _samples.Count, differ = _samples.Count(s => s[0] != s[1]);
            // Not one sample scored differently: nothing to resample, as the bootstrap would find.
            if (differ == 0) return drop;
            var d = drop / 100;
            var q = (differ + z * z / 2) / (n + z * z);
            return 100 * (d + z * Math.Sqrt(Math.Max(q - d * d, 0) / n));
        }
        var rng = new Random(seed);
        var drops = new double[Resamples];
        var pick = new int[_samples.Count];
        for (int b = 0; b < Resamples; b++)
        {
            for (int i = 0; i < pick.Length; i++) pick[i] = rng.Next(pick.Length);
            drops[b] = DropOf(Totals(i => pick[i]));
        }
        Array.Sort(drops);
        var upper = drops[Math.Min(Resamples - 1, (int)Math.Ceiling(confidence * Resamples) - 1)];
        return Math.Max(upper, drop);
    }

    private double[] Totals(Func<int, int> index)
    {
        var t = new double[_samples.Count == 0 ? 0 : _samples[0].Length];
        for (int i = 0; i < _samples.Count; i++)
        {
            var s = _samples[index(i)];
            for (int k = 0; k < t.Length; k++) t[k] += s[k];
        }
        return t;
    }

    private double DropOf(double[] t) => t.Length == 0 ? 0 : _form switch
    {
        Form.Accuracy => 100 * (t[0] - t[1]) / _samples.Count,
        Form.Ratio => t[1] == 0 ? 0 : 100 * (1 - t[0] / t[1]),
        Form.Cosine => 100 * (1 - Fidelity.Cosine(t[0], t[1], t[2])),
        _ => t[0] == 0 ? (t[1] == 0 ? 0 : 100) : 100 * t[1] / t[0],
    };

    /// <summary>The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).</summary>
    public static double NormalQuantile(double p)
    {
        if (p <= 0 || p >= 1) throw new ArgumentOutOfRangeException(nameof(p));
        double[] a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
            -3.066479806614716e+01, 2.506628277459239e+00];
        double[] b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
            -1.328068155288572e+01];
        double[] c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
            4.374664141464968e+00, 2.938163982698783e+00];
        double[] d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double low = 0.02425;
        if (p < low || p > 1 - low)
        {
            var q = Math.Sqrt(-2 * Math.Log(p < low ? p : 1 - p));
            var x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
            return p < low ? x : -x;
        }
        var r = p - 0.5;
        var s = r * r;
        return (((((a[0] * s + a[1]) * s + a[2]) * s + a[3]) * s + a[4]) * s + a[5]) * r
            / (((((b[0] * s + b[1]) * s + b[2]) * s + b[3]) * s + b[4]) * s + 1);
    }
}
