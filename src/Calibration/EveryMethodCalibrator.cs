// Watches one tensor with every calibration method at once (minmax, percentile, entropy, mse) in the same
// streaming pass, so a search can choose the method per tensor afterwards without calibrating again.
// Range() answers with the selected method (the pass's `calibrate` option); Method(name) gives another.
namespace OnnxOpt.Calibration;

public sealed class EveryMethodCalibrator : RangeCalibrator
{
    private readonly RangeCalibrator[] _all;
    private readonly int _selected;

    public EveryMethodCalibrator(string selected, double percentile = 99.999, bool movingAverage = false)
    {
        _all = Methods.Select(m => Factory(m, percentile, movingAverage)()).ToArray();
        _selected = Array.IndexOf(Methods, selected);
        if (_selected < 0) throw new OnnxOpt.GraphIR.OnnxModelException($"unknown calibration method '{selected}'");
    }

    public override void Observe(ReadOnlySpan<float> values)
    {
        foreach (var c in _all) c.Observe(values);
    }

    public override (double Min, double Max) Range(RangeKind kind) => _all[_selected].Range(kind);

    /// <summary>The calibrator of one method (see <see cref="RangeCalibrator.Methods"/>).</summary>
    public RangeCalibrator Method(string name) => _all[Array.IndexOf(Methods, name)];

    public string Selected => Methods[_selected];
}
