// The Deep Compression archive (.onnxz): clustered weights as Huffman-coded codes, everything else of the
// model unchanged.
//   Which tensors: initializers of at least 16 elements with at most 256 distinct element values (the
//   clustered weights, or lut codes), in the whole tensor or in each output-channel slice (axis 0 or the
//   last axis: per-channel clusters), when that is smaller than their raw bytes; each becomes codebooks (the
//   distinct values: as half floats when every one is a float exactly representable in fp16, else as bytes)
//   and one code per element. When the all-zero value is frequent (pruned or sparsified weights), the codes
//   of the non-zero elements are stored with the run lengths of zeros before each (Deep Compression's
//   relative indices; a run of 255 is an escape that continues the run), if that is smaller. Codes and runs
//   are canonical Huffman codes (Huffman), of which only the lengths of the symbols used are stored (4 bits
//   each when none exceeds 15).
//   Float tensors not coded whose every value is exactly an fp16 value (round-fp16) are held as float16 in
//   the skeleton and widened back (exact).
//   The rest: the model as ONNX with the coded tensors emptied (dims [0]), deflated.
//   Layout: "ONNXZ" 0x00, u16 version (2), u64 payload length, payload, SHA-256 of everything before it.
//   The payload (version 2; integers as 7-bit varints): skeleton length, deflated skeleton, record count,
//   then per record: name, kind (0: coded: dims, element size, layout, book format, codebooks, and one or
//   two Huffman streams; 1: widened from float16). Version 1 archives (fixed-width fields, 256 code lengths
//   per stream, no kind 1) still unpack.
//   Unpack parses the skeleton, puts each tensor back and writes the model as onnxopt writes every model:
//   for a model onnxopt wrote (a clustered one), the bytes equal the input; pack checks that by unpacking
//   its own archive and says whether it holds.
//   before (MobileNetV2-style digits net, taylor prune 0.5, 4-bit clusters from 64 elements, strip): 17,362 B
//   as version 1 (256 code lengths and int64 dims per tensor; tensors under 256 elements deflated as floats)
//   after: 12,662 B as version 2; 10,726 B after round-fp16 (biases and codebooks in half the bytes).
// A truncated or corrupted archive fails the checksum (or the structure checks) with one line. The SHA-256
// catches accidents, not an attacker, who can recompute it: `pack --sign KEY` appends "ONNXZSIG" and an
// HMAC-SHA256 of everything before it under a secret key, and `unpack --verify KEY` refuses an archive without a
// matching one.
// Unpacking is bounded before anything is allocated: the model it restores (the inflated skeleton plus every
// coded tensor's declared bytes) may not pass ArchiveLimits.MaxBytes (default: 100x the archive, at least
// 256 MiB), every count is checked against the bits that can hold it, and a skeleton naming external data is
// refused (an archive carries its weights; external data would be read from wherever unpack runs).
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>Bounds on an unpack: the bytes it may restore (null: 100x the archive, at least 256 MiB) and the
/// key whose HMAC signature it requires (null: any archive, signed or not).</summary>
public sealed record ArchiveLimits
{
    public const long DefaultRatio = 100, DefaultFloor = 256L << 20;

    public long? MaxBytes { get; init; }
    public byte[]? VerifyKey { get; init; }

    public long Resolve(long archiveBytes) =>
        MaxBytes ?? Math.Max(DefaultFloor, archiveBytes > long.MaxValue / DefaultRatio ? long.MaxValue
            : archiveBytes * DefaultRatio);
}

/// <summary>What pack did: sizes, tensors coded (and how), float tensors held as fp16, and whether unpacking
/// gives the input's bytes.</summary>
public sealed record PackReport(long InputBytes, long ZippedBytes, long PackedBytes, int TensorsCoded,
    int TensorsSparse, long CodedElements, bool BytesRestored)
{
    public int TensorsHalf { get; init; }
}

public static class ModelArchive
{
    private static readonly byte[] Magic = "ONNXZ\0"u8.ToArray();
    public const ushort Version = 2;
    public const int MinElements = 16;
    private const byte Coded = 0, Widened = 1;
    private const byte RawBook = 0, HalfBook = 1;

    private static readonly byte[] SignatureTag = "ONNXZSIG"u8.ToArray();
    private const int HashBytes = 32;

    /// <summary>The smallest key <c>--sign</c>/<c>--verify</c> take.</summary>
    public const int MinKeyBytes = 16;

    public static byte[] Pack(byte[] onnx, out PackReport report, string source = "model", byte[]? signKey = null)
    {
        var model = OnnxImporter.Parse(onnx, source: source);
        var coded = new List<(string Name, byte[] Block, bool Sparse, long Elements)>();
        var widened = new List<string>();
        var rw = new Rewriter(model);
        foreach (var v in model.Graph.Initializers.ToList())
        {
            var t = v.Initializer!;
            if (t.Strings is not null || t.ElementCount > int.MaxValue) continue;
            var size = t.ElementCount == 0 ? 0 : (int)(t.ElementType.ByteCount(t.ElementCount) / t.ElementCount);
            if (size <= 0 || size * t.ElementCount != t.RawData.Length) continue;
            var halfExact = t.ElementType == DataType.Float && t.ElementCount >= 2 && HalfExact(t.RawData.Span);
            if (t.ElementCount >= MinElements && Slices(t.RawData.Span, size, t.Dims) is { } sliced)
            {
                var (block, sparse) = Block(t.Dims, size, sliced.Layout, sliced.Books, sliced.Codes, halfExact);
                // Codebooks as large as the data: kept raw (or as halves).
                if (block.Length < t.RawData.Length * (halfExact ? 0.45 : 0.9))
                {
                    coded.Add((v.Name, block, sparse, t.ElementCount));
                    rw.SetInitializer(v, t.WithData(t.ElementType, [0], ReadOnlyMemory<byte>.Empty));
                    continue;
                }
            }
            // fp16-exact floats: half the bytes in the skeleton, widened back exactly.
            if (halfExact)
            {
                rw.SetInitializer(v, t.WithData(DataType.Float16, t.Dims, ToHalves(t.RawData.Span)));
                widened.Add(v.Name);
            }
        }
        var skeleton = Deflate(OnnxExporter.ToBytes(model));
        using var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            w.Write7BitEncodedInt64(skeleton.Length);
            w.Write(skeleton);
            w.Write7BitEncodedInt(coded.Count + widened.Count);
            foreach (var (name, block, _, _) in coded)
            {
                w.Write(name);
                w.Write(Coded);
                w.Write(block);
            }
            foreach (var name in widened)
            {
                w.Write(name);
                w.Write(Widened);
            }
        }
        var archive = Frame(payload.ToArray());
        var restored = Unpack(archive, "packed " + source, new ArchiveLimits { MaxBytes = long.MaxValue });
        if (signKey is not null) archive = [.. archive, .. SignatureTag, .. Sign(archive, signKey)];
        report = new PackReport(onnx.Length, Deflate(onnx).Length, archive.Length, coded.Count,
            coded.Count(c => c.Sparse), coded.Sum(c => c.Elements), restored.AsSpan().SequenceEqual(onnx))
        { TensorsHalf = widened.Count };
        return archive;
    }

    /// <summary>True when the bytes are floats that fp16 holds exactly (bit for bit, so -0 and infinities too;
    /// NaNs with a payload fp16 cannot hold are not).</summary>
    internal static bool HalfExact(ReadOnlySpan<byte> floats)
    {
        if (floats.Length % 4 != 0) return false;
        foreach (var x in System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(floats))
        {
            var f = BitConverter.Int32BitsToSingle(x);
            if (BitConverter.SingleToInt32Bits((float)(Half)f) != x) return false;
        }
        return true;
    }

    private static byte[] ToHalves(ReadOnlySpan<byte> floats)
    {
        var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(floats);
        var h = new byte[f.Length * 2];
        for (int i = 0; i < f.Length; i++) BitConverter.TryWriteBytes(h.AsSpan(i * 2), (Half)f[i]);
        return h;
    }

    private static byte[] FromHalves(ReadOnlySpan<byte> halves)
    {
        var f = new byte[halves.Length * 2];
        for (int i = 0; i < halves.Length / 2; i++)
            BitConverter.TryWriteBytes(f.AsSpan(i * 4), (float)BitConverter.ToHalf(halves.Slice(i * 2, 2)));
        return f;
    }

    /// <summary>One coded tensor: dims, element size, layout, book format, codebooks, then the codes as one
    /// Huffman stream or as zero runs and non-zero codes (whichever is smaller; runs need one zero code in
    /// every codebook).</summary>
    private static (byte[] Block, bool Sparse) Block(long[] dims, int size, byte layout, byte[][] books, int[] codes,
        bool half)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write7BitEncodedInt(dims.Length);
        foreach (var d in dims) w.Write7BitEncodedInt64(d);
        w.Write((byte)size);
        w.Write(layout);
        w.Write(half ? HalfBook : RawBook);
        foreach (var book in books)
        {
            w.Write7BitEncodedInt(book.Length / size);
            w.Write(half ? ToHalves(book) : book);
        }
        var zeros = books.Select(b => ZeroCode(b, size)).ToArray();
        var plain = Stream(codes);
        byte[]? sparse = zeros.All(z => z == zeros[0]) && zeros[0] is int z ? Sparse(codes, z) : null;
        bool useSparse = sparse is not null && sparse.Length < plain.Length;
        w.Write((byte)(useSparse ? 1 : 0));
        w.Write(useSparse ? sparse! : plain);
        w.Flush();
        return (ms.ToArray(), useSparse);
    }

    /// <summary>Whether <paramref name="archive"/> ends with an HMAC signature (pack --sign).</summary>
    public static bool IsSigned(byte[] archive) => archive.Length > SignatureTag.Length + HashBytes
        && archive.AsSpan(archive.Length - HashBytes - SignatureTag.Length, SignatureTag.Length)
            .SequenceEqual(SignatureTag);

    private static byte[] Sign(ReadOnlySpan<byte> signed, byte[] key)
    {
        if (key.Length < MinKeyBytes)
            throw new OnnxModelException($"the signing key holds {key.Length} bytes; use at least {MinKeyBytes} random "
                + "bytes (head -c 32 /dev/urandom > key)");
        return HMACSHA256.HashData(key, signed);
    }

    /// <summary>The ONNX model an archive holds; throws OnnxModelException (naming <paramref name="source"/>) when
    /// it is truncated, corrupted, not an archive, larger than its limits allow, or (with a key to verify) not
    /// signed with that key.</summary>
    public static byte[] Unpack(byte[] archive, string source = "archive", ArchiveLimits? limits = null)
    {
        limits ??= new ArchiveLimits();
        OnnxModelException Bad(string why) => new($"{source}: not a valid .onnxz archive ({why})");
        var signed = IsSigned(archive);
        var body = signed ? archive.AsSpan(0, archive.Length - SignatureTag.Length - HashBytes) : archive.AsSpan();
        if (limits.VerifyKey is { } key)
        {
            if (!signed) throw new OnnxModelException($"{source}: the archive is not signed (pack --sign); refused");
            var mac = archive.AsSpan(archive.Length - HashBytes);
            if (!CryptographicOperations.FixedTimeEquals(Sign(body, key), mac))
                throw new OnnxModelException($"{source}: the archive's signature does not match the key; refused");
        }
        if (body.Length < Magic.Length + 2 + 8 + 32 || !body[..Magic.Length].SequenceEqual(Magic))
            throw Bad("no ONNXZ header");
        var version = BitConverter.ToUInt16(body[Magic.Length..]);
        if (version is < 1 or > Version)
            throw Bad($"version {version}; this onnxopt reads versions 1 to {Version}");
        var length = BitConverter.ToInt64(body[(Magic.Length + 2)..]);
        var start = Magic.Length + 2 + 8;
        if (length < 0 || length > body.Length || start + length + 32 != body.Length)
            throw Bad("truncated or extended");
        var hash = SHA256.HashData(body[..(int)(start + length)]);
        if (!hash.AsSpan().SequenceEqual(body.Slice((int)(start + length), 32))) throw Bad("checksum mismatch");
        bool v1 = version == 1;
        var budget = new Budget(limits.Resolve(archive.Length), source);
        try
        {
            using var r = new BinaryReader(new MemoryStream(archive, start, (int)length), Encoding.UTF8);
            var skeletonLength = v1 ? r.ReadInt64() : r.Read7BitEncodedInt64();
            if (skeletonLength < 0 || skeletonLength > length) throw Bad("skeleton longer than the archive");
            var skeleton = Inflate(r.ReadBytes((int)skeletonLength), budget);
            var model = OnnxImporter.Parse(skeleton, source: source);
            var rw = new Rewriter(model);
            int count = v1 ? r.ReadInt32() : r.Read7BitEncodedInt();
            if (count < 0 || count > length) throw Bad($"{count} records in {length} bytes");
            for (int i = 0; i < count; i++)
            {
                var name = r.ReadString();
                var v = model.Graph.Find(name) is { IsInitializer: true } found ? found
                    : throw Bad($"tensor '{Recipe.Shown(name)}' is not an initializer of the model");
                var old = v.Initializer!;
                var kind = v1 ? Coded : r.ReadByte();
                long[] dims;
                byte[] raw;
                DataType type = old.ElementType;
                if (kind == Widened)
                {
                    if (old.ElementType != DataType.Float16) throw Bad($"tensor '{name}': widened but not float16");
                    budget.Take(2L * old.RawData.Length, name);
                    (dims, raw, type) = (old.Dims, FromHalves(old.RawData.Span), DataType.Float);
                }
                else if (kind == Coded) (dims, raw) = ReadCoded(r, name, v1, Bad, budget);
                else throw Bad($"tensor '{name}': unknown record kind {kind}");
                rw.SetInitializer(v, old.WithData(type, dims, raw));
            }
            if (r.BaseStream.Position != r.BaseStream.Length) throw Bad("trailing bytes in the payload");
            return OnnxExporter.ToBytes(model);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or IOException
            or OverflowException or ArgumentException or FormatException)
        {
            throw Bad(e.Message);
        }
    }

    /// <summary>The bytes an unpack may still produce.</summary>
    private sealed class Budget(long max, string source)
    {
        private long _used;

        public void Take(double bytes, string what)
        {
            if (!(bytes >= 0) || bytes > max - _used)
                throw new OnnxModelException($"{source}: unpacking '{Recipe.Shown(what)}' would pass {max:N0} bytes "
                    + "(the archive's limit; --max-size raises it)");
            _used += (long)bytes;
        }
    }

    /// <summary>A coded tensor's dims and raw bytes.</summary>
    private static (long[] Dims, byte[] Raw) ReadCoded(BinaryReader r, string name, bool v1,
        Func<string, OnnxModelException> bad, Budget budget)
    {
        var rank = v1 ? r.ReadByte() : r.Read7BitEncodedInt();
        if (rank is < 0 or > 64) throw bad($"tensor '{name}': bad rank");
        var dims = new long[rank];
        for (int d = 0; d < dims.Length; d++) dims[d] = v1 ? r.ReadInt64() : r.Read7BitEncodedInt64();
        int size = r.ReadByte();
        if (dims.Any(d => d < 0)) throw bad($"tensor '{name}': negative dimension");
        // The bytes it restores (and its codes), checked before the element count is trusted.
        var elements = dims.Aggregate(1.0, (a, b) => a * b);
        budget.Take(elements * (Math.Max(size, 1) + 4), name);
        if (elements > Array.MaxLength)
            throw bad($"tensor '{name}': {elements:G3} elements, more than one array holds");
        var n = (int)elements;
        var layout = r.ReadByte();
        if (layout > 2 || size is < 1 or > 8 || (dims.Length == 0 && layout != 0))
            throw bad($"tensor '{name}': bad layout");
        var format = v1 ? RawBook : r.ReadByte();
        if (format > HalfBook || (format == HalfBook && size != 4)) throw bad($"tensor '{name}': bad book format");
        int sliceCount = layout switch { 0 => 1, 1 => (int)dims[0], _ => (int)dims[^1] };
        var books = new byte[sliceCount][];
        for (int b = 0; b < sliceCount; b++)
        {
            int entries = v1 ? r.ReadUInt16() : r.Read7BitEncodedInt();
            if (entries is < 0 or > 256) throw bad($"tensor '{name}': codebook of {entries} entries");
            books[b] = format == HalfBook ? FromHalves(r.ReadBytes(2 * entries)) : r.ReadBytes(size * entries);
        }
        var zero = ZeroCode(books[0], size);
        int[] codes;
        if (r.ReadByte() == 1)
        {
            var z = zero ?? throw bad("sparse without zero");
            codes = v1 ? ReadSparseV1(r, n, z) : ReadSparse(r, n, z);
        }
        else codes = v1 ? ReadStreamV1(r, n) : ReadStream(r, n);
        var raw = new byte[(long)n * size];
        for (int e = 0; e < n; e++)
        {
            var book = books[SliceOf(layout, e, n, dims)];
            if (codes[e] * size >= book.Length) throw bad($"tensor '{name}': code outside its codebook");
            Buffer.BlockCopy(book, codes[e] * size, raw, e * size, size);
        }
        return (dims, raw);
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

    // A Huffman stream (version 2): the alphabet used (largest symbol + 1), the code width (4: lengths two per
    // byte; 8: one per byte), the lengths, the bit count, then ceil(bits / 8) bytes.
    private static byte[] Stream(IReadOnlyList<int> symbols)
    {
        int alphabet = symbols.Count == 0 ? 0 : symbols.Max() + 1;
        var freq = new long[alphabet];
        foreach (var s in symbols) freq[s]++;
        var lengths = Huffman.Lengths(freq);
        var data = Huffman.Encode(symbols, lengths, out var bits);
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms))
        {
            w.Write7BitEncodedInt(alphabet);
            bool nibbles = lengths.All(l => l <= 15);
            w.Write((byte)(nibbles ? 4 : 8));
            if (nibbles)
                for (int i = 0; i < alphabet; i += 2)
                    w.Write((byte)(lengths[i] | (i + 1 < alphabet ? lengths[i + 1] << 4 : 0)));
            else w.Write(lengths);
            w.Write7BitEncodedInt64(bits);
            w.Write(data);
        }
        return ms.ToArray();
    }

    private static int[] ReadStream(BinaryReader r, int count)
    {
        if (count < 0) throw new InvalidDataException($"a stream of {count} symbols");
        var alphabet = r.Read7BitEncodedInt();
        if (alphabet is < 0 or > 256) throw new InvalidDataException($"alphabet of {alphabet} symbols");
        var width = r.ReadByte();
        if (width is not (4 or 8)) throw new InvalidDataException($"code length width {width}");
        var lengths = new byte[alphabet];
        if (width == 4)
            for (int i = 0; i < alphabet; i += 2)
            {
                var b = r.ReadByte();
                lengths[i] = (byte)(b & 15);
                if (i + 1 < alphabet) lengths[i + 1] = (byte)(b >> 4);
            }
        else r.Read(lengths);
        var bits = r.Read7BitEncodedInt64();
        if (bits < 0 || bits > 8L * int.MaxValue) throw new InvalidDataException("bad bit count");
        if (bits > 8L * (r.BaseStream.Length - r.BaseStream.Position))
            throw new EndOfStreamException("the bit stream ends early");
        // Every symbol takes at least one bit: a count beyond the bits is refused before it is allocated.
        if (count > bits) throw new InvalidDataException($"{count} symbols in {bits} bits");
        var data = r.ReadBytes((int)((bits + 7) / 8));
        if (data.Length * 8L < bits) throw new EndOfStreamException("the bit stream ends early");
        return Huffman.Decode(data, bits, count, lengths);
    }

    // Version 1: symbol count u16 (the 256 lengths), bit count u64, byte count u32, bytes.
    private static int[] ReadStreamV1(BinaryReader r, int count)
    {
        var lengths = r.ReadBytes(256);
        var bits = r.ReadInt64();
        var data = r.ReadBytes(r.ReadInt32());
        if (bits < 0 || bits > (long)data.Length * 8) throw new InvalidDataException("bit count beyond the data");
        if (count < 0 || count > bits) throw new InvalidDataException($"{count} symbols in {bits} bits");
        return Huffman.Decode(data, bits, count, lengths);
    }

    // Sparse: the non-zero count, the zero runs before each non-zero (255 = a run of 255 that goes on) and
    // after the last, then the non-zero codes.
    private static byte[] Sparse(int[] codes, int zero)
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
            w.Write7BitEncodedInt(values.Count);
            w.Write7BitEncodedInt(runs.Count);
            w.Write(Stream(runs));
            w.Write(Stream(values));
        }
        return ms.ToArray();
    }

    private static int[] ReadSparse(BinaryReader r, int count, int zero)
    {
        int nonZero = r.Read7BitEncodedInt(), runCount = r.Read7BitEncodedInt();
        // Runs of 255 continue; the others each precede a value (or end the tensor): at most count + 1.
        if (nonZero < 0 || nonZero > count || runCount < 0 || runCount > count + 1L)
            throw new InvalidDataException("bad sparse counts");
        return FromRuns(ReadStream(r, runCount), ReadStream(r, nonZero), count, zero, nonZero, runCount);
    }

    private static int[] ReadSparseV1(BinaryReader r, int count, int zero)
    {
        int nonZero = r.ReadInt32(), runCount = r.ReadInt32();
        if (nonZero < 0 || nonZero > count || runCount < 0 || runCount > count + 1L)
            throw new InvalidDataException("bad sparse counts");
        return FromRuns(ReadStreamV1(r, runCount), ReadStreamV1(r, nonZero), count, zero, nonZero, runCount);
    }

    private static int[] FromRuns(int[] runs, int[] values, int count, int zero, int nonZero, int runCount)
    {
        if (nonZero < 0 || nonZero > count || runCount < 0) throw new InvalidDataException("bad sparse counts");
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

    /// <summary>Inflates, stopping as soon as the output would pass the budget.</summary>
    private static byte[] Inflate(byte[] data, Budget budget)
    {
        using var z = new DeflateStream(new MemoryStream(data), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        var buf = new byte[1 << 16];
        int read;
        while ((read = z.Read(buf)) > 0)
        {
            budget.Take(read, "the model skeleton");
            ms.Write(buf, 0, read);
        }
        return ms.ToArray();
    }
}
