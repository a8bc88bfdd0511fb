// The Deep Compression archive (.onnxz): clustered weights as Huffman-coded codes, everything else of the
// model unchanged.
//   Which tensors: initializers of at least 256 elements with at most 256 distinct element values (the
//   clustered weights, or lut codes), in the whole tensor or in each output-channel slice (axis 0 or the
//   last axis: per-channel clusters); each becomes codebooks (the distinct values, as bytes) and one code
//   per element. When the all-zero value is frequent (pruned or sparsified weights), the codes of the
//   non-zero elements are stored with the run lengths of zeros before each (Deep Compression's relative
//   indices; a run of 255 is an escape that continues the run), if that is smaller. Codes and runs are
//   canonical Huffman codes (Huffman), of which only the lengths are stored.
//   The rest: the model as ONNX with those tensors emptied (dims [0]), deflated.
//   Layout: "ONNXZ" 0x00, u16 version (1), u64 payload length, payload, SHA-256 of everything before it.
//   The payload: u64 skeleton length, deflated skeleton, u32 tensor count, then per tensor: name, dims,
//   codebook, and one or two Huffman streams (lengths, bit count, bytes).
//   Unpack parses the skeleton, puts each tensor back and writes the model as onnxopt writes every model:
//   for a model onnxopt wrote (a clustered one), the bytes equal the input; pack checks that by unpacking
//   its own archive and says whether it holds.
// A truncated or tampered archive fails the checksum (or the structure checks) with one line.
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>What pack did: sizes, tensors coded (and how), and whether unpacking gives the input's bytes.</summary>
public sealed record PackReport(long InputBytes, long ZippedBytes, long PackedBytes, int TensorsCoded,
    int TensorsSparse, long CodedElements, bool BytesRestored);

public static class ModelArchive
{
    private static readonly byte[] Magic = "ONNXZ\0"u8.ToArray();
    public const ushort Version = 1;
    public const int MinElements = 256;

    public static byte[] Pack(byte[] onnx, out PackReport report, string source = "model")
    {
        var model = OnnxImporter.Parse(onnx, source: source);
        var coded = new List<(string Name, byte[] Block, bool Sparse, long Elements)>();
        var rw = new Rewriter(model);
        foreach (var v in model.Graph.Initializers.ToList())
        {
            var t = v.Initializer!;
            if (t.Strings is not null || t.ElementCount < MinElements || t.ElementCount > int.MaxValue) continue;
            var size = (int)(t.ElementType.ByteCount(t.ElementCount) / t.ElementCount);
            if (size <= 0 || size * t.ElementCount != t.RawData.Length) continue;
            if (Slices(t.RawData.Span, size, t.Dims) is not { } sliced) continue;
            var (block, sparse) = Block(t.Dims, size, sliced.Layout, sliced.Books, sliced.Codes);
            if (block.Length >= t.RawData.Length * 0.9) continue; // codebooks as large as the data: keep it raw
            coded.Add((v.Name, block, sparse, t.ElementCount));
            var empty = new Tensor(t.Name, t.ElementType, [0], ReadOnlyMemory<byte>.Empty) { DocString = t.DocString };
            empty.MetadataProps.AddRange(t.MetadataProps);
            empty.UnknownFields = t.UnknownFields;
            rw.SetInitializer(v, empty);
        }
        var skeleton = Deflate(OnnxExporter.ToBytes(model));
        using var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            w.Write((long)skeleton.Length);
            w.Write(skeleton);
            w.Write(coded.Count);
            foreach (var (name, block, _, _) in coded)
            {
                w.Write(name);
                w.Write(block);
            }
            report = new PackReport(onnx.Length, Deflate(onnx).Length, 0, coded.Count, coded.Count(c => c.Sparse),
                coded.Sum(c => c.Elements), false);
        }
        var archive = Frame(payload.ToArray());
        var restored = Unpack(archive, "packed " + source);
        report = report with { PackedBytes = archive.Length, BytesRestored = restored.AsSpan().SequenceEqual(onnx) };
        return archive;
    }

    /// <summary>One coded tensor: dims, element size, layout, codebooks, then the codes as one Huffman stream
    /// or as zero runs and non-zero codes (whichever is smaller; runs need one zero code in every
    /// codebook).</summary>
    private static (byte[] Block, bool Sparse) Block(long[] dims, int size, byte layout, byte[][] books, int[] codes)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write((byte)dims.Length);
        foreach (var d in dims) w.Write(d);
        w.Write((byte)size);
        w.Write(layout);
        foreach (var book in books)
        {
            w.Write((ushort)(book.Length / size));
            w.Write(book);
        }
        var zeros = books.Select(b => ZeroCode(b, size)).ToArray();
        var plain = Stream(codes, 256);
        byte[]? sparse = zeros.All(z => z == zeros[0]) && zeros[0] is int z ? Sparse(codes, z, 256) : null;
        bool useSparse = sparse is not null && sparse.Length < plain.Length;
        w.Write((byte)(useSparse ? 1 : 0));
        w.Write(useSparse ? sparse! : plain);
        w.Flush();
        return (ms.ToArray(), useSparse);
    }

    /// <summary>The ONNX model an archive holds; throws OnnxModelException (naming <paramref name="source"/>) when
    /// it is truncated, tampered with or not an archive.</summary>
    public static byte[] Unpack(byte[] archive, string source = "archive")
    {
        OnnxModelException Bad(string why) => new($"{source}: not a valid .onnxz archive ({why})");
        if (archive.Length < Magic.Length + 2 + 8 + 32 || !archive.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw Bad("no ONNXZ header");
        var version = BitConverter.ToUInt16(archive, Magic.Length);
        if (version != Version) throw Bad($"version {version}; this onnxopt reads version {Version}");
        var length = BitConverter.ToInt64(archive, Magic.Length + 2);
        var start = Magic.Length + 2 + 8;
        if (length < 0 || start + length + 32 != archive.Length) throw Bad("truncated or extended");
        var hash = SHA256.HashData(archive.AsSpan(0, (int)(start + length)));
        if (!hash.AsSpan().SequenceEqual(archive.AsSpan((int)(start + length), 32))) throw Bad("checksum mismatch");
        try
        {
            using var r = new BinaryReader(new MemoryStream(archive, start, (int)length), Encoding.UTF8);
            var skeleton = Inflate(r.ReadBytes(checked((int)r.ReadInt64())));
            var model = OnnxImporter.Parse(skeleton, source: source);
            var rw = new Rewriter(model);
            int count = r.ReadInt32();
            for (int i = 0; i < count; i++)
            {
                var name = r.ReadString();
                var dims = new long[r.ReadByte()];
                for (int d = 0; d < dims.Length; d++) dims[d] = r.ReadInt64();
                int size = r.ReadByte();
                var n = checked((int)dims.Aggregate(1L, (a, b) => a * b));
                var layout = r.ReadByte();
                if (layout > 2 || size is < 1 or > 8 || (dims.Length == 0 && layout != 0))
                    throw Bad($"tensor '{name}': bad layout");
                int sliceCount = layout switch { 0 => 1, 1 => (int)dims[0], _ => (int)dims[^1] };
                var books = new byte[sliceCount][];
                for (int b = 0; b < sliceCount; b++) books[b] = r.ReadBytes(size * r.ReadUInt16());
                var zero = ZeroCode(books[0], size);
                var codes = r.ReadByte() == 1 ? ReadSparse(r, n, 256, zero ?? throw Bad("sparse without zero"))
                    : ReadStream(r, n, 256);
                var raw = new byte[(long)n * size];
                for (int e = 0; e < n; e++)
                {
                    var book = books[SliceOf(layout, e, n, dims)];
                    if (codes[e] * size >= book.Length) throw Bad($"tensor '{name}': code outside its codebook");
                    Buffer.BlockCopy(book, codes[e] * size, raw, e * size, size);
                }
                var v = model.Graph.Find(name) is { IsInitializer: true } found ? found
                    : throw Bad($"tensor '{name}' is not an initializer of the model");
                var old = v.Initializer!;
                var t = new Tensor(old.Name, old.ElementType, dims, raw) { DocString = old.DocString };
                t.MetadataProps.AddRange(old.MetadataProps);
                t.UnknownFields = old.UnknownFields;
                rw.SetInitializer(v, t);
            }
            if (r.BaseStream.Position != r.BaseStream.Length) throw Bad("trailing bytes in the payload");
            return OnnxExporter.ToBytes(model);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or IOException
            or OverflowException or ArgumentException)
        {
            throw Bad(e.Message);
        }
    }

    /// <summary>Codes with one codebook for the tensor (layout 0), else one per axis-0 slice (1: a Conv's output
    /// channels) or per last-axis slice (2: a MatMul's), whichever has at most 256 values in every slice.</summary>
    private static (byte Layout, byte[][] Books, int[] Codes)? Slices(ReadOnlySpan<byte> raw, int size, long[] dims)
    {
        if (size > 8) return null;
        var n = raw.Length / size;
        for (byte layout = 0; layout <= 2; layout++)
        {
            if (layout > 0 && dims.Length < 2) break;
            int slices = layout switch { 0 => 1, 1 => (int)dims[0], _ => (int)dims[^1] };
            var index = new Dictionary<ulong, int>[slices];
            var books = new List<byte>[slices];
            for (int c = 0; c < slices; c++) { index[c] = new(); books[c] = new(); }
            var codes = new int[n];
            bool fits = true;
            for (int i = 0; i < n && fits; i++)
            {
                int c = SliceOf(layout, i, n, dims);
                ulong key = 0;
                for (int b = 0; b < size; b++) key |= (ulong)raw[i * size + b] << (8 * b);
                if (!index[c].TryGetValue(key, out var code))
                {
                    if (index[c].Count == 256) { fits = false; break; }
                    index[c][key] = code = index[c].Count;
                    for (int b = 0; b < size; b++) books[c].Add(raw[i * size + b]);
                }
                codes[i] = code;
            }
            if (fits) return (layout, books.Select(b => b.ToArray()).ToArray(), codes);
        }
        return null;
    }

    private static int SliceOf(byte layout, int element, int n, long[] dims) => layout switch
    {
        0 => 0,
        1 => (int)(element / (n / dims[0])),
        _ => (int)(element % dims[^1]),
    };

    private static int? ZeroCode(byte[] book, int size)
    {
        for (int c = 0; c < book.Length / size; c++)
            if (book.AsSpan(c * size, size).IndexOfAnyExcept((byte)0) < 0) return c;
        return null;
    }

    // A Huffman stream: symbol count u16, lengths, bit count u64, bytes.
    private static byte[] Stream(IReadOnlyList<int> symbols, int alphabet)
    {
        var freq = new long[alphabet];
        foreach (var s in symbols) freq[s]++;
        var lengths = Huffman.Lengths(freq);
        var data = Huffman.Encode(symbols, lengths, out var bits);
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms))
        {
            w.Write(lengths);
            w.Write(bits);
            w.Write(data.Length);
            w.Write(data);
        }
        return ms.ToArray();
    }

    private static int[] ReadStream(BinaryReader r, int count, int alphabet)
    {
        var lengths = r.ReadBytes(alphabet);
        var bits = r.ReadInt64();
        var data = r.ReadBytes(r.ReadInt32());
        if (bits < 0 || bits > (long)data.Length * 8) throw new InvalidDataException("bit count beyond the data");
        return Huffman.Decode(data, bits, count, lengths);
    }

    // Sparse: the non-zero count, the zero runs before each non-zero (255 = a run of 255 that goes on) and
    // after the last, then the non-zero codes.
    private static byte[] Sparse(int[] codes, int zero, int alphabet)
    {
        var runs = new List<int>();
        var values = new List<int>();
        int run = 0;
        foreach (var c in codes)
        {
            if (c == zero) { if (++run == 255) { runs.Add(255); run = 0; } continue; }
            runs.Add(run);
            values.Add(c);
            run = 0;
        }
        runs.Add(run); // zeros after the last non-zero
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms))
        {
            w.Write(values.Count);
            w.Write(runs.Count);
            w.Write(Stream(runs, 256));
            w.Write(Stream(values, alphabet));
        }
        return ms.ToArray();
    }

    private static int[] ReadSparse(BinaryReader r, int count, int alphabet, int zero)
    {
        int nonZero = r.ReadInt32(), runCount = r.ReadInt32();
        if (nonZero < 0 || nonZero > count || runCount < 0) throw new InvalidDataException("bad sparse counts");
        var runs = ReadStream(r, runCount, 256);
        var values = ReadStream(r, nonZero, alphabet);
        var codes = new int[count];
        int at = 0, next = 0;
        foreach (var run in runs)
        {
            for (int i = 0; i < run; i++)
            {
                if (at >= count) throw new InvalidDataException("zero runs beyond the tensor");
                codes[at++] = zero;
            }
            if (run == 255) continue;
            if (next == values.Length) break; // the trailing run
            if (at >= count) throw new InvalidDataException("values beyond the tensor");
            codes[at++] = values[next++];
        }
        if (at != count || next != values.Length) throw new InvalidDataException("sparse runs do not fill the tensor");
        return codes;
    }

    private static byte[] Frame(byte[] payload)
    {
        using var ms = new MemoryStream();
        ms.Write(Magic);
        ms.Write(BitConverter.GetBytes(Version));
        ms.Write(BitConverter.GetBytes((long)payload.Length));
        ms.Write(payload);
        ms.Write(SHA256.HashData(ms.ToArray()));
        return ms.ToArray();
    }

    public static byte[] Deflate(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var z = new DeflateStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) z.Write(data);
        return ms.ToArray();
    }

    private static byte[] Inflate(byte[] data)
    {
        using var z = new DeflateStream(new MemoryStream(data), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        z.CopyTo(ms);
        return ms.ToArray();
    }
}
