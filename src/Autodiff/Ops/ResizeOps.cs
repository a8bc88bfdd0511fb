// Resize (opset 10: scales as input 1; 11+: roi, scales, sizes), modes nearest, linear and cubic, with its
// VJP. Separable per axis:
// each output coordinate o of an axis reads taps (i, w) of the input axis,
//   x = transform(o): half_pixel (o + 0.5) / s - 0.5 (default), asymmetric o / s,
//       align_corners o (in - 1) / (out - 1), pytorch_half_pixel as half_pixel but 0 when out = 1;
//       s = out / in (from sizes, or the scales input; out = floor(in * scale));
//   nearest: one tap at nearest_mode(x) (round_prefer_floor default, round_prefer_ceil, floor, ceil),
//            clamped into the axis;
//   linear:  x clamped into [0, in - 1], taps floor(x) and floor(x) + 1 with weights 1 - f and f;
//   cubic:   taps floor(x) - 1 .. floor(x) + 2 with Keys' weights W(t + 1), W(t), W(1 - t), W(2 - t), t = x - floor(x),
//            W(d) = (A+2)|d|^3 - (A+3)|d|^2 + 1 for |d| <= 1, A|d|^3 - 5A|d|^2 + 8A|d| - 4A for 1 < |d| < 2
//            (A = cubic_coeff_a, default -0.75); taps outside the axis read its edge, or with
//            exclude_outside=1 get weight 0 and the others are renormalized to sum 1;
// and an output element is the sum over the product of its axes' taps. The VJP scatters the gradient
// back along the same taps. roi (tf_crop_and_resize) and antialias are refused by name.
using System.Numerics;

using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal sealed class ResizeOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static (int[] OutShape, (int Index, double Weight)[][][] Taps) Plan(OpCall<T> c)
    {
        var x = c.In(0);
        var n = c.Node;
        var mode = n.GetString("mode") ?? "nearest";
        var ctm = n.GetString("coordinate_transformation_mode") ?? "half_pixel";
        var nearest = n.GetString("nearest_mode") ?? "round_prefer_floor";
        if (mode is not ("nearest" or "linear" or "cubic")) throw c.Error($"Resize mode '{mode}' is not supported");
        var cubicA = n.GetFloat("cubic_coeff_a", -0.75f);
        var exclude = n.GetInt("exclude_outside", 0) != 0;
        if (ctm is not ("half_pixel" or "asymmetric" or "align_corners" or "pytorch_half_pixel"))
            throw c.Error($"Resize coordinate_transformation_mode '{ctm}' is not supported");
        if (n.GetInt("antialias", 0) != 0) throw c.Error("Resize with antialias is not supported");
        // Opset 10: Resize(X, scales); from 11: Resize(X, roi, scales, sizes).
        var scalesIn = c.Optional(c.Opset < 11 ? 1 : 2) is { Length: > 0 } sc
            ? Enumerable.Range(0, sc.Length).Select(sc.ToDouble).ToArray() : null;
        var sizesIn = c.Opset >= 11 && c.Optional(3) is { Length: > 0 } sz ? sz.ToLongs() : null;
        if (scalesIn is null && sizesIn is null) throw c.Error("Resize needs scales or sizes");
        var outShape = new int[x.Rank];
        var taps = new (int, double)[x.Rank][][];
        for (int a = 0; a < x.Rank; a++)
        {
            int inLen = x.Shape[a];
            int outLen = sizesIn is not null ? (int)sizesIn[a] : (int)Math.Floor(inLen * scalesIn![a]);
            double s = sizesIn is not null ? (double)outLen / inLen : scalesIn![a];
            outShape[a] = outLen;
            taps[a] = new (int, double)[outLen][];
            for (int o = 0; o < outLen; o++)
            {
                double xo = ctm switch
                {
                    "asymmetric" => o / s,
                    "align_corners" => outLen == 1 ? 0 : o * (inLen - 1.0) / (outLen - 1.0),
                    "pytorch_half_pixel" => outLen > 1 ? (o + 0.5) / s - 0.5 : 0,
                    _ => (o + 0.5) / s - 0.5,
                };
                if (mode == "nearest")
                {
                    double r = nearest switch
                    {
                        "floor" => Math.Floor(xo),
                        "ceil" => Math.Ceiling(xo),
                        "round_prefer_ceil" => Math.Floor(xo + 0.5),
                        _ => xo - Math.Floor(xo) == 0.5 ? Math.Floor(xo) : Math.Round(xo),
                    };
                    taps[a][o] = [(Math.Clamp((int)r, 0, inLen - 1), 1.0)];
                }
                else if (mode == "cubic") taps[a][o] = CubicTaps(xo, inLen, cubicA, exclude);
                else
                {
                    var xc = Math.Clamp(xo, 0, inLen - 1);
                    int i0 = (int)Math.Floor(xc), i1 = Math.Min(i0 + 1, inLen - 1);
                    double f = xc - i0;
                    taps[a][o] = f == 0 || i0 == i1 ? [(i0, 1.0)] : [(i0, 1 - f), (i1, f)];
                }
            }
        }
        return (outShape, taps);
    }

    private static (int Index, double Weight)[] CubicTaps(double x, int inLen, double a, bool exclude)
    {
        static double W(double d, double a)
        {
            d = Math.Abs(d);
            return d <= 1 ? ((a + 2) * d - (a + 3)) * d * d + 1 : d < 2 ? ((a * d - 5 * a) * d + 8 * a) * d - 4 * a : 0;
        }
        var i0 = (int)Math.Floor(x);
        var t = x - i0;
        var taps = new (int Index, double Weight)[4];
        double sum = 0;
        for (int k = 0; k < 4; k++)
        {
            int i = i0 - 1 + k;
            var w = W(t + 1 - k, a);
            if (exclude && (i < 0 || i >= inLen)) w = 0;
            taps[k] = (Math.Clamp(i, 0, inLen - 1), w);
            sum += w;
        }
        if (exclude && sum != 0)
            for (int k = 0; k < 4; k++) taps[k].Weight /= sum;
        return taps;
    }

    /// <summary>Visits every (output index, input index, weight) of the separable taps.</summary>
    private static void Each(int[] inShape, int[] outShape, (int Index, double Weight)[][][] taps,
        Action<int, int, double> visit)
    {
        int rank = inShape.Length;
        var inStrides = new int[rank];
        for (int a = rank - 1, st = 1; a >= 0; a--) { inStrides[a] = st; st *= inShape[a]; }
        int total = outShape.Aggregate(1, (p, q) => p * q);
        var coord = new int[rank];
        for (int oi = 0; oi < total; oi++)
        {
            for (int a = rank - 1, rest = oi; a >= 0; a--) { coord[a] = rest % outShape[a]; rest /= outShape[a]; }
            void Walk(int axis, int offset, double weight)
            {
                if (axis == rank) { visit(oi, offset, weight); return; }
                foreach (var (i, w) in taps[axis][coord[axis]])
                    Walk(axis + 1, offset + i * inStrides[axis], weight * w);
            }
            Walk(0, 0, 1);
        }
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        var (outShape, taps) = Plan(c);
        var y = Buffers<T>.New(NdArray<T>.Size(outShape));
        var xr = x.R;
        Each(x.Shape, outShape, taps, (o, i, w) => y[o] += xr[i] * T.CreateChecked(w));
        return [new NdArray<T>(outShape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy || !needed[0]) return r;
        var x = c.In(0);
        var (outShape, taps) = Plan(c);
        var d = Buffers<T>.New(x.Length);
        var g = gy.R;
        Each(x.Shape, outShape, taps, (o, i, w) => d[i] += g[o] * T.CreateChecked(w));
        r[0] = new NdArray<T>(x.Shape, d);
        return r;
    }
}
