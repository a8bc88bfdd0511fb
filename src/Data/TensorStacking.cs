// Stacking along axis 0 (samples), on packed tensors; no element conversion.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Data;

public static class TensorStacking
{
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
