// round-fp16: every float initializer becomes fp16-exact and ORT's outputs barely move on a digits net; values
// fp16 cannot hold (beyond its range, an epsilon that would become 0) and floats that decide a count (Range)
// keep their tensor; min-elements and exclude; a second run changes nothing.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;
using OnnxOpt.Data;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class RoundFp16Tests
{
    private static bool HalfExact(Tensor t) => t.ToFloatArray().All(x =>
        BitConverter.SingleToInt32Bits((float)(Half)x) == BitConverter.SingleToInt32Bits(x));

    [Fact]
    public void EveryWeightBecomesHalfExactAndTheOutputsBarelyMove()
    {
        var m = Run(OnnxImporter.Load(Paths.Model("digits/mobilenetv2.onnx")), "canonicalize,fold-bn").After;
        var (after, runs) = Run(m, "round-fp16");
        var floats = after.Graph.Initializers.Where(v => v.Initializer!.ElementType == DataType.Float).ToList();
        Assert.All(floats, v => Assert.True(HalfExact(v.Initializer!), v.Name));
        Assert.True(Counter(runs, Counters.RoundFp16.TensorsRounded) >= 30);
        Assert.Equal(OnnxExporter.ToBytes(after), OnnxExporter.ToBytes(Run(after, "round-fp16").After));
        using var a = InferenceSession.FromModel(m);
        using var b = InferenceSession.FromModel(after);
        var report = Validator.Compare(a, b, DataSet.Random(a.Inputs, 16, 3), new ValidationOptions());
        var o = report.Outputs.Single();
        Assert.True(o.Cosine > 0.99999, $"cosine {o.Cosine}");
        Assert.True(o.Top1Agreement == 1, $"agreement {o.Top1Agreement}");
    }

    [Fact]
    public void ValuesHalfCannotHoldAndCountsKeepTheirTensor()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,2] x) => (float[N,2] y, float[M] r)
               <float[2] w = {0.1, 0.2}, float[2] eps = {1e-12, 1}, float[2] big = {1e6, 1},
                float start = {0}, float limit = {1}, float delta = {0.3333333}, float[2] tiny = {3, 0.3}>
            {
               a = Mul (x, w)
               b = Add (a, eps)
               c = Mul (b, big)
               y = Add (c, tiny)
               r = Range (start, limit, delta)
            }
            """);
        var (after, runs) = Run(m, "round-fp16{exclude=tiny}");
        float[] Of(Model g, string name) => g.Graph.Find(name)!.Initializer!.ToFloatArray();
        Assert.NotEqual(Of(m, "w"), Of(after, "w"));
        Assert.True(HalfExact(after.Graph.Find("w")!.Initializer!));
        foreach (var kept in new[] { "eps", "big", "delta", "tiny" }) Assert.Equal(Of(m, kept), Of(after, kept));
        var notes = runs.SelectMany(r => r.Stats.Notes).ToList();
        Assert.Contains(notes, n => n.Contains("eps") && n.Contains("would become 0"));
        Assert.Contains(notes, n => n.Contains("big") && n.Contains("beyond fp16's range"));
        Assert.Contains(notes, n => n.Contains("delta") && n.Contains("decides a shape or a count"));
        Assert.Equal(1, Counter(runs, Counters.RoundFp16.TensorsRounded));
        Assert.Equal(Of(m, "w"), Of(Run(m, "round-fp16{min-elements=3}").After, "w"));
    }
}
