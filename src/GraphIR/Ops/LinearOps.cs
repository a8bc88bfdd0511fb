// The linear ops y = W x (+ b) (LinearOp views them as matrices): Conv, ConvTranspose, Gemm, MatMul and their
// integer and QLinear forms. Shapes from the usual output-size formulas; MACs per sample:
//   Conv           Cout * prod(out spatial) * (Cin / group) * prod(k)   (= prod(y) * prod(W[1:]))
//   ConvTranspose  Cin * prod(in spatial) * (Cout / group) * prod(k)    (= prod(x) * prod(W[1:]))
//   Gemm           M * N * K
//   MatMul         batch * M * N * K                                    (= prod(y) * A[-1])
//   Einsum         the product of every index letter's size
// a symbolic leading batch dim counting as 1.
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class LinearOps
{
    private static long Prod(IEnumerable<long> dims) => dims.Aggregate(1L, (a, b) => a * b);

    private static long? ConvMacs(Node n)
    {
        var w = SampleDims(n.Input(n.OpType == "QLinearConv" ? 3 : 1));
        var y = SampleDims(n.Output());
        if (w is null || y is null || y.Length < 2) return null;
        return Prod(y) * Prod(w.Skip(1));
    }

    private static long? ConvTransposeMacs(Node n)
    {
        var x = SampleDims(n.Input(0));
        var w = SampleDims(n.Input(1));
        if (x is null || w is null) return null;
        return Prod(x) * Prod(w.Skip(1));
    }

    private static long? GemmMacs(Node n)
    {
        var a = SampleDims(n.Input(0));
        var y = SampleDims(n.Output());
        if (a is null || y is null || a.Length != 2 || y.Length != 2) return null;
        var k = n.GetInt("transA", 0) != 0 ? a[0] : a[1];
        return y[0] * y[1] * k;
    }

    internal static long? MatMulMacs(Node n)
    {
        var a = SampleDims(n.Input(0));
        var y = SampleDims(n.Output());
        if (a is null || y is null || a.Length == 0) return null;
        return Prod(y) * a[^1];
    }

    /// <summary>Einsum's letters and their sizes over the operands ("...": not handled, null).</summary>
    private static (string[] Terms, string Output, Dictionary<char, Dim> Sizes)? EinsumParts(Node n)
    {
        var eq = n.GetString("equation")?.Replace(" ", "", StringComparison.Ordinal);
        if (eq is null || eq.Contains("...", StringComparison.Ordinal)) return null;
        var sides = eq.Split("->");
        var terms = sides[0].Split(',');
        if (terms.Length != n.Inputs.Count) return null;
        var sizes = new Dictionary<char, Dim>();
        for (int t = 0; t < terms.Length; t++)
        {
            if (ShapeOf(n.Input(t)) is not { } s || s.Rank != terms[t].Length) return null;
            for (int i = 0; i < s.Rank; i++)
                if (!sizes.TryGetValue(terms[t][i], out var d) || (!d.IsKnown && s[i].IsKnown) || d.Value == 1)
                    sizes[terms[t][i]] = s[i];
        }
        // Implicit output: the letters that appear once, in alphabetical order.
        var output = sides.Length > 1 ? sides[1] : new string(sizes.Keys
            .Where(ch => terms.Sum(t => t.Count(x => x == ch)) == 1).Order().ToArray());
        return output.All(sizes.ContainsKey) ? (terms, output, sizes) : null;
    }

    private static OnnxType? Einsum(Node n) =>
        T(TypeOf(n.Input(0)), EinsumParts(n) is { } p ? new Shape(p.Output.Select(ch => p.Sizes[ch])) : null);

    /// <summary>One multiply per combination of every letter's index (the first operand's leading letter, a
    /// batch, counting 1 when symbolic).</summary>
    private static long? EinsumMacs(Node n)
    {
        if (EinsumParts(n) is not { } p) return null;
        long macs = 1;
        foreach (var (ch, d) in p.Sizes)
        {
            if (d.Value is long v) macs *= v;
            else if (ch != p.Terms[0][0]) return null;
        }
        return macs;
    }

    private static OpInfo Linear(string op, ShapeFunction infer, MacFunction macs, bool quantized = false) => new(op)
    {
        Traits = quantized ? OpTrait.None : OpTrait.Linear,
        Infer = infer,
        Macs = macs,
        Channels = quantized ? ChannelMapping.Unknown : ChannelMapping.Linear,
        Quant = quantized ? QuantClass.None : QuantClass.WeightedCompute,
    };

    public static IEnumerable<OpInfo> All =>
    [
        Linear("Conv", (n, c) => [Conv(n)], ConvMacs),
        Linear("ConvInteger", (n, c) => [Conv(n)], ConvMacs, quantized: true),
        Linear("QLinearConv", (n, c) => [Conv(n)], ConvMacs, quantized: true),
        Linear("ConvTranspose", (n, c) => [ConvTranspose(n)], ConvTransposeMacs),
        Linear("Gemm", (n, c) => [Gemm(n)], GemmMacs),
        Linear("MatMul", (n, c) => [MatMul(n)], MatMulMacs),
        Linear("MatMulInteger", (n, c) => [MatMul(n)], MatMulMacs, quantized: true),
        Linear("QLinearMatMul", (n, c) => [QLinearMatMul(n)], MatMulMacs, quantized: true),
        new("Einsum") { Infer = (n, c) => [Einsum(n)], Macs = EinsumMacs },
    ];
}

public sealed partial class ShapeContext
{
    internal static OnnxType? Conv(Node n)
    {
        var xs = ShapeOf(n.Input(0));
        var ws = ShapeOf(n.Input(n.OpType == "QLinearConv" ? 3 : 1));
        var outType = n.OpType switch
        {
            "ConvInteger" => DataType.Int32,
            "QLinearConv" => TypeOf(n.Input(7)),
            _ => TypeOf(n.Input(0)),
        };
        if (xs is null || ws is null) return T(outType, null);
        var spatial = xs.Rank - 2;
        var (k, s, d, p) = ConvParams(n, spatial, ws.IsFullyKnown ? ws.ToArray()[2..] : null);
        var autoPad = n.GetString("auto_pad") ?? "NOTSET";
        var dims = new List<Dim> { xs[0], ws[0] };
        for (int i = 0; i < spatial; i++) dims.Add(SpatialOut(xs[i + 2], k[i], s[i], d[i], p[i], p[i + spatial],
            autoPad, false));
        return TD(outType, dims);
    }

    internal static OnnxType? ConvTranspose(Node n)
    {
        var xs = ShapeOf(n.Input(0));
        var ws = ShapeOf(n.Input(1));
        var t = TypeOf(n.Input(0));
        if (xs is null || ws is null) return T(t, null);
        var spatial = xs.Rank - 2;
        var group = n.GetInt("group", 1);
        var (k, s, d, p) = ConvParams(n, spatial, ws.IsFullyKnown ? ws.ToArray()[2..] : null);
        var op = n.GetInts("output_padding") ?? new long[spatial];
        var outShape = n.GetInts("output_shape");
        var cout = ws[1].Value is long c ? Dim.Of(c * group) : Dim.Unknown;
        var dims = new List<Dim> { xs[0], cout };
        var autoPad = n.GetString("auto_pad") ?? "NOTSET";
        for (int i = 0; i < spatial; i++)
        {
            if (outShape is not null) { dims.Add(Dim.Of(outShape[outShape.Length - spatial + i])); continue; }
            if (xs[i + 2].Value is not long iv) { dims.Add(Dim.Unknown); continue; }
            if (autoPad is "SAME_UPPER" or "SAME_LOWER") { dims.Add(Dim.Of(iv * s[i])); continue; }
            dims.Add(Dim.Of(s[i] * (iv - 1) + op[i] + ((k[i] - 1) * d[i] + 1) - p[i] - p[i + spatial]));
        }
        return TD(t, dims);
    }

    internal static OnnxType? Gemm(Node n)
    {
        var a = ShapeOf(n.Input(0)); var b = ShapeOf(n.Input(1));
        var t = TypeOf(n.Input(0));
        if (a is null || b is null) return T(t, null);
        var m = n.GetInt("transA", 0) != 0 ? a[1] : a[0];
        var nn = n.GetInt("transB", 0) != 0 ? b[0] : b[1];
        return TD(t, [m, nn]);
    }

    internal static OnnxType? MatMul(Node n)
    {
        var t = n.OpType == "MatMulInteger" ? DataType.Int32 : TypeOf(n.Input(0));
        return T(t, MatMulShape(ShapeOf(n.Input(0)), ShapeOf(n.Input(1))));
    }

    /// <summary>QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp): typed by y's zero point.</summary>
    internal static OnnxType? QLinearMatMul(Node n) =>
        T(TypeOf(n.Input(7)), MatMulShape(ShapeOf(n.Input(0)), ShapeOf(n.Input(3))));

    /// <summary>numpy matmul: broadcast batch dims, then [M, K] x [K, N] (1-D operands promoted and dropped).</summary>
    internal static Shape? MatMulShape(Shape? a, Shape? b)
    {
        if (a is null || b is null) return null;
        if (a.Rank == 0 || b.Rank == 0) throw new ArgumentException("MatMul of a scalar");
        var a2 = a.Rank == 1 ? new Shape([Dim.Of(1), a[0]]) : a;
        var b2 = b.Rank == 1 ? new Shape([b[0], Dim.Of(1)]) : b;
        var batch = Broadcast([new Shape(a2.Dims.Take(a2.Rank - 2)), new Shape(b2.Dims.Take(b2.Rank - 2))])!;
        var dims = batch.Dims.ToList();
        if (a.Rank > 1) dims.Add(a2[a2.Rank - 2]);
        if (b.Rank > 1) dims.Add(b2[b2.Rank - 1]);
        return new Shape(dims);
    }
}
