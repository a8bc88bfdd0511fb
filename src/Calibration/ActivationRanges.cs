// Calibrates many activation tensors in one streaming pass over the calibration data: the model runs
// in ONNX Runtime batch by batch with the requested tensors added as outputs, each batch's values go
// to that tensor's calibrator and are dropped. Memory: one batch of activations plus the calibrators'
// fixed-size state, whatever the number of samples.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Calibration;

public static class ActivationRanges
{
    public static Dictionary<string, RangeCalibrator> Collect(CalibrationSource source, Model model,
        IReadOnlyList<string> tensors,
        Func<RangeCalibrator> make, string? progressLabel = "calibration")
    {
        var cals = tensors.Distinct().ToDictionary(t => t, _ => make(), StringComparer.Ordinal);
        var names = cals.Keys.ToList();
        if (names.Count == 0) return cals;
        source.Stream(model, names, (_, outs) =>
        {
            for (int i = 0; i < names.Count; i++)
            {
                var t = outs[i];
                if (t.ElementType == DataType.Float) cals[names[i]].Observe(t.Span<float>());
                else cals[names[i]].Observe(t.ToFloatArray());
            }
        }, progressLabel);
        return cals;
    }
}
