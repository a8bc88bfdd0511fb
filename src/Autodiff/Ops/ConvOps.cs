// Conv and ConvTranspose (1-D and 2-D, any stride, dilation, padding, auto_pad and group count).
//
// Conv, per image n and group g (Cg = C/group input channels, Mg = M/group output channels):
//   Y[n, g] = W[g] (Mg x Cg*kh*kw) * im2col(X[n, g]) (Cg*kh*kw x Ho*Wo) + b
// VJP:  dW[g] += dY[n, g] * im2col(X[n, g])^T,  dX[n, g] = col2im(W[g]^T * dY[n, g]),  db = sum dY.
// Depthwise convs (one input channel per group) run a direct loop instead of tiny products; with unit
// strides their input gradient is the depthwise conv of dY with the flipped kernel. The others split the
// batch into at most 4 slices, one task each (im2col, product and col2im all inside the task), and put a
// chunk of a slice's images side by side in one im2col buffer (columns image-major), so each group is one
// product over the chunk, Y[g] (Mg x n*Ho*Wo) = W[g] * col, and dW one product over the chunk too, summed
// over the slices in order (the same bytes on any number of cores). When Ho*Wo is a whole number of GEMM
// tiles the chunk's product is written straight into Y in column blocks of one image (no copy). In a training
// step (an arena is active) the forward's im2col is kept in the trace for dW instead of being rebuilt.
// Wherever the windows cover the input (all but strides wider than the window, such as a 1x1 of stride 2) the
// product skips im2col: by DirectConv, row-major where output rows are whole vectors (8x8 and 16x16 float images on
// AVX2), channels-last otherwise. The forward (bias included) and dW read the padded input through an offset
// table, a few images at a time, and nothing is kept.
// Those run over all images at once, weights packed once, the forward in one slice per thread and dW with its tiles
// split over the threads: no per-slice packing or partial sums, the same bytes on any number of threads.
// With unit strides dX is itself a conv, of dY with the kernel flipped and its in/out channels swapped,
//   dX[n, g] = conv(dY[n, g], flip(W[g])^T), pads (k-1)*d - pad_begin and In - Out - that + (k-1)*d,
// which runs where the direct kernel applies to it, or where its products write dX directly and an image is at
// least as wide as the flipped W (Mg * kernel columns), instead of a product into columns and a col2im scatter.
//
// ConvTranspose is Conv's input gradient: with W [C, M/group, kh, kw],
//   Y[n, g] = col2im(W[g]^T * X[n, g]) + b,  dX[n, g] = W[g] * im2col(dY[n, g]),
//   dW[g] += X[n, g] * im2col(dY[n, g])^T.
// Its output size is s*(in-1) + output_padding + (k-1)*d + 1 - pad_begin - pad_end, or output_shape
// with the padding split as the ONNX specification says (ONNX Runtime 1.30 agrees): SAME_UPPER puts
// the odd pad at the end, otherwise at the beginning.
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal sealed class ConvOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private sealed record Plan(ConvGeometry G, int N, int C, int M, int Groups, int Cg, int Mg, bool Depthwise);

    private static Plan Prepare(OpCall<T> c)
    {
        var x = c.In(0); var w = c.In(1);
        if (x.Rank < 3 || w.Rank != x.Rank) throw c.Error($"Conv of input {x} with weight {w}");
        int groups = (int)Attr.Int(c.Node, "group", 1);
        int n = x.Shape[0], ch = x.Shape[1], m = w.Shape[0];
        if (groups <= 0 || ch % groups != 0 || m % groups != 0 || w.Shape[1] != ch / groups)
            throw c.Error($"Conv with {ch} input channels, weight {w} and group {groups} do not fit");
        var g = ConvGeometry.Of(c.Node, x.Shape[2..], w.Shape[2..]);
        bool depthwise = ch / groups == 1 && groups > 1;
        return new Plan(g, n, ch, m, groups, ch / groups, m / groups, depthwise);
    }

    // Column buffers are kept between calls (training runs the same shapes every step).
    private static readonly ArrayPool<T> Pool = ArrayPool<T>.Create(1 << 24, 16);
    private const int ChunkElements = 1 << 22;
    // Images are split into at most this many slices, one task each (im2col, product, col2im all run in the
    // task). The count is fixed, not the thread count, so the weight gradient's order of summation (slice by
    // slice), and so a training run's bytes, are the same on every machine.
    private const int MaxSlices = 4;
    // In a training step (an arena is active) the forward im2col is kept for the weight gradient when it is at
    // most this many elements.
    private const int KeepElements = 1 << 23;

    /// <summary>Images per product: as many as keep the im2col buffer within ChunkElements (at least one).</summary>
    private static int ChunkImages(int n, int rows, int ohw) =>
        Math.Clamp(ChunkElements / Math.Max(1, rows * ohw), 1, Math.Max(1, n));

    /// <summary>Non-empty slices of n images: min(n, MaxSlices) of ceil(n / that) images, fewer at the end.</summary>
    private static (int Count, int Per) Slicing(int n)
    {
        if (n <= 0) return (0, 1);
        int per = (n + Math.Min(n, MaxSlices) - 1) / Math.Min(n, MaxSlices);
        return ((n + per - 1) / per, per);
    }

    /// <summary>Runs body(slice, lo, hi, gemmThreads) over the image slices in parallel.</summary>
    private static void ForSlices(int n, Action<int, int, int, int> body)
    {
        var (slices, per) = Slicing(n);
        int threads = Math.Max(1, Parallelism.Threads), gemmThreads = Math.Max(1, threads / Math.Max(1, slices));
        if (slices <= 1 || threads == 1)
            for (int s = 0; s < slices; s++) body(s, s * per, Math.Min(n, (s + 1) * per), gemmThreads);
        else
            Parallel.For(0, slices, new ParallelOptions { MaxDegreeOfParallelism = threads },
                s => body(s, s * per, Math.Min(n, (s + 1) * per), gemmThreads));
    }

    /// <summary>The forward's im2col, kept for Backward: [group][rows][N * Ho*Wo], columns image-major.</summary>
    private sealed record KeptColumns(T[] Col, int Ld);

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var p = Prepare(c);
        var x = c.In(0).R; var w = c.In(1).R;
        var g = p.G;
        var outShape = new[] { p.N, p.M }.Concat(c.In(0).Rank == 3 ? [g.Out[1]] : g.Out).ToArray();
        // Every element of y (and of the kept columns) is written below.
        var y = Buffers<T>.NewUninitialized(NdArray<T>.Size(outShape));
        int k = g.KernelSize, hw = g.InSize, ohw = g.OutSize;
        // The direct kernel adds the bias itself and needs no im2col for the weight gradient.
        bool direct = !p.Depthwise && Direct(g);
        var b = c.Optional(2)?.R;
        if (p.Depthwise) DepthwiseForward(p, x, w, y);
        else
        {
            int rows = p.Cg * k, ld = p.N * ohw;
            long all = (long)p.Groups * rows * ld;
            var kept = !direct && BufferArena<T>.Active && all <= KeepElements
                ? new KeptColumns(Buffers<T>.NewUninitialized((int)all), ld) : null;
            c.Saved = kept;
            if (direct) DirectImages(g, p.C, p.M, p.Groups, x, w, y, p.N, b);
            else ForSlices(p.N, (_, lo, hi, gemmThreads) => ConvImages(g, p.C, p.M, p.Groups, x, w, y, lo, hi, kept,
                gemmThreads));
        }
        if (b is not null && !direct) AddBias(y, b, p.N, p.M, ohw);
        return [new NdArray<T>(outShape, y)];
    }

    /// <summary>Whether a chunk's product goes straight into the output, [image][channel][pixel], in column blocks
    /// of one image each: when an image is a whole number of GEMM tiles (no tile straddles two images).</summary>
    private static bool WritesDirectly(int ohw) => ohw % Gemm<T>.TileColumns == 0;

    /// <summary>Whether one of the direct kernels runs a conv of this geometry.</summary>
    private static bool Direct(ConvGeometry g) => DirectConv<T>.Applies(g) || DirectConv<T>.AppliesChannelsLast(g);

    /// <summary>y[n, gi*Mg + m] = bias[gi*Mg + m] + W[gi] * im2col(x[n, gi]) for all n images by a direct kernel:
    /// the weights packed once per group, the images in one slice per thread, each padded on its own (a few at a
    /// time, at least 256 pixels, for the channels-last form, whose outputs are then transposed into y). Every
    /// image is computed alone, so the bytes do not depend on the slices.</summary>
    private static void DirectImages(ConvGeometry g, int c, int m, int groups, T[] x, T[] w, T[] y, int n,
        T[]? bias)
    {
        int cg = c / groups, mg = m / groups, hw = g.InSize, ohw = g.OutSize;
        var dc = new DirectConv<T>(g, cg);
        bool rowMajor = DirectConv<T>.Applies(g);
        int mp = DirectConv<T>.PaddedChannels(mg), per = rowMajor ? 1 : Math.Clamp(256 / ohw, 1, Math.Max(1, n));
        var tiles = rowMajor ? Enumerable.Range(0, groups).Select(gi => dc.Pack(w, gi * mg * dc.Rows, mg)).ToArray()
            : null;
        // Channels-last: each group's weights [chunk][r][2V] and bias padded to whole chunks.
        var last = rowMajor ? null : Enumerable.Range(0, groups).Select(gi =>
        {
            var a = Pool.Rent(mp * dc.Rows);
            dc.PackChannelsLast(w, gi * mg * dc.Rows, mg, a);
            return a;
        }).ToArray();
        var lastBias = rowMajor || bias is null ? null : Enumerable.Range(0, groups).Select(gi =>
        {
            var a = new T[mp];
            bias.AsSpan(gi * mg, mg).CopyTo(a);
            return a;
        }).ToArray();
        int slices = Math.Clamp(Parallelism.Threads, 1, Math.Max(1, (n + per - 1) / per));
        void Slice(int s)
        {
            int lo = s * n / slices, hi = (s + 1) * n / slices;
            var xq = Pool.Rent(per * dc.ImageSize);
            var yt = rowMajor ? null : Pool.Rent(dc.ChannelsLastRows(per) * mp);
            nint[]? places = null;
            int placed = 0;
            for (int gi = 0; gi < groups; gi++)
                for (int n0 = lo; n0 < hi; n0 += per)
                {
                    int cnt = Math.Min(per, hi - n0);
                    for (int j = 0; j < cnt; j++) dc.Pad(x, ((n0 + j) * c + gi * cg) * hw, xq, j * dc.ImageSize);
                    if (rowMajor)
                    {
                        dc.Forward(xq, 0, tiles![gi], y, (n0 * m + gi * mg) * ohw, bias, gi * mg);
                        continue;
                    }
                    // The same places serve every chunk of per images; the slice's last chunk may be shorter.
                    if (cnt != placed) (places, placed) = (dc.PixelPlaces(cnt), cnt);
                    dc.ForwardChannelsLast(xq, places!, last![gi], mg, lastBias?[gi], yt!);
                    for (int j = 0; j < cnt; j++)
                        Kernels.Transpose.Matrix(yt!, j * ohw * mp, mp, ohw, mg, y, ((n0 + j) * m + gi * mg) * ohw,
                            ohw);
                }
            if (yt is not null) Pool.Return(yt);
            Pool.Return(xq);
        }
        if (slices == 1) Slice(0);
        else Parallel.For(0, slices, new ParallelOptions { MaxDegreeOfParallelism = slices }, Slice);
        if (last is not null) foreach (var a in last) Pool.Return(a);
    }

    /// <summary>y[n, gi*Mg + m] = W[gi] * im2col(x[n, gi]) for images [lo, hi): c input and m output channels in
    /// groups, w row-major [m][c/groups * kernel]. A chunk of images side by side is one product per group,
    /// written straight into y in column blocks of one image where an image is a whole number of tiles, else into
    /// a buffer and copied. With <paramref name="kept"/> the im2col goes there (for the weight gradient).</summary>
    private static void ConvImages(ConvGeometry g, int c, int m, int groups, T[] x, T[] w, T[] y, int lo, int hi,
        KeptColumns? kept, int gemmThreads)
    {
        int cg = c / groups, mg = m / groups, k = g.KernelSize, hw = g.InSize, ohw = g.OutSize, rows = cg * k;
        bool direct = WritesDirectly(ohw);
        int nb = kept is not null ? hi - lo : ChunkImages(hi - lo, rows, ohw);
        var col = kept is null ? Pool.Rent(rows * nb * ohw) : null;
        var yb = direct ? null : Pool.Rent(mg * nb * ohw);
        var xp = Pool.Rent(cg * g.PaddedSize);
        for (int n0 = lo; n0 < hi; n0 += nb)
        {
            int cnt = Math.Min(nb, hi - n0), len = cnt * ohw;
            for (int gi = 0; gi < groups; gi++)
            {
                var (colArr, colOff, colLd) = kept is not null ? (kept.Col, gi * rows * kept.Ld + n0 * ohw, kept.Ld)
                    : (col!, 0, len);
                for (int j = 0; j < cnt; j++)
                    g.Im2ColPadded(x, ((n0 + j) * c + gi * cg) * hw, cg, colArr, colLd, colOff + j * ohw, xp);
                var wg = Mat<T>.Dense(w, gi * mg * rows, mg, rows);
                var cols = new Mat<T>(colArr, colOff, rows, len, colLd, 1);
                if (direct)
                    Mat<T>.MultiplyBlocked(wg, cols, y, (n0 * m + gi * mg) * ohw, ohw, ohw, m * ohw, false,
                        gemmThreads);
                else
                {
                    Mat<T>.Multiply(wg, cols, yb!, 0, false, gemmThreads);
                    for (int o = 0; o < mg; o++)
                        for (int j = 0; j < cnt; j++)
                            yb.AsSpan(o * len + j * ohw, ohw).CopyTo(y.AsSpan(((n0 + j) * m + gi * mg + o) * ohw));
                }
            }
        }
        if (col is not null) Pool.Return(col);
        if (yb is not null) Pool.Return(yb);
        Pool.Return(xp);
    }

    internal static void AddBias(T[] y, T[] b, int n, int m, int inner)
    {
        for (int i = 0; i < n; i++)
            for (int o = 0; o < m; o++)
            {
                var s = y.AsSpan((i * m + o) * inner, inner);
                var v = b[o];
                for (int j = 0; j < s.Length; j++) s[j] += v;
            }
    }

    internal static T[] BiasGrad(T[] gy, int n, int m, int inner)
    {
        var db = Buffers<T>.New(m);
        int vc = Vector<T>.Count;
        for (int i = 0; i < n; i++)
            for (int o = 0; o < m; o++)
            {
                var s = gy.AsSpan((i * m + o) * inner, inner);
                var sum = Vector<T>.Zero;
                int j = 0;
                for (; j + vc <= s.Length; j += vc) sum += Vector.LoadUnsafe(ref s[j]);
                T acc = Vector.Sum(sum);
                for (; j < s.Length; j++) acc += s[j];
                db[o] += acc;
            }
        return db;
    }

    /// <summary>The geometry of Conv's input gradient as a unit-stride conv of gy with the flipped kernel
    /// (padding (k-1)*d - pad at the begin, whatever makes the output the input's size at the end), or null when
    /// that padding would be negative.</summary>
    private static ConvGeometry? FlippedGeometry(ConvGeometry g)
    {
        var pb = new int[2]; var pe = new int[2];
        for (int a = 0; a < 2; a++)
        {
            int keff = g.EffectiveKernel(a);
            pb[a] = keff - 1 - g.PadBegin[a];
            pe[a] = g.In[a] - g.Out[a] - pb[a] + keff - 1;
            if (pb[a] < 0 || pe[a] < 0) return null;
        }
        return new ConvGeometry(g.Kernel, [1, 1], g.Dilation, pb, pe, g.Out, g.In);
    }

    /// <summary>The weights of the input gradient's conv: per group, [Cg][Mg * kernel] with
    /// W'[gi*Cg + c][m*k + t] = W[gi*Mg + m][c][k - 1 - t].</summary>
    private static T[] FlippedWeights(T[] w, Plan p, int k)
    {
        var wf = Buffers<T>.NewUninitialized(w.Length);
        for (int gi = 0; gi < p.Groups; gi++)
            for (int m = 0; m < p.Mg; m++)
                for (int ci = 0; ci < p.Cg; ci++)
                {
                    int from = ((gi * p.Mg + m) * p.Cg + ci) * k, to = ((gi * p.Cg + ci) * p.Mg + m) * k;
                    for (int t = 0; t < k; t++) wf[to + t] = w[from + k - 1 - t];
                }
        return wf;
    }

    private static void DepthwiseForward(Plan p, T[] x, T[] w, T[] y)
    {
        var g = p.G;
        int hw = g.InSize, ohw = g.OutSize, k = g.KernelSize;
        var taps = Depthwise<T>.Taps(g);
        Parallelism.ForRanges(p.N * p.M, (lo, hi) =>
        {
            var xq = Pool.Rent(Depthwise<T>.ScratchSize(g));
            for (int nm = lo; nm < hi; nm++)
            {
                int n = nm / p.M, m = nm % p.M, ch = m / p.Mg;
                Depthwise<T>.Forward(g, x.AsSpan((n * p.C + ch) * hw, hw), w.AsSpan(m * k, k), y.AsSpan(nm * ohw, ohw),
                    xq, taps);
            }
            Pool.Return(xq);
        });
    }

    private static void DepthwiseBackward(Plan p, T[] x, T[] w, T[] gy, T[]? dx, T[]? dw)
    {
        var g = p.G;
        int hw = g.InSize, ohw = g.OutSize, k = g.KernelSize;
        var taps = Depthwise<T>.Taps(g);
        // dX: one item per input plane (it gathers from its Mg output planes); dW: one per output channel.
        // With unit strides the input gradient is a depthwise conv of gy with the flipped kernel (a gather, which
        // vectorizes without the store-to-load stalls of scattering overlapping windows).
        var flip = g.Stride[0] == 1 && g.Stride[1] == 1 ? FlippedGeometry(g) : null;
        if (dx is not null && flip is not null)
        {
            var flipTaps = Depthwise<T>.Taps(flip);
            Parallelism.ForRanges(p.N * p.C, (lo, hi) =>
            {
                var q = Pool.Rent(Depthwise<T>.ScratchSize(flip));
                var wf = new T[k];
                var plane = p.Mg == 1 ? null : new T[hw];
                for (int nc = lo; nc < hi; nc++)
                {
                    int n = nc / p.C, ch = nc % p.C;
                    for (int mm = 0; mm < p.Mg; mm++)
                    {
                        int m = ch * p.Mg + mm;
                        for (int t = 0; t < k; t++) wf[t] = w[m * k + k - 1 - t];
                        Depthwise<T>.Forward(flip, gy.AsSpan((n * p.M + m) * ohw, ohw), wf, plane ?? dx.AsSpan(nc * hw,
                            hw), q, flipTaps);
                        if (plane is not null) for (int e = 0; e < hw; e++) dx[nc * hw + e] += plane[e];
                    }
                }
                Pool.Return(q);
            });
        }
        else if (dx is not null)
            Parallelism.ForRanges(p.N * p.C, (lo, hi) =>
            {
                var dq = Pool.Rent(Depthwise<T>.ScratchSize(g));
                for (int nc = lo; nc < hi; nc++)
                {
                    int n = nc / p.C, ch = nc % p.C;
                    for (int mm = 0; mm < p.Mg; mm++)
                    {
                        int m = ch * p.Mg + mm;
                        Depthwise<T>.BackwardInput(g, gy.AsSpan((n * p.M + m) * ohw, ohw), w.AsSpan(m * k, k),
                            dx.AsSpan(nc * hw, hw), dq, taps);
                    }
                }
                Pool.Return(dq);
            });
        if (dw is not null)
            Parallelism.ForRanges(p.M, (lo, hi) =>
            {
                var xq = Pool.Rent(Depthwise<T>.ScratchSize(g));
                for (int m = lo; m < hi; m++)
                {
                    int ch = m / p.Mg;
                    for (int n = 0; n < p.N; n++)
                        Depthwise<T>.BackwardWeight(g, x.AsSpan((n * p.C + ch) * hw, hw),
                            gy.AsSpan((n * p.M + m) * ohw, ohw), dw.AsSpan(m * k, k), xq, taps);
                }
                Pool.Return(xq);
            });
    }

    /// <summary>dw[gi*Mg*rows..] = dW of all images by the direct kernel: a few images at a time (at least 256
    /// pixels) padded and their gradients made pixel-major, summed over in order into the tiles' accumulators, the
    /// tiles split over the threads (each tile sums all images in the same order, so the bytes do not depend on the
    /// split).</summary>
    private static void DirectWeightGradient(ConvGeometry g, Plan p, T[] x, T[] gy, T[] dw)
    {
        var dc = new DirectConv<T>(g, p.Cg);
        int hw = g.InSize, ohw = g.OutSize, tiles = dc.TileCount(p.Mg);
        int threads = Math.Clamp(Parallelism.Threads, 1, tiles);
        // With several threads a pass (one fork and join) covers more pixels.
        int per = Math.Clamp((threads > 1 ? 1024 : 256) / ohw, 1, Math.Max(1, p.N));
        int mp = DirectConv<T>.PaddedChannels(p.Mg);
        var xq = Pool.Rent(per * dc.ImageSize);
        var gt = Pool.Rent(per * ohw * mp);
        int accLen = dc.AccumulatorCount(p.Mg);
        var acc = ArrayPool<Vector<T>>.Shared.Rent(accLen);
        for (int gi = 0; gi < p.Groups; gi++)
        {
            acc.AsSpan(0, accLen).Clear();
            for (int n0 = 0; n0 < p.N; n0 += per)
            {
                int cnt = Math.Min(per, p.N - n0);
                for (int j = 0; j < cnt; j++)
                {
                    dc.Pad(x, ((n0 + j) * p.C + gi * p.Cg) * hw, xq, j * dc.ImageSize);
                    dc.Transpose(gy, ((n0 + j) * p.M + gi * p.Mg) * ohw, p.Mg, gt, j * ohw * mp);
                }
                if (threads == 1) dc.WeightGradient(xq, gt, cnt, p.Mg, acc.AsSpan(0, accLen), 0, tiles);
                else
                    Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                        dc.WeightGradient(xq, gt, cnt, p.Mg, acc.AsSpan(0, accLen), t * tiles / threads,
                            (t + 1) * tiles / threads));
            }
            dc.Reduce(acc.AsSpan(0, accLen), p.Mg, dw, gi * p.Mg * dc.Rows);
        }
        ArrayPool<Vector<T>>.Shared.Return(acc);
        Pool.Return(gt);
        Pool.Return(xq);
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gyA) return r;
        var p = Prepare(c);
        var x = c.In(0); var w = c.In(1);
        var gy = gyA.R;
        var g = p.G;
        int k = g.KernelSize, hw = g.InSize, ohw = g.OutSize;
        var dx = needed[0] ? Buffers<T>.New(x.Length) : null;
        var dw = needed.Length > 1 && needed[1] ? Buffers<T>.New(w.Length) : null;
        if (p.Depthwise) DepthwiseBackward(p, x.R, w.R, gy, dx, dw);
        else if (dx is not null || dw is not null)
        {
            int rows = p.Cg * k;
            var kept = c.Saved as KeptColumns;
            // With unit strides dX is the conv of dY with the flipped, transposed kernel (a gather into dX's own
            // rows) rather than col2im of W^T * dY (a scatter of a 9x larger buffer), where its products write dX
            // directly and the image is at least as wide as the flipped W (Mg * kernel): measured on one AVX2
            // core (the layers of `onnxopt-bench conv-kernels`), even on 16x16 images of 16 channels (7.5-9.6 against
            // 8.7-9.1 ms), 10-25% slower on 8x8 and 4x4 images of 16-64 channels, where the im2col of dY is the
            // larger. Where the direct kernel runs the flipped conv there is no im2col of dY at all: with the direct
            // dW, 16->16 channels at 16x16 (64 images, one core) went from 3.70 to 1.83 ms for dX, dW and db.
            var flip = dx is not null && g.Stride[0] == 1 && g.Stride[1] == 1 ? FlippedGeometry(g) : null;
            if (flip is not null && !Direct(flip) && !(WritesDirectly(hw) && hw >= p.Mg * k)) flip = null;
            var wf = flip is null ? null : FlippedWeights(w.R, p, k);
            bool directFlip = flip is not null && Direct(flip);
            if (directFlip) DirectImages(flip!, p.M, p.C, p.Groups, gy, wf!, dx!, p.N, null);
            // The weight gradient reads the padded input through the direct kernel's offsets, no im2col either.
            bool directW = dw is not null && Direct(g);
            if (directW) DirectWeightGradient(g, p, x.R, gy, dw!);
            var gemmDw = directW ? null : dw;
            // One weight-gradient partial per slice (the first is dw itself), summed in slice order.
            var parts = new T[]?[Slicing(p.N).Count];
            if (gemmDw is not null || (dx is not null && !directFlip)) ForSlices(p.N, (s, lo, hi, gemmThreads) =>
            {
                int nb = kept is not null ? hi - lo : ChunkImages(p.N, rows, ohw);
                var gemmPart = gemmDw is null ? null : s == 0 ? gemmDw : parts[s] = Pool.Rent(gemmDw.Length);
                if (gemmPart is not null && s > 0) gemmPart.AsSpan(0, gemmDw!.Length).Clear();
                // The column buffer: im2col for dW unless it was kept, and W^T * dY for dX.
                var col = (gemmPart is not null && kept is null) || (dx is not null && flip is null)
                    ? Pool.Rent(rows * nb * ohw) : null;
                var gyb = Pool.Rent(p.Mg * nb * ohw);
                var xp = Pool.Rent(p.Cg * g.PaddedSize);
                for (int n0 = lo; n0 < hi && (gemmPart is not null || flip is null); n0 += nb)
                {
                    int cnt = Math.Min(nb, hi - n0), len = cnt * ohw;
                    for (int gi = 0; gi < p.Groups; gi++)
                    {
                        for (int m = 0; m < p.Mg; m++)
                            for (int j = 0; j < cnt; j++)
                                gy.AsSpan(((n0 + j) * p.M + gi * p.Mg + m) * ohw, ohw).CopyTo(gyb.AsSpan(m * len
                                    + j * ohw));
                        var gyg = Mat<T>.Dense(gyb, 0, p.Mg, len);
                        if (gemmPart is not null)
                        {
                            Mat<T> colM;
                            if (kept is not null) colM = new Mat<T>(kept.Col, gi * rows * kept.Ld + n0 * ohw, rows, len,
                                kept.Ld, 1);
                            else
                            {
                                for (int j = 0; j < cnt; j++)
                                    g.Im2ColPadded(x.R, ((n0 + j) * p.C + gi * p.Cg) * hw, p.Cg, col!, len, j * ohw,
                                        xp);
                                colM = Mat<T>.Dense(col!, 0, rows, len);
                            }
                            Mat<T>.Multiply(gyg, colM.T_, gemmPart, gi * p.Mg * rows, true, gemmThreads);
                        }
                        if (dx is not null && flip is null)
                        {
                            Mat<T>.Multiply(Mat<T>.Dense(w.R, gi * p.Mg * rows, p.Mg, rows).T_, gyg, col!, 0, false,
                                gemmThreads);
                            for (int j = 0; j < cnt; j++)
                                g.Col2ImPadded(col!, dx, ((n0 + j) * p.C + gi * p.Cg) * hw, p.Cg, len, j * ohw, xp);
                        }
                    }
                }
                if (col is not null) Pool.Return(col);
                Pool.Return(gyb);
                Pool.Return(xp);
                if (flip is not null && !directFlip)
                    ConvImages(flip, p.M, p.C, p.Groups, gy, wf!, dx!, lo, hi, null, gemmThreads);
            });
            if (gemmDw is not null)
                for (int s = 1; s < parts.Length; s++)
                {
                    var part = parts[s]!;
                    for (int i = 0; i < gemmDw.Length; i++) gemmDw[i] += part[i];
                    Pool.Return(part);
                }
        }
        if (dx is not null) r[0] = new NdArray<T>(x.Shape, dx);
        if (dw is not null) r[1] = new NdArray<T>(w.Shape, dw);
        if (needed.Length > 2 && needed[2] && c.Optional(2) is not null) r[2] = new NdArray<T>([p.M], BiasGrad(gy,
            p.N, p.M, ohw));
        return r;
    }
}

internal sealed class ConvTransposeOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private sealed record Plan(ConvGeometry G, int[] OutShape, int N, int C, int M, int Groups, int Cg, int Mg);

    private static Plan Prepare(OpCall<T> c)
    {
        var x = c.In(0); var w = c.In(1);
        if (x.Rank is < 3 or > 4
            || w.Rank != x.Rank) throw c.Error($"ConvTranspose of input {x} with weight {w} (1-D and 2-D only)");
        int groups = (int)Attr.Int(c.Node, "group", 1);
        int n = x.Shape[0], ch = x.Shape[1];
        if (groups <= 0 || ch % groups != 0 || w.Shape[0] != ch)
            throw c.Error($"ConvTranspose with {ch} input channels, weight {w} and group {groups} do not fit");
        int mg = w.Shape[1], m = mg * groups, r = x.Rank - 2;
        var kernel = w.Shape[2..];
        int[] Get(string name, int dflt, int count) =>
            c.Node.GetInts(name)?.Select(v => (int)v).ToArray() ?? Enumerable.Repeat(dflt, count).ToArray();
        var s = Get("strides", 1, r); var d = Get("dilations", 1, r); var pads = Get("pads", 0, 2 * r); var op = Get("output_padding", 0, r);
        var autoPad = c.Node.GetString("auto_pad") ?? "NOTSET";
        var outShape = c.Node.GetInts("output_shape")?.Select(v => (int)v).ToArray();
        var inSp = x.Shape[2..];
        var pb = pads[..r]; var pe = pads[r..];
        var outSp = new int[r];
        for (int a = 0; a < r; a++)
        {
            int keff = (kernel[a] - 1) * d[a] + 1;
            if (outShape is not null || autoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                outSp[a] = outShape is not null ? outShape[outShape.Length - r + a] : inSp[a] * s[a];
                int total = Math.Max(0, s[a] * (inSp[a] - 1) + op[a] + keff - outSp[a]);
                if (autoPad == "SAME_UPPER") { pb[a] = total / 2; pe[a] = total - total / 2; }
                else { pb[a] = total - total / 2; pe[a] = total / 2; }
            }
            else
            {
                if (autoPad == "VALID") { pb[a] = 0; pe[a] = 0; }
                outSp[a] = s[a] * (inSp[a] - 1) + op[a] + keff - pb[a] - pe[a];
            }
        }
        ConvGeometry g = r == 1
            ? new([1, kernel[0]], [1, s[0]], [1, d[0]], [0, pb[0]], [0, pe[0]], [1, outSp[0]], [1, inSp[0]])
            : new(kernel, s, d, pb, pe, outSp, inSp);
        for (int a = 0; a < 2; a++)
            if ((g.In[a] + g.PadBegin[a] + g.PadEnd[a] - g.EffectiveKernel(a)) / g.Stride[a] + 1 != g.Out[a])
                throw c.Error("ConvTranspose output size, padding and output_padding are inconsistent");
        return new Plan(g, new[] { n, m }.Concat(outSp).ToArray(), n, ch, m, groups, ch / groups, mg);
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var p = Prepare(c);
        var x = c.In(0).R; var w = c.In(1).R;
        var g = p.G;
        int k = g.KernelSize, ihw = g.OutSize, ohw = g.InSize;
        var y = Buffers<T>.New(NdArray<T>.Size(p.OutShape));
        var col = ArrayPool<T>.Shared.Rent(p.Mg * k * ihw);
        for (int n = 0; n < p.N; n++)
            for (int gi = 0; gi < p.Groups; gi++)
            {
                var wg = Mat<T>.Dense(w, gi * p.Cg * p.Mg * k, p.Cg, p.Mg * k);
                Mat<T>.Multiply(wg.T_, Mat<T>.Dense(x, (n * p.C + gi * p.Cg) * ihw, p.Cg, ihw), col, 0, false);
                g.Col2Im(col, y, (n * p.M + gi * p.Mg) * ohw, p.Mg);
            }
        ArrayPool<T>.Shared.Return(col);
        if (c.Optional(2) is { } bias) ConvOp<T>.AddBias(y, bias.R, p.N, p.M, ohw);
        return [new NdArray<T>(p.OutShape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gyA) return r;
        var p = Prepare(c);
        var x = c.In(0); var w = c.In(1);
        var gy = gyA.R;
        var g = p.G;
        int k = g.KernelSize, ihw = g.OutSize, ohw = g.InSize;
        var dx = needed[0] ? Buffers<T>.New(x.Length) : null;
        var dw = needed.Length > 1 && needed[1] ? Buffers<T>.New(w.Length) : null;
        var col = ArrayPool<T>.Shared.Rent(p.Mg * k * ihw);
        for (int n = 0; n < p.N; n++)
            for (int gi = 0; gi < p.Groups; gi++)
            {
                g.Im2Col(gy, (n * p.M + gi * p.Mg) * ohw, p.Mg, col);
                var colM = Mat<T>.Dense(col, 0, p.Mg * k, ihw);
                int xOff = (n * p.C + gi * p.Cg) * ihw;
                if (dx is not null) Mat<T>.Multiply(Mat<T>.Dense(w.R, gi * p.Cg * p.Mg * k, p.Cg, p.Mg * k), colM, dx,
                    xOff, false);
                if (dw is not null) Mat<T>.Multiply(Mat<T>.Dense(x.R, xOff, p.Cg, ihw), colM.T_, dw,
                    gi * p.Cg * p.Mg * k, true);
            }
        ArrayPool<T>.Shared.Return(col);
        if (dx is not null) r[0] = new NdArray<T>(x.Shape, dx);
        if (dw is not null) r[1] = new NdArray<T>(w.Shape, dw);
        if (needed.Length > 2 && needed[2] && c.Optional(2) is not null) r[2] = new NdArray<T>([p.M],
            ConvOp<T>.BiasGrad(gy, p.N, p.M, ohw));
        return r;
    }
}
