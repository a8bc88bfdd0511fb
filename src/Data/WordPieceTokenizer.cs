// BERT's WordPiece tokenizer (uncased), to turn text into the int64 inputs a BERT-style encoder takes:
//
//   "Hello, world!"  -> [CLS] hello , world ! [SEP]  -> input_ids [101, 7592, 1010, 2088, 999, 102, 0, 0, ...]
//                                                       attention_mask [1, 1, 1, 1, 1, 1, 0, 0, ...]
//                                                       token_type_ids [0, 0, ...]
//
// Basic tokenization (Devlin et al. 2019; Hugging Face's BasicTokenizer): clean control characters, put spaces
// around CJK ideographs, lower-case and strip accents (to the base letter, combining marks dropped) when uncased,
// split on white space
// and punctuation. Each word is then split greedily into the longest vocabulary pieces from the left, continuation
// pieces prefixed "##"; a word with no split (or longer than 100 characters) becomes [UNK].
using System.Text;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Data;

public sealed class WordPieceTokenizer
{
    private readonly Dictionary<string, int> _vocab;
    private readonly bool _lowerCase;

    public int ClsId { get; }
    public int SepId { get; }
    public int PadId { get; }
    public int UnkId { get; }
    public int VocabSize => _vocab.Count;

    /// <param name="vocab">vocab.txt's lines: one token per line, its id the line number.</param>
    public WordPieceTokenizer(IEnumerable<string> vocab, bool lowerCase = true)
    {
        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in vocab)
        {
            var t = line.TrimEnd('\r', '\n');
            _vocab.TryAdd(t, _vocab.Count);
        }
        _lowerCase = lowerCase;
        int Id(string t) => _vocab.TryGetValue(t, out var i) ? i
            : throw new OnnxModelException($"vocabulary: no {t} token (is this a BERT vocab.txt?)");
        ClsId = Id("[CLS]"); SepId = Id("[SEP]"); PadId = Id("[PAD]"); UnkId = Id("[UNK]");
    }

    public static WordPieceTokenizer FromFile(string vocabPath, bool lowerCase = true) =>
        File.Exists(vocabPath) ? new(File.ReadLines(vocabPath), lowerCase)
            : throw new OnnxModelException($"vocabulary '{vocabPath}' not found");

    /// <summary>The word pieces' ids of <paramref name="text"/>, without [CLS]/[SEP].</summary>
    public List<int> Encode(string text)
    {
        var ids = new List<int>();
        foreach (var word in BasicTokens(text)) Pieces(word, ids);
        return ids;
    }

    /// <summary>[CLS] text [SEP], truncated and padded to <paramref name="sequence"/> tokens: (input_ids,
    /// attention_mask, token_type_ids).</summary>
    public (long[] Ids, long[] Mask, long[] Types) EncodePadded(string text, int sequence)
    {
        if (sequence < 2) throw new OnnxModelException("sequence length must be at least 2 ([CLS] and [SEP])");
        var pieces = Encode(text);
        if (pieces.Count > sequence - 2) pieces.RemoveRange(sequence - 2, pieces.Count - (sequence - 2));
        var ids = new long[sequence];
        var mask = new long[sequence];
        Array.Fill(ids, PadId);
        ids[0] = ClsId;
        for (int i = 0; i < pieces.Count; i++) ids[i + 1] = pieces[i];
        ids[pieces.Count + 1] = SepId;
        for (int i = 0; i < pieces.Count + 2; i++) mask[i] = 1;
        return (ids, mask, new long[sequence]);
    }

    /// <summary>Writes input_ids.npy, attention_mask.npy and token_type_ids.npy ([texts, sequence] int64) to
    /// <paramref name="dir"/>, the data folder layout every command reads.</summary>
    public void WriteDataFolder(IReadOnlyList<string> texts, int sequence, string dir)
    {
        Directory.CreateDirectory(dir);
        var n = texts.Count;
        var ids = new long[n * sequence];
        var mask = new long[n * sequence];
        var types = new long[n * sequence];
        for (int i = 0; i < n; i++)
        {
            var (a, b, c) = EncodePadded(texts[i], sequence);
            a.CopyTo(ids, i * sequence); b.CopyTo(mask, i * sequence); c.CopyTo(types, i * sequence);
        }
        long[] dims = [n, sequence];
        Npy.Write(Path.Combine(dir, "input_ids.npy"), Tensor.FromInt64s("input_ids", dims, ids));
        Npy.Write(Path.Combine(dir, "attention_mask.npy"), Tensor.FromInt64s("attention_mask", dims, mask));
        Npy.Write(Path.Combine(dir, "token_type_ids.npy"), Tensor.FromInt64s("token_type_ids", dims, types));
    }

    /// <summary>Sentences of a prose text: split after '.', '!' or '?' followed by white space, white space
    /// collapsed, those with fewer than <paramref name="minWords"/> words dropped.</summary>
    public static List<string> Sentences(string text, int minWords = 5)
    {
        var flat = string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        var result = new List<string>();
        int start = 0;
        for (int i = 0; i < flat.Length; i++)
        {
            if (flat[i] is not ('.' or '!' or '?') || (i + 1 < flat.Length && flat[i + 1] != ' ')) continue;
            Add(flat[start..(i + 1)]);
            start = i + 1;
        }
        Add(flat[start..]);
        return result;

        void Add(string s)
        {
            s = s.Trim();
            if (s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length >= minWords) result.Add(s);
        }
    }

    private IEnumerable<string> BasicTokens(string text)
    {
        var sb = new StringBuilder(text.Length + 16);
        foreach (var ch in text)
        {
            if (ch == 0 || ch == 0xFFFD || (char.IsControl(ch) && !char.IsWhiteSpace(ch))) continue;
            if (IsCjk(ch)) sb.Append(' ').Append(ch).Append(' ');
            else sb.Append(char.IsWhiteSpace(ch) ? ' ' : ch);
        }
        var cleaned = sb.ToString();
        if (_lowerCase) cleaned = StripAccents(cleaned.ToLowerInvariant());
        foreach (var word in cleaned.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int start = 0;
            for (int i = 0; i < word.Length; i++)
            {
                if (!IsPunctuation(word[i])) continue;
                if (i > start) yield return word[start..i];
                yield return word[i].ToString();
                start = i + 1;
            }
            if (start < word.Length) yield return word[start..];
        }
    }

    private void Pieces(string word, List<int> ids)
    {
        if (word.Length > 100) { ids.Add(UnkId); return; }
        var at = ids.Count;
        int start = 0;
        while (start < word.Length)
        {
            int end = word.Length, found = -1;
            while (start < end)
            {
                var piece = start > 0 ? "##" + word[start..end] : word[start..end];
                if (_vocab.TryGetValue(piece, out var id)) { found = id; break; }
                end--;
            }
            if (found < 0)
            {
                ids.RemoveRange(at, ids.Count - at);
                ids.Add(UnkId);
                return;
            }
            ids.Add(found);
            start = end;
        }
    }

    // Latin-1 Supplement (U+00C0..U+00FF) and Latin Extended-A (U+0100..U+017F) letters whose canonical
    // decomposition is a base letter plus combining marks: the base letter ('.' where there is none, as for æ, ø,
    // ß, đ, ł). String.Normalize does not decompose under invariant globalization, so the table is written out.
    private const string Latin1 = "AAAAAA.CEEEEIIII.NOOOOO..UUUUY..aaaaaa.ceeeeiiii.nooooo..uuuuy.y";
    private const string LatinA = "AaAaAaCcCcCcCcDd..EeEeEeEeEeGgGgGgGgHh..IiIiIiIiI...JjKk.LlLlLl....NnNnNn...OoOo"
        + "Oo..RrRrRrSsSsSsSsTtTt..UuUuUuUuUuUuWwYyYZzZzZz.";

    private static string StripAccents(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var ch in s)
        {
            if (ch is >= '\u0300' and <= '\u036F') continue;
            char b = ch is >= '\u00C0' and <= '\u00FF' ? Latin1[ch - 0xC0]
                : ch is >= '\u0100' and <= '\u017F' ? LatinA[ch - 0x100] : '.';
            sb.Append(b != '.' ? b : ch);
        }
        return sb.ToString();
    }

    private static bool IsPunctuation(char c) =>
        c is >= '!' and <= '/' or >= ':' and <= '@' or >= '[' and <= '`' or >= '{' and <= '~'
        || char.IsPunctuation(c);

    private static bool IsCjk(char c) => c is >= '\u4E00' and <= '\u9FFF' or >= '\u3400' and <= '\u4DBF'
        or >= '\uF900' and <= '\uFAFF';
}
