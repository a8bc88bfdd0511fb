// Row slicing along axis 0 (samples) and stacking, on packed tensors; no element conversion.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Runtime.Data;

public static class TensorSlicing
{
    public static long RowBytes(Tensor t) => t.ElementType.ByteCount(t.Dims.Skip(1).Aggregate(1L, (a, b) => a * b));

    /// <summary>Rows [start, start+count) of a tensor whose axis 0 is the sample axis (a view, no copy).</summary>
    public static Tensor Rows(Tensor t, long start, long count)
    {
        if (t.Dims.Length == 0) throw new OnnxModelException($"tensor '{t.Name}' is a scalar; it has no sample axis");
        var row = RowBytes(t);
        var dims = (long[])t.Dims.Clone();
        dims[0] = count;
        return new Tensor(t.Name, t.ElementType, dims, t.RawData.Slice((int)(start * row), (int)(count * row)));
    }

    public static Tensor Stack(string name, IReadOnlyList<Tensor> parts)
    {
        var first = parts[0];
        var dims = (long[])first.Dims.Clone();
        dims[0] = parts.Sum(p => p.Dims[0]);
        var bytes = new byte[parts.Sum(p => p.RawData.Length)];
        var o = 0;
        foreach (var p in parts) { p.RawData.Span.CopyTo(bytes.AsSpan(o)); o += p.RawData.Length; }
        return new Tensor(name, first.ElementType, dims, bytes);
    }
}
