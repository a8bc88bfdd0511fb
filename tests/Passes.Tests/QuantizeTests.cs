// quantize: QDQ emission for every listed op, checked in ORT two ways -- the int8 kernels ORT fuses the
// QDQ groups into (optimizations on) give the fake-quant result (optimizations off) within one output
// quantization step, and the optimized graph ORT dumps really runs int8 (no float op left between the
// input's QuantizeLinear and the output's DequantizeLinear) -- plus QOperator lowering, the rules
// (absorption, shared scales, weights per channel, bias scale), accuracy-aware fallback and the CLI.
using System.Text.Json;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Data;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class QuantizeTests
{
    private static CalibrationSource Calib => CalibrationSource.FromRandom(16, 3, new Dictionary<string, long> { ["N"] = 2 });

    /// <summary>x -> conv 3x3 (+relu) -> OP -> conv 1x1 -> y: quantized tensors on both sides of OP.</summary>
    private static Model Around(string name, Func<GraphBuilder, Value, Value> op, long tailIn = 8, bool tail = true)
    {
        var b = new GraphBuilder(name);
        var x = b.Input("x", DataType.Float, "N", 4, 8, 8);
        var h = b.Node("Relu", [Conv(b, x, "c1", 1, 8, 4, 3, pad: 1)]);
        var y = op(b, h);
        b.Output(tail ? Conv(b, y, "c2", 2, 3, tailIn, 1) : y);
        return b.Build();
    }

    public static readonly Dictionary<string, Func<Model>> Cases = new()
    {
        ["conv-relu"] = () => Around("conv", (b, h) => h),
        ["conv-clip6"] = () =>
        {
            var b = new GraphBuilder("clip");
            var x = b.Input("x", DataType.Float, "N", 4, 8, 8);
            var h = b.Node("Clip", [Conv(b, x, "c1", 1, 8, 4, 3, pad: 1), b.Initializer("lo", [0f]), b.Initializer("hi", [6f])]);
            b.Output(Conv(b, h, "c2", 2, 3, 8, 1));
            return b.Build();
        },
        ["depthwise-conv"] = () => Around("dw", (b, h) => b.Node("Relu", [Conv(b, h, "dw", 5, 8, 1, 3, pad: 1, group: 8)])),
        ["convtranspose"] = () => Around("ct", (b, h) => b.Node("ConvTranspose", [h, W(b, "ctw", 6, 8, 4, 2, 2), W(b, "ctb", 7, 4)],
            OnnxAttribute.IntList("strides", 2, 2)), tailIn: 4),
        ["gemm"] = () => Around("gemm", (b, h) => b.Node("Gemm", [b.Node("Flatten", [b.Node("GlobalAveragePool", [h])]), W(b, "gw", 8, 5, 8), W(b, "gb", 9, 5)],
            OnnxAttribute.Int("transB", 1), OnnxAttribute.Float("alpha", 0.5f), OnnxAttribute.Float("beta", 2f)), tail: false),
        ["matmul"] = () => Around("matmul", (b, h) => b.Node("MatMul", [b.Node("Flatten", [b.Node("GlobalAveragePool", [h])]), W(b, "mw", 10, 8, 6)]), tail: false),
        ["add"] = () => Around("add", (b, h) => b.Node("Add", [h, Conv(b, h, "side", 11, 8, 8, 1)])),
        ["mul"] = () => Around("mul", (b, h) => b.Node("Mul", [h, Conv(b, h, "side", 11, 8, 8, 1)])),
        ["concat"] = () => Around("concat", (b, h) => b.Node("Concat", [h, Conv(b, h, "side", 12, 4, 8, 1)], OnnxAttribute.Int("axis", 1)), tailIn: 12),
        ["maxpool"] = () => Around("maxpool", (b, h) => b.Node("MaxPool", [h], OnnxAttribute.IntList("kernel_shape", 2, 2), OnnxAttribute.IntList("strides", 2, 2))),
        ["averagepool"] = () => Around("avgpool", (b, h) => b.Node("AveragePool", [h], OnnxAttribute.IntList("kernel_shape", 3, 3), OnnxAttribute.IntList("strides", 1, 1),
            OnnxAttribute.IntList("pads", 1, 1, 1, 1))),
        ["globalaveragepool"] = () => Around("gap", (b, h) => b.Node("GlobalAveragePool", [h])),
        ["reshape-transpose"] = () => Around("reshape", (b, h) => b.Node("Reshape", [b.Node("Transpose", [b.Node("Reshape", [h, b.Initializer("s1", [0L, 8L, 64L], 3)])],
            OnnxAttribute.IntList("perm", 0, 1, 2)), b.Initializer("s2", [0L, 8L, 8L, 8L], 4)])),
        ["squeeze-unsqueeze"] = () => Around("squeeze", (b, h) => b.Node("Squeeze", [b.Node("Unsqueeze", [h, b.Initializer("ax", [2L], 1)]), b.Initializer("ax2", [2L], 1)])),
        ["split-concat"] = () => Around("split", (b, h) =>
        {
            var parts = b.NodeMulti("Split", [h, b.Initializer("sp", [4L, 4L], 2)], 2, OnnxAttribute.Int("axis", 1));
            return b.Node("Concat", [parts[1], parts[0]], OnnxAttribute.Int("axis", 1));
        }),
        ["slice"] = () => Around("slice", (b, h) => b.Node("Slice", [h, b.Initializer("st", [1L], 1), b.Initializer("en", [7L], 1), b.Initializer("axs", [2L], 1)])),
        ["resize"] = () => Around("resize", (b, h) => b.Node("Resize", [h, null, b.Initializer("scales", [1f, 1f, 2f, 2f], 4)], OnnxAttribute.String("mode", "nearest"))),
        ["flatten-gemm-output"] = () =>
        {
            var b = new GraphBuilder("flat");
            var x = b.Input("x", DataType.Float, "N", 4, 4, 4);
            var h = b.Node("Flatten", [b.Node("Relu", [Conv(b, x, "c1", 1, 2, 4, 1)])]);
            b.Output(b.Node("Gemm", [h, W(b, "fw", 3, 32, 5), W(b, "fb", 4, 5)]));
            return b.Build();
        },
    };

    public static TheoryData<string> CaseNames() => new(Cases.Keys.Order(StringComparer.Ordinal));

    private static readonly SessionSettings FakeQuant = new() { Optimization = GraphOptimization.Disabled };

    /// <summary>Largest |int8 kernels - fake quant| over the outputs, in units of each output's quantization step.</summary>
    private static double StepsApart(Model q)
    {
        var scales = q.Graph.Outputs.Select(o => o.Producer is { OpType: "DequantizeLinear" } dq ? Rewriter.ConstantOf(dq.Input(1))!.ToFloatArray()[0] : float.NaN).ToArray();
        using var a = InferenceSession.FromModel(q, FakeQuant);
        using var b = InferenceSession.FromModel(q, new SessionSettings { Optimization = GraphOptimization.All });
        double worst = 0;
        foreach (var batch in DataSet.Random(a.Inputs, 4, 21, new Dictionary<string, long> { ["N"] = 2 }).Batches())
        {
            var x = a.Run(batch.Inputs); var y = b.Run(batch.Inputs);
            for (int k = 0; k < x.Length; k++)
            {
                var u = x[k].ToFloatArray(); var v = y[k].ToFloatArray();
                for (int i = 0; i < u.Length; i++) worst = Math.Max(worst, Math.Abs(u[i] - v[i]) / scales[k]);
            }
        }
        return worst;
    }

    /// <summary>Op types of the graph ORT runs (optimizations on), from its dumped model.</summary>
    private static List<string> OrtOptimizedOps(Model m)
    {
        var path = Path.Combine(Paths.TempDir(), "optimized.onnx");
        using (InferenceSession.FromModel(m, new SessionSettings { Optimization = GraphOptimization.All, OptimizedModelPath = path, LogLevel = OrtLogLevel.Error })) { }
        return OnnxImporter.Load(path).Graph.Nodes.Select(n => n.OpType).ToList();
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void QdqGroupsRunAsInt8KernelsWithinOneStepOfFakeQuant(string name)
    {
        var m = Cases[name]();
        var (q, runs) = Run(m, "quantize", Calib);
        var quantized = runs[0].Stats.Decisions.OfType<QuantizedOp>().Where(d => d.Decision == "int8").Select(d => d.Op).ToList();
        var opsOfCase = m.Graph.Nodes.Select(n => n.OpType).Where(t => t is not ("Relu" or "Clip")).Distinct().ToList();
        Assert.All(opsOfCase, t => Assert.Contains(t, quantized));
        Assert.True(StepsApart(q) <= 1.0 + 1e-6, $"int8 kernels differ from fake quant by {StepsApart(q)} steps");
        var ops = OrtOptimizedOps(q);
        if (name == "convtranspose")
        {
            // ORT 1.30's CPU provider has no int8 ConvTranspose: it runs in float on its dequantized input,
            // weights and bias (4 DQ with the output's), between a Q before and after; everything else fuses.
            Assert.Equal(1, ops.Count(o => o == "ConvTranspose"));
            Assert.Equal(2, ops.Count(o => o == "QuantizeLinear"));
            Assert.Equal(4, ops.Count(o => o == "DequantizeLinear"));
            return;
        }
        // ORT fused everything: one QuantizeLinear after the input, one DequantizeLinear per output, nothing float between.
        Assert.Equal(1, ops.Count(o => o == "QuantizeLinear"));
        Assert.Equal(q.Graph.Outputs.Count, ops.Count(o => o == "DequantizeLinear"));
        Assert.DoesNotContain(ops, o => o is "Conv" or "Gemm" or "MatMul" or "Add" or "Mul" or "AveragePool" or "GlobalAveragePool" or "Relu" or "Clip");
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void QOperatorFormAgreesWithQdqWithinOneStep(string name)
    {
        var m = Cases[name]();
        var (qdq, _) = Run(m, "quantize", Calib);
        var (qop, runs) = Run(m, "quantize{format=qoperator}", Calib);
        Assert.DoesNotContain(qop.Graph.Nodes, n => n.OpType is "Conv" or "MatMul" or "Gemm");
        Assert.True(runs[0].Stats.Counters.Keys.Any(k => k.StartsWith("lowered")), "nothing was lowered");
        var step = qop.Graph.Outputs.Select(o => Rewriter.ConstantOf(o.Producer!.Input(1))!.ToFloatArray()[0]).Max();
        using var a = InferenceSession.FromModel(qdq, FakeQuant);
        using var b = InferenceSession.FromModel(qop);
        foreach (var batch in DataSet.Random(a.Inputs, 3, 5, new Dictionary<string, long> { ["N"] = 2 }).Batches())
        {
            var x = a.Run(batch.Inputs); var y = b.Run(batch.Inputs);
            for (int k = 0; k < x.Length; k++)
                Assert.True(x[k].ToFloatArray().Zip(y[k].ToFloatArray()).All(p => Math.Abs(p.First - p.Second) <= step * 1.0001), $"output {k} beyond one step");
        }
    }

    [Theory]
    [InlineData("false", 127)]
    [InlineData("true", 63)]
    public void WeightsArePerChannelInt8BiasIsInt32AtInputTimesWeightScaleAndReluIsAbsorbed(string reduce, int qmax)
    {
        var (q, runs) = Run(Cases["conv-relu"](), $"quantize{{reduce-range={reduce}}}", Calib);
        Assert.Equal(0, Count(q, "Relu"));
        Assert.Contains(runs[0].Stats.Decisions.OfType<QuantizedOp>(), d => d.Absorbed == "Relu");
        var conv = q.Graph.Nodes.First(n => n.OpType == "Conv");
        var wdq = conv.Input(1)!.Producer!;
        Assert.Equal(DataType.Int8, Rewriter.ConstantOf(wdq.Input(0))!.ElementType);
        var ws = Rewriter.ConstantOf(wdq.Input(1))!.ToFloatArray();
        Assert.Equal(8, ws.Length);
        Assert.Equal(0, wdq.GetInt("axis", -1));
        var wq = Rewriter.ConstantOf(wdq.Input(0))!.ToDoubleArray();
        for (int c = 0; c < 8; c++) Assert.Equal(qmax, wq.Skip(c * 36).Take(36).Max(Math.Abs));
        Assert.Equal(reduce == "true", runs[0].Stats.Notes.Any(n => n.Contains("reduce-range")));
        var bdq = conv.Input(2)!.Producer!;
        Assert.Equal(DataType.Int32, Rewriter.ConstantOf(bdq.Input(0))!.ElementType);
        var xs = Rewriter.ConstantOf(conv.Input(0)!.Producer!.Input(1))!.ToFloatArray()[0];
        var bs = Rewriter.ConstantOf(bdq.Input(1))!.ToFloatArray();
        for (int c = 0; c < 8; c++) Assert.Equal(xs * ws[c], bs[c], 1e-6 * bs[c]);
        // The conv output's uint8 range starts at 0 (zero point 0): quantizing clamps exactly like the absorbed ReLU.
        var yq = conv.Output().Uses.Single().Node;
        Assert.Equal(0, Rewriter.ConstantOf(yq.Input(2))!.ToDoubleArray()[0]);
    }

    [Fact]
    public void ReduceRangeAutoFollowsThisCpu()
    {
        var (q, _) = Run(Cases["conv-relu"](), "quantize", Calib);
        var wdq = q.Graph.Nodes.First(n => n.OpType == "Conv").Input(1)!.Producer!;
        var top = Rewriter.ConstantOf(wdq.Input(0))!.ToDoubleArray().Max(Math.Abs);
        Assert.Equal(Int8Hardware.U8S8Saturates ? 63 : 127, top);
    }

    [Fact]
    public void FullRangeWeightsSaturateOnlyWhereTheHardwareSaysSo()
    {
        // The reason reduce-range exists: on x86 without VNNI, full-range int8 weights make ORT's kernels
        // differ from the QDQ math by many steps; with VNNI (or off x86) they agree within one.
        var (q, _) = Run(Cases["conv-relu"](), "quantize{reduce-range=false}", Calib);
        var steps = StepsApart(q);
        if (Int8Hardware.U8S8Saturates) Assert.True(steps > 2, $"expected saturation on {Int8Hardware.Description}, got {steps} steps");
        else Assert.True(steps <= 1.0 + 1e-6, $"{steps} steps on {Int8Hardware.Description}");
    }

    [Fact]
    public void SharedScaleOpsReuseTheirInputsParameters()
    {
        var (q, _) = Run(Cases["maxpool"](), "quantize", Calib);
        var pool = q.Graph.Nodes.Single(n => n.OpType == "MaxPool");
        var inDq = pool.Input(0)!.Producer!;
        var outQ = pool.Output().Uses.Single().Node;
        Assert.Same(inDq.Input(1), outQ.Input(1));
        Assert.Same(inDq.Input(2), outQ.Input(2));
    }

    [Fact]
    public void Int8SymmetricActivationsKeepReluAndUseZeroPointZero()
    {
        var (q, _) = Run(Cases["conv-relu"](), "quantize{activation-type=int8}", Calib);
        Assert.Equal(1, Count(q, "Relu"));
        Assert.All(q.Graph.Nodes.Where(n => n.OpType == "QuantizeLinear"), n =>
        {
            var z = Rewriter.ConstantOf(n.Input(2))!;
            Assert.Equal(DataType.Int8, z.ElementType);
            Assert.Equal(0, z.ToDoubleArray()[0]);
        });
        Assert.True(StepsApart(q) <= 1.0 + 1e-6);
    }

    [Fact]
    public void ExcludeAndPerTensorOptionsAreHonoured()
    {
        var (q, runs) = Run(Cases["add"](), "quantize{exclude=Add,per-channel=false}", Calib);
        Assert.Contains(runs[0].Stats.Decisions.OfType<QuantizedOp>(), d => d.Reason == "excluded");
        var add = q.Graph.Nodes.Single(n => n.OpType == "Add");
        Assert.All(q.Graph.Nodes.Where(n => n.OpType == "DequantizeLinear"), n => Assert.Equal(0, Rewriter.ConstantOf(n.Input(1))!.Dims.Length));
        Assert.Equal(DataType.Float, add.Output().ElementType);
    }

    [Fact]
    public void TrainedResNetRunsFullyInt8InOrtAndKeepsItsAccuracy()
    {
        var resnet = OnnxImporter.Load(Path.Combine(Paths.TestModels, "digits", "resnet.onnx"));
        var (q, _) = Run(resnet, "canonicalize,fold-bn,quantize", CalibrationSource.FromFolder(Path.Combine(Paths.TestModels, "digits", "data", "calib")));
        var ops = OrtOptimizedOps(q);
        Assert.Equal(11, ops.Count(o => o == "QLinearConv"));
        Assert.Equal(4, ops.Count(o => o == "QLinearAdd"));
        Assert.Equal(1, ops.Count(o => o == "QGemm"));
        Assert.Equal(1, ops.Count(o => o == "QuantizeLinear"));
        Assert.Equal(1, ops.Count(o => o == "DequantizeLinear"));
        using var a = InferenceSession.FromModel(resnet);
        using var b = InferenceSession.FromModel(q);
        var report = Runtime.Validation.Validator.Compare(a, b, DataSet.FromFolder(Path.Combine(Paths.TestModels, "digits", "data", "test"), a.Inputs));
        Assert.True(report.ReferenceAccuracy - report.CandidateAccuracy <= 0.003, $"{report.ReferenceAccuracy} -> {report.CandidateAccuracy}");
    }

    [Fact]
    public void AccuracyAwareModeFallsBackTheWorstOpsUntilTheBudgetHolds()
    {
        // With mse ranges the all-int8 MobileNetV2-style net loses 0.2 points on held-out data; a budget of 0
        // makes the search keep the ops with the largest own error in float until nothing is lost.
        var dir = Path.Combine(Paths.TestModels, "digits", "data");
        var m = OnnxImporter.Load(Path.Combine(Paths.TestModels, "digits", "mobilenetv2.onnx"));
        var copy = m.Clone();
        var ctx = PassContexts.Create(copy, CalibrationSource.FromFolder(Path.Combine(dir, "calib")), evaluation: CalibrationSource.FromFolder(Path.Combine(dir, "test")));
        var runs = PipelineRunner.Run(copy, Pipeline.Parse("canonicalize,fold-bn,quantize{calibrate=mse,max-drop=0,"
            + "tune-calibration=false,search=op}"), ctx, verifyEach: true);
        var trials = runs[2].Stats.Decisions.OfType<QuantizeTrial>().ToList();
        Assert.True(trials.Count >= 2, "the all-int8 model should have needed fallbacks");
        Assert.True(trials[0].Drop > 0);
        Assert.True(trials[^1].Drop <= 0);
        // Each trial is judged by its drop's upper bound at 90% (paired binomial on the 500 images).
        Assert.All(trials, t => Assert.True(t.DropUpper >= t.Drop - 1e-9, $"{t.DropUpper} < {t.Drop}"));
        Assert.True(trials[0].DropUpper > trials[0].Drop);
        Assert.True(trials[^1].DropUpper <= 0);
        Assert.Contains(runs[2].Stats.Decisions.OfType<QuantizedOp>(), d => d.Reason == "kept in float (accuracy)");
        Assert.NotEmpty(runs[2].Stats.Decisions.OfType<OpSensitivity>());
        // The model the pass leaves is the one the search accepted: its held-out accuracy is within budget,
        // and most ops are still int8.
        using var a = InferenceSession.FromModel(m);
        using var b = InferenceSession.FromModel(copy);
        var v = Runtime.Validation.Validator.Compare(a, b, DataSet.FromFolder(Path.Combine(dir, "test"), a.Inputs));
        Assert.True(v.ReferenceAccuracy - v.CandidateAccuracy <= 1e-9, $"{v.ReferenceAccuracy} -> {v.CandidateAccuracy}");
        Assert.True(Count(copy, "QuantizeLinear") > 10, $"only {Count(copy, "QuantizeLinear")} tensors quantized");
    }

    [Fact]
    public void AccuracyBudgetWithoutEvaluationDataIsAClearError()
    {
        var e = Assert.Throws<OnnxModelException>(() => Run(Cases["conv-relu"](), "quantize{max-drop=0.5}", Calib));
        Assert.Contains("--eval", e.Message);
    }

    [Fact]
    public void AccuracyAwareModeTriesTheOtherCalibrationMethodsFirst()
    {
        // The same 0.2-point loss with mse ranges: another method for every tensor (or for the worst ops'
        // outputs) is tried before any op goes back to float, and the budget holds.
        var dir = Path.Combine(Paths.TestModels, "digits", "data");
        var m = OnnxImporter.Load(Path.Combine(Paths.TestModels, "digits", "mobilenetv2.onnx"));
        var copy = m.Clone();
        var ctx = PassContexts.Create(copy, CalibrationSource.FromFolder(Path.Combine(dir, "calib")),
            evaluation: CalibrationSource.FromFolder(Path.Combine(dir, "test")));
        // (bias correction and equalization, which the search tries before this, are off here)
        var runs = PipelineRunner.Run(copy, Pipeline.Parse("canonicalize,fold-bn,quantize{calibrate=mse,max-drop=0,"
            + "bias-correct=false,equalize=false}"),
            ctx, verifyEach: true);
        var trials = runs[2].Stats.Decisions.OfType<QuantizeTrial>().ToList();
        Assert.Equal("calibrate=minmax for every tensor", trials[1].FellBack);
        Assert.True(trials.Min(t => t.Drop) <= 0);
        using var a = InferenceSession.FromModel(m);
        using var b = InferenceSession.FromModel(copy);
        var v = Runtime.Validation.Validator.Compare(a, b, DataSet.FromFolder(Path.Combine(dir, "test"), a.Inputs));
        Assert.True(v.ReferenceAccuracy - v.CandidateAccuracy <= 1e-9, $"{v.ReferenceAccuracy} -> {v.CandidateAccuracy}");
    }

    [Fact]
    public void ClassSearchKeepsTheFastestClassWithinTheBudgetInFloat()
    {
        // The detection-style net (HardSwish gates, Concat neck, sigmoid map head) at a budget of 0.01
        // cosine points: all-int8 and every calibration method miss it, whole op classes are tried (each
        // timed), and the model left is within the budget with most ops still int8.
        var dir = Path.Combine(Paths.TestModels, "detection", "data");
        var m = OnnxImporter.Load(Path.Combine(Paths.TestModels, "detection", "textdet.onnx"));
        var copy = m.Clone();
        var ctx = PassContexts.Create(copy, CalibrationSource.FromFolder(Path.Combine(dir, "calib")),
            evaluation: CalibrationSource.FromFolder(Path.Combine(dir, "test")));
        var runs = PipelineRunner.Run(copy, Pipeline.Parse("canonicalize,fold-bn,quantize{max-drop=0.01}"), ctx);
        var q = runs[2].Stats;
        var trials = q.Decisions.OfType<QuantizeTrial>().ToList();
        Assert.Equal("cosine_x100", trials[0].Metric);
        Assert.True(trials[0].Drop > 0.01);
        var classes = trials.Where(t => t.FellBack?.StartsWith("class ") == true).ToList();
        Assert.Contains(classes, t => t.FellBack == "class element-wise");
        Assert.Contains(classes, t => t.FellBack == "class output-head");
        Assert.All(classes, t => Assert.NotNull(t.LatencyMs));
        Assert.Contains(q.Notes, n => n.StartsWith("accuracy-aware: "));
        // Where the error enters: every quantized activation in graph order, the input first.
        var trace = q.Decisions.OfType<TensorError>().ToList();
        Assert.Equal("input", trace[0].Tensor);
        Assert.All(trace, t => Assert.InRange(t.SqnrDb!.Value, 5, 50));
        Assert.Contains(q.Notes, n => n.StartsWith("accuracy-aware: int8 error enters most at "));
        var kept = q.Decisions.OfType<QuantizedOp>().Where(d => d.Reason == "kept in float (accuracy)").ToList();
        Assert.NotEmpty(kept);
        using var a = InferenceSession.FromModel(m);
        using var b = InferenceSession.FromModel(copy);
        var v = Runtime.Validation.Validator.Compare(a, b, DataSet.FromFolder(Path.Combine(dir, "test"), a.Inputs));
        Assert.True(100 * (1 - v.Outputs[0].Cosine) <= 0.01 + 1e-6, $"cosine {v.Outputs[0].Cosine}");
        Assert.True(Count(copy, "QuantizeLinear") > 10, $"only {Count(copy, "QuantizeLinear")} tensors quantized");
    }
}
