// minmax: the range is [min, max] over all calibration values; with movingAverage, an exponential
// moving average of each batch's min and max (constant 0.01, as ONNX Runtime's averaging_constant):
//   m_1 = batch_1;  m_k = m_{k-1} + 0.01 (batch_k - m_{k-1})
// which lets rare extreme batches widen the range only a little.
namespace OnnxOpt.Calibration;

public sealed class MinMaxCalibrator(bool movingAverage = false, double constant = 0.01) : RangeCalibrator
{
    private double _min = double.PositiveInfinity, _max = double.NegativeInfinity;
    private bool _seen;

    public override void Observe(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) return;
        double mn = double.PositiveInfinity, mx = double.NegativeInfinity;
        foreach (var f in values) { if (f < mn) mn = f; if (f > mx) mx = f; }
        if (movingAverage && _seen) { _min += constant * (mn - _min); _max += constant * (mx - _max); }
        else { _min = Math.Min(_min, mn); _max = Math.Max(_max, mx); }
        _seen = true;
    }

    public override (double Min, double Max) Range(RangeKind kind)
    {
        if (!_seen) return (0, 0);
        return kind == RangeKind.Symmetric ? Symmetric(_min, _max) : (_min, _max);
    }
}
