// Depthwise convolution (one input plane per output plane) on zero-padded planes, the form that vectorizes:
//   forward  y[oh, :]  += w[i, j] * xp[oh*sh + i*dh, j*dw + (0..Wo)*sw]        (xp: x with its padding)
//   input    dxp[...]  += w[i, j] * gy[oh, :]   (the same windows), then dx += the interior of dxp
//   weight   dw[i, j]  += sum_oh <gy[oh, :], xp[oh*sh + i*dh, j*dw + (0..Wo)*sw]>
// For a unit stride along W each window row is a contiguous slice, so every tap is one vector AXPY or dot
// product over the output row; other strides take the same loops element by element (still no bounds tests).
using System.Numerics;
using System.Runtime.CompilerServices;

namespace OnnxOpt.Autodiff.Kernels;

internal static class Depthwise<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    [ThreadStatic] private static T[]? _plane;

    private static T[] Plane(int n) => _plane is { } p && p.Length >= n ? p : _plane = new T[n];

    private static (int Hp, int Wp) Padded(ConvGeometry g) =>
        (g.In[0] + g.PadBegin[0] + g.PadEnd[0], g.In[1] + g.PadBegin[1] + g.PadEnd[1]);

    private static T[] Pad(ConvGeometry g, ReadOnlySpan<T> x)
    {
        var (hp, wp) = Padded(g);
        var xp = Plane(hp * wp);
        xp.AsSpan(0, hp * wp).Clear();
        int h = g.In[0], w = g.In[1];
        for (int r = 0; r < h; r++) x.Slice(r * w, w).CopyTo(xp.AsSpan((r + g.PadBegin[0]) * wp + g.PadBegin[1], w));
        return xp;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(ConvGeometry g, ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> y)
    {
        var xp = Pad(g, x);
        int wp = Padded(g).Wp, ho = g.Out[0], wo = g.Out[1], kh = g.Kernel[0], kw = g.Kernel[1];
        y.Clear();
        for (int oh = 0; oh < ho; oh++)
        {
            var row = y.Slice(oh * wo, wo);
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                {
                    int src = (oh * g.Stride[0] + i * g.Dilation[0]) * wp + j * g.Dilation[1];
                    var wv = w[i * kw + j];
                    if (g.Stride[1] == 1) Axpy(wv, xp.AsSpan(src, wo), row);
                    else for (int ow = 0; ow < wo; ow++) row[ow] += wv * xp[src + ow * g.Stride[1]];
                }
        }
    }

    /// <summary>dx (one input plane) += the input gradient of one output plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardInput(ConvGeometry g, ReadOnlySpan<T> gy, ReadOnlySpan<T> w, Span<T> dx)
    {
        var (hp, wp) = Padded(g);
        var dxp = Plane(hp * wp);
        dxp.AsSpan(0, hp * wp).Clear();
        int ho = g.Out[0], wo = g.Out[1], kh = g.Kernel[0], kw = g.Kernel[1];
        for (int oh = 0; oh < ho; oh++)
        {
            var grow = gy.Slice(oh * wo, wo);
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                {
                    int at = (oh * g.Stride[0] + i * g.Dilation[0]) * wp + j * g.Dilation[1];
                    var wv = w[i * kw + j];
                    if (g.Stride[1] == 1) Axpy(wv, grow, dxp.AsSpan(at, wo));
                    else for (int ow = 0; ow < wo; ow++) dxp[at + ow * g.Stride[1]] += wv * grow[ow];
                }
        }
        int h = g.In[0], wd = g.In[1];
        for (int r = 0; r < h; r++)
            Axpy(T.One, dxp.AsSpan((r + g.PadBegin[0]) * wp + g.PadBegin[1], wd), dx.Slice(r * wd, wd));
    }

    /// <summary>dw (one kernel) += the weight gradient of one plane pair.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardWeight(ConvGeometry g, ReadOnlySpan<T> x, ReadOnlySpan<T> gy, Span<T> dw)
    {
        var xp = Pad(g, x);
        int wp = Padded(g).Wp, ho = g.Out[0], wo = g.Out[1], kh = g.Kernel[0], kw = g.Kernel[1];
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++)
            {
                T acc = T.Zero;
                for (int oh = 0; oh < ho; oh++)
                {
                    int src = (oh * g.Stride[0] + i * g.Dilation[0]) * wp + j * g.Dilation[1];
                    var grow = gy.Slice(oh * wo, wo);
                    if (g.Stride[1] == 1) acc += Dot(grow, xp.AsSpan(src, wo));
                    else for (int ow = 0; ow < wo; ow++) acc += grow[ow] * xp[src + ow * g.Stride[1]];
                }
                dw[i * kw + j] += acc;
            }
    }

    private static void Axpy(T a, ReadOnlySpan<T> x, Span<T> y)
    {
        int v = Vector<T>.Count, k = 0;
        var av = new Vector<T>(a);
        for (; k + v <= x.Length; k += v) (new Vector<T>(y[k..]) + av * new Vector<T>(x[k..])).CopyTo(y[k..]);
        for (; k < x.Length; k++) y[k] += a * x[k];
    }

    private static T Dot(ReadOnlySpan<T> x, ReadOnlySpan<T> y)
    {
        int v = Vector<T>.Count, k = 0;
        var acc = Vector<T>.Zero;
        for (; k + v <= x.Length; k += v) acc += new Vector<T>(x[k..]) * new Vector<T>(y[k..]);
        T s = Vector.Sum(acc);
        for (; k < x.Length; k++) s += x[k] * y[k];
        return s;
    }
}
