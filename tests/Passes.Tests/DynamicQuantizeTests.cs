// quantize{mode=dynamic}: every MatMul/Gemm with a constant weight becomes DynamicQuantizeMatMul with per-column
// int8 weights and its bias folded in, with no calibration data; the BERT-style model keeps its pooled embedding.
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests.Passes;

public class DynamicQuantizeTests
{
    [Fact]
    public void EveryWeightedMatMulOfTheBertBecomesDynamicInt8AndTheEmbeddingHolds()
    {
        var m = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx"));
        var matmuls = m.Graph.Nodes.Count(n => n.OpType is "MatMul" or "Gemm" && Rewriter.ConstantOf(n.Input(1)) is not null);
        var (q, runs) = Run(m, "quantize{mode=dynamic}");
        var dq = q.Graph.Nodes.Where(n => n.OpType is "DynamicQuantizeMatMul" or "MatMulIntegerToFloat").ToList();
        Assert.Equal(matmuls, dq.Count);
        Assert.All(dq, n => Assert.Equal("com.microsoft", n.Domain));
        // The bias Add folded in (input 4 of DynamicQuantizeMatMul, 6 of MatMulIntegerToFloat).
        Assert.All(dq, n => Assert.NotNull(n.Input(n.OpType == "DynamicQuantizeMatMul" ? 4 : 6)));
        Assert.All(dq, n => Assert.Equal(DataType.Int8, Rewriter.ConstantOf(n.Input(1))!.ElementType));
        // q, k and v read one quantized copy of their input: one DynamicQuantizeLinear per block.
        Assert.Equal(2, q.Graph.Nodes.Count(n => n.OpType == "DynamicQuantizeLinear"));
        Assert.Equal(6, q.Graph.Nodes.Count(n => n.OpType == "MatMulIntegerToFloat"));
        Assert.Equal(matmuls, Counter(runs, Counters.Quantize.Quantized("MatMul")) + Counter(runs, Counters.Quantize.Quantized("Gemm")));
        var reported = runs.SelectMany(r => r.Stats.Decisions).OfType<QuantizedOp>()
            .Where(d => d.Decision == "int8 (dynamic)").ToList();
        Assert.Equal(matmuls, reported.Count(d => d.WeightSqnrDb is > 25 and <= 200 && d.Bits is 7 or 8));
        using var a = InferenceSession.FromModel(m);
        using var b = InferenceSession.FromModel(q);
        var data = DataSet.FromFolder(Paths.Model("transformers/bert_eval"), a.Inputs);
        var r = Validator.Compare(a, b, data);
        Assert.True(r.Primary!.Value > 0.999, r.Primary.ToString());
    }

    [Fact]
    public void WithABudgetATransformerGetsDynamicInt8WhenItMeasuresWithinAndStaticOtherwise()
    {
        // mode=auto with max-drop: dynamic int8 (the faster form on transformers) is measured first on the
        // held-out data and kept when its drop's upper bound is within the budget; else the static search runs.
        var m = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx"));
        var calib = OnnxOpt.Calibration.CalibrationSource.FromFolder(Paths.Model("transformers/bert_data"));
        var eval = OnnxOpt.Calibration.CalibrationSource.FromFolder(Paths.Model("transformers/bert_eval"));
        (Model, List<PassRun>) Quantize(string budget)
        {
            var q = m.Clone();
            var runs = PipelineRunner.Run(q, Pipeline.Parse($"canonicalize,quantize{{max-drop={budget}}}"),
                PassContexts.Create(q, calib, null, eval));
            return (q, runs);
        }
        var (loose, looseRuns) = Quantize("2");
        Assert.Contains(loose.Graph.Nodes, n => n.OpType == "DynamicQuantizeMatMul");
        Assert.DoesNotContain(loose.Graph.Nodes, n => n.OpType == "QuantizeLinear");
        var trial = Assert.Single(looseRuns.SelectMany(r => r.Stats.Decisions).OfType<QuantizeTrial>());
        Assert.Equal("dynamic", trial.FellBack);
        Assert.True(trial.DropUpper <= 2);
        Assert.Contains(looseRuns.SelectMany(r => r.Stats.Notes), n => n.Contains("dynamic int8 is within the budget"));
        // A budget of 0 points at 90% confidence: dynamic int8 cannot prove it, so static int8 runs.
        var (strict, strictRuns) = Quantize("0");
        Assert.DoesNotContain(strict.Graph.Nodes, n => n.OpType == "DynamicQuantizeMatMul");
        var trials = strictRuns.SelectMany(r => r.Stats.Decisions).OfType<QuantizeTrial>().ToList();
        Assert.Equal("dynamic", trials[0].FellBack);
        Assert.True(trials.Count > 1, "the static search ran no trial of its own");
        Assert.Equal([0L, 1L], trials.Take(2).Select(t => t.Trial));   // the search numbers after the dynamic trial
        Assert.True(trials.Zip(trials.Skip(1)).All(p => p.Second.Trial > p.First.Trial));
        Assert.Contains(strictRuns.SelectMany(r => r.Stats.Notes), n => n.Contains("over the budget"));
    }

    [Fact]
    public void PerColumnScalesReproduceTheWeightWithinHalfAStep()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,3] x) => (float[N,2] y) <float[3,2] w = {1.0, -0.01, -2.0, 0.02, 0.5, 0.0}, float[2] b = {1, 2}>
            {
               t = MatMul (x, w)
               y = Add (t, b)
            }
            """);
        var (q, _) = Run(m, "quantize{mode=dynamic,reduce-range=false}");
        var n = q.Graph.Nodes.Single();
        var wq = Rewriter.ConstantOf(n.Input(1))!.Span<sbyte>().ToArray();
        var s = Rewriter.ConstantOf(n.Input(2))!.ToFloatArray();
        Assert.Equal([2f / 127, 0.02f / 127], s);
        float[] w = [1.0f, -0.01f, -2.0f, 0.02f, 0.5f, 0.0f];
        for (int i = 0; i < 6; i++) Assert.True(Math.Abs(wq[i] * s[i % 2] - w[i]) <= s[i % 2] / 2 + 1e-7);
        Assert.Equal([1f, 2f], Rewriter.ConstantOf(n.Input(4))!.ToFloatArray());
        AssertEquivalentWithin(m, q, 0.05);
    }

    [Fact]
    public void WithoutCalibrationDataATransformerGoesDynamicAndACnnIsRefused()
    {
        // mode=auto (the default): a transformer with no calibration data gets dynamic int8, with a note.
        var m = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx"));
        var (auto, runs) = Run(m, "quantize");
        var (dynamic, _) = Run(m, "quantize{mode=dynamic}");
        Assert.Equal(OnnxExporter.ToBytes(dynamic), OnnxExporter.ToBytes(auto));
        Assert.Contains(runs[^1].Stats.Notes, n => n.StartsWith("no calibration data: dynamic int8", StringComparison.Ordinal));
        // Static-only asks (a budget, QOperator) and an explicit mode=static still need the data.
        foreach (var spec in new[] { "quantize{mode=static}", "quantize{format=qoperator}", "quantize{transformer=false}" })
            Assert.Contains("needs calibration data: give --calib DIR", Assert.Throws<OnnxModelException>(() => Run(m, spec)).Message);
        // A CNN has no dynamic default: refused with the hint.
        var cnn = OnnxImporter.Load(Paths.Model("digits/vgg.onnx"));
        var e = Assert.Throws<OnnxModelException>(() => Run(cnn, "quantize"));
        Assert.Contains("needs calibration data: give --calib DIR or --calib-random N; or --mode dynamic", e.Message);
        // With calibration data auto is static (QDQ pairs, no dynamic ops).
        var calib = Calibration.CalibrationSource.FromFolder(Paths.Model("transformers/bert_data"));
        var (q, _) = Run(m, "quantize", calib);
        Assert.DoesNotContain(q.Graph.Nodes, n => n.OpType is "DynamicQuantizeMatMul" or "MatMulIntegerToFloat");
        Assert.Contains(q.Graph.Nodes, n => n.OpType == "QuantizeLinear");
    }

    [Fact]
    public void DynamicModeTakesNoCalibrationAndRefusesStaticOnlyOptions()
    {
        var p = PassRegistry.Get("quantize");
        Assert.Equal(DataNeeds.None, p.Needs(Pipeline.Parse("quantize{mode=dynamic}").Steps[0].Options));
        var m = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx"));
        Assert.Throws<OnnxModelException>(() => Run(m, "quantize{mode=dynamic,max-drop=1}"));
    }

    private static void AssertEquivalentWithin(Model a, Model b, double atol)
    {
        using var sa = InferenceSession.FromModel(a);
        using var sb = InferenceSession.FromModel(b);
        var r = Validator.Compare(sa, sb, DataSet.Random(sa.Inputs, 4, 3, new Dictionary<string, long> { ["N"] = 2 }),
            new ValidationOptions { Atol = atol, Rtol = 1 });
        Assert.True(r.Passed, string.Join("; ", r.Outputs.Select(o => $"{o.Name}: max abs {o.MaxAbsError}")));
    }
}

public class EmbeddingQuantizeTests
{
    [Fact]
    public void BlocksReproduceEveryValueWithinHalfAStepAndZerosExactly()
    {
        var rng = new Random(5);
        var v = Enumerable.Range(0, 3 * 40).Select(i => i < 40 ? 0f : (float)(rng.NextDouble() * 4 - 1)).ToArray();
        var (codes, scales, zeros) = EmbeddingQuantize.Quantize(Tensor.FromFloats("e", [3, 40], v));
        Assert.Equal(3 * 2, scales.Length);   // 40 values: blocks of 32 and 8
        for (int i = 0; i < v.Length; i++)
        {
            int r = i / 40, b = i % 40 / 32;
            var s = scales[r * 2 + b];
            var back = (codes[i] - zeros[r * 2 + b]) * s;
            Assert.True(Math.Abs(back - v[i]) <= s / 2 + 1e-6, $"{i}: {v[i]} -> {back}");
            if (v[i] == 0) Assert.Equal(0f, back);
        }
    }

    [Fact]
    public void TheBertsThreeTablesBecomeGatherBlockQuantizedAndTheEmbeddingHolds()
    {
        var m = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx"));
        var (q, runs) = Run(m, "quantize{mode=dynamic,embeddings=true}");
        Assert.Equal(3, Counter(runs, Counters.Quantize.EmbeddingTables));
        // uint8 blocks of 32: each table at least ~35 dB against the float one.
        Assert.Equal(3, runs.SelectMany(r => r.Stats.Decisions).OfType<QuantizedOp>()
            .Count(d => d.Op == "Gather" && d is { Bits: 8, WeightSqnrDb: > 35 }));
        var g = q.Graph.Nodes.Where(n => n.OpType == "GatherBlockQuantized").ToList();
        Assert.Equal(3, g.Count);
        Assert.All(g, n => Assert.Equal(DataType.UInt8, Rewriter.ConstantOf(n.Input(0))!.ElementType));
        Assert.DoesNotContain(q.Graph.Initializers, v => v.Name == "word.weight");
        using var a = InferenceSession.FromModel(m);
        using var b = InferenceSession.FromModel(q);
        var r = Validator.Compare(a, b, DataSet.FromFolder(Paths.Model("transformers/bert_eval"), a.Inputs));
        Assert.True(r.Primary!.Value > 0.999, r.Primary.ToString());
    }

    [Theory]
    [InlineData(40)]   // blocks of 32 and 8: a row's two zero points share one byte
    [InlineData(96)]   // three blocks: the row's last zero point byte is half empty
    public void FourBitTablesDecodeInOrtToTheirBlocksValues(int width)
    {
        var rng = new Random(7);
        var table = Enumerable.Range(0, 10 * width).Select(_ => (float)(rng.NextDouble() * 2 - 0.5)).ToArray();
        var b = new GraphBuilder("emb");
        var ids = b.Input("ids", DataType.Int64, "N", 5);
        b.Output(b.Node("Gather", [b.Initializer("table", table, 10, width), ids]));
        var m = b.Build();
        var (q, _) = Run(m, "quantize{mode=dynamic,embeddings=true,embedding-bits=4}");
        var gq = Assert.Single(q.Graph.Nodes, n => n.OpType == "GatherBlockQuantized");
        Assert.Equal(4, gq.GetInt("bits", 0));
        Assert.Equal([10L, width / 2], Rewriter.ConstantOf(gq.Input(0))!.Dims);
        // The values the blocks claim, decoded here from the unpacked codes.
        var (codes, scales, zeros) = EmbeddingQuantize.Quantize(Tensor.FromFloats("t", [10, width], table), 4);
        int blocks = (width + 31) / 32;
        var decoded = codes.Select((c, i) => (c - zeros[i / width * blocks + i % width / 32])
            * scales[i / width * blocks + i % width / 32]).ToArray();
        var rows = new long[] { 3, 0, 9, 3, 7 };
        using var s = InferenceSession.FromModel(q);
        var y = s.Run(new Dictionary<string, Tensor>
        {
            ["ids"] = Tensor.FromValues("ids", DataType.Int64, [1, 5],
            rows.AsSpan())
        })[0].ToFloatArray();
        for (int r = 0; r < 5; r++)
            for (int j = 0; j < width; j++)
            {
                Assert.Equal(decoded[rows[r] * width + j], y[r * width + j], 1e-6);
                var step = scales[rows[r] * blocks + j / 32];
                Assert.True(Math.Abs(y[r * width + j] - table[rows[r] * width + j]) <= step / 2 + 1e-6);
            }
    }
}
