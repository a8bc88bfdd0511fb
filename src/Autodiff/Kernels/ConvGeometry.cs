// Geometry of a 1-D or 2-D sliding window (Conv, ConvTranspose, pooling): kernel, stride, dilation and
// begin/end padding per spatial axis (a 1-D window is a 2-D one of height 1), input and output sizes,
// and the im2col / col2im transforms that turn a convolution into one matrix product:
//   col[(c*kh + i)*kw + j, oh*Wo + ow] = x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]   (0 outside)
// col2im is its adjoint (accumulating), used by the input gradient of Conv and by ConvTranspose.
// Output size per axis: floor((in + pb + pe - ((k-1)*d + 1)) / s) + 1 (ceil for ceil_mode pooling,
// where a last window starting in the end padding is dropped). auto_pad SAME_UPPER/SAME_LOWER picks
// pads so that out = ceil(in / s), the extra pad going to the end (UPPER) or the begin (LOWER).
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Autodiff.Kernels;

internal sealed record ConvGeometry(int[] Kernel, int[] Stride, int[] Dilation, int[] PadBegin, int[] PadEnd,
    int[] In, int[] Out)
{
    public int KernelSize => Kernel[0] * Kernel[1];
    public int InSize => In[0] * In[1];
    public int OutSize => Out[0] * Out[1];
    public int EffectiveKernel(int ax) => (Kernel[ax] - 1) * Dilation[ax] + 1;

    /// <summary>Reads the window attributes of a node for an input of spatial size <paramref name="spatial"/>.</summary>
    public static ConvGeometry Of(Node n, int[] spatial, int[] kernel, bool ceilMode = false)
    {
        int r = spatial.Length;
        if (r is < 1 or > 2) throw new OnnxModelException($"node {n}: the reference evaluator supports 1-D and 2-D windows, not {r}-D");
        int[] Get(string name, int dflt, int count)
        {
            var v = n.GetInts(name);
            if (v is null) return Enumerable.Repeat(dflt, count).ToArray();
            if (v.Length != count) throw new OnnxModelException($"node {n}: attribute '{name}' has {v.Length} values, expected {count}");
            return v.Select(x => checked((int)x)).ToArray();
        }
        var stride = Get("strides", 1, r); var dil = Get("dilations", 1, r); var pads = Get("pads", 0, 2 * r);
        var pb = pads[..r]; var pe = pads[r..];
        var autoPad = n.GetString("auto_pad") ?? "NOTSET";
        var outSize = new int[r];
        for (int a = 0; a < r; a++)
        {
            int keff = (kernel[a] - 1) * dil[a] + 1;
            if (autoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                int o = (spatial[a] + stride[a] - 1) / stride[a];
                int total = Math.Max(0, (o - 1) * stride[a] + keff - spatial[a]);
                pb[a] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                pe[a] = total - pb[a];
            }
            else if (autoPad == "VALID") { pb[a] = 0; pe[a] = 0; }
            int span = spatial[a] + pb[a] + pe[a] - keff;
            if (span < 0) throw new OnnxModelException($"node {n}: window of {keff} does not fit input size {spatial[a]} with padding");
            outSize[a] = ceilMode ? (span + stride[a] - 1) / stride[a] + 1 : span / stride[a] + 1;
            if (ceilMode && (outSize[a] - 1) * stride[a] >= spatial[a] + pb[a]) outSize[a]--;
        }
        return r == 1
            ? new ConvGeometry([1, kernel[0]], [1, stride[0]], [1, dil[0]], [0, pb[0]], [0, pe[0]], [1, spatial[0]],
                [1, outSize[0]])
            : new ConvGeometry(kernel, stride, dil, pb, pe, spatial, outSize);
    }

    /// <summary>im2col of <paramref name="channels"/> planes of x starting at xOff into col (rows C*kh*kw, cols Ho*Wo);
    /// with <paramref name="ld"/> the rows are ld long and this image's columns start at <paramref name="colOff"/>
    /// (several images side by side, for one product over a batch).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Im2Col<T>(T[] x, int xOff, int channels, T[] col, int ld = -1, int colOff = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int kh = Kernel[0], kw = Kernel[1], H = In[0], W = In[1], Ho = Out[0], Wo = Out[1];
        if (ld < 0) ld = Ho * Wo;
        int row = 0;
        for (int c = 0; c < channels; c++)
        {
            int plane = xOff + c * H * W;
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++, row++)
                {
                    var dst = col.AsSpan(row * ld + colOff, Ho * Wo);
                    for (int oh = 0; oh < Ho; oh++)
                    {
                        int ih = oh * Stride[0] - PadBegin[0] + i * Dilation[0];
                        var line = dst.Slice(oh * Wo, Wo);
                        if ((uint)ih >= (uint)H) { line.Clear(); continue; }
                        int src = plane + ih * W;
                        int iw0 = -PadBegin[1] + j * Dilation[1];
                        if (Stride[1] == 1)
                        {
                            int lo = Math.Max(0, -iw0), hi = Math.Min(Wo, W - iw0);
                            if (lo > 0) line[..Math.Min(lo, Wo)].Clear();
                            if (hi > lo) x.AsSpan(src + iw0 + lo, hi - lo).CopyTo(line[lo..]);
                            if (hi < Wo) line[Math.Max(hi, 0)..].Clear();
                        }
                        else
                            for (int ow = 0; ow < Wo; ow++)
                            {
                                int iw = iw0 + ow * Stride[1];
                                line[ow] = (uint)iw < (uint)W ? x[src + iw] : T.Zero;
                            }
                    }
                }
        }
    }

    /// <summary>Adjoint of Im2Col: x[...] += col[...] for every window position (same ld and colOff).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Col2Im<T>(T[] col, T[] x, int xOff, int channels, int ld = -1, int colOff = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int kh = Kernel[0], kw = Kernel[1], H = In[0], W = In[1], Ho = Out[0], Wo = Out[1];
        if (ld < 0) ld = Ho * Wo;
        int row = 0;
        for (int c = 0; c < channels; c++)
        {
            int plane = xOff + c * H * W;
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++, row++)
                {
                    var src = col.AsSpan(row * ld + colOff, Ho * Wo);
                    for (int oh = 0; oh < Ho; oh++)
                    {
                        int ih = oh * Stride[0] - PadBegin[0] + i * Dilation[0];
                        if ((uint)ih >= (uint)H) continue;
                        int dst = plane + ih * W;
                        int iw0 = -PadBegin[1] + j * Dilation[1];
                        var line = src.Slice(oh * Wo, Wo);
                        for (int ow = 0; ow < Wo; ow++)
                        {
                            int iw = iw0 + ow * Stride[1];
                            if ((uint)iw < (uint)W) x[dst + iw] += line[ow];
                        }
                    }
                }
        }
    }
    /// <summary>Padded plane sizes (input plus begin and end padding) for the padded im2col/col2im.</summary>
    public int PaddedSize => (In[0] + PadBegin[0] + PadEnd[0]) * (In[1] + PadBegin[1] + PadEnd[1]);

    /// <summary>Whether im2col is the identity (1 x 1 window, stride 1, no padding): rows are the planes.</summary>
    public bool IsPointwise => KernelSize == 1 && Stride[0] == 1 && Stride[1] == 1 && PadBegin[0] == 0
        && PadBegin[1] == 0 && PadEnd[0] == 0 && PadEnd[1] == 0;

    /// <summary>Im2Col through a zero-padded copy of the planes (xp, at least channels * PaddedSize long): every
    /// output line is then one contiguous copy (stride 1) with no bounds tests, the fast form for training.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Im2ColPadded<T>(T[] x, int xOff, int channels, T[] col, int ld, int colOff, T[] xp)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int kh = Kernel[0], kw = Kernel[1], H = In[0], W = In[1], Ho = Out[0], Wo = Out[1];
        ref T xr = ref MemoryMarshal.GetArrayDataReference(x);
        ref T cr = ref MemoryMarshal.GetArrayDataReference(col);
        if (IsPointwise)
        {
            for (int c = 0; c < channels; c++) Copy(ref Unsafe.Add(ref xr, xOff + c * H * W),
                ref Unsafe.Add(ref cr, c * ld + colOff), H * W);
            return;
        }
        int Hp = H + PadBegin[0] + PadEnd[0], Wp = W + PadBegin[1] + PadEnd[1], plane = Hp * Wp;
        ref T pr = ref MemoryMarshal.GetArrayDataReference(xp);
        xp.AsSpan(0, channels * plane).Clear();
        for (int c = 0; c < channels; c++)
            for (int h = 0; h < H; h++)
                Copy(ref Unsafe.Add(ref xr, xOff + (c * H + h) * W),
                    ref Unsafe.Add(ref pr, c * plane + (h + PadBegin[0]) * Wp + PadBegin[1]), W);
        int row = 0, s0 = Stride[0], s1 = Stride[1];
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++, row++)
                {
                    int dst = row * ld + colOff;
                    for (int oh = 0; oh < Ho; oh++, dst += Wo)
                    {
                        int src = c * plane + (oh * s0 + i * Dilation[0]) * Wp + j * Dilation[1];
                        if (s1 == 1) Copy(ref Unsafe.Add(ref pr, src), ref Unsafe.Add(ref cr, dst), Wo);
                        else for (int ow = 0; ow < Wo; ow++) col[dst + ow] = xp[src + ow * s1];
                    }
                }
    }

    /// <summary>Col2Im through a padded accumulator (xp, as for Im2ColPadded): x[...] += col[...].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Col2ImPadded<T>(T[] col, T[] x, int xOff, int channels, int ld, int colOff, T[] xp)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int kh = Kernel[0], kw = Kernel[1], H = In[0], W = In[1], Ho = Out[0], Wo = Out[1];
        ref T xr = ref MemoryMarshal.GetArrayDataReference(x);
        ref T cr = ref MemoryMarshal.GetArrayDataReference(col);
        if (IsPointwise)
        {
            for (int c = 0; c < channels; c++) Add(ref Unsafe.Add(ref cr, c * ld + colOff),
                ref Unsafe.Add(ref xr, xOff + c * H * W), H * W);
            return;
        }
        int Hp = H + PadBegin[0] + PadEnd[0], Wp = W + PadBegin[1] + PadEnd[1], plane = Hp * Wp;
        ref T pr = ref MemoryMarshal.GetArrayDataReference(xp);
        xp.AsSpan(0, channels * plane).Clear();
        int row = 0, s0 = Stride[0], s1 = Stride[1];
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++, row++)
                {
                    int from = row * ld + colOff;
                    for (int oh = 0; oh < Ho; oh++, from += Wo)
                    {
                        int at = c * plane + (oh * s0 + i * Dilation[0]) * Wp + j * Dilation[1];
                        if (s1 == 1) Add(ref Unsafe.Add(ref cr, from), ref Unsafe.Add(ref pr, at), Wo);
                        else for (int ow = 0; ow < Wo; ow++) xp[at + ow * s1] += col[from + ow];
                    }
                }
        for (int c = 0; c < channels; c++)
            for (int h = 0; h < H; h++)
                Add(ref Unsafe.Add(ref pr, c * plane + (h + PadBegin[0]) * Wp + PadBegin[1]),
                    ref Unsafe.Add(ref xr, xOff + (c * H + h) * W), W);
    }

    /// <summary>dst[0..n] = src[0..n] in 256- and 128-bit moves (the lines of these convs are 4 to 64 long).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy<T>(ref T src, ref T dst, int n) where T : unmanaged
    {
        int i = 0;
        for (; i + Vector256<T>.Count <= n; i += Vector256<T>.Count)
            Vector256.LoadUnsafe(ref src, (nuint)i).StoreUnsafe(ref dst, (nuint)i);
        if (i + Vector128<T>.Count <= n)
        {
            Vector128.LoadUnsafe(ref src, (nuint)i).StoreUnsafe(ref dst, (nuint)i);
            i += Vector128<T>.Count;
        }
        for (; i < n; i++) Unsafe.Add(ref dst, i) = Unsafe.Add(ref src, i);
    }

    /// <summary>dst[0..n] += src[0..n], vectorized as Copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add<T>(ref T src, ref T dst, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        for (; i + Vector256<T>.Count <= n; i += Vector256<T>.Count)
            (Vector256.LoadUnsafe(ref src, (nuint)i) + Vector256.LoadUnsafe(ref dst, (nuint)i)).StoreUnsafe(ref dst,
                (nuint)i);
        if (i + Vector128<T>.Count <= n)
        {
            (Vector128.LoadUnsafe(ref src, (nuint)i) + Vector128.LoadUnsafe(ref dst, (nuint)i)).StoreUnsafe(ref dst,
                (nuint)i);
            i += Vector128<T>.Count;
        }
        for (; i < n; i++) Unsafe.Add(ref dst, i) += Unsafe.Add(ref src, i);
    }

}
