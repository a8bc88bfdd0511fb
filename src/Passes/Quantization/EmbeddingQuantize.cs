// quantize{embeddings=true,embedding-bits=8|4}: embedding tables to 8 (or 4) bits. A Gather reading rows of a
// constant float table [rows, width] (word, position and token-type embeddings) becomes ONNX Runtime's contrib
// GatherBlockQuantized over uint8 codes, asymmetric per block of `block` consecutive values of a row:
//
//   y = Gather(E, ids)  ->  y = com.microsoft.GatherBlockQuantized(Q, ids, s, zp){gather_axis=0,
//                                quantize_axis=1, block_size=B, bits=8}
//   per block b of row r: s = (max - min) / 255, zp = round(-min / s) in [0, 255], Q = clamp(round(E / s) + zp),
//   and the kernel returns (Q - zp) * s for the rows it gathers (error at most s / 2 per value).
//
// The table shrinks 4x (plus one float scale and one byte per block): arctic-embed-xs's 30,522 x 384 word table,
// half of the file, goes from 47 MB to 12 MB. With 4 bits (s = (max - min) / 15) the codes of a row are packed two
// per byte, low nibble first, and so are each row's zero points (the kernel's uint8 convention, MatMulNBits'):
// Q [rows, width / 2], zp [rows, ceil(blocks / 2)]; tables of odd width stay at 8 bits. Nothing else changes; the
// output is validated like any quantization.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

internal static class EmbeddingQuantize
{
    /// <summary>Values per block: a power of 2 of at least 16 (the kernel's rule).</summary>
    public const int Block = 32;

    public static void Run(PassContext ctx, QuantizePassOptions o)
    {
        var model = ctx.Model;
        var rw = ctx.Rewriter;
        var g = model.Graph;
        var qo = o.ToEmitter();
        var done = new Dictionary<Value, (Value Codes, Value Scales, Value Zeros)>();
        foreach (var n in g.Nodes.Where(n => n is { OpType: "Gather", IsStandard: true }).ToList())
        {
            if (n.Input(0) is not { Initializer: { Dims.Length: 2 } t } table || t.ElementType != DataType.Float
                || n.GetInt("axis", 0) != 0 || t.Dims[1] < 16 || t.Dims[0] < 2) continue;
            if (qo.Include.Count > 0 && !qo.Include.Contains(n.Name ?? "") && !qo.Include.Contains(table.Name)
                || qo.Exclude.Contains(n.Name ?? "") || qo.Exclude.Contains(table.Name)) continue;
            int bits = o.EmbeddingBits == "4" && t.Dims[1] % 2 == 0 ? 4 : 8;
            if (!done.TryGetValue(table, out var q))
            {
                var (codes, scales, zeros) = Quantize(t, bits);
                long rows = t.Dims[0], width = t.Dims[1];
                var blocks = (width + Block - 1) / Block;
                var sqnr = QuantizedOp.SqnrDb(t.ToFloatArray(), i =>
                {
                    long b = i / width * blocks + i % width / Block;
                    return (codes[i] - zeros[b]) * (double)scales[b];
                });
                if (bits == 4) (codes, zeros) = (Pack(codes, rows, width), Pack(zeros, rows, blocks));
                q = (rw.Constant(g, table.Name + $"_uint{bits}", new Tensor("", DataType.UInt8,
                        [rows, bits == 4 ? width / 2 : width], codes)),
                    rw.Constant(g, table.Name + "_scale", Tensor.FromFloats("", [rows, blocks], scales)),
                    rw.Constant(g, table.Name + "_zero_point", new Tensor("", DataType.UInt8,
                        [rows, bits == 4 ? (blocks + 1) / 2 : blocks], zeros)));
                done[table] = q;
                ctx.Stats.Count(Counters.Quantize.EmbeddingTables);
                var decision = new QuantizedOp(table.Name, "Gather",
                    $"uint{bits} blocks of 32 (GatherBlockQuantized)");
                ctx.Stats.Decide(decision with { Bits = bits, WeightSqnrDb = sqnr });
                if (o.EmbeddingBits == "4" && bits == 8)
                    ctx.Stats.Notes.Add($"embeddings: '{table.Name}' has an odd width ({width}); stored in 8 bits");
            }
            rw.InsertionPoint = n;
            var gq = rw.Insert(g, DynamicQuantize.Domain, "GatherBlockQuantized", [q.Codes, n.Input(1), q.Scales,
                q.Zeros], (n.Name is { Length: > 0 } nm ? nm : n.Output().Name) + $"_uint{bits}", 1,
                OnnxAttribute.Int("gather_axis", 0), OnnxAttribute.Int("quantize_axis", 1),
                OnnxAttribute.Int("block_size", Block), OnnxAttribute.Int("bits", bits));
            rw.SetType(gq.Output(), n.Output().Type);
            rw.Replace(n.Output(), gq.Output());
            rw.Erase(n);
        }
        if (done.Count == 0) return;
        if (model.OpsetVersion(DynamicQuantize.Domain) is null) rw.SetOpset(DynamicQuantize.Domain, 1);
        rw.RemoveUnusedInitializers(g);
        rw.Finish();
    }

    /// <summary>Two 4-bit values per byte, low nibble first, each of <paramref name="rows"/> rows of
    /// <paramref name="width"/> values padded to whole bytes.</summary>
    public static byte[] Pack(byte[] v, long rows, long width)
    {
        long packed = (width + 1) / 2;
        var r = new byte[rows * packed];
        for (long i = 0; i < rows; i++)
            for (long j = 0; j < width; j++)
                r[i * packed + j / 2] |= (byte)(j % 2 == 0 ? v[i * width + j] & 15 : (v[i * width + j] & 15) << 4);
        return r;
    }

    /// <summary>Codes (one per value, unpacked), per-block scales and zero points of a [rows, width] table.</summary>
    public static (byte[] Codes, float[] Scales, byte[] Zeros) Quantize(Tensor t, int bits = 8)
    {
        int levels = (1 << bits) - 1;
        int rows = (int)t.Dims[0], width = (int)t.Dims[1], blocks = (width + Block - 1) / Block;
        var v = t.ToFloatArray();
        var codes = new byte[v.Length];
        var scales = new float[rows * blocks];
        var zeros = new byte[rows * blocks];
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
            {
                int lo = r * width + b * Block, hi = r * width + Math.Min(width, (b + 1) * Block);
                float min = 0, max = 0;   // 0 kept representable: an all-zero padding row stays exact
                for (int i = lo; i < hi; i++) { min = Math.Min(min, v[i]); max = Math.Max(max, v[i]); }
                var s = max > min ? (max - min) / levels : 1f;
                var zp = (byte)Math.Clamp(MathF.Round(-min / s), 0, levels);
                scales[r * blocks + b] = s;
                zeros[r * blocks + b] = zp;
                for (int i = lo; i < hi; i++) codes[i] = (byte)Math.Clamp(MathF.Round(v[i] / s) + zp, 0, levels);
            }
        return (codes, scales, zeros);
    }
}
