// A dense, row-major n-d array for the reference evaluator: real elements (T = double or float) or
// integer elements (int64, also used for bool and int32 tensors: shapes, indices, masks). Exactly one
// of Real/Int is set. Arrays are values: kernels never mutate their inputs.
using System.Numerics;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Autodiff;

public sealed class NdArray<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public int[] Shape { get; }
    public T[]? Real { get; }
    public long[]? Int { get; }
    /// <summary>The ONNX element type this array stands for (Float/Double for real arrays).</summary>
    public DataType ElementType { get; }

    public NdArray(int[] shape, T[] data, DataType type = DataType.Undefined)
    {
        if (data.Length != Size(shape)) throw new ArgumentException($"{data.Length} elements for shape [{string.Join(",", shape)}]");
        Shape = shape; Real = data; ElementType = type == DataType.Undefined ? (typeof(T) == typeof(double) ? DataType.Double : DataType.Float) : type;
    }

    public NdArray(int[] shape, long[] data, DataType type = DataType.Int64)
    {
        if (data.Length != Size(shape)) throw new ArgumentException($"{data.Length} elements for shape [{string.Join(",", shape)}]");
        Shape = shape; Int = data; ElementType = type;
    }

    public bool IsInt => Int is not null;
    public int Length => Real?.Length ?? Int!.Length;
    public int Rank => Shape.Length;

    public T[] R => Real ?? throw new InvalidOperationException("integer array used where real data is needed");
    public long[] I => Int ?? throw new InvalidOperationException("real array used where integer data is needed");

    /// <summary>Elements of a shape; an array beyond 2^31 - 1 elements (or a negative dim) is refused with the
    /// shape, as the reference evaluator holds arrays in memory.</summary>
    public static int Size(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0 || (d > 0 && n > int.MaxValue / d))
                throw new OnnxModelException($"an array of shape [{string.Join(",", shape.ToArray())}] is too large "
                    + "for the reference evaluator (more than 2^31 - 1 elements)");
            n *= d;
        }
        return (int)n;
    }

    public static NdArray<T> Zeros(int[] shape) => new(shape, new T[Size(shape)]);

    public static NdArray<T> Full(int[] shape, T value)
    {
        var d = new T[Size(shape)];
        Array.Fill(d, value);
        return new NdArray<T>(shape, d);
    }

    public static NdArray<T> Scalar(T v) => new([], [v]);

    /// <summary>Same data, another shape (no copy).</summary>
    public NdArray<T> Reshape(int[] shape) => Real is not null ? new NdArray<T>(shape, Real,
        ElementType) : new NdArray<T>(shape, Int!, ElementType);

    /// <summary>An array of the same kind (real/int) with element i = this[map[i]] (fill where map[i] &lt; 0).</summary>
    public NdArray<T> Gather(int[] shape, int[] map, double fill = 0)
    {
        if (Real is not null)
        {
            var d = new T[map.Length];
            var f = T.CreateChecked(fill);
            for (int i = 0; i < map.Length; i++) d[i] = map[i] >= 0 ? Real[map[i]] : f;
            return new NdArray<T>(shape, d, ElementType);
        }
        var r = new long[map.Length];
        for (int i = 0; i < map.Length; i++) r[i] = map[i] >= 0 ? Int![map[i]] : (long)fill;
        return new NdArray<T>(shape, r, ElementType);
    }

    public double ToDouble(int i) => Real is not null ? double.CreateChecked(Real[i]) : Int![i];

    public long[] ToLongs() => Int ?? Real!.Select(v => long.CreateTruncating(v)).ToArray();

    /// <summary>Converts an IR tensor (any numeric element type) into an array.</summary>
    public static NdArray<T> FromTensor(Tensor t)
    {
        var count = t.Dims.Aggregate(1.0, (a, b) => a * b);
        if (t.Dims.Any(d => d is < 0 or > int.MaxValue) || count > Array.MaxLength)
            throw new OnnxModelException($"tensor '{t.Name}' [{string.Join(",", t.Dims)}] is too large to evaluate");
        var bytes = t.ElementType.ByteCount(t.ElementCount);
        if (t.ElementType.BitWidth() > 0 && t.RawData.Length != bytes)
            throw new OnnxModelException(
                $"tensor '{t.Name}' [{string.Join(",", t.Dims)}] holds {t.RawData.Length} bytes of data, not {bytes}");
        var shape = t.Dims.Select(d => (int)d).ToArray();
        if (t.ElementType.IsFloatingPoint())
        {
            var src = t.ToDoubleArray();
            var d = new T[src.Length];
            for (int i = 0; i < d.Length; i++) d[i] = T.CreateChecked(src[i]);
            return new NdArray<T>(shape, d, t.ElementType);
        }
        return new NdArray<T>(shape, t.ToInt64Array(), t.ElementType);
    }

    /// <summary>To an IR tensor of the given element type (float, double, int64, int32, bool).</summary>
    public Tensor ToTensor(string name, DataType type)
    {
        var dims = Shape.Select(d => (long)d).ToArray();
        switch (type)
        {
            case DataType.Float:
                return Tensor.FromFloats(name, dims, Enumerable.Range(0,
                Length).Select(i => (float)ToDouble(i)).ToArray());
            case DataType.Double:
                return Tensor.FromValues(name, DataType.Double, dims, Enumerable.Range(0,
                Length).Select(ToDouble).ToArray().AsSpan());
            case DataType.Int64: return Tensor.FromInt64s(name, dims, ToLongs());
            case DataType.Int32:
                return Tensor.FromValues(name, DataType.Int32, dims,
                ToLongs().Select(v => (int)v).ToArray().AsSpan());
            case DataType.Bool:
                return Tensor.FromValues(name, DataType.Bool, dims,
                ToLongs().Select(v => (byte)(v != 0 ? 1 : 0)).ToArray().AsSpan());
            default: throw new NotSupportedException($"tensor '{name}': {type.Name()} output is not supported by the reference evaluator");
        }
    }

    public override string ToString() => $"{(IsInt ? "int" : typeof(T).Name)}[{string.Join(",", Shape)}]";
}
