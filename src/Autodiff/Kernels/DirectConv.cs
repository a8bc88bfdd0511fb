// Direct convolution: the product a conv is after im2col, Y = W * B, without building B.
//
//   Y[m, p] = bias[m] + sum_r W[m, r] * B[r, p],   r = (c, i, j) < Cg*kh*kw,  p = (oh, ow) < Ho*Wo
//   B[r, p] = xpad[c, oh*sh + i*dh, ow*sw + j*dw]
// The padded planes are stored in sw column phases (padded column w at phase w % sw, index w / sw, as in
// Depthwise), so that V consecutive pixels of one output row are V consecutive elements:
//   B[r, p .. p+V) = xq[off[r] + base(p) ..],  off[r] = ((c*sw + (j*dw) % sw)*Hp + i*dh)*Wq + (j*dw) / sw,
//                                              base(p) = oh*sh*Wq + ow
// It applies when every output row is whole vectors (Wo a multiple of V) and an image is whole tiles of 2
// vectors. The forward runs the GEMM's register tile (6 or 4 output channels x 2 vectors of pixels: one
// broadcast weight and two loads per step) with its B rows read through the offset table, and the bias as the
// accumulators' start. The weight gradient reads the same table the other way, channels-last:
//   dW^T[r, m] = sum_n sum_p B_n[r, p] * dY[n, m, p],
// with dY made pixel-major (Transpose) so that a vector runs over output channels: tiles of 6 rows r x 2 vectors
// of channels, one broadcast of B and two loads of dY per row, the pixels of a few images summed in order into
// the same accumulators and reduced at the end, so its bytes do not depend on the thread count. Without the
// im2col (9x the input for a 3x3 kernel) and its packing, the small convs of training (16-64 channels, 8x8 to
// 16x16 images) are bound by the FMAs instead of by memory. It is not used where the windows skip input (a 1x1
// window of stride 2), where padding every column costs more than im2col's quarter.
// Where output rows are not whole vectors (4x4, 7x7, 14x14, 28x28 images) the forward runs channels-last instead,
// the weight gradient's tile turned around: Y^T[P, m] = bias[m] + sum_r B[r, P] * W^T[r, m] over the pixels P of a
// few images in a row, 6 pixels x 2 vectors of channels per tile, and the result transposed back. Against the GEMM
// over im2col on one core (`conv-kernels --layers`, two alternated runs on a noisy VM), the forward ran 1.3x at
// 64->64 channels on 4x4 images, 1.0-1.8x on ResNet-18's 28x28 and 14x14 layers and 1.1-3.1x on 60x60 and 100x100
// images; those layers' backward 1.1-1.4x and 0.7-2.1x.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnnxOpt.Autodiff.Kernels;

internal sealed class DirectConv<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static int V => Vector<T>.Count;

    /// <summary>Whether the geometry's output rows are whole vectors, its images whole tiles of two, and its
    /// windows cover the input.</summary>
    public static bool Applies(ConvGeometry g) =>
        Vector.IsHardwareAccelerated && g.Out[1] % V == 0 && g.OutSize % (2 * V) == 0 && Covers(g, 0) && Covers(g, 1);

    /// <summary>Whether the windows along an axis leave no input between them (a 1x1 window of stride 2 reads a
    /// quarter of the input: im2col copies just that, where padding would copy all of it).</summary>
    private static bool Covers(ConvGeometry g, int axis) => g.EffectiveKernel(axis) >= g.Stride[axis];

    private readonly ConvGeometry _g;
    private readonly int _hp, _wq, _s, _plane;
    private readonly int[] _off;
    private readonly int[] _base;
    private readonly int[] _pixel;

    /// <summary>Input channels per image (a group's).</summary>
    public int Channels { get; }

    /// <summary>Rows of B: Channels * kernel size.</summary>
    public int Rows => _off.Length;

    /// <summary>Elements of one padded image in the phased layout.</summary>
    public int ImageSize => Channels * _plane;

    public DirectConv(ConvGeometry g, int channels)
    {
        _g = g;
        Channels = channels;
        _s = g.Stride[1];
        _hp = g.In[0] + g.PadBegin[0] + g.PadEnd[0];
        _wq = (g.In[1] + g.PadBegin[1] + g.PadEnd[1] + _s - 1) / _s;
        _plane = _s * _hp * _wq;
        int kh = g.Kernel[0], kw = g.Kernel[1];
        _off = new int[channels * kh * kw];
        for (int c = 0, r = 0; c < channels; c++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++, r++)
                {
                    int col = j * g.Dilation[1];
                    _off[r] = ((c * _s + col % _s) * _hp + i * g.Dilation[0]) * _wq + col / _s;
                }
        _pixel = new int[g.OutSize];
        for (int p = 0; p < _pixel.Length; p++) _pixel[p] = p / g.Out[1] * g.Stride[0] * _wq + p % g.Out[1];
        // The forward's tiles (2 vectors of pixels) exist only where it applies; the weight gradient needs none.
        _base = new int[Applies(g) ? g.OutSize / V : 0];
        for (int q = 0; q < _base.Length; q++)
        {
            int p = q * V, oh = p / g.Out[1], ow = p % g.Out[1];
            _base[q] = oh * g.Stride[0] * _wq + ow;
        }
    }

    /// <summary>Channels planes of one image (x from xOff, H*W each) zero-padded into xq from qOff, in phases.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Pad(T[] x, int xOff, T[] xq, int qOff)
    {
        int h = _g.In[0], w = _g.In[1], pb = _g.PadBegin[0], pw = _g.PadBegin[1];
        xq.AsSpan(qOff, ImageSize).Clear();
        for (int c = 0; c < Channels; c++)
            for (int r = 0; r < h; r++)
            {
                var src = x.AsSpan(xOff + (c * h + r) * w, w);
                int row = qOff + c * _plane + (r + pb) * _wq;
                if (_s == 1)
                {
                    src.CopyTo(xq.AsSpan(row + pw));
                    continue;
                }
                int done = _s == 2 ? PadPairs(src, xq, row, pw) : 0;
                // Phase ph holds padded columns ph, ph + s, ...: input columns ph - pw + s*i (those from done on).
                for (int ph = 0; ph < _s; ph++)
                {
                    var dst = xq.AsSpan(row + ph * _hp * _wq, _wq);
                    int first = ph - pw, i = done - first > 0 ? (done - first + _s - 1) / _s : 0;
                    for (int col = first + i * _s; i < _wq && col < w; i++, col += _s) dst[i] = src[col];
                }
            }
    }

    /// <summary>Pad's stride-2 row in floats, 16 (then 8) columns at a time: even columns 2i to phase pw % 2 at
    /// i + pw / 2, odd ones to the other phase at i + (pw + 1) / 2. Returns the columns done. (Not left to tiering:
    /// called from Pad, which is, it ran twice as slow.)</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int PadPairs(ReadOnlySpan<T> src, T[] xq, int row, int pw)
    {
        if (typeof(T) != typeof(float) || !Avx2.IsSupported) return 0;
        var s = MemoryMarshal.Cast<T, float>(src);
        var q = MemoryMarshal.Cast<T, float>(xq.AsSpan());
        int plane = _hp * _wq, even = row + pw % 2 * plane + pw / 2, odd = row + (pw + 1) % 2 * plane + (pw + 1) / 2;
        int col = 0;
        for (; col + 16 <= s.Length; col += 16)
        {
            var (e, o) = Kernels.Transpose.Deinterleave(Vector256.Create(s.Slice(col, 8)),
                Vector256.Create(s.Slice(col + 8, 8)));
            e.CopyTo(q.Slice(even + col / 2, 8));
            o.CopyTo(q.Slice(odd + col / 2, 8));
        }
        for (; col + 8 <= s.Length; col += 8)
        {
            Vector128<float> v0 = Vector128.Create(s.Slice(col, 4)), v1 = Vector128.Create(s.Slice(col + 4, 4));
            Sse.Shuffle(v0, v1, 0b10_00_10_00).CopyTo(q.Slice(even + col / 2, 4));
            Sse.Shuffle(v0, v1, 0b11_01_11_01).CopyTo(q.Slice(odd + col / 2, 4));
        }
        return col;
    }

    /// <summary>The weights w[wOff + m*Rows + r] of m output channels packed for the forward's tiles.</summary>
    public Packed Pack(T[] w, int wOff, int m)
    {
        var tiles = new List<(int Row0, int Height, int Valid, int At)>();
        int k = Rows, at = 0;
        for (int row = 0; row < m;)
        {
            int left = m - row;
            // 6-row tiles, but 4-row ones for 4 and 8 left (16 = 6+6+4, 32 = 6*4+4+4: no row is wasted).
            int height = left is 4 or 8 or < 4 ? 4 : 6, valid = Math.Min(height, left);
            tiles.Add((row, height, valid, at));
            at += height * k;
            row += valid;
        }
        var data = new T[at];
        foreach (var (row0, height, valid, start) in tiles)
            for (int r = 0; r < k; r++)
                for (int ii = 0; ii < valid; ii++) data[start + r * height + ii] = w[wOff + (row0 + ii) * k + r];
        return new Packed(data, tiles.ToArray());
    }

    /// <summary>Weights in tiles of Height rows (Valid of them real), each [r][Height] from At.</summary>
    public sealed record Packed(T[] Data, (int Row0, int Height, int Valid, int At)[] Tiles);

    /// <summary>y[yOff + m*Ho*Wo + p] = bias[m] + sum_r W[m, r] * B[r, p] for the m output channels of
    /// <paramref name="w"/>, B from the padded image at xq[qOff..]; bias from bOff, or zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Forward(T[] xq, int qOff, Packed w, T[] y, int yOff, T[]? bias, int bOff)
    {
        int k = Rows, ohw = _g.OutSize, v = V;
        Span<T> tile = stackalloc T[6 * 2 * v];
        Span<T> b6 = stackalloc T[6];
        ref int off = ref MemoryMarshal.GetArrayDataReference(_off);
        ref T x = ref MemoryMarshal.GetArrayDataReference(xq);
        foreach (var (row0, height, valid, at) in w.Tiles)
        {
            ref T a = ref w.Data[at];
            for (int ii = 0; ii < 6; ii++) b6[ii] = bias is null || ii >= valid ? T.Zero : bias[bOff + row0 + ii];
            ref T bv = ref MemoryMarshal.GetReference(b6);
            for (int q = 0; q < _base.Length; q += 2)
            {
                ref T x0 = ref Unsafe.Add(ref x, qOff + _base[q]);
                nint delta = _base[q + 1] - _base[q];
                int cAt = yOff + row0 * ohw + q * v;
                bool whole = valid == height;
                ref T c = ref whole ? ref y[cAt] : ref MemoryMarshal.GetReference(tile);
                int ldc = whole ? ohw : 2 * v;
                if (height == 6) Tile6(k, ref a, ref x0, ref off, delta, ref c, ldc, ref bv);
                else Tile4(k, ref a, ref x0, ref off, delta, ref c, ldc, ref bv);
                if (!whole)
                    for (int ii = 0; ii < valid; ii++) tile.Slice(ii * 2 * v, 2 * v).CopyTo(y.AsSpan(cAt + ii * ohw));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Fma(Vector<T> a, Vector<T> b, Vector<T> acc) => Gemm<T>.Fma(a, b, acc);

    /// <summary>A 6 x 2V tile: c[ii*ldc + (0..2V)] = bias[ii] + sum_r a[r*6 + ii] * x[off[r] + (0..V, delta..)].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile6(int k, ref T a, ref T x, ref int off, nint delta, ref T c, int ldc, ref T bias)
    {
        Vector<T> c00 = new(bias), c01 = c00, c10 = new(Unsafe.Add(ref bias, 1)), c11 = c10,
            c20 = new(Unsafe.Add(ref bias, 2)), c21 = c20, c30 = new(Unsafe.Add(ref bias, 3)), c31 = c30,
            c40 = new(Unsafe.Add(ref bias, 4)), c41 = c40, c50 = new(Unsafe.Add(ref bias, 5)), c51 = c50;
        for (int r = 0; r < k; r++)
        {
            ref T xr = ref Unsafe.Add(ref x, Unsafe.Add(ref off, r));
            var b0 = Vector.LoadUnsafe(ref xr);
            var b1 = Vector.LoadUnsafe(ref Unsafe.Add(ref xr, delta));
            ref T ar = ref Unsafe.Add(ref a, r * 6);
            var w = new Vector<T>(ar); c00 = Fma(w, b0, c00); c01 = Fma(w, b1, c01);
            w = new Vector<T>(Unsafe.Add(ref ar, 1)); c10 = Fma(w, b0, c10); c11 = Fma(w, b1, c11);
            w = new Vector<T>(Unsafe.Add(ref ar, 2)); c20 = Fma(w, b0, c20); c21 = Fma(w, b1, c21);
            w = new Vector<T>(Unsafe.Add(ref ar, 3)); c30 = Fma(w, b0, c30); c31 = Fma(w, b1, c31);
            w = new Vector<T>(Unsafe.Add(ref ar, 4)); c40 = Fma(w, b0, c40); c41 = Fma(w, b1, c41);
            w = new Vector<T>(Unsafe.Add(ref ar, 5)); c50 = Fma(w, b0, c50); c51 = Fma(w, b1, c51);
        }
        Store6(ref c, ldc, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51);
    }

    /// <summary>Six rows of two vectors: c[i*ldc + (0..2V)] = (ci0, ci1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store6(ref T c, int ldc, Vector<T> c00, Vector<T> c01, Vector<T> c10, Vector<T> c11,
        Vector<T> c20, Vector<T> c21, Vector<T> c30, Vector<T> c31, Vector<T> c40, Vector<T> c41, Vector<T> c50,
        Vector<T> c51)
    {
        int v = Vector<T>.Count;
        c00.StoreUnsafe(ref c); c01.StoreUnsafe(ref c, (nuint)v);
        c10.StoreUnsafe(ref c, (nuint)ldc); c11.StoreUnsafe(ref c, (nuint)(ldc + v));
        c20.StoreUnsafe(ref c, (nuint)(2 * ldc)); c21.StoreUnsafe(ref c, (nuint)(2 * ldc + v));
        c30.StoreUnsafe(ref c, (nuint)(3 * ldc)); c31.StoreUnsafe(ref c, (nuint)(3 * ldc + v));
        c40.StoreUnsafe(ref c, (nuint)(4 * ldc)); c41.StoreUnsafe(ref c, (nuint)(4 * ldc + v));
        c50.StoreUnsafe(ref c, (nuint)(5 * ldc)); c51.StoreUnsafe(ref c, (nuint)(5 * ldc + v));
    }

    /// <summary>Tile6 with 4 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4(int k, ref T a, ref T x, ref int off, nint delta, ref T c, int ldc, ref T bias)
    {
        Vector<T> c00 = new(bias), c01 = c00, c10 = new(Unsafe.Add(ref bias, 1)), c11 = c10,
            c20 = new(Unsafe.Add(ref bias, 2)), c21 = c20, c30 = new(Unsafe.Add(ref bias, 3)), c31 = c30;
        for (int r = 0; r < k; r++)
        {
            ref T xr = ref Unsafe.Add(ref x, Unsafe.Add(ref off, r));
            var b0 = Vector.LoadUnsafe(ref xr);
            var b1 = Vector.LoadUnsafe(ref Unsafe.Add(ref xr, delta));
            ref T ar = ref Unsafe.Add(ref a, r * 4);
            var w = new Vector<T>(ar); c00 = Fma(w, b0, c00); c01 = Fma(w, b1, c01);
            w = new Vector<T>(Unsafe.Add(ref ar, 1)); c10 = Fma(w, b0, c10); c11 = Fma(w, b1, c11);
            w = new Vector<T>(Unsafe.Add(ref ar, 2)); c20 = Fma(w, b0, c20); c21 = Fma(w, b1, c21);
            w = new Vector<T>(Unsafe.Add(ref ar, 3)); c30 = Fma(w, b0, c30); c31 = Fma(w, b1, c31);
        }
        int v = Vector<T>.Count;
        c00.StoreUnsafe(ref c); c01.StoreUnsafe(ref c, (nuint)v);
        c10.StoreUnsafe(ref c, (nuint)ldc); c11.StoreUnsafe(ref c, (nuint)(ldc + v));
        c20.StoreUnsafe(ref c, (nuint)(2 * ldc)); c21.StoreUnsafe(ref c, (nuint)(2 * ldc + v));
        c30.StoreUnsafe(ref c, (nuint)(3 * ldc)); c31.StoreUnsafe(ref c, (nuint)(3 * ldc + v));
    }

    /// <summary>Whether the channels-last forward serves where <see cref="Applies"/> does not (output rows not whole
    /// vectors, such as 4x4 or 14x14 images): windows that cover the input.</summary>
    public static bool AppliesChannelsLast(ConvGeometry g) =>
        Vector.IsHardwareAccelerated && !Applies(g) && Covers(g, 0) && Covers(g, 1);

    /// <summary>Rows of the channels-last output of <paramref name="count"/> images: their pixels rounded up to
    /// whole tiles of 6.</summary>
    public int ChannelsLastRows(int count) => (count * _g.OutSize + 5) / 6 * 6;

    /// <summary>The weights w[wOff + mm*Rows + r] of m output channels into data[0 .. PaddedChannels(m) * Rows) as
    /// [chunk of 2V channels][r][2V], the channels past m zero.</summary>
    public void PackChannelsLast(T[] w, int wOff, int m, T[] data)
    {
        int k = Rows, mp = PaddedChannels(m);
        data.AsSpan(0, mp * k).Clear();
        for (int mm = 0; mm < m; mm++)
            for (int r = 0; r < k; r++) data[(mm / MW * k + r) * MW + mm % MW] = w[wOff + mm * k + r];
    }

    /// <summary>Each pixel's place in xq for <paramref name="count"/> padded images taken in order (image-major),
    /// ChannelsLastRows(count) of them: those past the last pixel repeat it.</summary>
    public nint[] PixelPlaces(int count)
    {
        int ohw = _g.OutSize, total = count * ohw;
        var at = new nint[ChannelsLastRows(count)];
        for (int n = 0, pix = 0; n < count; n++)
            for (int p = 0; p < ohw; p++, pix++) at[pix] = n * ImageSize + _pixel[p];
        for (int pix = total; pix < at.Length; pix++) at[pix] = at[total - 1];
        return at;
    }

    /// <summary>yt[P*PaddedChannels(m) + mm] = bias[mm] + sum_r W[mm, r] * B[r, P] for the pixels P of the padded
    /// images in xq at <paramref name="places"/> (PixelPlaces): tiles of 6 pixels x 2 vectors of output channels, one
    /// load of W and six broadcasts of B per row r. bias holds PaddedChannels(m) values (or is null: zero); yt has
    /// places.Length rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ForwardChannelsLast(T[] xq, nint[] places, T[] wt, int m, T[]? bias, T[] yt)
    {
        int k = Rows, mp = PaddedChannels(m), v = V;
        ref T x = ref MemoryMarshal.GetArrayDataReference(xq);
        ref int off = ref MemoryMarshal.GetArrayDataReference(_off);
        for (int m0 = 0; m0 < mp; m0 += MW)
        {
            ref T a = ref wt[m0 * k];
            var bias0 = bias is null ? Vector<T>.Zero : Vector.LoadUnsafe(ref bias[m0]);
            var bias1 = bias is null ? Vector<T>.Zero : Vector.LoadUnsafe(ref bias[m0 + v]);
            for (int p0 = 0; p0 < places.Length; p0 += 6)
                PixelTile(k, ref a, ref x, ref off, places[p0], places[p0 + 1], places[p0 + 2], places[p0 + 3],
                    places[p0 + 4], places[p0 + 5], ref yt[p0 * mp + m0], mp, bias0, bias1);
        }
    }

    /// <summary>A 6 pixels x 2V channels tile: c[i*ldc + (0..2V)] = bias + sum_r x[p_i + off[r]] * a[r*2V + (0..2V)].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PixelTile(int k, ref T a, ref T x, ref int off, nint p0, nint p1, nint p2, nint p3, nint p4,
        nint p5, ref T c, int ldc, Vector<T> bias0, Vector<T> bias1)
    {
        int v = Vector<T>.Count;
        Vector<T> c00 = bias0, c01 = bias1, c10 = bias0, c11 = bias1, c20 = bias0, c21 = bias1,
            c30 = bias0, c31 = bias1, c40 = bias0, c41 = bias1, c50 = bias0, c51 = bias1;
        ref T x0 = ref Unsafe.Add(ref x, p0); ref T x1 = ref Unsafe.Add(ref x, p1);
        ref T x2 = ref Unsafe.Add(ref x, p2); ref T x3 = ref Unsafe.Add(ref x, p3);
        ref T x4 = ref Unsafe.Add(ref x, p4); ref T x5 = ref Unsafe.Add(ref x, p5);
        for (int r = 0; r < k; r++)
        {
            nint o = Unsafe.Add(ref off, r);
            var w0 = Vector.LoadUnsafe(ref a, (nuint)(r * 2 * v));
            var w1 = Vector.LoadUnsafe(ref a, (nuint)(r * 2 * v + v));
            var b = new Vector<T>(Unsafe.Add(ref x0, o)); c00 = Fma(b, w0, c00); c01 = Fma(b, w1, c01);
            b = new Vector<T>(Unsafe.Add(ref x1, o)); c10 = Fma(b, w0, c10); c11 = Fma(b, w1, c11);
            b = new Vector<T>(Unsafe.Add(ref x2, o)); c20 = Fma(b, w0, c20); c21 = Fma(b, w1, c21);
            b = new Vector<T>(Unsafe.Add(ref x3, o)); c30 = Fma(b, w0, c30); c31 = Fma(b, w1, c31);
            b = new Vector<T>(Unsafe.Add(ref x4, o)); c40 = Fma(b, w0, c40); c41 = Fma(b, w1, c41);
            b = new Vector<T>(Unsafe.Add(ref x5, o)); c50 = Fma(b, w0, c50); c51 = Fma(b, w1, c51);
        }
        Store6(ref c, ldc, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51);
    }

    /// <summary>Columns of a weight-gradient tile (output channels, two vectors).</summary>
    private static int MW => 2 * V;

    /// <summary>Output channels m rounded up to whole weight-gradient tiles.</summary>
    public static int PaddedChannels(int m) => (m + MW - 1) / MW * MW;

    /// <summary>Tiles of the weight gradient of m output channels: 6 rows x 2V channels each.</summary>
    public int TileCount(int m) => PaddedChannels(m) / MW * ((Rows + 5) / 6);

    /// <summary>Accumulators the weight gradient of m output channels needs (WeightGradient's acc).</summary>
    public int AccumulatorCount(int m) => TileCount(m) * 12;

    /// <summary>gt[p*PaddedChannels(m) + mm] = gy[gyOff + mm*Ho*Wo + p] for the m planes of one image (pixel-major,
    /// the padding channels zero): the weight gradient's operand.</summary>
    public void Transpose(T[] gy, int gyOff, int m, T[] gt, int gtOff)
    {
        int ohw = _g.OutSize, mp = PaddedChannels(m);
        Kernels.Transpose.Matrix(gy, gyOff, ohw, m, ohw, gt, gtOff, mp);
        if (mp > m)
            for (int p = 0; p < ohw; p++) gt.AsSpan(gtOff + p * mp + m, mp - m).Clear();
    }

    /// <summary>acc += dW^T[r, mm] = sum_p B[r, p] * dY[mm, p] over <paramref name="count"/> images, for the tiles
    /// [tile0, tile1) of 6 rows x 2 vectors of output channels (channel-block-major): padded image i at
    /// xq[i * ImageSize..], its gradient pixel-major at gt[i * Ho*Wo * PaddedChannels(m)..] (Transpose). acc starts
    /// zeroed; Reduce writes dW.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WeightGradient(T[] xq, T[] gt, int count, int m, Span<Vector<T>> acc, int tile0, int tile1)
    {
        int k = Rows, ohw = _g.OutSize, mp = PaddedChannels(m), v = V, rowTiles = (k + 5) / 6;
        ref T x = ref MemoryMarshal.GetArrayDataReference(xq);
        ref T d = ref MemoryMarshal.GetArrayDataReference(gt);
        ref int pix = ref MemoryMarshal.GetArrayDataReference(_pixel);
        for (int t = tile0; t < tile1; t++)
        {
            int m0 = t / rowTiles * MW, r0 = t % rowTiles * 6, at = t * 12;
            // Rows past a ragged edge repeat the last one; Reduce drops their sums.
            int o0 = _off[r0], o1 = _off[Math.Min(r0 + 1, k - 1)], o2 = _off[Math.Min(r0 + 2, k - 1)],
                o3 = _off[Math.Min(r0 + 3, k - 1)], o4 = _off[Math.Min(r0 + 4, k - 1)],
                o5 = _off[Math.Min(r0 + 5, k - 1)];
            var s = acc.Slice(at, 12);
            Vector<T> a00 = s[0], a01 = s[1], a10 = s[2], a11 = s[3], a20 = s[4], a21 = s[5],
                a30 = s[6], a31 = s[7], a40 = s[8], a41 = s[9], a50 = s[10], a51 = s[11];
            for (int n = 0; n < count; n++)
            {
                ref T xn = ref Unsafe.Add(ref x, n * ImageSize);
                ref T dn = ref Unsafe.Add(ref d, n * ohw * mp + m0);
                for (int p = 0; p < ohw; p++)
                {
                    ref T xb = ref Unsafe.Add(ref xn, Unsafe.Add(ref pix, p));
                    ref T dp = ref Unsafe.Add(ref dn, p * mp);
                    var g0 = Vector.LoadUnsafe(ref dp);
                    var g1 = Vector.LoadUnsafe(ref dp, (nuint)v);
                    var b = new Vector<T>(Unsafe.Add(ref xb, o0)); a00 = Fma(b, g0, a00); a01 = Fma(b, g1, a01);
                    b = new Vector<T>(Unsafe.Add(ref xb, o1)); a10 = Fma(b, g0, a10); a11 = Fma(b, g1, a11);
                    b = new Vector<T>(Unsafe.Add(ref xb, o2)); a20 = Fma(b, g0, a20); a21 = Fma(b, g1, a21);
                    b = new Vector<T>(Unsafe.Add(ref xb, o3)); a30 = Fma(b, g0, a30); a31 = Fma(b, g1, a31);
                    b = new Vector<T>(Unsafe.Add(ref xb, o4)); a40 = Fma(b, g0, a40); a41 = Fma(b, g1, a41);
                    b = new Vector<T>(Unsafe.Add(ref xb, o5)); a50 = Fma(b, g0, a50); a51 = Fma(b, g1, a51);
                }
            }
            s[0] = a00; s[1] = a01; s[2] = a10; s[3] = a11; s[4] = a20; s[5] = a21;
            s[6] = a30; s[7] = a31; s[8] = a40; s[9] = a41; s[10] = a50; s[11] = a51;
        }
    }

    /// <summary>dw[dwOff + mm*Rows + r] = the accumulated dW[mm, r] for mm &lt; m.</summary>
    public void Reduce(ReadOnlySpan<Vector<T>> acc, int m, T[] dw, int dwOff)
    {
        int k = Rows, v = V, at = 0;
        for (int m0 = 0; m0 < PaddedChannels(m); m0 += MW)
            for (int r0 = 0; r0 < k; r0 += 6, at += 12)
                for (int i = 0; i < 6 && r0 + i < k; i++)
                    for (int h = 0; h < 2; h++)
                        for (int l = 0; l < v && m0 + h * v + l < m; l++)
                            dw[dwOff + (m0 + h * v + l) * k + r0 + i] = acc[at + 2 * i + h][l];
    }
}
