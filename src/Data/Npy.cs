// NumPy .npy files (format versions 1.0, 2.0 and 3.0; little-endian, C order) <-> GraphIR Tensors.
// Header: "\x93NUMPY", major, minor, header length (2 bytes in v1, 4 in v2/v3), then a Python dict
// literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, 3), } padded with spaces to a
// multiple of 64 bytes and ended by '\n'. Written files are version 1.0 (2.0 if the header is huge).
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Data;

public static partial class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private static readonly (string Descr, DataType Type)[] Types =
    [
        ("<f4", DataType.Float), ("<f8", DataType.Double), ("<f2", DataType.Float16), ("|i1", DataType.Int8),
        ("|u1", DataType.UInt8), ("<i2", DataType.Int16), ("<u2", DataType.UInt16), ("<i4", DataType.Int32),
        ("<u4", DataType.UInt32), ("<i8", DataType.Int64), ("<u8", DataType.UInt64), ("|b1", DataType.Bool),
    ];

    /// <summary>At most 60 printable characters of header text for a message.</summary>
    private static string Shown(string text)
    {
        var clean = new string(text.Take(60).Select(c => char.IsControl(c) ? '?' : c).ToArray());
        return text.Length > 60 ? clean + "..." : clean;
    }

    public static Tensor Read(string path, string? name = null)
    {
        FileKinds.RequireRegular(path, "data file");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new OnnxModelException($"{path}: file not found"); }
        return Parse(bytes, name ?? Path.GetFileNameWithoutExtension(path), path);
    }

    public static Tensor Parse(byte[] bytes, string name, string source = "npy")
    {
        var (type, dims, dataStart) = ParseHeader(bytes, source);
        var need = type.ByteCount(dims.Aggregate(1L, (a, b) => a * b));
        if (bytes.Length - dataStart < need)
            throw new OnnxModelException($"{source}: holds {bytes.Length - dataStart} data bytes, shape ({string.Join(",", dims)}) of {type.Name()} needs {need}");
        return new Tensor(name, type, dims, bytes.AsMemory(dataStart, (int)need));
    }

    /// <summary>Opens a .npy file for reading rows (axis-0 slices) on demand: only the header is read now,
    /// so data sets larger than memory stream batch by batch.</summary>
    public static NpyFile Open(string path, string? name = null)
    {
        FileKinds.RequireRegular(path, "data file");
        // The length of what the path opens (through symbolic links), not of a link itself.
        long length;
        byte[] head;
        using (var f = File.OpenRead(path))
        {
            length = f.Length;
            head = new byte[Math.Min(length, 1 << 20)];
            f.ReadExactly(head);
        }
        var (type, dims, dataStart) = ParseHeader(head, path);
        var need = type.ByteCount(dims.Aggregate(1L, (a, b) => a * b));
        var have = length - dataStart;
        if (have < need) throw new OnnxModelException($"{path}: holds {have} data bytes, shape ({string.Join(",", dims)}) of {type.Name()} needs {need}");
        return new NpyFile(path, name ?? Path.GetFileNameWithoutExtension(path), type, dims, dataStart);
    }

    private static (DataType Type, long[] Dims, int DataStart) ParseHeader(byte[] bytes, string source)
    {
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new OnnxModelException($"{source}: not a .npy file (bad magic)");
        int major = bytes[6];
        int headerLen, offset;
        switch (major)
        {
            case 1: headerLen = BitConverter.ToUInt16(bytes, 8); offset = 10; break;
            case 2:
            case 3:
                if (bytes.Length < 12) throw new OnnxModelException($"{source}: truncated .npy header");
                var declared = BitConverter.ToUInt32(bytes, 8);
                if (declared > int.MaxValue - 12) throw new OnnxModelException($"{source}: truncated .npy header");
                headerLen = (int)declared; offset = 12; break;
            default: throw new OnnxModelException($"{source}: unsupported .npy format version {major}");
        }
        if (offset + headerLen > bytes.Length) throw new OnnxModelException($"{source}: truncated .npy header");
        var header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes, offset, headerLen);
        var descr = DescrRe().Match(header);
        var fortran = FortranRe().Match(header);
        var shapeM = ShapeRe().Match(header);
        if (!descr.Success || !shapeM.Success)
            throw new OnnxModelException($"{source}: cannot read the .npy header '{Shown(header.Trim())}'");
        if (fortran.Success && fortran.Groups[1].Value == "True")
            throw new OnnxModelException($"{source}: Fortran-order arrays are not supported; save with np.ascontiguousarray");
        var d = descr.Groups[1].Value;
        if (d.Length == 3 && d[0] == '=') d = (d[1] is 'i' or 'u' && d[2] == '1' ? "|" : "<") + d[1..];
        if (d is "<i1" or "<u1" or "<b1") d = "|" + d[1..];
        var match = Types.FirstOrDefault(t => t.Descr == d);
        if (match.Descr is null)
            throw new OnnxModelException($"{source}: dtype '{descr.Groups[1].Value}' is not supported{(d.StartsWith('>') ? " (big-endian)" : "")}");
        var dimTexts = shapeM.Groups[1].Value.Split(',',
            StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var dims = new long[dimTexts.Length];
        for (int i = 0; i < dims.Length; i++)
        {
            var text = dimTexts[i].TrimEnd('L');
            if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out dims[i])
                || dims[i] < 0)
                throw new OnnxModelException($"{source}: shape ({Shown(shapeM.Groups[1].Value)}) has dimension "
                    + $"'{Shown(text)}', not a non-negative 64-bit integer");
        }
        try
        {
            var count = dims.Aggregate(1L, (a, b) => checked(a * b));
            _ = checked(count * Math.Max(1, match.Type.BitWidth() / 8));
        }
        catch (OverflowException)
        {
            throw new OnnxModelException(
                $"{source}: shape ({Shown(shapeM.Groups[1].Value)}) holds more bytes than 64 bits count");
        }
        return (match.Type, dims, offset + headerLen);
    }

    public static void Write(string path, Tensor t) => AtomicFile.Write(path, s => s.Write(Serialize(t)));

    public static byte[] Serialize(Tensor t)
    {
        var header = HeaderFor(t.ElementType, t.Dims, t.Name);
        var data = t.RawData.Span;
        var outp = new byte[header.Length + data.Length];
        header.CopyTo(outp, 0);
        data.CopyTo(outp.AsSpan(header.Length));
        return outp;
    }

    /// <summary>The .npy header (magic, version, padded dict) for an array of this type and shape; the data follows it.</summary>
    public static byte[] HeaderFor(DataType type, long[] dims, string name = "array")
    {
        var descr = Types.FirstOrDefault(x => x.Type == type).Descr
            ?? throw new OnnxModelException($"tensor '{name}': {type.Name()} cannot be written as .npy");
        var shape = dims.Length switch
        {
            0 => "()",
            1 => $"({dims[0]},)",
            _ => "(" + string.Join(", ", dims.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")",
        };
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        var major = dict.Length + 11 > 65535 ? 2 : 1;
        var pre = major == 1 ? 10 : 12;
        var total = (pre + dict.Length + 1 + 63) / 64 * 64;
        var header = dict.PadRight(total - pre - 1) + "\n";
        var outp = new byte[total];
        Magic.CopyTo(outp, 0);
        outp[6] = (byte)major;
        outp[7] = 0;
        if (major == 1) BitConverter.TryWriteBytes(outp.AsSpan(8), (ushort)header.Length);
        else BitConverter.TryWriteBytes(outp.AsSpan(8), (uint)header.Length);
        Encoding.Latin1.GetBytes(header, outp.AsSpan(pre));
        return outp;
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")] private static partial Regex DescrRe();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranRe();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapeRe();
}

/// <summary>An opened .npy file: element type, shape, and rows read from disk when asked for.</summary>
public sealed class NpyFile(string path, string name, DataType type, long[] dims, long dataStart)
{
    public string Path { get; } = path;
    public DataType ElementType { get; } = type;
    public long[] Dims { get; } = dims;

    public long RowBytes => ElementType.ByteCount(Dims.Skip(1).Aggregate(1L, (a, b) => a * b));

    /// <summary>Rows [start, start + count) along axis 0, as a tensor named after the file (or as given).</summary>
    public Tensor Rows(long start, long count, string? asName = null)
    {
        var bytes = new byte[count * RowBytes];
        using (var f = File.OpenRead(Path))
        {
            f.Seek(dataStart + start * RowBytes, SeekOrigin.Begin);
            f.ReadExactly(bytes);
        }
        var d = (long[])Dims.Clone();
        d[0] = count;
        return new Tensor(asName ?? name, ElementType, d, bytes);
    }

    /// <summary>The whole array (for small files such as labels).</summary>
    public Tensor ReadAll() => Dims.Length == 0 ? Npy.Read(Path, name) : Rows(0, Dims[0]);
}
