// What a shape function sees: the opset of the default domain and the small integer constants known so
// far (initializers, Constant, Shape of a shape, and what shape arithmetic makes of them; elements may be
// symbols), plus the helpers every op family shares (types, broadcasting, conv window arithmetic). One
// context serves one inference run over a model, in topological order. Each op family's file adds the
// shape helpers it needs to this partial class.
namespace OnnxOpt.GraphIR;

public sealed partial class ShapeContext(long opset)
{
    // Known small integer vectors; elements may be symbols (from Shape of a symbolic shape).
    private readonly Dictionary<Value, Dim[]> _consts = new();

    /// <summary>The model's default-domain opset.</summary>
    public long Opset => opset;

    /// <summary>The first input's type and shape: what element-wise unary ops output.</summary>
    public OnnxType? SameAsInput(Node n) =>
        // The input's own type when it is exactly that (types are immutable): no copy per value of a long chain.
        n.Input(0) is { Initializer: null, Type: { Kind: TypeKind.Tensor, Denotation: null, HasElementType: true } t }
            && t.ElementType != DataType.Undefined
            ? t : T(TypeOf(n.Input(0)), ShapeOf(n.Input(0)));

    /// <summary>Per-sample known dims (a symbolic leading batch dim counts as 1), or null.</summary>
    public static long[]? SampleDims(Value? v)
    {
        var s = v?.Shape;
        if (s is null) return null;
        var r = new long[s.Rank];
        for (int i = 0; i < s.Rank; i++)
        {
            if (s[i].Value is long d) r[i] = d;
            else if (i == 0) r[i] = 1;
            else return null;
        }
        return r;
    }

    // An unknown element type (an input nothing could type) leaves the output untyped rather than
    // typed "undefined", which no runtime would load.
    public static OnnxType? T(DataType t, Shape? s) => t == DataType.Undefined ? null : OnnxType.Tensor(t, s);

    public static OnnxType? TD(DataType t, IEnumerable<Dim> dims) => T(t, new Shape(dims));

    public static Shape? ShapeOf(Value? v) => v?.Shape;

    public static DataType TypeOf(Value? v) => v?.ElementType ?? DataType.Undefined;

    public long[]? Const(Value? v)
    {
        var d = SymConst(v);
        return d is not null && d.All(x => x.IsKnown) ? d.Select(x => x.Value!.Value).ToArray() : null;
    }

    public Dim[]? SymConst(Value? v)
    {
        if (v is null) return null;
        if (_consts.TryGetValue(v, out var c)) return c;
        if (v.Initializer is { } t && t.ElementType is DataType.Int64 or DataType.Int32 && t.ElementCount <= 1024)
            return _consts[v] = t.ToInt64Array().Select(Dim.Of).ToArray();
        return null;
    }

    public void SetConst(Value? v,
        IEnumerable<long> values)
    { if (v is not null) _consts[v] = values.Select(Dim.Of).ToArray(); }

    public void SetConst(Value? v, Dim[]? values) { if (v is not null && values is not null) _consts[v] = values; }

    /// <summary>Integer Add/Sub/Mul/Div (truncating, as ONNX) of two known vectors; one may be a scalar.</summary>
    internal static long[]? IntArithmetic(string op, long[]? a, long[]? b)
    {
        if (a is null || b is null || (a.Length != b.Length && a.Length != 1 && b.Length != 1)) return null;
        var n = Math.Max(a.Length, b.Length);
        var r = new long[n];
        for (int i = 0; i < n; i++)
        {
            long x = a[a.Length == 1 ? 0 : i], y = b[b.Length == 1 ? 0 : i];
            if (op == "Div" && y == 0) return null;
            r[i] = op switch { "Add" => x + y, "Sub" => x - y, "Mul" => x * y, _ => x / y };
        }
        return r;
    }

    /// <summary>All dims of a shape, when every one is known.</summary>
    internal static long[]? Known(Shape? s) =>
        s is not null && s.Dims.All(d => d.IsKnown) ? s.Dims.Select(d => d.Value!.Value).ToArray() : null;

    /// <summary>A small constant rearranged: output element o reads input element map(o) (row-major).</summary>
    internal static Dim[]? Remap(Dim[] values, long[] inDims, long[] outDims, Action<long[], long[]> map)
    {
        var total = outDims.Aggregate(1L, (a, b) => a * b);
        if (total > 1024 || values.Length != inDims.Aggregate(1L, (a, b) => a * b)) return null;
        var result = new Dim[total];
        var o = new long[outDims.Length];
        var i = new long[inDims.Length];
        for (long k = 0; k < total; k++)
        {
            for (int a = outDims.Length - 1, rest = (int)k; a >= 0; a--)
            {
                o[a] = rest % outDims[a];
                rest /= (int)outDims[a];
            }
            map(o, i);
            long flat = 0;
            for (int a = 0; a < inDims.Length; a++) flat = flat * inDims[a] + i[a];
            result[k] = values[flat];
        }
        return result;
    }

    /// <summary>A float constant: an initializer or a Constant node's tensor.</summary>
    internal static double[]? FloatConst(Value? v) =>
        (v?.Initializer ?? (v?.Producer is { OpType: "Constant" } c ? c.GetTensor("value") : null)) is
        { ElementType: DataType.Float or DataType.Double } t ? t.ToDoubleArray() : null;

    internal static Dim Product(IEnumerable<Dim> dims)
    {
        var list = dims.ToList();
        if (list.Count == 1) return list[0];
        long p = 1;
        foreach (var d in list)
        {
            if (d.Value is not long v) return Dim.Unknown;
            p *= v;
        }
        return Dim.Of(p);
    }

    /// <summary>Numpy-style multidirectional broadcasting; null if any rank is unknown.</summary>
    public static Shape? Broadcast(IEnumerable<Shape?> shapes)
    {
        var list = shapes.ToList();
        if (list.Any(s => s is null)) return null;
        var rank = list.Max(s => s!.Rank);
        var dims = new Dim[rank];
        for (int i = 0; i < rank; i++)
        {
            Dim result = Dim.Of(1);
            foreach (var s in list)
            {
                var j = i - (rank - s!.Rank);
                if (j < 0) continue;
                var d = s[j];
                if (d.Value == 1) continue;
                if (result.Value == 1) result = d;
                else if (d.Value is long a && result.Value is long b && a != b)
                    throw new ArgumentException($"shapes {string.Join(" and ", list)} do not broadcast");
                else if (!result.IsKnown && d.IsKnown) result = d;
            }
            dims[i] = result;
        }
        return new Shape(dims);
    }

    /// <summary>The element type of the first input whose type is known (Concat, Where: every operand has
    /// it).</summary>
    internal static DataType FirstType(IEnumerable<Value?> inputs)
    {
        foreach (var v in inputs) if (TypeOf(v) is var t && t != DataType.Undefined) return t;
        return DataType.Undefined;
    }

    internal long[]? Axes(Node n) =>
        opset >= 13 ? (n.Input(1) is null ? null : Const(n.Input(1)) ?? [long.MinValue]) : n.GetInts("axes");

    internal static (long[] k, long[] s, long[] d, long[] p) ConvParams(Node n, int spatial,
        long[]? kernelFromWeight)
    {
        var k = n.GetInts("kernel_shape") ?? kernelFromWeight ?? throw new ArgumentException("kernel_shape unknown");
        var s = n.GetInts("strides") ?? Enumerable.Repeat(1L, spatial).ToArray();
        var d = n.GetInts("dilations") ?? Enumerable.Repeat(1L, spatial).ToArray();
        var p = n.GetInts("pads") ?? new long[2 * spatial];
        return (k, s, d, p);
    }

    internal static Dim SpatialOut(Dim input, long k, long s, long d, long pb, long pe, string autoPad, bool ceil)
    {
        if (input.Value is not long i) return Dim.Unknown;
        if (s <= 0 || k <= 0 || d <= 0) return Dim.Unknown; // invalid attributes: the verifier's business
        var ek = d * (k - 1) + 1;
        switch (autoPad)
        {
            case "SAME_UPPER": case "SAME_LOWER": return Dim.Of((i + s - 1) / s);
            case "VALID": return Dim.Of((i - ek) / s + 1);
        }
        var num = i + pb + pe - ek;
        var o = ceil ? (num + s - 1) / s + 1 : num / s + 1;
        // ceil mode: the last window must start inside the input or left padding
        if (ceil && (o - 1) * s >= i + pb) o--;
        return Dim.Of(o);
    }
}
