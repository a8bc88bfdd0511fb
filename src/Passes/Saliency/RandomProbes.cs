// Random-sign output probes for label-free first-order estimates (taylor importance, fisher weighting):
// with r uniform in {-1, +1}^outputs, E[(r . J v)^2] = ||J v||^2, so squares of gradients of r . y estimate
// squared output changes without one backward pass per output element.
using OnnxOpt.Autodiff;

namespace OnnxOpt.Passes;

internal static class RandomProbes
{
    /// <summary>Samples and probes per estimate: up to 128 calibration samples, 4 probes each.</summary>
    public const int Samples = 128, Probes = 4;

    /// <summary>A seed of random signs for each named output of the trace.</summary>
    public static Dictionary<string, NdArray<float>> Seeds(Trace<float> trace, IEnumerable<string> outputs,
        Random rng) => outputs.ToDictionary(o => o, o =>
        {
            var shape = trace[o].Shape;
            var r = new float[NdArray<float>.Size(shape)];
            for (int i = 0; i < r.Length; i++) r[i] = rng.Next(2) == 0 ? -1f : 1f;
            return new NdArray<float>(shape, r);
        });
}
