// The library's optimize driver: exact vs approximate validation from each step's IsExact(options),
// data needs checked before any pass runs, the default limit from budget options, the input never
// changed, presets, and the report's renderers.
using System.Text.Json;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class OptimizerTests
{
    private static string Model(string rel) => Path.Combine(Paths.TestModels, rel);
    private static readonly CalibrationSource Calib = CalibrationSource.FromFolder(Model("digits/data/calib"));
    private static readonly CalibrationSource Test = CalibrationSource.FromFolder(Model("digits/data/test"));

    [Fact]
    public void ExactPipelineIsValidatedByToleranceAndLeavesTheInputAlone()
    {
        var input = OnnxImporter.Load(Model("digits/resnet.onnx"));
        var before = OnnxExporter.ToBytes(input);
        var r = Optimizer.Run(input, new OptimizeOptions { Pipeline = Pipeline.Parse("canonicalize,fold-bn,fuse-bias"), Validate = true });
        Assert.Equal(before, OnnxExporter.ToBytes(input));
        Assert.True(r.Accepted);
        Assert.True(r.Report.Exact);
        Assert.Equal(ValidationMode.Tolerance, r.Report.Validation!.Mode);
        Assert.Equal("10 seeded random input sets (seed 1)", r.Report.Validation.Report.Data);
        Assert.Equal(0, Count(r.Model, "BatchNormalization"));
        Assert.Equal(40, r.Report.Before.NodeCount);
        Assert.Equal(r.Bytes, OnnxExporter.ToBytes(r.Model));
    }

    [Theory]
    [InlineData("fold-conv", true)]
    [InlineData("fold-conv{allow-border-error=true}", false)]
    [InlineData("canonicalize,linearize{max-agreement-drop=0}", false)]
    [InlineData("sparsify{density=0.5}", false)]
    [InlineData("quantize", false)]
    public void ExactnessIsDeclaredPerOptionSet(string pipeline, bool exact) =>
        Assert.Equal(exact, Optimizer.IsExact(Pipeline.Parse(pipeline)));

    [Fact]
    public void ApproximatePipelineIsValidatedByTheDropOnHeldOutData()
    {
        var input = OnnxImporter.Load(Model("digits/vgg.onnx"));
        var r = Optimizer.Run(input, new OptimizeOptions
        {
            Pipeline = Pipeline.Parse("canonicalize,fold-bn,linearize{max-agreement-drop=0}"),
            Calibration = Calib,
            Evaluation = Test,
        });
        var v = r.Report.Validation!;
        Assert.Equal(ValidationMode.Agreement, v.Mode);
        Assert.Equal(0.5, v.Limit);
        Assert.Equal(Runtime.Validation.DropMetric.Accuracy, v.Drop!.Value.Metric);
        Assert.Equal(500, v.Report.Samples);
        Assert.True(v.Accepted, v.Reason);
    }

    [Fact]
    public void MissingDataIsRefusedBeforeAnyPassRuns()
    {
        var input = OnnxImporter.Load(Model("digits/resnet.onnx"));
        var e = Assert.Throws<OnnxModelException>(() => Optimizer.Run(input, new OptimizeOptions { Pipeline = Pipeline.Parse("canonicalize,linearize") }));
        Assert.Contains("pass 'linearize' needs calibration data", e.Message);
        e = Assert.Throws<OnnxModelException>(() => Optimizer.Run(input,
            new OptimizeOptions { Pipeline = Pipeline.Parse("quantize{max-drop=1}"), Calibration = Calib }));
        Assert.Contains("needs held-out evaluation data", e.Message);
    }

    [Theory]
    [InlineData("canonicalize,fold-bn", 0.5)]
    [InlineData("linearize{max-agreement-drop=2}", 2)]
    [InlineData("linearize{max-agreement-drop=0.1},quantize{max-drop=1.5}", 1.5)]
    public void DefaultLimitIsTheLargestBudgetAndAtLeastHalfAPoint(string pipeline, double limit) =>
        Assert.Equal(limit, Optimizer.DefaultLimit(Pipeline.Parse(pipeline)));

    [Fact]
    public void QuantizePresetBuildsItsPipelineAndRefusesUnknownOptions()
    {
        var p = Presets.Quantize.Build([new("calibrate", "entropy")]);
        Assert.StartsWith("canonicalize{", p.ToString());
        Assert.Contains(",fold-bn,fold-affine,fuse{layernorm=false,gelu=false,hardswish=true,softmax-guard=true},"
            + "quantize{format=qdq,"
            + "calibrate=entropy,", p.ToString());
        var e = Assert.Throws<OnnxModelException>(() => Presets.Quantize.Build([new("budget", "1")]));
        Assert.Contains("preset 'quantize' has no option 'budget'", e.Message);
    }

    [Fact]
    public void ReportJsonRoundsNumbersToWhatTheyMean()
    {
        Assert.Equal(0.40626, JsonNumbers.Meaningful(0.4062600000000001));
        var input = OnnxImporter.Load(Model("digits/resnet.onnx"));
        var r = Optimizer.Run(input, new OptimizeOptions { Pipeline = Pipeline.Parse("fold-bn"), Validate = true });
        var j = JsonDocument.Parse(OptimizeReportWriter.Json(r.Report)).RootElement;
        Assert.False(j.TryGetProperty("input", out _));
        Assert.Equal("fold-bn", j.GetProperty("pipeline").GetString());
        Assert.Equal("tolerance", j.GetProperty("validation").GetProperty("mode").GetString());
        Assert.Contains("validation on 10 seeded random input sets (seed 1): passed", OptimizeReportWriter.Summary(r.Report));
    }

    private sealed record MyDecision(string Thing, double Value) : Decision;

    private static string Json(Decision d)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, OptimizeReportWriter.Options with { Indented = false })) OptimizeReportWriter.WriteDecision(w, d);
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    [Fact]
    public void DecisionsSerializeTypedWithSnakeCaseNamesAndNoInapplicableFields()
    {
        Assert.Equal("""{"fold":"a -> b","decision":"refused","reason":"fan-out"}""",
            Json(new FoldDecision("a -> b", null, "refused") { Reason = "fan-out" }));
        Assert.Equal("""{"node":"y","op":"Conv","decision":"int8","absorbed":"Relu","range_min":0,"range_max":6.123456789}""",
            Json(new QuantizedOp("y", "Conv", "int8") { Absorbed = "Relu", RangeMin = 0, RangeMax = 6.1234567891234 }));
        Assert.Equal("""{"node":"y","output_sqnr_db_alone_in_int8":null}""", Json(new OpSensitivity("y", double.NaN)));
        // A library user's own decision record serializes by reflection with the same conventions.
        Assert.Equal("""{"thing":"x","value":0.40626}""", Json(new MyDecision("x", 0.4062600000000001)));
    }

    /// <summary>distill for 20 steps on the digits VGG after pruning, without --eval.</summary>
    private static OptimizeResult Trained(CalibrationSource calib, double holdOut = 0.2) =>
        Optimizer.Run(OnnxImporter.Load(Model("digits/vgg.onnx")), new OptimizeOptions
        {
            Pipeline = Pipeline.Parse("canonicalize,fold-bn,prune{ratio=0.25},distill{steps=20,eval-every=10}"),
            Calibration = calib,
            HoldOut = holdOut,
        });

    [Fact]
    public void ATrainingPipelineWithoutEvalIsJudgedOnCalibrationSamplesItDidNotTrainOn()
    {
        var r = Trained(Calib);
        Assert.Contains("held out 50 of the 200 calibration samples", r.Report.DataNote);
        Assert.Contains("distill trained on the other 150", r.Report.DataNote);
        Assert.Contains(r.Report.DataNote!, r.Report.Notes);
        // Validation ran on the 50 held-out samples only.
        Assert.NotNull(r.Report.Validation);
        Assert.Contains("50 held out", r.Report.Validation!.Report.Data);
        Assert.Equal(50, r.Report.Validation.Report.Samples);
        Assert.Contains("\"data\": \"held out 50", OptimizeReportWriter.Json(r.Report));
    }

    [Fact]
    public void TooFewSamplesToHoldOutAndTrainIsRefusedWithOneLine()
    {
        var eighty = Calib.Split(80).HeldOut; // 80 of the 200 samples: 50 held out would leave 30 to train on
        var e = Assert.Throws<OnnxModelException>(() => Trained(eighty));
        Assert.Contains("too few to hold out 50", e.Message);
        Assert.Contains("--eval DIR", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void HoldOutZeroTrainsOnAllAndRefusesTheUncheckedResult()
    {
        var r = Trained(Calib, holdOut: 0);
        Assert.False(r.Accepted);
        Assert.Contains("budget was not checked", r.Verdict);
        Assert.Contains("trained on all 200 calibration samples", r.Report.DataNote);
    }
}
