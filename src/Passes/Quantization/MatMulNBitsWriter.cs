// com.microsoft MatMulNBits as ORT 1.30 reads it: Y = A x dequant(B)^T, A float [.., K], the weight stored per
// output column n in blocks of block_size values along K (the last block padded):
//   B            uint8 [N, blocks, block_size * bits / 8]: codes packed low bits first along K (4 bits: two per
//                byte, element 2i in the low nibble); padding codes equal the block's zero point (they decode to 0)
//   scales       float [N * blocks]
//   zero_points  uint8 [N * ceil(blocks * bits / 8)]: 8 bits one per block; 4 bits two per byte, low first, EACH ROW
//                padded to whole bytes (an odd block count leaves the row's last high nibble empty); absent: every
//                zero point is 2^(bits - 1) (symmetric)
//   attributes   K, N, bits, block_size, accuracy_level (0: float compute; 4: A quantized to int8 per block on the
//                fly, the fast path on x86)
//   before: Y = MatMul(A, W[K, N]) or Gemm(A, W, C)      after: Y = MatMulNBits(A, B, scales, zp) (+ Add beta C)
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>A weight as MatMulNBits stores it: packed codes, scales and (packed, or null: symmetric) zero points.
/// </summary>
public sealed record MatMulNBitsWeight(byte[] B, float[] Scales, byte[]? Zeros, int K, int N, int Bits,
    int BlockSize)
{
    public int Blocks => (K + BlockSize - 1) / BlockSize;

    /// <summary>Packs codes (one per element, [N][K] row-major) and per-block zero points ([N][blocks]; null:
    /// symmetric, every zero point 2^(bits-1)).</summary>
    public static MatMulNBitsWeight Pack(byte[] codes, float[] scales, byte[]? zeros, int k, int n, int bits,
        int blockSize)
    {
        if (bits is not (4 or 8)) throw new ArgumentException($"MatMulNBits: {bits} bits (4 or 8 here)");
        int blocks = (k + blockSize - 1) / blockSize, blob = blockSize * bits / 8;
        var b = new byte[n * blocks * blob];
        for (int r = 0; r < n; r++)
            for (int blk = 0; blk < blocks; blk++)
            {
                int z = zeros?[r * blocks + blk] ?? 1 << (bits - 1);
                int off = (r * blocks + blk) * blob;
                for (int i = 0; i < blockSize; i++)
                {
                    int kk = blk * blockSize + i;
                    int code = kk < k ? codes[r * k + kk] : z;
                    if (bits == 8) b[off + i] = (byte)code;
                    else b[off + i / 2] |= (byte)(i % 2 == 0 ? code & 15 : (code & 15) << 4);
                }
            }
        byte[]? zp = null;
        if (zeros is not null)
        {
            int row = bits == 8 ? blocks : (blocks + 1) / 2;
            zp = new byte[n * row];
            for (int r = 0; r < n; r++)
                for (int blk = 0; blk < blocks; blk++)
                {
                    var z = zeros[r * blocks + blk];
                    if (bits == 8) zp[r * row + blk] = z;
                    else zp[r * row + blk / 2] |= (byte)(blk % 2 == 0 ? z & 15 : (z & 15) << 4);
                }
        }
        return new MatMulNBitsWeight(b, scales, zp, k, n, bits, blockSize);
    }

    /// <summary>The weight's values as ORT decodes them, [K, N] row-major (the layout of a MatMul's B).</summary>
    public float[] Decode()
    {
        int blob = BlockSize * Bits / 8, zpRow = Bits == 8 ? Blocks : (Blocks + 1) / 2;
        var w = new float[K * N];
        for (int r = 0; r < N; r++)
            for (int kk = 0; kk < K; kk++)
            {
                int blk = kk / BlockSize, i = kk % BlockSize, off = (r * Blocks + blk) * blob;
                int code = Bits == 8 ? B[off + i] : (B[off + i / 2] >> (i % 2 * 4)) & 15;
                int z = Zeros is null ? 1 << (Bits - 1)
                    : Bits == 8 ? Zeros[r * zpRow + blk] : (Zeros[r * zpRow + blk / 2] >> (blk % 2 * 4)) & 15;
                w[kk * N + r] = (code - z) * Scales[r * Blocks + blk];
            }
        return w;
    }
}

public static class MatMulNBitsWriter
{
    /// <summary>Replaces a MatMul or Gemm (transA 0; alpha already in the weight) by MatMulNBits over
    /// <paramref name="w"/>, plus an Add of beta C for a Gemm with C.</summary>
    public static void Replace(Rewriter rw, Graph g, Node node, string name, MatMulNBitsWeight w, int accuracyLevel)
    {
        var bq = rw.Constant(g, name + $"_q{w.Bits}",
            Tensor.FromValues("", DataType.UInt8, [w.N, w.Blocks, w.BlockSize * w.Bits / 8], w.B));
        var sc = rw.Constant(g, name + "_scales", Tensor.FromFloats("", [w.N * w.Blocks], w.Scales));
        var inputs = new List<Value?> { node.Input(0), bq, sc };
        if (w.Zeros is not null)
            inputs.Add(rw.Constant(g, name + "_zero_points",
                Tensor.FromValues("", DataType.UInt8, [w.Zeros.Length], w.Zeros)));
        var mm = rw.Insert(g, "com.microsoft", "MatMulNBits", inputs, node.Output().Name + $"_q{w.Bits}", 1,
            OnnxAttribute.Int("K", w.K), OnnxAttribute.Int("N", w.N), OnnxAttribute.Int("bits", w.Bits),
            OnnxAttribute.Int("block_size", w.BlockSize), OnnxAttribute.Int("accuracy_level", accuracyLevel)).Output();
        Value result = mm;
        if (node.OpType == "Gemm" && node.Input(2) is { } bias)
        {
            var beta = node.GetFloat("beta", 1f);
            Value c = bias;
            if (beta != 1f)
                c = rw.Insert(g, "Mul", [bias, rw.Constant(g, name + "_beta", Tensor.FromFloats("", [], [beta]))],
                    name + "_bias").Output();
            result = rw.Insert(g, "Add", [mm, c], node.Output().Name + "_biased").Output();
        }
        if (rw.Model.OpsetVersion("com.microsoft") is null) rw.SetOpset("com.microsoft", 1);
        if (node.Output().Type is { } t) rw.SetType(result, t);
        rw.Replace(node.Output(), result);
        rw.Erase(node);
    }
}
