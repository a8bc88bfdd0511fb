// QuantizeLinear -> DequantizeLinear's gradients are the straight-through estimator with LSQ's step-size gradient:
// equal to the finite differences of the fake-quant function with its rounding offsets frozen at the point,
//   y = s (clamp(x / s + d + z, qmin, qmax) - z),  d = round(x / s) - x / s fixed,
// which has the STE's dy/dx = [inside] and LSQ's dy/ds = d inside, qmin - z or qmax - z outside.
using OnnxOpt.Autodiff;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class StraightThroughTests
{
    [Theory]
    [InlineData("qdq-int8-per-axis", -128, 127)]
    [InlineData("qdq-uint8-per-tensor-saturating", 0, 255)]
    public void QuantizeDequantizeGradientsAreTheStraightThroughEstimatorWithLearnedStepSizes(string name, int lo,
        int hi)
    {
        var m = OpCases.All[name]();
        var ev = new Evaluator<double>(m);
        var rng = new SplitMix64(3);
        var x = new NdArray<double>([2, 3, 4], Enumerable.Range(0, 24).Select(_ => rng.NextGaussian()).ToArray());
        var s = ev.Initializer(m.Graph.Find("s")!).R;
        var z = ev.Initializer(m.Graph.Find("z")!);
        int Ch(int i) => s.Length == 1 ? 0 : i / 4 % 3;
        var d = x.R.Select((v, i) => Math.Round(v / s[Ch(i)], MidpointRounding.ToEven) - v / s[Ch(i)]).ToArray();
        var r = Enumerable.Range(0, 24).Select(_ => rng.NextGaussian()).ToArray();
        double Surrogate(double[] xs, double[] ss) => Enumerable.Range(0, 24).Sum(i =>
        {
            double sc = ss[Ch(i)], zc = z.ToDouble(Ch(i));
            return r[i] * sc * (Math.Clamp(xs[i] / sc + d[i] + zc, lo, hi) - zc);
        });
        var trace = ev.Forward(new Dictionary<string, NdArray<double>> { ["x0"] = x });
        var outName = m.Graph.Outputs[0].Name;
        var grads = ev.Backward(trace, new Dictionary<string, NdArray<double>>
        {
            [outName] = new NdArray<double>([2, 3, 4], r),
        }, ["x0", "s"]);
        const double h = 1e-7;
        int saturated = 0;
        for (int i = 0; i < 24; i++)
        {
            var (up, down) = ((double[])x.R.Clone(), (double[])x.R.Clone());
            up[i] += h; down[i] -= h;
            var numeric = (Surrogate(up, s) - Surrogate(down, s)) / (2 * h);
            Assert.True(Math.Abs(numeric - grads["x0"].R[i]) < 1e-5, $"dx[{i}]: {grads["x0"].R[i]} vs {numeric}");
            if (numeric == 0) saturated++;
        }
        for (int c = 0; c < s.Length; c++)
        {
            var (up, down) = ((double[])s.Clone(), (double[])s.Clone());
            up[c] += h; down[c] -= h;
            var numeric = (Surrogate(x.R, up) - Surrogate(x.R, down)) / (2 * h);
            Assert.True(Math.Abs(numeric - grads["s"].R[c]) < 1e-4 * (1 + Math.Abs(numeric)),
                $"ds[{c}]: {grads["s"].R[c]} vs {numeric}");
        }
        // Both sides of the clamp are exercised.
        Assert.InRange(saturated, 1, 23);
    }
}
