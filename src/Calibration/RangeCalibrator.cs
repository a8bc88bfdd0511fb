// A range calibrator watches one activation tensor over the calibration batches (bounded memory: no
// activation is kept) and proposes the real range [min, max] its quantization should cover:
// symmetric for int8 activations (the range is [-t, t]), asymmetric for uint8 (any [lo, hi]; the
// quantizer then widens it to include 0). Methods: minmax (optionally a moving average of the batch
// extremes), percentile, entropy (KL), mse; see each file.
namespace OnnxOpt.Calibration;

public enum RangeKind { Asymmetric, Symmetric }

public abstract class RangeCalibrator
{
    public abstract void Observe(ReadOnlySpan<float> values);

    /// <summary>The range to quantize; for Symmetric, Min == -Max.</summary>
    public abstract (double Min, double Max) Range(RangeKind kind);

    public static readonly string[] Methods = ["minmax", "percentile", "entropy", "mse"];

    public static Func<RangeCalibrator> Factory(string method, double percentile = 99.999,
        bool movingAverage = false) => method switch
        {
            "minmax" => () => new MinMaxCalibrator(movingAverage),
            "percentile" => percentile is > 0 and <= 100 ? () => new PercentileCalibrator(percentile)
                : throw new OnnxOpt.GraphIR.OnnxModelException($"percentile {percentile} must be in (0, 100]"),
            "entropy" => () => new EntropyCalibrator(),
            "mse" => () => new MseCalibrator(),
            _ => throw new OnnxOpt.GraphIR.OnnxModelException(
                $"unknown calibration method '{method}' (methods: {string.Join(", ", Methods)})"),
        };

    protected static (double, double) Symmetric(double lo, double hi)
    {
        var t = Math.Max(Math.Abs(lo), Math.Abs(hi));
        return (-t, t);
    }
}

/// <summary>Calibrators that decide from a <see cref="SignedHistogram"/>.</summary>
public abstract class HistogramCalibrator : RangeCalibrator
{
    public SignedHistogram Histogram { get; } = new();

    public override void Observe(ReadOnlySpan<float> values) => Histogram.Add(values);

    /// <summary>Nothing seen, or only zeros: the range is [0, 0].</summary>
    protected bool Empty => Histogram.Width == 0;
}
