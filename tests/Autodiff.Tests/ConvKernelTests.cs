// Conv's forward and all three gradients through the evaluator against the plain sums, over every kernel path:
// the direct kernel, row-major (output rows whole vectors: 16x16, 8x8) and channels-last (4x4, ragged widths),
// with stride-2 and stride-3 column phases, dilation, asymmetric pads, groups, output channels that are not whole
// tiles, 1-D; the flipped conv for dX; the GEMM over im2col (a 1x1 window of stride 2), with and without an arena
// (kept columns), in float32 and float64, on one thread and on all (the same bytes). The VJP check in
// EvaluatorTests samples 12 elements per tensor; this one compares every element.
using System.Numerics;
using OnnxOpt.Autodiff;
using OnnxOpt.Autodiff.Kernels;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class ConvKernelTests
{
    /// <summary>A conv case: batch, input channels, spatial input (1 or 2 axes), output channels, kernel,
    /// strides, dilations, pads (begin per axis, then end per axis), groups.</summary>
    public sealed record Case(int N, int C, int[] In, int M, int[] K, int[] S, int[] D, int[] P, int G = 1)
    {
        public override string ToString() =>
            $"N{N} C{C} {string.Join("x", In)} M{M} k{string.Join("x", K)} s{string.Join(",", S)} " +
            $"d{string.Join(",", D)} p{string.Join(",", P)} g{G}";
    }

    public static TheoryData<string> Names() => new(Cases.Keys);

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["16x16 pad1"] = new(4, 3, [16, 16], 16, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
        ["16x16 to 8x8 stride 2"] = new(3, 16, [16, 16], 32, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1]),
        ["stride 2 rows only"] = new(2, 3, [16, 16], 8, [3, 3], [2, 1], [1, 1], [1, 1, 1, 1]),
        ["stride 3"] = new(2, 2, [24, 24], 6, [3, 3], [3, 3], [1, 1], [1, 1, 1, 1]),
        ["8x8 ragged channels"] = new(2, 5, [8, 8], 10, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
        ["dilation 2 asymmetric pads"] = new(2, 4, [10, 8], 14, [3, 3], [1, 1], [2, 2], [0, 1, 2, 3]),
        ["grouped 8x8"] = new(2, 8, [8, 8], 12, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 2),
        ["5x5 window"] = new(2, 3, [16, 16], 5, [5, 5], [1, 1], [1, 1], [2, 2, 2, 2]),
        ["1-D"] = new(2, 3, [32], 5, [3], [1], [1], [1, 1]),
        ["1-D stride 2"] = new(2, 3, [32], 7, [3], [2], [1], [1, 0]),
        // Stride-2 rows split 16 and 8 columns at a time then one by one, even and odd left pads.
        ["stride 2 pad 2 ragged"] = new(2, 3, [8, 24], 5, [3, 3], [2, 2], [1, 1], [0, 2, 1, 2]),
        ["1-D stride 2 pad 2"] = new(2, 3, [40], 6, [3], [2], [1], [2, 2]),
        ["stride 2 pad 3 ragged"] = new(1, 2, [6, 27], 4, [5, 5], [2, 2], [1, 1], [2, 3, 2, 0]),
        ["4x4 (channels-last)"] = new(3, 16, [4, 4], 16, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
        ["12x12 (channels-last, 144 pixels)"] = new(2, 5, [12, 12], 9, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
        ["1x1 stride 2 (im2col)"] = new(2, 16, [16, 16], 32, [1, 1], [2, 2], [1, 1], [0, 0, 0, 0]),
    };

    [Theory]
    [MemberData(nameof(Names))]
    public void EveryElementMatchesThePlainSums(string name)
    {
        var c = Cases[name];
        var model = Model(c);
        var rng = new SplitMix64((ulong)name.GetHashCode(StringComparison.Ordinal) & 0xffff);
        double[] R(int len) => Enumerable.Range(0, len).Select(_ => rng.NextGaussian()).ToArray();
        int r = c.In.Length, inSize = c.In.Aggregate(1, (a, b) => a * b), kSize = c.K.Aggregate(1, (a, b) => a * b);
        var x = R(c.N * c.C * inSize);
        var w = R(c.M * c.C / c.G * kSize);
        var b = R(c.M);
        var (y, outShape) = Reference(c, x, w, b);
        var gy = R(y.Length);
        var (dx, dw, db) = ReferenceGradients(c, x, w, gy, outShape);
        foreach (bool arena in new[] { false, true })
        {
            var f32 = Check<float>(model, c, x, w, b, gy, y, dx, dw, db, arena, 2e-5);
            Check<double>(model, c, x, w, b, gy, y, dx, dw, db, arena, 1e-12);
            // The same bytes on one thread as on all of them (slices and tile splits change, sums must not).
            using (Parallelism.Limit(1))
                Assert.Equal(f32, Check<float>(model, c, x, w, b, gy, y, dx, dw, db, arena, 2e-5));
        }
        Assert.Equal(r + 2, outShape.Length);
    }

    /// <summary>Checks y, dx, dw and db of the evaluator in T against the sums; returns them concatenated.</summary>
    private static T[] Check<T>(Model model, Case c, double[] x, double[] w, double[] b, double[] gy, double[] y,
        double[] dx, double[] dw, double[] db, bool arena, double tol) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var ev = new Evaluator<T>(model) { Arena = arena ? new BufferArena<T>() : null };
        NdArray<T> A(double[] v, int[] shape) => new(shape, v.Select(T.CreateChecked).ToArray());
        int[] xs = [c.N, c.C, .. c.In], ws = [c.M, c.C / c.G, .. c.K];
        var inputs = new Dictionary<string, NdArray<T>> { ["x"] = A(x, xs), ["w"] = A(w, ws), ["b"] = A(b, [c.M]) };
        var trace = ev.Forward(inputs);
        var yv = trace.Outputs[0];
        var grads = ev.Backward(trace, new Dictionary<string, NdArray<T>> { ["y"] = A(gy, yv.Shape) }, ["x", "w", "b"]);
        string label = $"{typeof(T).Name}, arena {arena}";
        Near(y, yv, "y", label, tol);
        Near(dx, grads["x"], "dx", label, tol);
        Near(dw, grads["w"], "dw", label, tol);
        Near(db, grads["b"], "db", label, tol);
        return [.. yv.R, .. grads["x"].R, .. grads["w"].R, .. grads["b"].R];
    }

    private static void Near<T>(double[] expected, NdArray<T> got, string what, string label, double tol)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Assert.Equal(expected.Length, got.Length);
        double scale = 1 + expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], o = double.CreateChecked(got.R[i]);
            Assert.True(Math.Abs(e - o) <= tol * scale, $"{what}[{i}] = {o}, expected {e} ({label})");
        }
    }

    private static Model Model(Case c)
    {
        var bld = new GraphBuilder("conv", 13);
        var x = bld.Input("x", DataType.Float, new object[] { c.N, c.C }.Concat(c.In.Cast<object>()).ToArray());
        var w = bld.Input("w", DataType.Float,
            new object[] { c.M, c.C / c.G }.Concat(c.K.Cast<object>()).ToArray());
        var b = bld.Input("b", DataType.Float, c.M);
        OnnxAttribute L(string n, int[] v) => OnnxAttribute.IntList(n, v.Select(e => (long)e).ToArray());
        var y = bld.NamedNode("Conv", [x, w, b], ["y"],
            [L("strides", c.S), L("dilations", c.D), L("pads", c.P), OnnxAttribute.Int("group", c.G)]);
        bld.Output(y.Output());
        return bld.Build();
    }

    /// <summary>The case as 2-D (a 1-D conv is one of height 1): in, kernel, stride, dilation, pad begin, out.
    /// </summary>
    private static (int[] In, int[] K, int[] S, int[] D, int[] Pb, int[] Out) TwoD(Case c)
    {
        int r = c.In.Length;
        int[] Lift(int[] v, int one) => r == 1 ? [one, v[0]] : v;
        int[] inp = Lift(c.In, 1), k = Lift(c.K, 1), s = Lift(c.S, 1), d = Lift(c.D, 1);
        int[] pb = Lift(c.P[..r], 0), pe = Lift(c.P[r..], 0);
        var o = new int[2];
        for (int a = 0; a < 2; a++) o[a] = (inp[a] + pb[a] + pe[a] - ((k[a] - 1) * d[a] + 1)) / s[a] + 1;
        return (inp, k, s, d, pb, o);
    }

    /// <summary>Visits every (n, m, output pixel, input channel, window tap) with the flat indices of y, x and w
    /// (x's -1 where the tap reads padding).</summary>
    private static void Taps(Case c, Action<int, int, int, int> visit)
    {
        var (inp, k, s, d, pb, o) = TwoD(c);
        int cg = c.C / c.G, mg = c.M / c.G;
        for (int n = 0; n < c.N; n++)
            for (int m = 0; m < c.M; m++)
                for (int oh = 0; oh < o[0]; oh++)
                    for (int ow = 0; ow < o[1]; ow++)
                    {
                        int yi = ((n * c.M + m) * o[0] + oh) * o[1] + ow;
                        for (int ci = 0; ci < cg; ci++)
                            for (int i = 0; i < k[0]; i++)
                                for (int j = 0; j < k[1]; j++)
                                {
                                    int h = oh * s[0] - pb[0] + i * d[0], wc = ow * s[1] - pb[1] + j * d[1];
                                    if (h < 0 || h >= inp[0] || wc < 0 || wc >= inp[1]) continue;
                                    int xi = ((n * c.C + m / mg * cg + ci) * inp[0] + h) * inp[1] + wc;
                                    int wi = ((m * cg + ci) * k[0] + i) * k[1] + j;
                                    visit(yi, xi, wi, m);
                                }
                    }
    }

    private static (double[] Y, int[] Shape) Reference(Case c, double[] x, double[] w, double[] b)
    {
        var o = TwoD(c).Out;
        int[] shape = c.In.Length == 1 ? [c.N, c.M, o[1]] : [c.N, c.M, o[0], o[1]];
        var y = new double[c.N * c.M * o[0] * o[1]];
        int ohw = o[0] * o[1];
        for (int i = 0; i < y.Length; i++) y[i] = b[i / ohw % c.M];
        Taps(c, (yi, xi, wi, _) => y[yi] += w[wi] * x[xi]);
        return (y, shape);
    }

    private static (double[] Dx, double[] Dw, double[] Db) ReferenceGradients(Case c, double[] x, double[] w,
        double[] gy, int[] outShape)
    {
        double[] dx = new double[x.Length], dw = new double[w.Length], db = new double[c.M];
        Taps(c, (yi, xi, wi, _) =>
        {
            dx[xi] += w[wi] * gy[yi];
            dw[wi] += x[xi] * gy[yi];
        });
        int ohw = outShape[2..].Aggregate(1, (a, v) => a * v);
        for (int i = 0; i < gy.Length; i++) db[i / ohw % c.M] += gy[i];
        return (dx, dw, db);
    }
}
