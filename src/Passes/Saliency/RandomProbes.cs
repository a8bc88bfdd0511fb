// Random-sign output probes for label-free first-order estimates (taylor importance, fisher weighting):
// with r uniform in {-1, +1}^outputs, E[(r . J v)^2] = ||J v||^2, so squares of gradients of r . y estimate
// squared output changes without one backward pass per output element.
using OnnxOpt.Autodiff;
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

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

    /// <summary>The probe loop of a first-order estimate: up to <see cref="Samples"/> calibration samples in
    /// batches of 8, each traced once by our evaluator, then <see cref="Probes"/> backward passes seeded with random
    /// signs on the float outputs; <paramref name="visit"/>(trace, gradients of <paramref name="wrt"/>, samples in
    /// the batch) runs after each. <paramref name="samplesOf"/> counts a trace's samples.</summary>
    public static void Run(Model model, CalibrationSource calib, IReadOnlyList<string> wrt, string label,
        string criterion, Func<Trace<float>, string, int> samplesOf,
        Action<Trace<float>, Dictionary<string, NdArray<float>>, int> visit)
    {
        var ev = new Evaluator<float>(model);
        var outputs = model.Graph.Outputs.Where(o => o.ElementType.IsFloatingPoint()).Select(o => o.Name).ToList();
        if (outputs.Count == 0)
            throw new OnnxModelException($"prune criterion '{criterion}' needs a float graph output");
        var data = calib.DataFor(IoInfo.InputsOf(model.Graph));
        var rng = new Random(17);
        int seen = 0;
        foreach (var batch in data.Batches(8))
        {
            if (seen >= Samples) break;
            var inputs = batch.Inputs.ToDictionary(kv => kv.Key, kv => NdArray<float>.FromTensor(kv.Value));
            var trace = ev.Forward(inputs);
            int n = samplesOf(trace, outputs[0]);
            for (int probe = 0; probe < Probes; probe++)
                visit(trace, ev.Backward(trace, Seeds(trace, outputs, rng), wrt), n);
            seen += n;
            calib.Progress?.Invoke(label, Math.Min(seen, Samples), Math.Min(data.SampleCount, Samples));
        }
    }
}
