// Second-order weight saliency (Optimal Brain Damage, LeCun, Denker & Solla, NIPS 1990): removing weight i changes the
// loss by about s_i = 1/2 H_ii w_i^2 (the gradient term vanishes at a minimum, off-diagonal terms are dropped). The
// loss is the distillation loss onnxopt recovers with, L = mean over calibration samples of KL(p_teacher || p), at the
// model's own weights (the teacher):
//   there the residual is zero, so the Hessian equals its Gauss-Newton part exactly: H = mean_x J_x^T A_x J_x, with
//   J_x = dlogits/dw and A = diag(p) - p p^T the Hessian of KL in the logits (temperature 1, p = softmax(logits)).
//   method=obd (Hutchinson-style, unbiased): A = S S^T with S = diag(sqrt p) - p sqrt(p)^T, so for z with
//     independent +-1 entries, r = S z = sqrt(p) * z - p (sqrt(p) . z) gives E[(J^T r)_i^2] = (J^T A J)_ii = H_ii;
//     J^T r is one backward pass of the autodiff seeded with r on the logits. Samples of a batch get independent z,
//     so the cross terms of their summed gradients vanish in expectation too.
//   method=fisher (the empirical Fisher, cheaper and biased): r = p - onehot(argmax p), the gradient of the
//     cross-entropy with the teacher's own answer as the label, times a random sign per sample (cross terms again
//     vanish in expectation); one probe per sample.
// The logits are the first float output with a class axis last ([N, classes]); a model without one is refused.
// Up to RandomProbes.Samples samples and RandomProbes.Probes probes each (obd); scores are s_i = 1/2 H_ii w_i^2.
using OnnxOpt.Autodiff;
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class SecondOrderSaliency
{
    public static readonly string[] Methods = ["obd", "fisher"];

    /// <summary>Per weight initializer named, the OBD saliency 1/2 H_ii w_i^2 of each element (H from
    /// <paramref name="method"/>), and the diagonal itself.</summary>
    public static (Dictionary<string, double[]> Saliency, Dictionary<string, double[]> Diagonal) Compute(Model model,
        IReadOnlyList<string> weights, CalibrationSource calib, string method, int samples = RandomProbes.Samples,
        int probes = RandomProbes.Probes, int seed = 17)
    {
        var logits = model.Graph.Outputs.FirstOrDefault(o => o.ElementType.IsFloatingPoint())?.Name
            ?? throw new OnnxModelException($"saliency {method} needs a float output (the logits)");
        var ev = new Evaluator<float>(model);
        var data = calib.DataFor(IoInfo.InputsOf(model.Graph));
        var diag = weights.ToDictionary(w => w, w => new double[model.Graph.Find(w)!.Initializer!.ElementCount],
            StringComparer.Ordinal);
        var rng = new Random(seed);
        int seen = 0;
        foreach (var batch in data.Batches(8))
        {
            if (seen >= samples) break;
            var inputs = batch.Inputs.ToDictionary(kv => kv.Key, kv => NdArray<float>.FromTensor(kv.Value));
            var trace = ev.Forward(inputs);
            var y = trace[logits];
            if (y.Rank != 2) throw new OnnxModelException($"saliency {method}: output '{logits}' is not [N, classes] "
                + $"logits (shape [{string.Join(",", y.Shape)}])");
            int n = y.Shape[0], c = y.Shape[1];
            var p = Softmax(y.R, n, c);
            int rounds = method == "fisher" ? 1 : probes;
            for (int k = 0; k < rounds; k++)
            {
                var r = new float[n * c];
                for (int s = 0; s < n; s++)
                {
                    var ps = p.AsSpan(s * c, c);
                    var rs = r.AsSpan(s * c, c);
                    if (method == "fisher")
                    {
                        int top = 0;
                        for (int j = 1; j < c; j++) if (ps[j] > ps[top]) top = j;
                        float sign = rng.Next(2) == 0 ? -1f : 1f;
                        for (int j = 0; j < c; j++) rs[j] = sign * (float)(ps[j] - (j == top ? 1 : 0));
                        continue;
                    }
                    double dot = 0;
                    var z = new double[c];
                    for (int j = 0; j < c; j++) { z[j] = rng.Next(2) == 0 ? -1 : 1; dot += Math.Sqrt(ps[j]) * z[j]; }
                    for (int j = 0; j < c; j++) rs[j] = (float)(Math.Sqrt(ps[j]) * z[j] - ps[j] * dot);
                }
                var grads = ev.Backward(trace, new Dictionary<string, NdArray<float>>
                {
                    [logits] = new NdArray<float>(y.Shape, r),
                }, weights);
                foreach (var w in weights)
                {
                    if (!grads.TryGetValue(w, out var g)) continue;
                    var d = diag[w];
                    var gr = g.R;
                    for (int i = 0; i < d.Length; i++) d[i] += (double)gr[i] * gr[i];
                }
            }
            seen += n;
            calib.Progress?.Invoke($"saliency: {method}", Math.Min(seen, samples), Math.Min(data.SampleCount, samples));
        }
        if (seen == 0) throw new OnnxModelException($"saliency {method}: the calibration data has no samples");
        // Every draw summed the batch's samples: H = sum / (samples * probes per sample).
        double norm = (double)seen * (method == "fisher" ? 1 : probes);
        var saliency = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var w in weights)
        {
            var d = diag[w];
            for (int i = 0; i < d.Length; i++) d[i] /= norm;
            var v = model.Graph.Find(w)!.Initializer!.ToDoubleArray();
            saliency[w] = v.Select((x, i) => 0.5 * d[i] * x * x).ToArray();
        }
        return (saliency, diag);
    }

    private static double[] Softmax(float[] y, int n, int c)
    {
        var p = new double[n * c];
        for (int s = 0; s < n; s++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < c; j++) max = Math.Max(max, y[s * c + j]);
            for (int j = 0; j < c; j++) sum += p[s * c + j] = Math.Exp(y[s * c + j] - max);
            for (int j = 0; j < c; j++) p[s * c + j] /= sum;
        }
        return p;
    }
}
