// Kernel algebra for folding linear chains (2-D convolutions, NCHW, weights [Cout, Cin/groups, kh, kw]).
// Two convolutions in a row, conv1 (W1, b1, k1, s1, d1, p1) then conv2 (W2, b2, k2, s2, d2, p2), are one
// convolution with, per spatial axis,
//   K = d1 (k1 - 1) + s1 d2 (k2 - 1) + 1,   S = s1 s2,   dilation 1,   P = p1 + s1 p2 (begin and end)
//   W[o, i, s1 d2 a + d1 p] += sum_m W2[o, m, a] W1[m, i, p]
//   b[o] = b2[o] + sum_(m, a) W2[o, m, a] b1[m]
// This is exact wherever conv2 reads inside conv1's output; where conv2 reads its zero padding (p2 > 0)
// the folded conv sees conv1 evaluated on padding instead. If conv1 is 1x1 with no padding that value
// is exactly b1, so subtracting BiasMap(o, y, x) = sum over taps (m, a) that fall in the padding of
// W2[o, m, a] b1[m] makes the fold exact again (algorithms.md section 1).
namespace OnnxOpt.Passes;

public sealed record ConvSpec(int[] Kernel, int[] Strides, int[] Dilations, int[] PadsBegin, int[] PadsEnd, int Groups)
{
    public static ConvSpec? Of(GraphIR.Node n, long[] weightDims)
    {
        if (weightDims.Length != 4) return null;
        int[] Get(string name, int dflt) => (n.GetInts(name) ?? [dflt, dflt]).Select(v => (int)v).ToArray();
        var pads = (n.GetInts("pads") ?? [0, 0, 0, 0]).Select(v => (int)v).ToArray();
        var ap = n.GetString("auto_pad") ?? "NOTSET";
        if (ap is not ("NOTSET" or "VALID")) return null;
        return new ConvSpec([(int)weightDims[2], (int)weightDims[3]], Get("strides", 1), Get("dilations", 1),
            [pads[0], pads[1]], [pads[2], pads[3]], (int)n.GetInt("group", 1));
    }

    public bool Unpadded => PadsBegin.All(p => p == 0) && PadsEnd.All(p => p == 0);
}

public static class ConvAlgebra
{
    /// <summary>Expands a grouped weight [Cout, Cin/g, kh, kw] to dense [Cout, Cin, kh, kw] (block diagonal).</summary>
    public static float[] Dense(float[] w, int cout, int cinPerGroup, int groups, int kk)
    {
        var cin = cinPerGroup * groups;
        var d = new float[cout * cin * kk];
        var perGroupOut = cout / groups;
        for (int o = 0; o < cout; o++)
        {
            var g = o / perGroupOut;
            for (int i = 0; i < cinPerGroup; i++)
                Array.Copy(w, (o * cinPerGroup + i) * kk, d, (o * cin + g * cinPerGroup + i) * kk, kk);
        }
        return d;
    }

    public static int FoldedKernel(int k1, int d1, int s1, int k2, int d2) => d1 * (k1 - 1) + s1 * d2 * (k2 - 1) + 1;

    /// <summary>Folds dense kernels: W1 [M, Cin, k1h, k1w], W2 [O, M, k2h, k2w] -> [O, Cin, Kh, Kw].</summary>
    public static float[] FoldDense(float[] w1, int m, int cin, ConvSpec c1, float[] w2, int o, ConvSpec c2,
        out int kh, out int kw)
    {
        kh = FoldedKernel(c1.Kernel[0], c1.Dilations[0], c1.Strides[0], c2.Kernel[0], c2.Dilations[0]);
        kw = FoldedKernel(c1.Kernel[1], c1.Dilations[1], c1.Strides[1], c2.Kernel[1], c2.Dilations[1]);
        var (k1h, k1w, k2h, k2w) = (c1.Kernel[0], c1.Kernel[1], c2.Kernel[0], c2.Kernel[1]);
        var w = new double[o * cin * kh * kw];
        for (int oo = 0; oo < o; oo++)
            for (int mm = 0; mm < m; mm++)
                for (int ay = 0; ay < k2h; ay++)
                    for (int ax = 0; ax < k2w; ax++)
                    {
                        double a = w2[((oo * m + mm) * k2h + ay) * k2w + ax];
                        if (a == 0) continue;
                        for (int i = 0; i < cin; i++)
                            for (int py = 0; py < k1h; py++)
                                for (int px = 0; px < k1w; px++)
                                {
                                    var y = c1.Strides[0] * c2.Dilations[0] * ay + c1.Dilations[0] * py;
                                    var x = c1.Strides[1] * c2.Dilations[1] * ax + c1.Dilations[1] * px;
                                    w[((oo * cin + i) * kh + y) * kw + x] += a * w1[((mm * cin + i) * k1h + py) * k1w + px];
                                }
                    }
        return w.Select(v => (float)v).ToArray();
    }

    /// <summary>Folds two depthwise convs channel by channel: [C,1,k1..] then [C,1,k2..] -> [C,1,K..].</summary>
    public static float[] FoldDepthwise(float[] w1, ConvSpec c1, float[] w2, ConvSpec c2, int c, out int kh, out int kw)
    {
        kh = FoldedKernel(c1.Kernel[0], c1.Dilations[0], c1.Strides[0], c2.Kernel[0], c2.Dilations[0]);
        kw = FoldedKernel(c1.Kernel[1], c1.Dilations[1], c1.Strides[1], c2.Kernel[1], c2.Dilations[1]);
        var (k1h, k1w, k2h, k2w) = (c1.Kernel[0], c1.Kernel[1], c2.Kernel[0], c2.Kernel[1]);
        var w = new double[c * kh * kw];
        for (int ch = 0; ch < c; ch++)
            for (int ay = 0; ay < k2h; ay++)
                for (int ax = 0; ax < k2w; ax++)
                    for (int py = 0; py < k1h; py++)
                        for (int px = 0; px < k1w; px++)
                        {
                            var y = c1.Strides[0] * c2.Dilations[0] * ay + c1.Dilations[0] * py;
                            var x = c1.Strides[1] * c2.Dilations[1] * ax + c1.Dilations[1] * px;
                            w[(ch * kh + y) * kw + x] += (double)w2[(ch * k2h + ay) * k2w + ax] * w1[(ch * k1h + py) * k1w + px];
                        }
        return w.Select(v => (float)v).ToArray();
    }

    /// <summary>b[o] = b2[o] + sum_(m,a) W2[o,m,a] b1[m] for dense W2 [O, M, k2].</summary>
    public static float[] FoldBias(float[] b1, float[] b2, float[] w2Dense, int o, int m, int k2)
    {
        var b = new float[o];
        for (int oo = 0; oo < o; oo++)
        {
            double s = b2[oo];
            for (int mm = 0; mm < m; mm++)
            {
                double t = 0;
                for (int a = 0; a < k2; a++) t += w2Dense[(oo * m + mm) * k2 + a];
                s += t * b1[mm];
            }
            b[oo] = (float)s;
        }
        return b;
    }

    /// <summary>The correction [O, Yh, Yw] for taps of conv2 that read its zero padding:
    /// -sum_(m, a in padding) W2[o,m,a] b1[m]. H, W: conv1's output size.</summary>
    public static float[] BorderBiasMap(float[] b1, float[] w2Dense, int o, int m, ConvSpec c2, int h, int w, int yh,
        int yw)
    {
        var map = new float[o * yh * yw];
        var (k2h, k2w) = (c2.Kernel[0], c2.Kernel[1]);
        for (int oo = 0; oo < o; oo++)
        {
            var perTap = new double[k2h * k2w];
            for (int mm = 0; mm < m; mm++)
                for (int a = 0; a < k2h * k2w; a++) perTap[a] += (double)w2Dense[(oo * m + mm) * k2h * k2w + a] * b1[mm];
            for (int y = 0; y < yh; y++)
                for (int x = 0; x < yw; x++)
                {
                    double s = 0;
                    for (int ay = 0; ay < k2h; ay++)
                    {
                        var iy = y * c2.Strides[0] - c2.PadsBegin[0] + ay * c2.Dilations[0];
                        for (int ax = 0; ax < k2w; ax++)
                        {
                            var ix = x * c2.Strides[1] - c2.PadsBegin[1] + ax * c2.Dilations[1];
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) s -= perTap[ay * k2w + ax];
                        }
                    }
                    map[(oo * yh + y) * yw + x] = (float)s;
                }
        }
        return map;
    }

    /// <summary>A constant map [M, H, W] added before a 1x1 unpadded conv (stride s) becomes
    /// [O, Yh, Yw]: map'[o, y, x] = sum_m W2[o, m] map[m, y*s, x*s].</summary>
    public static float[] PushMapThrough1x1(float[] map, float[] w2Dense, int o, int m, int h, int w, int[] strides,
        int yh, int yw)
    {
        var r = new float[o * yh * yw];
        for (int oo = 0; oo < o; oo++)
            for (int y = 0; y < yh; y++)
                for (int x = 0; x < yw; x++)
                {
                    double acc = 0;
                    for (int mm = 0; mm < m; mm++) acc += (double)w2Dense[oo * m + mm] * map[(mm * h + y * strides[0]) * w + x * strides[1]];
                    r[(oo * yh + y) * yw + x] = (float)acc;
                }
        return r;
    }

    /// <summary>Dense row-major matrix product [r, k] x [k, c].</summary>
    public static float[] MatMul(float[] a, float[] b, int r, int k, int c)
    {
        var o = new float[r * c];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++)
            {
                double s = 0;
                for (int q = 0; q < k; q++) s += (double)a[i * k + q] * b[q * c + j];
                o[i * c + j] = (float)s;
            }
        return o;
    }

    public static float[] Transpose(float[] a, int r, int c)
    {
        var o = new float[a.Length];
        for (int i = 0; i < r; i++) for (int j = 0; j < c; j++) o[j * r + i] = a[i * c + j];
        return o;
    }
}
