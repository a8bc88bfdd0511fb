// cluster{format=int4} for MatMul/Gemm weights: clusters constrained to an evenly spaced grid per block, the
// one compressed form ORT runs smaller in memory and faster: com.microsoft MatMulNBits (4 bits).
//   For output column n and block b of block-size rows of K:  w ~ s_nb * (q - z_nb),  q, z in 0..15.
//   Fit (k-means with the centroids tied to a grid): start from min/max, then alternate
//     q = clamp(round(w / s) + z)   and the least-squares line  w ~ a q + c  (s = a, z = round(-c / a)),
//   keeping the best SSE. Storage: B uint8 [N, ceil(K / bs), bs / 2] (low nibble first along K), scales
//   [N * blocks], zero points [N, ceil(blocks / 2)]: two per byte (low first), each row padded to whole bytes (an
//   odd block count leaves a row's last high nibble empty), attributes K, N, bits=4, block_size.
//   before: Y = Gemm(A, W[N,K], bias, transB=1)    after: Y = Add(MatMulNBits(A, B, scales, zp), bias)
//   accuracy_level 0 computes in float from the grid values (outputs as the float model holding them);
//   4 quantizes A to int8 per block on the fly and is the fast path (measured: int4-latency bench).
// Only a Gemm with transA=0 and alpha=1, or a MatMul with a rank-2 constant weight.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

internal static class BlockGrid4
{
    public const int BlockSize = 32;

    /// <summary>Whether the weight feeds an op MatMulNBits can replace.</summary>
    public static bool Applies(PrunableWeight p) => p.Dims.Length == 2 && p.Node.OpType switch
    {
        "MatMul" => p.InputIndex == 1,
        "Gemm" => p.Node.GetInt("transA", 0) == 0 && p.Node.GetFloat("alpha", 1f) == 1f,
        _ => false,
    };

    /// <summary>The weight as [K, N] values (row k, column n), whatever its layout.</summary>
    private static (float[] W, int K, int N) AsKn(PrunableWeight p)
    {
        var w = p.Weight.Initializer!.ToFloatArray();
        int d0 = (int)p.Dims[0], d1 = (int)p.Dims[1];
        if (p.Node.OpType == "Gemm" && p.Node.GetInt("transB", 0) != 0)
        {
            var t = new float[w.Length];
            for (int n = 0; n < d0; n++) for (int k = 0; k < d1; k++) t[k * d0 + n] = w[n * d1 + k];
            return (t, d1, d0);
        }
        return (w, d0, d1);
    }

    /// <summary>Fits the grid per block; returns the dequantized values in the weight's own layout and the
    /// MatMulNBits tensors.</summary>
    public static (float[] Values, byte[] B, float[] Scales, byte[] Zeros, int K, int N) Fit(PrunableWeight p)
    {
        var (w, kDim, nDim) = AsKn(p);
        int blocks = (kDim + BlockSize - 1) / BlockSize;
        var b = new byte[nDim * blocks * BlockSize / 2];
        var scales = new float[nDim * blocks];
        int zpRow = (blocks + 1) / 2;   // MatMulNBits reads each row's zero points from whole bytes
        var zeros = new byte[nDim * zpRow];
        var dq = new float[w.Length];
        var x = new double[BlockSize];
        var q = new int[BlockSize];
        for (int n = 0; n < nDim; n++)
            for (int blk = 0; blk < blocks; blk++)
            {
                int k0 = blk * BlockSize, len = Math.Min(BlockSize, kDim - k0);
                for (int i = 0; i < len; i++) x[i] = w[(k0 + i) * nDim + n];
                var (s, z) = Grid(x.AsSpan(0, len), q);
                int idx = n * blocks + blk;
                scales[idx] = (float)s;
                zeros[n * zpRow + blk / 2] |= (byte)(blk % 2 == 0 ? z : z << 4);
                for (int i = 0; i < len; i++)
                {
                    int qi = Quant(x[i], (float)s, z);
                    b[idx * BlockSize / 2 + i / 2] |= (byte)(i % 2 == 0 ? qi : qi << 4);
                    dq[(k0 + i) * nDim + n] = (qi - z) * (float)s;
                }
                for (int i = len; i < BlockSize; i++) // padding rows decode to 0 (A has no such columns)
                    b[idx * BlockSize / 2 + i / 2] |= (byte)(i % 2 == 0 ? z : z << 4);
            }
        // Back to the weight's layout.
        var values = new float[w.Length];
        bool transposed = p.Node.OpType == "Gemm" && p.Node.GetInt("transB", 0) != 0;
        for (int k = 0; k < kDim; k++)
            for (int n = 0; n < nDim; n++)
                values[transposed ? n * kDim + k : k * nDim + n] = dq[k * nDim + n];
        return (values, b, scales, zeros, kDim, nDim);
    }

    /// <summary>Per element of the weight (its own layout): its block (n * blocks + blk, the scale's index) and its
    /// grid value q - z (so that the element is scale * (q - z)).</summary>
    public static (int[] Block, float[] Q) Members(PrunableWeight p, float[] values, float[] scales, int kDim, int nDim)
    {
        int blocks = (kDim + BlockSize - 1) / BlockSize;
        bool transposed = p.Node.OpType == "Gemm" && p.Node.GetInt("transB", 0) != 0;
        var block = new int[values.Length];
        var q = new float[values.Length];
        for (int k = 0; k < kDim; k++)
            for (int n = 0; n < nDim; n++)
            {
                int at = transposed ? n * kDim + k : k * nDim + n, idx = n * blocks + k / BlockSize;
                block[at] = idx;
                q[at] = scales[idx] == 0 ? 0 : MathF.Round(values[at] / scales[idx]);
            }
        return (block, q);
    }

    private static int Quant(double v, float s, int z) =>
        s == 0 ? z : Math.Clamp((int)Math.Round(v / s, MidpointRounding.ToEven) + z, 0, 15);

    private static (double S, int Z) Grid(ReadOnlySpan<double> x, int[] q)
    {
        double lo = Math.Min(0, Min(x)), hi = Math.Max(0, Max(x));
        double s = (hi - lo) / 15;
        if (s == 0) return (0, 8);
        int z = Math.Clamp((int)Math.Round(-lo / s), 0, 15);
        double best = Sse(x, (float)s, z);
        (double S, int Z) arg = (s, z);
        for (int iter = 0; iter < 8; iter++)
        {
            // Assignment, then the least-squares line through (q, w).
            double sq = 0, sqq = 0, sw = 0, sqw = 0;
            for (int i = 0; i < x.Length; i++)
            {
                q[i] = Quant(x[i], (float)s, z);
                sq += q[i]; sqq += (double)q[i] * q[i]; sw += x[i]; sqw += q[i] * x[i];
            }
            double det = x.Length * sqq - sq * sq;
            if (det <= 0) break;
            double a = (x.Length * sqw - sq * sw) / det, c = (sw - a * sq) / x.Length;
            if (a <= 0) break;
            s = a;
            z = Math.Clamp((int)Math.Round(-c / a), 0, 15);
            var e = Sse(x, (float)s, z);
            if (e < best) { best = e; arg = (s, z); }
        }
        return arg;
    }

    private static double Sse(ReadOnlySpan<double> x, float s, int z)
    {
        double e = 0;
        foreach (var v in x) { var d = v - (Quant(v, s, z) - z) * s; e += d * d; }
        return e;
    }

    private static double Min(ReadOnlySpan<double> x)
    {
        var m = double.PositiveInfinity;
        foreach (var v in x) m = Math.Min(m, v);
        return m;
    }

    private static double Max(ReadOnlySpan<double> x)
    {
        var m = double.NegativeInfinity;
        foreach (var v in x) m = Math.Max(m, v);
        return m;
    }

    /// <summary>Replaces the op by MatMulNBits (plus Add of the bias, times beta, for Gemm).</summary>
    public static void Store(Rewriter rw, Graph g, PrunableWeight p, byte[] b, float[] scales, byte[] zeros, int k,
        int n, int accuracyLevel) =>
        MatMulNBitsWriter.Replace(rw, g, p.Node, p.Weight.Name, new MatMulNBitsWeight(b, scales, zeros, k, n, 4,
            BlockSize), accuracyLevel);
}
