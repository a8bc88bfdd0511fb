// Depthwise convolution (one input plane per output plane) on zero-padded planes, the form that vectorizes:
//   forward  y[oh, :]  += w[i, j] * xp[oh*sh + i*dh, j*dw + (0..Wo)*sw]        (xp: x with its padding)
//   input    dxp[...]  += w[i, j] * gy[oh, :]   (the same windows), then dx += the interior of dxp
//   weight   dw[i, j]  += sum_oh <gy[oh, :], xp[oh*sh + i*dh, j*dw + (0..Wo)*sw]>
// The padded plane is stored in phases along W (column c at phase c % sw, index c / sw), so that for any
// stride every tap reads a contiguous slice of a phase row: each output vector sums all of its window's taps
// in a register (forward) or scatters them (input gradient), in 256-bit, then 128-bit, then scalar steps.
// Callers give each task one scratch plane (ScratchSize) and the tap offsets (Taps), computed once per op.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace OnnxOpt.Autodiff.Kernels;

internal static class Depthwise<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Rows of the padded plane, width of a phase row, and the stride (number of phases).</summary>
    private static (int Hp, int Wq, int S) Phased(ConvGeometry g)
    {
        int hp = g.In[0] + g.PadBegin[0] + g.PadEnd[0], wp = g.In[1] + g.PadBegin[1] + g.PadEnd[1], s = g.Stride[1];
        return (hp, (wp + s - 1) / s, s);
    }

    /// <summary>Offset of padded element (r, c) in the phased plane.</summary>
    private static int At(int hp, int wq, int s, int r, int c) => ((c % s) * hp + r) * wq + c / s;

    /// <summary>Elements of the scratch plane each call of Forward, BackwardInput or BackwardWeight needs.</summary>
    public static int ScratchSize(ConvGeometry g)
    {
        var (hp, wq, s) = Phased(g);
        return s * hp * wq;
    }

    /// <summary>Offsets of the first element each tap (i, j) reads for output row 0; output row oh reads
    /// oh * Stride[0] * wq further on (then contiguous along ow).</summary>
    public static int[] Taps(ConvGeometry g)
    {
        var (hp, wq, s) = Phased(g);
        int kw = g.Kernel[1];
        var taps = new int[g.KernelSize];
        for (int i = 0; i < g.Kernel[0]; i++)
            for (int j = 0; j < kw; j++) taps[i * kw + j] = At(hp, wq, s, i * g.Dilation[0], j * g.Dilation[1]);
        return taps;
    }

    /// <summary>x (one plane) zero-padded into xq (ScratchSize long), in phases.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pad(ConvGeometry g, ReadOnlySpan<T> x, T[] xq)
    {
        var (hp, wq, s) = Phased(g);
        int h = g.In[0], w = g.In[1], pb = g.PadBegin[0], pw = g.PadBegin[1];
        if (s == 1)
        {
            // Only the border is cleared: the interior is overwritten row by row.
            ref T xr = ref MemoryMarshal.GetReference(x);
            ref T qr = ref xq[0];
            xq.AsSpan(0, pb * wq).Clear();
            xq.AsSpan((pb + h) * wq, (hp - pb - h) * wq).Clear();
            for (int r = 0; r < h; r++)
            {
                int row = (r + pb) * wq;
                for (int c = 0; c < pw; c++) Unsafe.Add(ref qr, row + c) = T.Zero;
                for (int c = pw + w; c < wq; c++) Unsafe.Add(ref qr, row + c) = T.Zero;
                Unsafe.CopyBlockUnaligned(ref Unsafe.As<T, byte>(ref Unsafe.Add(ref qr, row + pw)),
                    ref Unsafe.As<T, byte>(ref Unsafe.Add(ref xr, r * w)), (uint)(w * Unsafe.SizeOf<T>()));
            }
            return;
        }
        xq.AsSpan(0, s * hp * wq).Clear();
        for (int p = 0; p < s; p++)
            for (int q = 0; q < wq; q++)
            {
                int c = q * s + p - pw;
                if ((uint)c >= (uint)w) continue;
                for (int r = 0; r < h; r++) xq[(p * hp + r + pb) * wq + q] = x[r * w + c];
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(ConvGeometry g, ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> y, T[] xq, int[] taps)
    {
        Pad(g, x, xq);
        var (_, wq, _) = Phased(g);
        int ho = g.Out[0], wo = g.Out[1], k = g.KernelSize, step = g.Stride[0] * wq;
        ref T xr = ref xq[0];
        ref T yr = ref MemoryMarshal.GetReference(y);
        ref T wr = ref MemoryMarshal.GetReference(w);
        ref int tr = ref taps[0];
        int v8 = Vector256<T>.Count, v4 = Vector128<T>.Count;
        for (int oh = 0; oh < ho; oh++)
        {
            int ow = 0;
            ref T row = ref Unsafe.Add(ref xr, oh * step);
            for (; ow + v8 <= wo; ow += v8)
            {
                var acc = Vector256<T>.Zero;
                for (int t = 0; t < k; t++)
                    acc += Vector256.Create(Unsafe.Add(ref wr, t))
                        * Vector256.LoadUnsafe(ref row, (nuint)(Unsafe.Add(ref tr, t) + ow));
                acc.StoreUnsafe(ref yr, (nuint)(oh * wo + ow));
            }
            for (; ow + v4 <= wo; ow += v4)
            {
                var acc = Vector128<T>.Zero;
                for (int t = 0; t < k; t++)
                    acc += Vector128.Create(Unsafe.Add(ref wr, t))
                        * Vector128.LoadUnsafe(ref row, (nuint)(Unsafe.Add(ref tr, t) + ow));
                acc.StoreUnsafe(ref yr, (nuint)(oh * wo + ow));
            }
            for (; ow < wo; ow++)
            {
                T acc = T.Zero;
                for (int t = 0; t < k; t++)
                    acc += Unsafe.Add(ref wr, t) * Unsafe.Add(ref row, Unsafe.Add(ref tr, t) + ow);
                Unsafe.Add(ref yr, oh * wo + ow) = acc;
            }
        }
    }

    /// <summary>dx (one input plane) += the input gradient of one output plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardInput(ConvGeometry g, ReadOnlySpan<T> gy, ReadOnlySpan<T> w, Span<T> dx, T[] dq,
        int[] taps)
    {
        var (hp, wq, s) = Phased(g);
        dq.AsSpan(0, s * hp * wq).Clear();
        int ho = g.Out[0], wo = g.Out[1], k = g.KernelSize, step = g.Stride[0] * wq;
        ref T dr = ref dq[0];
        ref T gr = ref MemoryMarshal.GetReference(gy);
        ref T wr = ref MemoryMarshal.GetReference(w);
        ref int tr = ref taps[0];
        int v8 = Vector256<T>.Count, v4 = Vector128<T>.Count;
        // Tap by tap over the whole plane: the windows of neighbouring taps overlap, and scattering them one
        // after the other within an output vector would stall every load on the store before it.
        for (int t = 0; t < k; t++)
        {
            var wt = Unsafe.Add(ref wr, t);
            ref T tap = ref Unsafe.Add(ref dr, Unsafe.Add(ref tr, t));
            for (int oh = 0; oh < ho; oh++)
            {
                int ow = 0;
                ref T row = ref Unsafe.Add(ref tap, oh * step);
                ref T grow = ref Unsafe.Add(ref gr, oh * wo);
                for (; ow + v8 <= wo; ow += v8)
                    (Vector256.LoadUnsafe(ref row, (nuint)ow) + Vector256.Create(wt) * Vector256.LoadUnsafe(ref grow,
                        (nuint)ow)).StoreUnsafe(ref row, (nuint)ow);
                for (; ow + v4 <= wo; ow += v4)
                    (Vector128.LoadUnsafe(ref row, (nuint)ow) + Vector128.Create(wt) * Vector128.LoadUnsafe(ref grow,
                        (nuint)ow)).StoreUnsafe(ref row, (nuint)ow);
                for (; ow < wo; ow++) Unsafe.Add(ref row, ow) += wt * Unsafe.Add(ref grow, ow);
            }
        }
        int h = g.In[0], wd = g.In[1], pb = g.PadBegin[0], pw = g.PadBegin[1];
        if (s == 1)
            for (int r = 0; r < h; r++) Axpy(T.One, dq.AsSpan((r + pb) * wq + pw, wd), dx.Slice(r * wd, wd));
        else
            for (int p = 0; p < s; p++)
                for (int q = 0; q < wq; q++)
                {
                    int c = q * s + p - pw;
                    if ((uint)c >= (uint)wd) continue;
                    for (int r = 0; r < h; r++) dx[r * wd + c] += dq[(p * hp + r + pb) * wq + q];
                }
    }

    /// <summary>dw (one kernel) += the weight gradient of one plane pair: one vector accumulator per tap over
    /// the whole plane, summed across lanes once at the end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardWeight(ConvGeometry g, ReadOnlySpan<T> x, ReadOnlySpan<T> gy, Span<T> dw, T[] xq,
        int[] taps)
    {
        Pad(g, x, xq);
        var (_, wq, _) = Phased(g);
        int ho = g.Out[0], wo = g.Out[1], k = g.KernelSize, step = g.Stride[0] * wq;
        ref T xr = ref xq[0];
        ref T gr = ref MemoryMarshal.GetReference(gy);
        ref int tr = ref taps[0];
        int v8 = Vector256<T>.Count, v4 = Vector128<T>.Count;
        Span<Vector256<T>> a8 = stackalloc Vector256<T>[k];
        Span<Vector128<T>> a4 = stackalloc Vector128<T>[k];
        Span<T> a1 = stackalloc T[k];
        a8.Clear(); a4.Clear(); a1.Clear();
        for (int oh = 0; oh < ho; oh++)
        {
            int ow = 0;
            ref T row = ref Unsafe.Add(ref xr, oh * step);
            for (; ow + v8 <= wo; ow += v8)
            {
                var gv = Vector256.LoadUnsafe(ref gr, (nuint)(oh * wo + ow));
                for (int t = 0; t < k; t++)
                    a8[t] += gv * Vector256.LoadUnsafe(ref row, (nuint)(Unsafe.Add(ref tr, t) + ow));
            }
            for (; ow + v4 <= wo; ow += v4)
            {
                var gv = Vector128.LoadUnsafe(ref gr, (nuint)(oh * wo + ow));
                for (int t = 0; t < k; t++)
                    a4[t] += gv * Vector128.LoadUnsafe(ref row, (nuint)(Unsafe.Add(ref tr, t) + ow));
            }
            for (; ow < wo; ow++)
            {
                var gv = Unsafe.Add(ref gr, oh * wo + ow);
                for (int t = 0; t < k; t++) a1[t] += gv * Unsafe.Add(ref row, Unsafe.Add(ref tr, t) + ow);
            }
        }
        for (int t = 0; t < k; t++) dw[t] += Vector256.Sum(a8[t]) + Vector128.Sum(a4[t]) + a1[t];
    }

    // y += a * x and <x, y> over the short rows of these planes (4 to 64 long): 256-bit, then 128-bit, then
    // scalar steps, through references (no slicing per vector).
    private static void Axpy(T a, ReadOnlySpan<T> x, Span<T> y)
    {
        ref T xr = ref MemoryMarshal.GetReference(x);
        ref T yr = ref MemoryMarshal.GetReference(y);
        int n = x.Length, k = 0;
        var a8 = Vector256.Create(a);
        for (; k + Vector256<T>.Count <= n; k += Vector256<T>.Count)
            (Vector256.LoadUnsafe(ref yr, (nuint)k) + a8 * Vector256.LoadUnsafe(ref xr, (nuint)k)).StoreUnsafe(ref yr,
                (nuint)k);
        if (k + Vector128<T>.Count <= n)
        {
            (Vector128.LoadUnsafe(ref yr, (nuint)k) + Vector128.Create(a) * Vector128.LoadUnsafe(ref xr, (nuint)k))
                .StoreUnsafe(ref yr, (nuint)k);
            k += Vector128<T>.Count;
        }
        for (; k < n; k++) Unsafe.Add(ref yr, k) += a * Unsafe.Add(ref xr, k);
    }
}
