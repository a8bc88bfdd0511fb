// The fuzzing lane's generator: seeded mutations of small valid models (byte flips and truncation of the
// file; structural edits through the protobuf: dims zero, negative or huge, element types, attributes of
// the wrong type, opsets, IR versions, external data pointing anywhere, cycles, dangling and duplicate
// names, bad subgraphs, raw data of the wrong length) and of data folders (wrong shape, truncated,
// non-finite, empty, wrong type), run through every command in process. Each run must end with exit code
// 0, 1 or 2, print no stack trace, finish within its time limit, leave no output behind when it fails,
// and never turn a model ORT loads into an output ORT cannot load.
// The attack classes of issue 34 are generators too: external data through a linked folder, inside the folder
// through a link, or from a FIFO; FIFOs and impossible shapes in data folders; outputs that are /dev/null, a
// FIFO, a folder or a link (OutputAttack); archives bit-flipped with their checksum recomputed, truncated, or
// declaring gigabytes (Archive); recipes that are alias bombs, huge, or hold values that cannot be (Recipe).
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.Tests;

public static partial class Fuzzing
{
    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkFifo(string path, uint mode);

    public static void Fifo(string path)
    {
        if (MkFifo(path, Convert.ToUInt32("644", 8)) != 0) throw new IOException($"mkfifo {path} failed");
    }

    public sealed record Case(string Description, byte[] Model, string? DataDir);

    public static readonly string[] Seeds =
    [
        "ops/conv.onnx", "ops/gemm_matmul.onnx", "ops/batchnorm.onnx", "ops/activations.onnx", "ops/pooling.onnx",
        "ops/shapes.onnx", "ops/elementwise.onnx", "ops/shape_gather.onnx", "ops/qdq.onnx", "digits/mlp.onnx",
        "old_opset/digits_opset9.onnx",
    ];

    public static Case Make(Random rng, string tmp)
    {
        var seed = Seeds[rng.Next(Seeds.Length)];
        var bytes = File.ReadAllBytes(Paths.Model(seed));
        var what = new List<string> { seed };
        var kind = rng.Next(10);
        if (kind < 2)
        {
            bytes = (byte[])bytes.Clone();
            for (int i = 0, n = 1 + rng.Next(8); i < n; i++) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
            what.Add("byte flips");
        }
        else if (kind < 3)
        {
            bytes = bytes[..rng.Next(bytes.Length)];
            what.Add($"truncated to {bytes.Length}");
        }
        else
        {
            var m = ModelProto.Parser.ParseFrom(bytes);
            for (int i = 0, n = 1 + rng.Next(3); i < n; i++) what.Add(Mutate(m, rng));
            if (rng.Next(8) == 0) what.Add(ExternalAttack(m, rng, tmp));
            bytes = m.ToByteArray();
            if (rng.Next(6) == 0)
            {
                bytes[rng.Next(bytes.Length)] ^= 0x40;
                what.Add("then a byte flip");
            }
        }
        string? data = rng.Next(4) == 0 ? BadData(rng, tmp, what) : null;
        return new Case(string.Join(", ", what), bytes, data);
    }

    private static T Pick<T>(Random rng, IList<T> list) => list[rng.Next(list.Count)];

    private static string Mutate(ModelProto m, Random rng)
    {
        var g = m.Graph;
        var values = g.Input.Concat(g.Output).Concat(g.ValueInfo).Where(v => v.Type?.TensorType?.Shape is not null)
            .ToList();
        switch (rng.Next(13))
        {
            case 0 when values.Count > 0:
            {
                var v = Pick(rng, values);
                var dims = v.Type.TensorType.Shape.Dim;
                if (dims.Count == 0) return "no dims";
                var d = Pick(rng, dims);
                var value = Pick(rng, new long[] { 0, -1, -7, 1L << 40, long.MaxValue, 3 });
                d.DimValue = value;
                return $"dim of {v.Name} = {value}";
            }
            case 1:
            {
                var t = rng.Next(30);
                if (g.Initializer.Count > 0 && rng.Next(2) == 0) { Pick(rng, g.Initializer).DataType = t; return $"initializer type {t}"; }
                if (values.Count > 0) { Pick(rng, values).Type.TensorType.ElemType = t; return $"value type {t}"; }
                return "no type";
            }
            case 2 when g.Node.Any(n => n.Attribute.Count > 0):
            {
                var a = Pick(rng, g.Node.Where(n => n.Attribute.Count > 0).SelectMany(n => n.Attribute).ToList());
                a.Type = (AttributeProto.Types.AttributeType)Pick(rng, new[] { 1, 2, 3, 4, 5, 6, 7, 8, 0, 99 });
                return $"attribute {a.Name} typed {a.Type}";
            }
            case 3:
            {
                var v = Pick(rng, new long[] { 0, 1, 6, 7, 9, 12, 22, 25, 999, -3 });
                if (m.OpsetImport.Count > 0) m.OpsetImport[0].Version = v;
                return $"opset {v}";
            }
            case 4:
            {
                m.IrVersion = Pick(rng, new long[] { 0, 1, 2, 3, 11, 99, -1 });
                return $"ir_version {m.IrVersion}";
            }
            case 5 when g.Initializer.Count > 0:
            {
                var t = Pick(rng, g.Initializer);
                t.DataLocation = TensorProto.Types.DataLocation.External;
                t.ExternalData.Clear();
                var loc = Pick(rng, new[] { "../../etc/passwd", "/etc/passwd", "missing.bin", "", "a/../../b.bin" });
                t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = loc });
                if (rng.Next(2) == 0)
                    t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = rng.Next(-5, 1 << 20).ToString() });
                if (rng.Next(2) == 0)
                    t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = rng.Next(-5, 1 << 20).ToString() });
                return $"external data {t.Name} -> '{loc}'";
            }
            case 6 when g.Node.Count > 1:
            {
                int i = rng.Next(g.Node.Count - 1), j = rng.Next(i + 1, g.Node.Count);
                if (g.Node[i].Input.Count == 0 || g.Node[j].Output.Count == 0) return "no cycle";
                g.Node[i].Input[0] = g.Node[j].Output[0];
                return $"cycle {g.Node[i].Name}";
            }
            case 7 when g.Node.Count > 0:
            {
                var n = Pick(rng, g.Node);
                if (n.Input.Count == 0) return "no input";
                n.Input[rng.Next(n.Input.Count)] = "dangling_" + rng.Next(100);
                return $"dangling input of {n.Name}";
            }
            case 8 when g.Node.Count > 1:
            {
                var a = Pick(rng, g.Node);
                var b = Pick(rng, g.Node);
                if (a == b || a.Output.Count == 0 || b.Output.Count == 0) return "no duplicate";
                b.Output[0] = a.Output[0];
                return $"duplicate output {a.Output[0]}";
            }
            case 9:
            {
                var sub = new GraphProto { Name = "bad" };
                if (rng.Next(2) == 0) sub.Node.Add(new NodeProto { OpType = "Relu", Input = { "nowhere" }, Output = { "o" } });
                if (rng.Next(2) == 0) sub.Output.Add(new ValueInfoProto { Name = "o" });
                var cond = g.Input.Count > 0 ? g.Input[0].Name : "c";
                g.Node.Add(new NodeProto
                {
                    OpType = "If",
                    Input = { cond },
                    Output = { "if_out" },
                    Attribute =
                    {
                        new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = sub },
                        new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = sub.Clone() },
                    },
                });
                if (rng.Next(2) == 0) g.Output.Add(new ValueInfoProto { Name = "if_out" });
                return "bad subgraph";
            }
            case 10 when g.Initializer.Any(t => t.RawData.Length > 0):
            {
                var t = Pick(rng, g.Initializer.Where(t => t.RawData.Length > 0).ToList());
                var raw = t.RawData.ToByteArray();
                t.RawData = ByteString.CopyFrom(rng.Next(2) == 0 ? raw[..rng.Next(raw.Length)] : [.. raw, 1, 2, 3]);
                return $"raw data of {t.Name} {raw.Length} -> {t.RawData.Length} bytes";
            }
            case 11 when g.Node.Count > 0:
            {
                var n = Pick(rng, g.Node);
                n.OpType = Pick(rng, new[] { "NoSuchOp", "Conv", "Reshape", "", "Gemm", "Loop" });
                return $"op type {n.OpType}";
            }
            case 12 when g.Node.Count > 0:
            {
                var n = Pick(rng, g.Node);
                n.Domain = Pick(rng, new[] { "com.microsoft", "bogus.domain", "ai.onnx.ml" });
                return $"domain {n.Domain}";
            }
        }
        return "no edit";
    }

    /// <summary>An initializer moved to external data that a link leads out of the folder to, that a link inside
    /// the folder leads to (valid), or that is a FIFO.</summary>
    private static string ExternalAttack(ModelProto m, Random rng, string tmp)
    {
        var t = m.Graph.Initializer.Where(i => i.RawData.Length > 0).ToList() is { Count: > 0 } l ? Pick(rng, l) : null;
        if (t is null) return "no external attack";
        var raw = t.RawData.ToByteArray();
        t.ClearRawData();
        t.DataLocation = TensorProto.Types.DataLocation.External;
        t.ExternalData.Clear();
        string location;
        switch (rng.Next(3))
        {
            case 0:
            {
                var outside = Path.Combine(Path.GetDirectoryName(tmp)!, "outside" + rng.Next(1 << 30));
                Directory.CreateDirectory(outside);
                File.WriteAllBytes(Path.Combine(outside, "w.bin"), raw);
                Directory.CreateSymbolicLink(Path.Combine(tmp, "lnk"), outside);
                location = "lnk/w.bin";
                break;
            }
            case 1:
                Directory.CreateDirectory(Path.Combine(tmp, "weights"));
                File.WriteAllBytes(Path.Combine(tmp, "weights", "w.bin"), raw);
                if (!Directory.Exists(Path.Combine(tmp, "cur")))
                    Directory.CreateSymbolicLink(Path.Combine(tmp, "cur"), Path.Combine(tmp, "weights"));
                location = "cur/w.bin";
                break;
            default:
                if (!File.Exists(Path.Combine(tmp, "fifo.bin"))) Fifo(Path.Combine(tmp, "fifo.bin"));
                location = "fifo.bin";
                break;
        }
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        return $"external data {t.Name} -> {location}";
    }

    /// <summary>Where OUT points instead of a plain file: "/dev/null", a FIFO (drained by the caller), a folder,
    /// or a link to a file beside it; null: the plain file.</summary>
    public static (string Path, string Kind)? OutputAttack(Random rng, string outDir, string tmp)
    {
        if (rng.Next(8) != 0) return null;
        switch (rng.Next(4))
        {
            case 0: return ("/dev/null", "/dev/null");
            case 1:
            {
                var f = Path.Combine(tmp, "out.fifo");
                Fifo(f);
                return (f, "fifo");
            }
            case 2:
            {
                var d = Path.Combine(outDir, "sub.onnx");
                Directory.CreateDirectory(d);
                return (d, "folder");
            }
            default:
            {
                var link = Path.Combine(outDir, "link.onnx");
                File.CreateSymbolicLink(link, "target.onnx");
                return (link, "link");
            }
        }
    }

    private static byte[]? _packed, _bomb;

    /// <summary>A version-2 .onnxz frame around <paramref name="payload"/> (magic, version, length, SHA-256).
    /// </summary>
    internal static byte[] Frame(byte[] payload)
    {
        using var ms = new MemoryStream();
        ms.Write("ONNXZ\0"u8);
        ms.Write(BitConverter.GetBytes((ushort)2));
        ms.Write(BitConverter.GetBytes((long)payload.Length));
        ms.Write(payload);
        ms.Write(SHA256.HashData(ms.ToArray()));
        return ms.ToArray();
    }

    /// <summary>A version-2 archive of a skeleton (deflated here unless it already is) and raw record bytes.
    /// </summary>
    internal static byte[] Payload(byte[] skeleton, bool deflated, int records, Action<BinaryWriter> write)
    {
        byte[] body = skeleton;
        if (!deflated)
        {
            using var z = new MemoryStream();
            using (var d = new DeflateStream(z, CompressionLevel.Fastest, leaveOpen: true)) d.Write(skeleton);
            body = z.ToArray();
        }
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write7BitEncodedInt64(body.Length);
            w.Write(body);
            w.Write7BitEncodedInt(records);
            write(w);
        }
        return Frame(ms.ToArray());
    }

    /// <summary>An archive to unpack: valid (the sparse 4-bit digits MLP), bit-flipped with its checksum
    /// recomputed (so the structure checks are what refuse it), truncated, or a bomb.</summary>
    public static string Archive(Random rng, string tmp, List<string> what)
    {
        _packed ??= OnnxOpt.Passes.ModelArchive.Pack(OnnxOpt.Passes.ModelArchive.Unpack(
            File.ReadAllBytes(Paths.Model("archive/mlp_sparse_c4.v1.onnxz"))), out _);
        var bytes = (byte[])_packed.Clone();
        var skeleton = File.ReadAllBytes(Paths.Model("ops/conv.onnx"));
        switch (rng.Next(7))
        {
            case 0 or 1:
            {
                var end = bytes.Length - 32;
                for (int i = 0, n = 1 + rng.Next(6); i < n; i++) bytes[16 + rng.Next(end - 16)] ^= (byte)(1 << rng.Next(8));
                SHA256.HashData(bytes.AsSpan(0, end)).CopyTo(bytes, end);
                what.Add("archive bit flips, checksum recomputed");
                break;
            }
            case 2:
                bytes = bytes[..rng.Next(bytes.Length)];
                what.Add($"archive truncated to {bytes.Length}");
                break;
            case 3:
                bytes = Payload(skeleton, false, 1, w =>
                {
                    w.Write("w1");
                    w.Write((byte)0);
                    w.Write7BitEncodedInt(1);
                    w.Write7BitEncodedInt64(1L << rng.Next(28, 62));
                    w.Write((byte)4);
                    w.Write(new byte[16]);
                });
                what.Add("archive declaring a huge tensor");
                break;
            case 4:
                bytes = Payload(skeleton, false, 1, w =>
                {
                    w.Write("b1");
                    w.Write([0, 1, 8, 4, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
                    w.Write7BitEncodedInt(rng.Next(9, int.MaxValue));
                });
                what.Add("archive with a huge run count");
                break;
            case 5:
            {
                // 300 MB of zeros deflated to 300 KB as the skeleton: past the 256 MiB floor.
                if (_bomb is null)
                {
                    using var z = new MemoryStream();
                    using (var d = new DeflateStream(z, CompressionLevel.Fastest, leaveOpen: true))
                    {
                        var zeros = new byte[1 << 20];
                        for (int i = 0; i < 300; i++) d.Write(zeros);
                    }
                    _bomb = z.ToArray();
                }
                bytes = Payload(_bomb, true, 0, _ => { });
                what.Add("archive whose skeleton inflates to 300 MB");
                break;
            }
            default:
                what.Add("archive");
                break;
        }
        var path = Path.Combine(tmp, "in.onnxz");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>A compress recipe: a tiny valid search, or an alias bomb, a huge value, a value that cannot be,
    /// or the valid one with bytes flipped.</summary>
    public static string Recipe(Random rng, string tmp, List<string> what)
    {
        const string valid = "target: size\nmax_drop: 5\nbeam: 1\nstages:\n  - name: clean\n"
            + "    candidates: [\"\", \"canonicalize,fold-bn\"]\n";
        string text;
        switch (rng.Next(7))
        {
            case 0:
            {
                var sb = new StringBuilder("a: &a \"" + new string('z', 2000) + "\"\nb: &b [");
                sb.Append(string.Join(",", Enumerable.Repeat("*a", 200))).Append("]\nstages:\n  - candidates: [");
                sb.Append(string.Join(",", Enumerable.Repeat("*b", 200))).Append("]\n");
                text = sb.ToString();
                what.Add("recipe alias bomb");
                break;
            }
            case 1:
                text = "target: " + new string('q', 1 << 21) + "\n";
                what.Add("recipe of 2 MB");
                break;
            case 2:
                text = Pick(rng, new[] { "beam: 1e20\n", "max_drop: 1e400\n", "max_drop: -1\n", "beam: 0\n",
                    "target: " + new string('w', 5000) + "\n", "stages: 7\n" }) + valid;
                what.Add("recipe with a value that cannot be");
                break;
            case 3:
            {
                var b = Encoding.UTF8.GetBytes(valid);
                for (int i = 0, n = 1 + rng.Next(4); i < n; i++) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                text = Encoding.UTF8.GetString(b);
                what.Add("recipe with bytes flipped");
                break;
            }
            default:
                text = valid;
                what.Add("recipe");
                break;
        }
        var path = Path.Combine(tmp, "recipe.yaml");
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>A data folder with something wrong in it (or, sometimes, nothing wrong).</summary>
    private static string BadData(Random rng, string tmp, List<string> what)
    {
        var dir = Path.Combine(tmp, "data" + rng.Next(1 << 30));
        Directory.CreateDirectory(dir);
        var kind = rng.Next(8);
        var shape = Pick(rng, new[] { new long[] { 4, 3 }, new long[] { 2, 1, 16, 16 }, new long[] { 3, 64 }, new long[] { 0, 4 } });
        var n = shape.Aggregate(1L, (a, b) => a * b);
        var values = Enumerable.Range(0, (int)n).Select(i => kind == 2 && i == n / 2 ? float.NaN : (float)rng.NextDouble())
            .ToArray();
        var path = Path.Combine(dir, Pick(rng, new[] { "input.npy", "x.npy", "wrong.npy" }));
        if (kind == 6)
        {
            Fifo(path);
            what.Add($"data {Path.GetFileName(path)} is a FIFO");
            return dir;
        }
        if (kind != 4) OnnxOpt.Data.Npy.Write(path, OnnxOpt.GraphIR.Tensor.FromFloats("x", shape, values));
        if (kind == 7)
        {
            // An impossible shape in the header: negative, past int64, or overflowing.
            var bad = Pick(rng, new[] { "-1", "99999999999999999999", "4611686018427387904, 4611686018427387904" });
            var bytes = File.ReadAllBytes(path);
            int length = BitConverter.ToUInt16(bytes, 8);
            var header = Encoding.Latin1.GetString(bytes, 10, length);
            var at = header.IndexOf("'shape': (", StringComparison.Ordinal) + 10;
            var end = header.IndexOf(')', at);
            header = header[..at] + bad + "," + header[end..];
            File.WriteAllBytes(path, [.. bytes[..8], .. BitConverter.GetBytes((ushort)header.Length),
                .. Encoding.Latin1.GetBytes(header), .. bytes[(10 + length)..]]);
            what.Add($"data shape ({bad})");
        }
        if (kind == 1 && File.Exists(path)) File.WriteAllBytes(path, File.ReadAllBytes(path)[..rng.Next(1, 60)]);
        if (kind == 3) OnnxOpt.Data.Npy.Write(Path.Combine(dir, "labels.npy"),
            OnnxOpt.GraphIR.Tensor.FromInt64s("l", [shape[0]], Enumerable.Repeat(-3L, (int)shape[0]).ToArray()));
        what.Add($"data {Path.GetFileName(path)} {string.Join("x", shape)} kind {kind}");
        return dir;
    }
}
