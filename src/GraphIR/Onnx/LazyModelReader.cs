// Large models load lazily: the file is scanned at the protobuf wire level (tags and lengths only), every
// main-graph initializer's raw_data field is left out of a small copy of the message that the importer
// parses as usual, and each such initializer then reads its bytes from the model file on first use (one
// read shared by every copy of the tensor). Loading a 500 MB model touches a few hundred KB; `inspect`
// reads no weights; `convert` reads each weight once, as it writes it.
//   ModelProto{..., graph{node..., initializer{dims, data_type, name, raw_data[N]}...}}
//   -> parsed: ModelProto{..., graph{node..., initializer{dims, data_type, name}}} + (name, file offset, N)
namespace OnnxOpt.GraphIR;

internal static class LazyModelReader
{
    /// <summary>Files at least this large load lazily (tests lower it to run every model through this path).</summary>
    public static long Threshold { get; set; } = 64L << 20;

    public sealed record RawSpan(int Index, long Offset, long Length);

    /// <summary>The message without the main graph's initializer raw_data, and where each one is.</summary>
    public static (byte[] Stripped, List<RawSpan> Spans) Strip(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var r = new Reader(fs);
        var spans = new List<RawSpan>();
        var model = new MemoryStream();
        while (r.Position < fs.Length)
        {
            var (field, wire, start) = r.Tag();
            if (field == 7 && wire == 2)
            {
                var len = (long)r.Varint();
                var graph = StripGraph(r, r.Position + len, spans);
                WriteTag(model, 7, 2);
                WriteVarint(model, (ulong)graph.Length);
                model.Write(graph);
            }
            else r.CopyField(wire, start, model);
        }
        return (model.ToArray(), spans);
    }

    private static byte[] StripGraph(Reader r, long end, List<RawSpan> spans)
    {
        var graph = new MemoryStream();
        int index = 0;
        while (r.Position < end)
        {
            var (field, wire, start) = r.Tag();
            if (field == 5 && wire == 2)
            {
                var len = (long)r.Varint();
                var tensorEnd = r.Position + len;
                var tensor = new MemoryStream();
                while (r.Position < tensorEnd)
                {
                    var (tf, tw, ts) = r.Tag();
                    if (tf == 9 && tw == 2)
                    {
                        var n = (long)r.Varint();
                        spans.Add(new RawSpan(index, r.Position, n));
                        r.Skip(n);
                    }
                    else r.CopyField(tw, ts, tensor);
                }
                WriteTag(graph, 5, 2);
                WriteVarint(graph, (ulong)tensor.Length);
                tensor.WriteTo(graph);
                index++;
            }
            else r.CopyField(wire, start, graph);
        }
        return graph.ToArray();
    }

    private static void WriteTag(Stream s, int field, int wire) => WriteVarint(s, (ulong)((field << 3) | wire));

    /// <summary>Writes a protobuf varint (also MainGraphNodes' graph length).</summary>
    internal static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    private sealed class Reader(FileStream fs)
    {
        public long Position => fs.Position;

        public (int Field, int Wire, long Start) Tag()
        {
            var start = fs.Position;
            var tag = Varint();
            return ((int)(tag >> 3), (int)(tag & 7), start);
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                var b = fs.ReadByte();
                if (b < 0) throw new InvalidDataException("the file ends inside a varint");
                v |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) return v;
            }
            throw new InvalidDataException("a varint is longer than 10 bytes");
        }

        public void Skip(long n)
        {
            if (n < 0 || fs.Position + n > fs.Length) throw new InvalidDataException("a field runs past the end");
            fs.Seek(n, SeekOrigin.Current);
        }

        /// <summary>Copies the field whose tag started at <paramref name="start"/> (tag included).</summary>
        public void CopyField(int wire, long start, Stream to)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Skip(8); break;
                case 2: Skip((long)Varint()); break;
                case 5: Skip(4); break;
                default: throw new InvalidDataException($"wire type {wire} is not supported here");
            }
            var end = fs.Position;
            fs.Position = start;
            var buf = new byte[end - start];
            fs.ReadExactly(buf);
            to.Write(buf);
        }
    }
}
