// The main graph's nodes are imported one at a time, straight from the file's bytes, so the protobuf
// tree of a million-node graph never exists beside the IR built from it: the model message is scanned at
// the wire level (tags and lengths only), the main graph's node fields are left out of a copy that is
// parsed as usual, and each node is parsed from its span when the importer reaches it (its NodeProto is
// garbage as soon as it is converted). Everything else (initializers, subgraphs, unknown fields) parses
// unchanged; node order is the file's.
//   ModelProto{..., graph{node[0] ... node[n-1], initializer..., input...}}
//   -> parsed: ModelProto{..., graph{initializer..., input...}} + (offset, length) of each node
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.GraphIR;

internal static class MainGraphNodes
{
    /// <summary>The message without the main graph's nodes, and where each node is in
    /// <paramref name="bytes"/>; null when the bytes are not laid out so (no graph, or the graph field
    /// repeated, which protobuf merges): the caller parses the whole message then.</summary>
    public static (byte[] Message, List<(int Offset, int Length)> Spans)? Split(byte[] bytes)
    {
        try { return TrySplit(bytes); }
        catch (InvalidDataException) { return null; }   // malformed: the full parse reports it
    }

    /// <summary>Each node of <paramref name="spans"/> parsed when it is reached.</summary>
    public static IEnumerable<NodeProto> Parse(byte[] bytes, List<(int Offset, int Length)> spans)
    {
        foreach (var (offset, length) in spans) yield return NodeProto.Parser.ParseFrom(bytes, offset, length);
    }

    private static (byte[] Message, List<(int Offset, int Length)> Spans)? TrySplit(byte[] bytes)
    {
        var r = new Reader(bytes, 0, bytes.Length);
        (int Tag, int Start, int End)? graph = null;
        while (!r.AtEnd)
        {
            var (field, wire, tag) = r.Tag();
            if (field == 7 && wire == 2)
            {
                if (graph is not null) return null;
                var len = r.Length();
                graph = (tag, r.Position, r.Position + len);
                r.Skip(len);
            }
            else r.SkipField(wire);
        }
        if (graph is not { } span) return null;

        var nodes = new List<(int Offset, int Length)>();
        var kept = new List<(int Start, int End)>();
        var g = new Reader(bytes, span.Start, span.End);
        while (!g.AtEnd)
        {
            var (field, wire, start) = g.Tag();
            if (field == 1 && wire == 2)
            {
                var len = g.Length();
                nodes.Add((g.Position, len));
                g.Skip(len);
            }
            else
            {
                g.SkipField(wire);
                kept.Add((start, g.Position));
            }
        }
        if (nodes.Count == 0) return null;
        var graphLength = kept.Sum(k => k.End - k.Start);
        var rest = new MemoryStream(bytes.Length - (span.End - span.Start) + graphLength + 16);
        rest.Write(bytes, 0, span.Tag);                   // everything before the graph field
        LazyModelReader.WriteVarint(rest, (7 << 3) | 2);
        LazyModelReader.WriteVarint(rest, (ulong)graphLength);
        foreach (var (s, e) in kept) rest.Write(bytes, s, e - s);
        rest.Write(bytes, span.End, bytes.Length - span.End);
        return (rest.ToArray(), nodes);
    }

    private sealed class Reader(byte[] bytes, int position, int end)
    {
        public int Position => position;
        public bool AtEnd => position >= end;

        public (int Field, int Wire, int Start) Tag()
        {
            var start = position;
            var tag = Varint();
            return ((int)(tag >> 3), (int)(tag & 7), start);
        }

        public int Length()
        {
            var n = Varint();
            if (n > (ulong)(end - position)) throw new InvalidDataException("a field runs past the end");
            return (int)n;
        }

        public void Skip(int n) => position += n;

        public void SkipField(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Advance(8); break;
                case 2: Skip(Length()); break;
                case 5: Advance(4); break;
                default: throw new InvalidDataException($"wire type {wire} is not supported here");
            }
        }

        private void Advance(int n)
        {
            if (n > end - position) throw new InvalidDataException("a field runs past the end");
            position += n;
        }

        private ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (position >= end) throw new InvalidDataException("the message ends inside a varint");
                var b = bytes[position++];
                v |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) return v;
            }
            throw new InvalidDataException("a varint is longer than 10 bytes");
        }
    }
}
