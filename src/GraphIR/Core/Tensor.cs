// A constant tensor: element type, dims and data. Numeric data is kept as packed little-endian
// bytes (the ONNX raw_data layout) viewed without copying; strings as a list of byte strings.
// Data stored outside the model file (external data) is read lazily on first access.
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace OnnxOpt.GraphIR;

public sealed class ExternalDataRef
{
    public required string Location { get; init; }
    public long Offset { get; init; }
    public long? Length { get; init; }
    /// <summary>Every key/value pair of the external_data list, in order (location/offset/length included).</summary>
    public required IReadOnlyList<KeyValuePair<string, string>> Entries { get; init; }
    /// <summary>Folder of the model the reference is relative to.</summary>
    public required string BaseDirectory { get; init; }
}

public sealed class Tensor
{
    private ReadOnlyMemory<byte> _raw;
    private Func<ReadOnlyMemory<byte>>? _loader;

    public string Name { get; set; }
    public DataType ElementType { get; }
    public long[] Dims { get; }
    public string? DocString { get; set; }
    public List<KeyValuePair<string, string>> MetadataProps { get; } = new();
    /// <summary>String elements (only for DataType.String).</summary>
    public IReadOnlyList<byte[]>? Strings { get; }
    /// <summary>Where the data came from when it was stored outside the model file.</summary>
    public ExternalDataRef? External { get; private set; }
    /// <summary>Segment (begin, end) when the tensor is one chunk of a larger one.</summary>
    public (long Begin, long End)? Segment { get; set; }
    /// <summary>Protobuf fields this version does not know, kept verbatim.</summary>
    public byte[]? UnknownFields { get; set; }

    public Tensor(string name, DataType type, long[] dims, ReadOnlyMemory<byte> raw)
    {
        Name = name; ElementType = type; Dims = dims; _raw = raw;
    }

    public Tensor(string name, long[] dims, IReadOnlyList<byte[]> strings)
    {
        Name = name; ElementType = DataType.String; Dims = dims; Strings = strings;
    }

    internal Tensor(string name, DataType type, long[] dims, ExternalDataRef ext, Func<ReadOnlyMemory<byte>> loader)
    {
        Name = name; ElementType = type; Dims = dims; External = ext; _loader = loader;
    }

    /// <summary>Inline data read on first use (a large model's initializer, LazyModelReader); copies of the
    /// tensor share the one read.</summary>
    internal Tensor(string name, DataType type, long[] dims, Func<ReadOnlyMemory<byte>> loader)
    {
        Name = name; ElementType = type; Dims = dims; _loader = loader;
    }

    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);
    public long ByteSize =>
        ElementType == DataType.String ? Strings!.Sum(s => (long)s.Length) : ElementType.ByteCount(ElementCount);
    public bool IsLoaded => _loader is null;

    /// <summary>Packed little-endian bytes; loads external data on first use.</summary>
    public ReadOnlyMemory<byte> RawData
    {
        get
        {
            if (_loader is not null)
            {
                _raw = _loader();
                _loader = null;
            }
            return _raw;
        }
    }

    /// <summary>Forget where external data came from (after it was read), so it is written inline.</summary>
    public void DetachExternal()
    {
        _ = RawData;
        External = null;
    }

    public ReadOnlySpan<T> Span<T>() where T : struct => MemoryMarshal.Cast<byte, T>(RawData.Span);

    public float[] ToFloatArray() => ElementType switch
    {
        DataType.Float => Span<float>().ToArray(),
        DataType.Double => Array.ConvertAll(Span<double>().ToArray(), d => (float)d),
        DataType.Float16 => Array.ConvertAll(Span<Half>().ToArray(), h => (float)h),
        _ => ToDoubleArray().Select(d => (float)d).ToArray(),
    };

    public double[] ToDoubleArray()
    {
        var n = checked((int)ElementCount);
        var r = new double[n];
        var s = RawData.Span;
        for (int i = 0; i < n; i++) r[i] = ElementType switch
        {
            DataType.Float => BitConverter.ToSingle(s.Slice(i * 4, 4)),
            DataType.Double => BitConverter.ToDouble(s.Slice(i * 8, 8)),
            DataType.Float16 => (double)BitConverter.ToHalf(s.Slice(i * 2, 2)),
            DataType.BFloat16 => BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(s.Slice(i * 2, 2)) << 16),
            DataType.Int8 => (sbyte)s[i],
            DataType.UInt8 or DataType.Bool => s[i],
            DataType.Int16 => BitConverter.ToInt16(s.Slice(i * 2, 2)),
            DataType.UInt16 => BitConverter.ToUInt16(s.Slice(i * 2, 2)),
            DataType.Int32 => BitConverter.ToInt32(s.Slice(i * 4, 4)),
            DataType.UInt32 => BitConverter.ToUInt32(s.Slice(i * 4, 4)),
            DataType.Int64 => BitConverter.ToInt64(s.Slice(i * 8, 8)),
            DataType.UInt64 => BitConverter.ToUInt64(s.Slice(i * 8, 8)),
            DataType.Int4 => (sbyte)(((s[i / 2] >> (4 * (i % 2))) & 0xF) << 4) >> 4,
            DataType.UInt4 => (s[i / 2] >> (4 * (i % 2))) & 0xF,
            _ => throw new NotSupportedException($"tensor '{Name}': numeric view of {ElementType.Name()} is not supported"),
        };
        return r;
    }

    public long[] ToInt64Array() => ElementType switch
    {
        DataType.Int64 => Span<long>().ToArray(),
        DataType.Int32 => Array.ConvertAll(Span<int>().ToArray(), v => (long)v),
        _ => ToDoubleArray().Select(d => (long)d).ToArray(),
    };

    /// <summary>SHA-256 of type, dims and content, hex; used to summarize large tensors in text.</summary>
    public string ContentHash()
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        if (Strings is not null)
            foreach (var s in Strings) { h.AppendData(BitConverter.GetBytes(s.Length)); h.AppendData(s); }
        else h.AppendData(RawData.Span);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    public bool ContentEquals(Tensor o) =>
        ElementType == o.ElementType && Dims.SequenceEqual(o.Dims) &&
        (Strings is not null
            ? o.Strings is not null && Strings.Count == o.Strings.Count
                && Strings.Zip(o.Strings).All(p => p.First.AsSpan().SequenceEqual(p.Second))
            : RawData.Span.SequenceEqual(o.RawData.Span));

    public static Tensor FromFloats(string name, long[] dims, ReadOnlySpan<float> data) =>
        new(name, DataType.Float, dims, MemoryMarshal.AsBytes(data).ToArray());

    public static Tensor FromInt64s(string name, long[] dims, ReadOnlySpan<long> data) =>
        new(name, DataType.Int64, dims, MemoryMarshal.AsBytes(data).ToArray());

    public static Tensor FromValues<T>(string name, DataType type, long[] dims,
        ReadOnlySpan<T> data) where T : struct =>
        new(name, type, dims, MemoryMarshal.AsBytes(data).ToArray());

    /// <summary>A copy of the tensor object sharing its (read-only) data; external data stays lazy.</summary>
    public Tensor Copy()
    {
        var t = Strings is not null ? new Tensor(Name, Dims.ToArray(), Strings)
            : _loader is not null ? new Tensor(Name, ElementType, Dims.ToArray(), External!, _loader)
            : new Tensor(Name, ElementType, Dims.ToArray(), _raw) { External = External };
        t.DocString = DocString;
        t.MetadataProps.AddRange(MetadataProps);
        t.Segment = Segment;
        t.UnknownFields = UnknownFields?.ToArray();
        return t;
    }

    /// <summary>The same tensor (name, doc string, metadata, unknown fields) holding other data.</summary>
    public Tensor WithData(DataType type, long[] dims, ReadOnlyMemory<byte> raw)
    {
        var t = new Tensor(Name, type, dims, raw) { DocString = DocString, UnknownFields = UnknownFields };
        t.MetadataProps.AddRange(MetadataProps);
        return t;
    }

    public Tensor WithName(string name)
    {
        var t = Strings is not null ? new Tensor(name, Dims, Strings) : new Tensor(name, ElementType, Dims, RawData);
        t.DocString = DocString;
        t.MetadataProps.AddRange(MetadataProps);
        return t;
    }
}

/// <summary>A sparse tensor: values [NNZ], indices [NNZ] or [NNZ, rank], dense dims.</summary>
public sealed class SparseTensor
{
    public required Tensor Values { get; init; }
    public Tensor? Indices { get; init; }
    public required long[] Dims { get; init; }
    public byte[]? UnknownFields { get; set; }
}
