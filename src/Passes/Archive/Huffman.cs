// Canonical Huffman coding of small alphabets (Deep Compression's last stage): code lengths from the
// symbol frequencies (Huffman's merge, lengths capped at 24 by flattening the frequencies and retrying),
// codes assigned canonically (by length, then symbol), so only the lengths are stored. Bits are written
// most significant first. Decoding walks the canonical first-code table one bit at a time.
namespace OnnxOpt.Passes;

public static class Huffman
{
    public const int MaxLength = 24;

    /// <summary>Code length per symbol (0 for symbols that never occur; a lone symbol gets length 1).</summary>
    public static byte[] Lengths(long[] frequencies)
    {
        var f = frequencies.ToArray();
        while (true)
        {
            var lengths = Build(f);
            if (lengths.All(l => l <= MaxLength)) return lengths;
            for (int i = 0; i < f.Length; i++) if (f[i] > 0) f[i] = Math.Max(1, f[i] / 2);
        }
    }

    private static byte[] Build(long[] f)
    {
        var lengths = new byte[f.Length];
        var used = Enumerable.Range(0, f.Length).Where(i => f[i] > 0).ToList();
        if (used.Count == 0) return lengths;
        if (used.Count == 1) { lengths[used[0]] = 1; return lengths; }
        // Nodes: leaves 0..n-1, internal nodes after; parent links give each leaf's depth.
        var parent = new List<int>();
        var queue = new PriorityQueue<int, (long, int)>();
        foreach (var s in used) { parent.Add(-1); queue.Enqueue(parent.Count - 1, (f[s], parent.Count - 1)); }
        while (queue.Count > 1)
        {
            queue.TryDequeue(out var a, out var pa);
            queue.TryDequeue(out var b, out var pb);
            parent.Add(-1);
            int node = parent.Count - 1;
            parent[a] = node;
            parent[b] = node;
            queue.Enqueue(node, (pa.Item1 + pb.Item1, node));
        }
        for (int i = 0; i < used.Count; i++)
        {
            int depth = 0;
            for (int x = i; parent[x] >= 0; x = parent[x]) depth++;
            lengths[used[i]] = (byte)Math.Min(depth, 255);
        }
        return lengths;
    }

    /// <summary>The canonical codes for the lengths (code bits in the low bits).</summary>
    public static uint[] Codes(byte[] lengths)
    {
        var codes = new uint[lengths.Length];
        uint code = 0;
        int prev = 0;
        foreach (var s in Enumerable.Range(0, lengths.Length).Where(s => lengths[s] > 0)
            .OrderBy(s => lengths[s]).ThenBy(s => s))
        {
            code <<= lengths[s] - prev;
            prev = lengths[s];
            codes[s] = code++;
        }
        return codes;
    }

    public static byte[] Encode(IReadOnlyList<int> symbols, byte[] lengths, out long bits)
    {
        var codes = Codes(lengths);
        var w = new BitWriter();
        foreach (var s in symbols) w.Write(codes[s], lengths[s]);
        bits = w.Bits;
        return w.ToArray();
    }

    /// <summary>Decodes <paramref name="count"/> symbols; throws on a bit pattern no code has, or too few
    /// bits.</summary>
    public static int[] Decode(ReadOnlySpan<byte> data, long bits, int count, byte[] lengths)
    {
        // Canonical tables: per length, the first code and the index of its first symbol in the sorted list.
        var sorted = Enumerable.Range(0, lengths.Length).Where(s => lengths[s] > 0)
            .OrderBy(s => lengths[s]).ThenBy(s => s).ToArray();
        var firstCode = new long[MaxLength + 2];
        var firstIndex = new int[MaxLength + 2];
        var countOf = new int[MaxLength + 2];
        foreach (var s in sorted)
        {
            if (lengths[s] > MaxLength) throw new InvalidDataException("code longer than the limit");
            countOf[lengths[s]]++;
        }
        long code = 0;
        int index = 0;
        for (int len = 1; len <= MaxLength; len++)
        {
            code = (code + countOf[len - 1]) << 1;
            firstCode[len] = code;
            firstIndex[len] = index;
            index += countOf[len];
        }
        var result = new int[count];
        long pos = 0;
        for (int i = 0; i < count; i++)
        {
            long c = 0;
            int len = 0;
            while (true)
            {
                if (pos >= bits) throw new InvalidDataException("the bit stream ends early");
                c = (c << 1) | (uint)((data[(int)(pos >> 3)] >> (7 - (int)(pos & 7))) & 1);
                pos++;
                len++;
                if (len > MaxLength) throw new InvalidDataException("no code matches the bit stream");
                if (countOf[len] > 0 && c - firstCode[len] < countOf[len] && c >= firstCode[len])
                {
                    result[i] = sorted[firstIndex[len] + (int)(c - firstCode[len])];
                    break;
                }
            }
        }
        return result;
    }

    private sealed class BitWriter
    {
        private readonly List<byte> _bytes = new();
        private int _used = 8;
        public long Bits { get; private set; }

        public void Write(uint code, int length)
        {
            for (int b = length - 1; b >= 0; b--)
            {
                if (_used == 8) { _bytes.Add(0); _used = 0; }
                if (((code >> b) & 1) != 0) _bytes[^1] |= (byte)(0x80 >> _used);
                _used++;
                Bits++;
            }
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}
