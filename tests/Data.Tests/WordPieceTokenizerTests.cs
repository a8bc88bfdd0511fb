// WordPieceTokenizer against ids Hugging Face's bert-base-uncased tokenizer gives (arctic-embed-xs ships that
// vocabulary), plus the rules that need no vocabulary file: punctuation splits, accents, [UNK], padding.
using OnnxOpt.Data;

namespace OnnxOpt.Tests.Data;

public class WordPieceTokenizerTests
{
    private static readonly string[] Tiny = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "cafe", ",", "!", "run", "##ning"];

    [Fact]
    public void SplitsIntoLongestPiecesFromTheLeft()
    {
        var t = new WordPieceTokenizer(Tiny);
        Assert.Equal([4, 5, 6], t.Encode("unaffable"));
        Assert.Equal([10, 11, 8, 7, 9], t.Encode("Running, CAFÉ!"));
        Assert.Equal([1, 10], t.Encode("unaffablex run"));
    }

    [Fact]
    public void PadsAndMasksToTheSequence()
    {
        var t = new WordPieceTokenizer(Tiny);
        var (ids, mask, types) = t.EncodePadded("run unaffable running", 8);
        Assert.Equal([2L, 10, 4, 5, 6, 10, 11, 3], ids);
        Assert.Equal([1L, 1, 1, 1, 1, 1, 1, 1], mask);
        Assert.All(types, v => Assert.Equal(0, v));
        (ids, mask, _) = t.EncodePadded("run", 5);
        Assert.Equal([2L, 10, 3, 0, 0], ids);
        Assert.Equal([1L, 1, 1, 0, 0], mask);
    }

    [Fact]
    public void RefusesAVocabularyWithoutBertsSpecialTokens() =>
        Assert.Throws<OnnxOpt.GraphIR.OnnxModelException>(() => new WordPieceTokenizer(["a", "b"]));

    [Fact]
    public void SentencesSplitAfterStopsAndDropShortOnes() =>
        Assert.Equal(["This is the first sentence here.", "And here is the second one!"],
            WordPieceTokenizer.Sentences("This is the first\n sentence here. Too short. And here is the second one!"));

    [Fact]
    public void MatchesBertBaseUncasedOnArcticsVocabulary()
    {
        if (!ArcticXs.Available) return;
        var t = WordPieceTokenizer.FromFile(ArcticXs.Vocab);
        Assert.Equal(30522, t.VocabSize);
        // transformers.BertTokenizer("bert-base-uncased")("Hello, world! Tokenization is unaffable.")
        Assert.Equal([7592, 1010, 2088, 999, 19204, 3989, 2003, 14477, 20961, 3468, 1012],
            t.Encode("Hello, world! Tokenization is unaffable."));
    }
}
