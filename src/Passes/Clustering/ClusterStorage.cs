// How cluster stores a clustered weight (format=), each decoding in ORT to exactly the float values:
//   float  the weight initializer with K distinct values (compresses well; no runtime change)
//   lut    codes (uint8, the weight's shape) -> Cast(int32) [-> Add(channel offsets)] -> Gather(codebook)
//          ORT folds the constant subgraph at load: the file shrinks ~4x, memory is float again
//   lut4   two 4-bit codes per byte, high nibble first (K <= 16):
//          packed -> Cast(int32) -> Div 16, Mod 16 -> Reshape [m,1] each -> Concat -> Reshape [2m]
//          [-> Slice [0, n)] -> Reshape(weight shape) [-> Add offsets] -> Gather(codebook)
//          (standard ops from opset 10; no uint4 type needed, so opset-13 models keep their opset)
// Per-channel codebooks are concatenated; the channel's offset into them is added to its codes (a
// [C,1,..] or [..,1,C] int32 constant, for weights whose output channel is the first or last axis).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

internal sealed class ClusterStorage(Rewriter rw, Graph g)
{
    public static readonly string[] Formats = ["float", "lut", "lut4", "int4"];

    /// <summary>Stores the clustered weight in <paramref name="format"/>; returns the format used.</summary>
    public string Store(PrunableWeight p, float[] values, int[] codes, double[][] books, int[] slices, string format)
    {
        var w = p.Weight;
        var dims = w.Initializer!.Dims;
        if (format == "float")
        {
            rw.SetInitializer(w, Tensor.FromFloats(w.Name, dims, values));
            return format;
        }
        var total = books.Sum(b => b.Length);
        if (format == "lut" && books.Any(b => b.Length > 256))
            throw new OnnxModelException($"cluster format=lut: {w.Name} has more than 256 clusters (uint8 codes)");
        if (format == "lut4" && books.Any(b => b.Length > 16))
            throw new OnnxModelException($"cluster format=lut4: {w.Name} needs at most 16 clusters (4-bit codes)");
        if (format == "lut4" && (rw.Model.OpsetVersion() ?? 13) < 10)
            throw new OnnxModelException("cluster format=lut4 needs ai.onnx opset 10 or later (Mod, Slice inputs)");
        long[]? offsetDims = books.Length == 1 ? null : OffsetShape(p, dims, slices);
        if (books.Length > 1 && offsetDims is null)
        {
            rw.SetInitializer(w, Tensor.FromFloats(w.Name, dims, values));
            return "float"; // a grouped ConvTranspose's channels are not one axis
        }
        var book = rw.Constant(g, w.Name + "_codebook", Tensor.FromFloats("", [total],
            books.SelectMany(b => b.Select(v => (float)v)).ToArray()));
        var n = codes.Length;
        Value idx;
        if (format == "lut")
        {
            var packed = rw.Constant(g, w.Name + "_codes", Tensor.FromValues("", DataType.UInt8, dims,
                codes.Select(c => (byte)c).ToArray()));
            idx = Op("Cast", [packed], w.Name + "_idx", OnnxAttribute.Int("to", (long)DataType.Int32));
        }
        else
        {
            var m = (n + 1) / 2;
            var bytes = new byte[m];
            for (int i = 0; i < n; i++) bytes[i / 2] |= (byte)(i % 2 == 0 ? codes[i] << 4 : codes[i]);
            var packed = rw.Constant(g, w.Name + "_codes4", Tensor.FromValues("", DataType.UInt8, [m], bytes));
            var x = Op("Cast", [packed], w.Name + "_bytes", OnnxAttribute.Int("to", (long)DataType.Int32));
            var sixteen = rw.Constant(g, w.Name + "_16", Tensor.FromValues("", DataType.Int32, [], new[] { 16 }));
            var column = Ints(w.Name + "_column", m, 1);
            var hi = Op("Reshape", [Op("Div", [x, sixteen], w.Name + "_hi"), column], w.Name + "_hi2");
            var lo = Op("Reshape", [Op("Mod", [x, sixteen], w.Name + "_lo"), column], w.Name + "_lo2");
            var pairs = Op("Concat", [hi, lo], w.Name + "_pairs", OnnxAttribute.Int("axis", 1));
            var flat = Op("Reshape", [pairs, Ints(w.Name + "_flat", 2L * m)], w.Name + "_nibbles");
            if (2L * m != n)
                flat = Op("Slice", [flat, Ints(w.Name + "_start", 0), Ints(w.Name + "_end", n)], w.Name + "_codes");
            idx = Op("Reshape", [flat, Ints(w.Name + "_shape", dims)], w.Name + "_idx");
        }
        if (offsetDims is not null)
        {
            var offsets = new int[books.Length];
            for (int c = 1; c < books.Length; c++) offsets[c] = offsets[c - 1] + books[c - 1].Length;
            var off = rw.Constant(g, w.Name + "_offsets", Tensor.FromValues("", DataType.Int32, offsetDims, offsets));
            idx = Op("Add", [idx, off], w.Name + "_global");
        }
        var decoded = Op("Gather", [book, idx], w.Name + "_decoded", OnnxAttribute.Int("axis", 0));
        rw.SetInput(p.Node, p.InputIndex, decoded);
        return format;
    }

    private Value Op(string op, IReadOnlyList<Value?> inputs, string name, params OnnxAttribute[] attrs) =>
        rw.Insert(g, op, inputs, name, 1, attrs).Output();

    private Value Ints(string name, params long[] v) => rw.Constant(g, name, Tensor.FromInt64s("", [v.Length], v));

    /// <summary>[C,1,..,1] when the output channel is axis 0, [1,..,1,C] when it is the last axis, else null.</summary>
    private static long[]? OffsetShape(PrunableWeight p, long[] dims, int[] slices)
    {
        long inner = dims.Skip(1).Aggregate(1L, (a, b) => a * b);
        if (slices.Select((s, i) => s == i / inner).All(x => x))
            return dims.Select((d, i) => i == 0 ? d : 1).ToArray();
        if (slices.Select((s, i) => s == i % dims[^1]).All(x => x))
            return dims.Select((d, i) => i == dims.Length - 1 ? d : 1).ToArray();
        return null;
    }
}
