// InputRanges reads an integer input's range from how the model uses it, and DataSet.Random draws inside it:
// ids below the row count of the table they index, masks as a prefix of ones.
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests.Data;

public class InputRangesTests
{
    [Theory]
    [InlineData("transformers/bert_op11.onnx")]
    [InlineData("transformers/bert_op13.onnx")]
    public void BertStyleIdsAreBoundedByTheirEmbeddingTablesAndTheMaskIsAMask(string file)
    {
        var r = InputRanges.Of(OnnxImporter.Load(Paths.Model(file)).Graph);
        Assert.Equal((0L, 1000L, false), (r["input_ids"].Lo, r["input_ids"].Hi, r["input_ids"].IsMask));
        Assert.Equal((0L, 2L, false), (r["token_type_ids"].Lo, r["token_type_ids"].Hi, r["token_type_ids"].IsMask));
        Assert.True(r["attention_mask"].IsMask);
        Assert.Contains("rows of", r["input_ids"].Reason);
    }

    [Fact]
    public void TheRealArcticEncoderGetsItsVocabularyAndTwoTokenTypes()
    {
        if (!ArcticXs.Available) return;
        var r = InputRanges.Of(OnnxImporter.Load(ArcticXs.Model).Graph);
        Assert.Equal(30522, r["input_ids"].Hi);
        Assert.Equal(2, r["token_type_ids"].Hi);
        Assert.True(r["attention_mask"].IsMask);
    }

    [Fact]
    public void AMaskFoundByUseNotByName()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (int64[N,S] m, float[N,S] x) => (float[N,S] y) <float one = {1.0}>
            {
               f = Cast <to = 1> (m)
               k = Sub (one, f)
               y = Mul (k, x)
            }
            """);
        Assert.True(InputRanges.Of(m.Graph)["m"].IsMask);
    }

    [Fact]
    public void AnIntegerInputWithoutATellingUseKeepsTheDefault()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (int64[N] a) => (int64[N] y)
            {
               y = Neg (a)
            }
            """);
        Assert.Equal(ValueRange.Default, InputRanges.Of(m.Graph)["a"]);
    }

    [Fact]
    public void RandomIdsStayInRangeAndMasksArePrefixesOfOnes()
    {
        var g = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx")).Graph;
        var ds = DataSet.Random(IoInfo.InputsOf(g), 20, 7, new Dictionary<string, long> { ["sequence"] = 16 });
        foreach (var b in ds.Batches())
        {
            Assert.All(b.Inputs["input_ids"].Span<long>().ToArray(), v => Assert.InRange(v, 0, 999));
            Assert.All(b.Inputs["token_type_ids"].Span<long>().ToArray(), v => Assert.InRange(v, 0, 1));
            var mask = b.Inputs["attention_mask"].Span<long>().ToArray();
            Assert.Equal(16, mask.Length);
            Assert.Equal(1, mask[0]);
            var ones = mask.TakeWhile(v => v == 1).Count();
            Assert.All(mask.Skip(ones), v => Assert.Equal(0, v));
        }
        Assert.Equal(2, ds.IntegerRanges["token_type_ids"].Hi);
    }

    [Fact]
    public void AGivenRangeWinsAndANameTheModelLacksIsRefused()
    {
        var g = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx")).Graph;
        var given = new Dictionary<string, ValueRange> { ["input_ids"] = ValueRange.Parse("input_ids", "5:7") };
        var b = DataSet.Random(IoInfo.InputsOf(g), 1, 1, null, given).Batches().First();
        Assert.All(b.Inputs["input_ids"].Span<long>().ToArray(), v => Assert.InRange(v, 5, 6));
        var bad = new Dictionary<string, ValueRange> { ["ids"] = new(0, 3, false, "given") };
        var e = Assert.Throws<OnnxModelException>(() => DataSet.Random(IoInfo.InputsOf(g), 1, 1, null, bad));
        Assert.Contains("no input 'ids'", e.Message);
        Assert.Throws<OnnxModelException>(() => ValueRange.Parse("x", "4:2"));
    }
}
