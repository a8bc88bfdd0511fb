// Dense matrix product for the reference evaluator, the kernel under Conv (im2col), ConvTranspose,
// Gemm and MatMul and all of their vector-Jacobian products.
//
//   C[i,j] = (accumulate ? C[i,j] : 0) + sum_k A(i,k) * B(k,j)
//   A(i,k) = a[aOff + i*aRow + k*aCol],  B(k,j) = b[bOff + k*bRow + j*bCol],  C row-major (ldc)
//   or, in column blocks of cBlock (a multiple of TileColumns), C(i,j) = c[cOff + i*ldc + (j / cBlock)*cBlockStride
//   + j % cBlock]: a conv's products over a chunk of images then write [image][channel][pixel] directly.
//
// Strides make transposed operands free. Blocked as in BLIS/GotoBLAS: a KC x NC panel of B and an
// MC x KC block of A are packed into contiguous micro-panels (zero-padded at the edges), and an
// MR x NR register-tiled micro-kernel (NR = 2 SIMD vectors; MR = 6 rows with 256-bit vectors, 8 with
// 512-bit ones where AVX-512 runs at full speed) runs fused multiply-adds over them. Work is split over the
// wider of M and N across threads, each packing its own panels. A product with both operands contiguous along
// k and few rows (C = A * B^T: a conv's weight gradient) runs 4 x 4 tiles of dot products instead, unpacked.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnnxOpt.Autodiff.Kernels;

public static class Parallelism
{
    private static int _threads = Environment.ProcessorCount;
    [ThreadStatic] private static int _local;

    /// <summary>Threads the kernels may use (default: all cores; less on a thread inside <see cref="Limit"/>).
    /// </summary>
    public static int Threads { get => _local > 0 ? Math.Min(_local, _threads) : _threads; set => _threads = value; }

    /// <summary>Until disposed, kernels called from this thread use at most <paramref name="threads"/> threads (work
    /// that already runs in parallel at a coarser grain, such as the halves of a training batch).</summary>
    public static Scope Limit(int threads) => new(threads);

    public readonly struct Scope : IDisposable
    {
        private readonly int _previous;

        internal Scope(int threads)
        {
            _previous = _local;
            _local = Math.Max(1, threads);
        }

        public void Dispose() => _local = _previous;
    }

    /// <summary>body(lo, hi) over a few contiguous ranges of [0, count) run in parallel (for many tiny items,
    /// such as the planes of a depthwise conv or a pooling, where one task each would cost more than the
    /// work).</summary>
    internal static void ForRanges(int count, Action<int, int> body)
    {
        int threads = Math.Max(1, Threads), ranges = Math.Min(count, 4 * threads);
        if (threads == 1 || ranges <= 1) { body(0, count); return; }
        Parallel.For(0, ranges, new ParallelOptions { MaxDegreeOfParallelism = threads },
            r => body((int)((long)count * r / ranges), (int)((long)count * (r + 1) / ranges)));
    }
}

internal static class Gemm<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    // 512-bit micro-kernel where the hardware runs it at full speed (AVX-512), else Vector<T> (256-bit on AVX2).
    private static readonly bool Wide = Vector512.IsHardwareAccelerated && Vector512<T>.Count > Vector<T>.Count;
    // Rows per micro-tile: 8 with 512-bit vectors (16 of the 32 registers accumulate; conv products have 16, 32,
    // 64 or 9 * 16k rows, so no tile is partial), 6 with 16 registers.
    private static readonly int MR = Wide ? 8 : 6;
    private static readonly int NR = 2 * (Wide ? Vector512<T>.Count : Vector<T>.Count);

    /// <summary>Columns of a micro-tile: products whose column count is a multiple have no ragged tiles.</summary>
    public static int TileColumns => NR;
    private const int KC = 256;
    private const int MC = 96;
    // Products with at most this many rows (convs' forward and weight gradient, and the input gradient of
    // narrow ones) read full B panels in place (see Block). Of 0, 32 and 192-200 rows, 192-200 was the fastest
    // in alternated train-speed runs on the digits nets (VGG-style 37-40 against 25-33 steps/s without), but the
    // noise of that machine was as large as the gain. Rows a multiple of 4 KiB apart are never read in place: they
    // all fall in the same L1 sets (a conv's kept im2col has N * Ho*Wo columns, 64 KiB apart for 64 images of
    // 16x16), and packing them made every conv forward of the digits nets 9-28% faster (`taskset -c 1
    // onnxopt-bench conv-kernels`, AVX2: 16 channels at 16x16 9.7-10.8 -> 7.3 ms, 64 at 4x4 4.9 -> 3.5 ms).
    private const int DirectRows = 192;
    private static readonly int NC = typeof(T) == typeof(double) ? 512 : 1024;
    // Packing buffers, one pair per thread, kept between products (a training step makes hundreds).
    [ThreadStatic] private static T[]? _bPanel;
    [ThreadStatic] private static T[]? _aBlock;

    public static void Multiply(int m, int n, int k, T[] a, int aOff, int aRow, int aCol, T[] b, int bOff, int bRow,
        int bCol,
        T[] c, int cOff, int ldc, bool accumulate, int maxThreads = 0, int cBlock = 0, int cBlockStride = 0)
    {
        if (m == 0 || n == 0) return;
        if (cBlock > 0 && cBlock % NR != 0)
            throw new ArgumentException($"column blocks of {cBlock} are not a whole number of {NR}-column tiles");
        if (k == 0)
        {
            if (!accumulate)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j += cBlock > 0 ? cBlock : n)
                        c.AsSpan(CAt(cOff, i, j, ldc, cBlock, cBlockStride), Math.Min(n - j, cBlock > 0 ? cBlock : n))
                            .Clear();
            return;
        }
        long work = (long)m * n * k;
        int threads = work < 1 << 18 ? 1 : Math.Max(1, maxThreads > 0 ? maxThreads : Parallelism.Threads);
        if (aCol == 1 && bRow == 1 && k >= NtMinDepth && m <= NtMaxRows && cBlock == 0)
        {
            MultiplyNT(m, n, k, a, aOff, aRow, b, bOff, bCol, c, cOff, ldc, accumulate, threads);
            return;
        }
        if (threads == 1)
        {
            Block(0, m, 0, n, k, a, aOff, aRow, aCol, b, bOff, bRow, bCol, c, cOff, ldc, accumulate, cBlock,
                cBlockStride);
            return;
        }
        bool splitN = n >= m;
        int extent = splitN ? n : m;
        int unit = splitN ? NR : MR;
        int chunks = Math.Min(threads, (extent + unit - 1) / unit);
        int per = ((extent + chunks - 1) / chunks + unit - 1) / unit * unit;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int lo = t * per, hi = Math.Min(extent, lo + per);
            if (lo >= hi) return;
            if (splitN)
                Block(0, m, lo, hi, k, a, aOff, aRow, aCol, b, bOff, bRow, bCol, c, cOff, ldc, accumulate, cBlock,
                    cBlockStride);
            else
                Block(lo, hi, 0, n, k, a, aOff, aRow, aCol, b, bOff, bRow, bCol, c, cOff, ldc, accumulate, cBlock,
                    cBlockStride);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block(int i0, int i1, int j0, int j1, int k, T[] a, int aOff, int aRow, int aCol, T[] b,
        int bOff, int bRow, int bCol,
        T[] c, int cOff, int ldc, bool accumulate, int cBlock, int cBlockStride)
    {
        var bp = _bPanel ??= new T[KC * (NC + NR)];
        var ap = _aBlock ??= new T[(MC + MR) * KC];
        Span<T> tile = stackalloc T[MR * NR];
        for (int jc = j0; jc < j1; jc += NC)
        {
            int nc = Math.Min(NC, j1 - jc);
            int nPanels = (nc + NR - 1) / NR;
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                bool overwrite = pc == 0 && !accumulate;
                // Few rows of A reuse each B panel only a few times: full panels of a row-major B are then read in
                // place (ldb = bRow) instead of being copied first; only the ragged last panel is packed.
                bool direct = bCol == 1 && i1 - i0 <= DirectRows && bRow * Unsafe.SizeOf<T>() % 4096 != 0;
                if (direct)
                {
                    int full = nc / NR * NR;
                    if (full < nc) PackB(b, bOff + pc * bRow + jc + full, bRow, 1, kc, nc - full, bp.AsSpan(full * kc));
                }
                else PackB(b, bOff + pc * bRow + jc * bCol, bRow, bCol, kc, nc, bp);
                for (int ic = i0; ic < i1; ic += MC)
                {
                    int mc = Math.Min(MC, i1 - ic);
                    int mPanels = (mc + MR - 1) / MR;
                    PackA(a, aOff + ic * aRow + pc * aCol, aRow, aCol, mc, kc, ap);
                    for (int jp = 0; jp < nPanels; jp++)
                    {
                        int nr = Math.Min(NR, nc - jp * NR);
                        for (int ip = 0; ip < mPanels; ip++)
                        {
                            int mr = Math.Min(MR, mc - ip * MR);
                            var apan = ap.AsSpan(ip * MR * kc, MR * kc);
                            bool inPlace = direct && nr == NR;
                            var bpan = inPlace ? b.AsSpan(bOff + pc * bRow + jc + jp * NR)
                                : bp.AsSpan(jp * NR * kc, NR * kc);
                            int ldb = inPlace ? bRow : NR;
                            int cAt = CAt(cOff, ic + ip * MR, jc + jp * NR, ldc, cBlock, cBlockStride);
                            if (mr == MR && nr == NR)
                            {
                                if (Wide) Micro512(kc, apan, bpan, ldb, c.AsSpan(cAt), ldc, overwrite);
                                else Micro(kc, apan, bpan, ldb, c.AsSpan(cAt), ldc, overwrite);
                            }
                            else
                            {
                                if (Wide) Micro512(kc, apan, bpan, ldb, tile, NR, true);
                                else Micro(kc, apan, bpan, ldb, tile, NR, true);
                                for (int r = 0; r < mr; r++)
                                {
                                    var dst = c.AsSpan(cAt + r * ldc, nr);
                                    var src = tile.Slice(r * NR, nr);
                                    if (overwrite) src.CopyTo(dst);
                                    else for (int j = 0; j < nr; j++) dst[j] += src[j];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Where C(i, j) is: row-major, or in column blocks (a tile never straddles two).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CAt(int cOff, int i, int j, int ldc, int cBlock, int cBlockStride) =>
        cBlock == 0 ? cOff + i * ldc + j : cOff + i * ldc + j / cBlock * cBlockStride + j % cBlock;

    // C = A * B^T with both operands contiguous along k (a conv's weight gradient dY * col^T, a Gemm with
    // transB): 4 x 4 tiles of dot products, vectors along k, reduced once per k-block, with no packing (packing
    // transposes B, a cost only many rows of A amortize). Used for long k (the reduction is amortized) and few
    // rows of A. Single-threaded GFLOPS on the conv weight-gradient shapes (m x n x k, Zen 5, 512-bit), packed
    // against these tiles: 16x144x4096 61 -> 117, 16x144x1024 71 -> 156, 32x288x1024 112 -> 126,
    // 32x288x512 146 -> 141, 64x576x512 182 -> 123 (so not past 32 rows).
    private const int NtMinDepth = 256;
    private const int NtMaxRows = 32;
    private const int NtDepth = 1024;

    private static void MultiplyNT(int m, int n, int k, T[] a, int aOff, int lda, T[] b, int bOff, int ldb, T[] c,
        int cOff, int ldc, bool accumulate, int threads)
    {
        // Split over columns (each C element is summed in the same order whatever the split).
        int chunks = Math.Min(threads, (n + 3) / 4);
        if (chunks <= 1) { BlockNT(0, m, 0, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate); return; }
        int per = ((n + chunks - 1) / chunks + 3) / 4 * 4;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int lo = t * per, hi = Math.Min(n, lo + per);
            if (lo < hi) BlockNT(0, m, lo, hi, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BlockNT(int i0, int i1, int j0, int j1, int k, T[] a, int aOff, int lda, T[] b, int bOff,
        int ldb, T[] c, int cOff, int ldc, bool accumulate)
    {
        Span<T> sums = stackalloc T[16];
        for (int p0 = 0; p0 < k; p0 += NtDepth)
        {
            int kc = Math.Min(NtDepth, k - p0);
            bool overwrite = p0 == 0 && !accumulate;
            for (int j = j0; j < j1; j += 4)
            {
                int nr = Math.Min(4, j1 - j);
                for (int i = i0; i < i1; i += 4)
                {
                    int mr = Math.Min(4, i1 - i);
                    // Rows past a ragged edge repeat the last one; their sums are dropped.
                    DotTile(kc, a, aOff + p0, lda, i, mr, b, bOff + p0, ldb, j, nr, sums);
                    for (int ii = 0; ii < mr; ii++)
                    {
                        ref T row = ref c[cOff + (i + ii) * ldc + j];
                        for (int jj = 0; jj < nr; jj++)
                        {
                            T sum = sums[ii * 4 + jj];
                            Unsafe.Add(ref row, jj) = overwrite ? sum : Unsafe.Add(ref row, jj) + sum;
                        }
                    }
                }
            }
        }
    }

    /// <summary>sums[ii*4 + jj] = sum_{p &lt; kc} A[i+ii, p] * B[j+jj, p] for a 4 x 4 tile (rows past mr, nr repeat
    /// the last).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotTile(int kc, T[] a, int aOff, int lda, int i, int mr, T[] b, int bOff, int ldb, int j,
        int nr, Span<T> sums)
    {
        ref T a0 = ref a[aOff + i * lda];
        ref T a1 = ref Unsafe.Add(ref a0, Math.Min(1, mr - 1) * lda);
        ref T a2 = ref Unsafe.Add(ref a0, Math.Min(2, mr - 1) * lda);
        ref T a3 = ref Unsafe.Add(ref a0, Math.Min(3, mr - 1) * lda);
        ref T b0 = ref b[bOff + j * ldb];
        ref T b1 = ref Unsafe.Add(ref b0, Math.Min(1, nr - 1) * ldb);
        ref T b2 = ref Unsafe.Add(ref b0, Math.Min(2, nr - 1) * ldb);
        ref T b3 = ref Unsafe.Add(ref b0, Math.Min(3, nr - 1) * ldb);
        int p = Wide ? Dots512(kc, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, sums)
            : Dots(kc, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, sums);
        for (; p < kc; p++)
        {
            T x0 = Unsafe.Add(ref a0, p), x1 = Unsafe.Add(ref a1, p), x2 = Unsafe.Add(ref a2, p),
              x3 = Unsafe.Add(ref a3, p);
            T y0 = Unsafe.Add(ref b0, p), y1 = Unsafe.Add(ref b1, p), y2 = Unsafe.Add(ref b2, p),
              y3 = Unsafe.Add(ref b3, p);
            sums[0] += x0 * y0; sums[1] += x0 * y1; sums[2] += x0 * y2; sums[3] += x0 * y3;
            sums[4] += x1 * y0; sums[5] += x1 * y1; sums[6] += x1 * y2; sums[7] += x1 * y3;
            sums[8] += x2 * y0; sums[9] += x2 * y1; sums[10] += x2 * y2; sums[11] += x2 * y3;
            sums[12] += x3 * y0; sums[13] += x3 * y1; sums[14] += x3 * y2; sums[15] += x3 * y3;
        }
    }

    /// <summary>The 16 dot products of DotTile over whole vectors of k (Vector&lt;T&gt;); returns where the scalar
    /// tail starts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Dots(int kc, ref T a0, ref T a1, ref T a2, ref T a3, ref T b0, ref T b1, ref T b2, ref T b3,
        Span<T> sums)
    {
        Vector<T> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default,
                  c12 = default, c13 = default, c20 = default, c21 = default, c22 = default, c23 = default,
                  c30 = default, c31 = default, c32 = default, c33 = default;
        int v = Vector<T>.Count, p = 0;
        for (; p + v <= kc; p += v)
        {
            var y0 = Vector.LoadUnsafe(ref b0, (nuint)p); var y1 = Vector.LoadUnsafe(ref b1, (nuint)p);
            var y2 = Vector.LoadUnsafe(ref b2, (nuint)p); var y3 = Vector.LoadUnsafe(ref b3, (nuint)p);
            var x = Vector.LoadUnsafe(ref a0, (nuint)p);
            c00 = Fma(x, y0, c00); c01 = Fma(x, y1, c01); c02 = Fma(x, y2, c02); c03 = Fma(x, y3, c03);
            x = Vector.LoadUnsafe(ref a1, (nuint)p);
            c10 = Fma(x, y0, c10); c11 = Fma(x, y1, c11); c12 = Fma(x, y2, c12); c13 = Fma(x, y3, c13);
            x = Vector.LoadUnsafe(ref a2, (nuint)p);
            c20 = Fma(x, y0, c20); c21 = Fma(x, y1, c21); c22 = Fma(x, y2, c22); c23 = Fma(x, y3, c23);
            x = Vector.LoadUnsafe(ref a3, (nuint)p);
            c30 = Fma(x, y0, c30); c31 = Fma(x, y1, c31); c32 = Fma(x, y2, c32); c33 = Fma(x, y3, c33);
        }
        sums[0] = Vector.Sum(c00); sums[1] = Vector.Sum(c01); sums[2] = Vector.Sum(c02); sums[3] = Vector.Sum(c03);
        sums[4] = Vector.Sum(c10); sums[5] = Vector.Sum(c11); sums[6] = Vector.Sum(c12); sums[7] = Vector.Sum(c13);
        sums[8] = Vector.Sum(c20); sums[9] = Vector.Sum(c21); sums[10] = Vector.Sum(c22); sums[11] = Vector.Sum(c23);
        sums[12] = Vector.Sum(c30); sums[13] = Vector.Sum(c31); sums[14] = Vector.Sum(c32); sums[15] = Vector.Sum(c33);
        return p;
    }

    /// <summary>Dots with 512-bit vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Dots512(int kc, ref T a0, ref T a1, ref T a2, ref T a3, ref T b0, ref T b1, ref T b2, ref T b3,
        Span<T> sums)
    {
        Vector512<T> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default,
                  c12 = default, c13 = default, c20 = default, c21 = default, c22 = default, c23 = default,
                  c30 = default, c31 = default, c32 = default, c33 = default;
        int v = Vector512<T>.Count, p = 0;
        for (; p + v <= kc; p += v)
        {
            var y0 = Vector512.LoadUnsafe(ref b0, (nuint)p); var y1 = Vector512.LoadUnsafe(ref b1, (nuint)p);
            var y2 = Vector512.LoadUnsafe(ref b2, (nuint)p); var y3 = Vector512.LoadUnsafe(ref b3, (nuint)p);
            var x = Vector512.LoadUnsafe(ref a0, (nuint)p);
            c00 = Fma(x, y0, c00); c01 = Fma(x, y1, c01); c02 = Fma(x, y2, c02); c03 = Fma(x, y3, c03);
            x = Vector512.LoadUnsafe(ref a1, (nuint)p);
            c10 = Fma(x, y0, c10); c11 = Fma(x, y1, c11); c12 = Fma(x, y2, c12); c13 = Fma(x, y3, c13);
            x = Vector512.LoadUnsafe(ref a2, (nuint)p);
            c20 = Fma(x, y0, c20); c21 = Fma(x, y1, c21); c22 = Fma(x, y2, c22); c23 = Fma(x, y3, c23);
            x = Vector512.LoadUnsafe(ref a3, (nuint)p);
            c30 = Fma(x, y0, c30); c31 = Fma(x, y1, c31); c32 = Fma(x, y2, c32); c33 = Fma(x, y3, c33);
        }
        sums[0] = Vector512.Sum(c00); sums[1] = Vector512.Sum(c01);
        sums[2] = Vector512.Sum(c02); sums[3] = Vector512.Sum(c03);
        sums[4] = Vector512.Sum(c10); sums[5] = Vector512.Sum(c11);
        sums[6] = Vector512.Sum(c12); sums[7] = Vector512.Sum(c13);
        sums[8] = Vector512.Sum(c20); sums[9] = Vector512.Sum(c21);
        sums[10] = Vector512.Sum(c22); sums[11] = Vector512.Sum(c23);
        sums[12] = Vector512.Sum(c30); sums[13] = Vector512.Sum(c31);
        sums[14] = Vector512.Sum(c32); sums[15] = Vector512.Sum(c33);
        return p;
    }

    /// <summary>B[k, j] for k &lt; kc, j &lt; nc into panels of NR columns: bp[(panel*kc + k)*NR + jj].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(T[] b, int off, int bRow, int bCol, int kc, int nc, Span<T> bp)
    {
        int panels = (nc + NR - 1) / NR;
        for (int p = 0; p < panels; p++)
        {
            int j0 = p * NR, w = Math.Min(NR, nc - j0);
            var dst = bp.Slice(p * NR * kc, NR * kc);
            if (bCol == 1 && w == NR)
                for (int kk = 0; kk < kc; kk++) b.AsSpan(off + kk * bRow + j0, NR).CopyTo(dst.Slice(kk * NR, NR));
            else if (bRow == 1 && w == NR && typeof(T) == typeof(float) && Avx.IsSupported)
            {
                // B's columns are contiguous (a transposed operand, as in the weight gradient col^T): 8 x 8
                // blocks are transposed in registers instead of gathered element by element.
                ref float src = ref Unsafe.As<T, float>(ref b[off + j0 * bCol]);
                ref float to = ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(dst));
                int kk = 0;
                for (; kk + 8 <= kc; kk += 8)
                    for (int jb = 0; jb < NR; jb += 8)
                        Transpose.Block8x8(ref Unsafe.Add(ref src, jb * bCol + kk), bCol,
                            ref Unsafe.Add(ref to, kk * NR + jb), NR);
                for (; kk < kc; kk++)
                    for (int j = 0; j < NR; j++) dst[kk * NR + j] = b[off + (j0 + j) * bCol + kk];
            }
            else
                for (int kk = 0; kk < kc; kk++)
                {
                    var row = dst.Slice(kk * NR, NR);
                    int src = off + kk * bRow + j0 * bCol;
                    for (int j = 0; j < w; j++) row[j] = b[src + j * bCol];
                    row[w..].Clear();
                }
        }
    }

    /// <summary>A[i, k] for i &lt; mc, k &lt; kc into panels of MR rows: ap[(panel*kc + k)*MR + ii].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(T[] a, int off, int aRow, int aCol, int mc, int kc, T[] ap)
    {
        int panels = (mc + MR - 1) / MR;
        for (int p = 0; p < panels; p++)
        {
            int i0 = p * MR, h = Math.Min(MR, mc - i0);
            var dst = ap.AsSpan(p * MR * kc, MR * kc);
            if (h < MR) dst.Clear();
            if (aRow == 1 && h == MR)
            {
                // A's columns are contiguous (a transposed operand): MR consecutive elements per k.
                for (int kk = 0; kk < kc; kk++) a.AsSpan(off + i0 + kk * aCol, MR).CopyTo(dst.Slice(kk * MR, MR));
                continue;
            }
            for (int ii = 0; ii < h; ii++)
            {
                int src = off + (i0 + ii) * aRow;
                if (aCol == 1) for (int kk = 0; kk < kc; kk++) dst[kk * MR + ii] = a[src + kk];
                else for (int kk = 0; kk < kc; kk++) dst[kk * MR + ii] = a[src + kk * aCol];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<T> Fma(Vector<T> x, Vector<T> y, Vector<T> acc)
    {
        if (typeof(T) == typeof(double)) return Vector.FusedMultiplyAdd(x.As<T, double>(), y.As<T, double>(),
            acc.As<T, double>()).As<double, T>();
        if (typeof(T) == typeof(float)) return Vector.FusedMultiplyAdd(x.As<T, float>(), y.As<T, float>(), acc.As<T,
            float>()).As<float, T>();
        return x * y + acc;
    }

    /// <summary>C[0..MR, 0..NR] (+)= Apanel * Bpanel over kc steps, 12 vector accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro(int kc, ReadOnlySpan<T> ap, ReadOnlySpan<T> bp, int ldb, Span<T> c, int ldc,
        bool overwrite)
    {
        Vector<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                  c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        ref T a = ref MemoryMarshal.GetReference(ap);
        ref T b = ref MemoryMarshal.GetReference(bp);
        int v = Vector<T>.Count;
        for (int kk = 0; kk < kc; kk++)
        {
            var b0 = Vector.LoadUnsafe(ref b, (nuint)(kk * ldb));
            var b1 = Vector.LoadUnsafe(ref b, (nuint)(kk * ldb + v));
            ref T ak = ref Unsafe.Add(ref a, kk * MR);
            var x = new Vector<T>(ak); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = new Vector<T>(Unsafe.Add(ref ak, 1)); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = new Vector<T>(Unsafe.Add(ref ak, 2)); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = new Vector<T>(Unsafe.Add(ref ak, 3)); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            x = new Vector<T>(Unsafe.Add(ref ak, 4)); c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41);
            x = new Vector<T>(Unsafe.Add(ref ak, 5)); c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51);
        }
        ref T cr = ref MemoryMarshal.GetReference(c);
        Store(ref cr, 0, v, c00, c01, overwrite);
        Store(ref cr, ldc, v, c10, c11, overwrite);
        Store(ref cr, 2 * ldc, v, c20, c21, overwrite);
        Store(ref cr, 3 * ldc, v, c30, c31, overwrite);
        Store(ref cr, 4 * ldc, v, c40, c41, overwrite);
        Store(ref cr, 5 * ldc, v, c50, c51, overwrite);
    }

    /// <summary>Micro with 512-bit vectors: C[0..8, 0..NR] (+)= Apanel * Bpanel, 16 accumulators of 16
    /// floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro512(int kc, ReadOnlySpan<T> ap, ReadOnlySpan<T> bp, int ldb, Span<T> c, int ldc,
        bool overwrite)
    {
        Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                     c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
                     c60 = default, c61 = default, c70 = default, c71 = default;
        ref T a = ref MemoryMarshal.GetReference(ap);
        ref T b = ref MemoryMarshal.GetReference(bp);
        int v = Vector512<T>.Count;
        for (int kk = 0; kk < kc; kk++)
        {
            var b0 = Vector512.LoadUnsafe(ref b, (nuint)(kk * ldb));
            var b1 = Vector512.LoadUnsafe(ref b, (nuint)(kk * ldb + v));
            ref T ak = ref Unsafe.Add(ref a, kk * MR);
            var x = Vector512.Create(ak); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = Vector512.Create(Unsafe.Add(ref ak, 1)); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = Vector512.Create(Unsafe.Add(ref ak, 2)); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = Vector512.Create(Unsafe.Add(ref ak, 3)); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            x = Vector512.Create(Unsafe.Add(ref ak, 4)); c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41);
            x = Vector512.Create(Unsafe.Add(ref ak, 5)); c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51);
            x = Vector512.Create(Unsafe.Add(ref ak, 6)); c60 = Fma(x, b0, c60); c61 = Fma(x, b1, c61);
            x = Vector512.Create(Unsafe.Add(ref ak, 7)); c70 = Fma(x, b0, c70); c71 = Fma(x, b1, c71);
        }
        ref T cr = ref MemoryMarshal.GetReference(c);
        Store(ref cr, 0, v, c00, c01, overwrite);
        Store(ref cr, ldc, v, c10, c11, overwrite);
        Store(ref cr, 2 * ldc, v, c20, c21, overwrite);
        Store(ref cr, 3 * ldc, v, c30, c31, overwrite);
        Store(ref cr, 4 * ldc, v, c40, c41, overwrite);
        Store(ref cr, 5 * ldc, v, c50, c51, overwrite);
        Store(ref cr, 6 * ldc, v, c60, c61, overwrite);
        Store(ref cr, 7 * ldc, v, c70, c71, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma(Vector512<T> x, Vector512<T> y, Vector512<T> acc)
    {
        if (typeof(T) == typeof(double)) return Vector512.FusedMultiplyAdd(x.As<T, double>(), y.As<T, double>(),
            acc.As<T, double>()).As<double, T>();
        if (typeof(T) == typeof(float)) return Vector512.FusedMultiplyAdd(x.As<T, float>(), y.As<T, float>(),
            acc.As<T, float>()).As<float, T>();
        return x * y + acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref T c, int at, int v, Vector512<T> lo, Vector512<T> hi, bool overwrite)
    {
        if (!overwrite)
        {
            lo += Vector512.LoadUnsafe(ref c, (nuint)at);
            hi += Vector512.LoadUnsafe(ref c, (nuint)(at + v));
        }
        lo.StoreUnsafe(ref c, (nuint)at);
        hi.StoreUnsafe(ref c, (nuint)(at + v));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref T c, int at, int v, Vector<T> lo, Vector<T> hi, bool overwrite)
    {
        if (!overwrite)
        {
            lo += Vector.LoadUnsafe(ref c, (nuint)at);
            hi += Vector.LoadUnsafe(ref c, (nuint)(at + v));
        }
        lo.StoreUnsafe(ref c, (nuint)at);
        hi.StoreUnsafe(ref c, (nuint)(at + v));
    }
}
