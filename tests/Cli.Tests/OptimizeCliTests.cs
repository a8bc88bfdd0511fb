// optimize end to end on the trained test models: validation in ORT (tolerance for exact pipelines,
// agreement for approximate ones, on held-out data with --eval), the report, atomic writes that never
// touch the input, refusal of a failed validation unless --force, determinism, and usage errors.
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class OptimizeCliTests
{
    private static readonly string Resnet = Cli.Model("digits/resnet.onnx");
    private static readonly string Mbv2 = Cli.Model("digits/mobilenetv2.onnx");
    private static readonly string Calib = Cli.Model("digits/data/calib");
    private static readonly string Test = Cli.Model("digits/data/test");

    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public void ExactPipelineValidatesOnHeldOutDataWritesAndReports()
    {
        var dir = Paths.TempDir();
        var (outPath, report) = (Path.Combine(dir, "out.onnx"), Path.Combine(dir, "r.json"));
        var before = Sha(Resnet);
        var r = Cli.Run("optimize", Resnet, "-o", outPath, "--passes", "canonicalize,fold-bn,fuse-bias", "--eval", Test, "--report", report);
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Equal(before, Sha(Resnet));
        Assert.Contains("wrote", r.Err);
        var j = JsonDocument.Parse(File.ReadAllText(report)).RootElement;
        Assert.Equal("canonicalize{max-iterations=10,fold-constants=true,max-growth=4},fold-bn,fuse-bias", j.GetProperty("pipeline").GetString());
        Assert.Equal(40, j.GetProperty("before").GetProperty("nodes").GetInt32());
        Assert.True(j.GetProperty("after").GetProperty("nodes").GetInt32() < 30);
        Assert.False(j.GetProperty("after").GetProperty("op_histogram").TryGetProperty("BatchNormalization", out _));
        var v = j.GetProperty("validation");
        Assert.Equal("tolerance", v.GetProperty("mode").GetString());
        Assert.True(v.GetProperty("accepted").GetBoolean());
        Assert.Equal(500, v.GetProperty("samples").GetInt32());
        Assert.Equal(0.996, v.GetProperty("accuracy").GetProperty("candidate").GetDouble(), 3);
        Assert.True(v.GetProperty("outputs")[0].GetProperty("sqnr_db").GetDouble() > 80);
        Assert.Equal(0, Cli.Run("validate", Resnet, outPath, "--data", Test).ExitCode);
    }

    [Fact]
    public void DimsGiveTheReportsMacsAtThatSpecialization()
    {
        // [batch, sequence, 8] x [8, 4]: MACs unknown until the sequence is given; --dim also sizes the random
        // validation inputs.
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "seq.onnx");
        OnnxExporter.Save(TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[batch,sequence,8] x) => (float[batch,sequence,4] y)
               <float[8,4] w = {1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8}>
            {
               h = Identity (x)
               y = MatMul (h, w)
            }
            """), path);
        var report = Path.Combine(dir, "r.json");
        var r = Cli.Run("optimize", path, "-o", Path.Combine(dir, "out.onnx"), "--passes", "canonicalize",
            "--dim", "sequence=10", "--report", report);
        Assert.True(r.ExitCode == 0, r.Err);
        var j = JsonDocument.Parse(File.ReadAllText(report)).RootElement;
        foreach (var side in new[] { "before", "after" })
        {
            Assert.Equal(10 * 8 * 4, j.GetProperty(side).GetProperty("total_macs").GetInt64());
            Assert.Equal(10, j.GetProperty(side).GetProperty("dims").GetProperty("sequence").GetInt64());
        }
    }

    [Fact]
    public void TwoRunsGiveByteIdenticalModelsAndReports()
    {
        var dir = Paths.TempDir();
        string Once(string tag)
        {
            var o = Path.Combine(dir, tag + ".onnx");
            var rp = Path.Combine(dir, tag + ".json");
            var r = Cli.Run("optimize", Mbv2, "-o", o, "--passes", "canonicalize,fold-bn,linearize{max-agreement-drop=0},fold-conv,fuse-bias,canonicalize",
                "--calib", Calib, "--validate", "--report", rp);
            Assert.True(r.ExitCode == 0, r.Err);
            // Timings are the only thing allowed to differ between runs.
            return Regex.Replace(File.ReadAllText(rp), "\"time_ms\": [0-9.E+-]+", "\"time_ms\": 0").Replace(tag + ".onnx", "X.onnx");
        }
        var a = Once("a");
        var b = Once("b");
        Assert.Equal(a, b);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "a.onnx")), File.ReadAllBytes(Path.Combine(dir, "b.onnx")));
        var lin = JsonDocument.Parse(a).RootElement.GetProperty("passes").EnumerateArray().Single(p => p.GetProperty("pass").GetString()!.StartsWith("linearize"));
        var first = lin.GetProperty("decisions")[0];
        foreach (var key in new[] { "activation", "decision", "fraction_negative", "negative_energy_ratio", "min", "max" })
            Assert.True(first.TryGetProperty(key, out _), $"decision lacks '{key}': {first}");
    }

    [Fact]
    public void FailedValidationWritesNothingUnlessForced()
    {
        var dir = Paths.TempDir();
        var outPath = Path.Combine(dir, "out.onnx");
        string[] args = ["optimize", Resnet, "-o", outPath, "--passes", "fold-bn,linearize{max-agreement-drop=100}", "--calib", Calib,
            "--eval", Test, "--max-agreement-drop", "0.5"];
        var r = Cli.Run(args);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("validation failed", r.Err);
        Assert.Contains("not written", r.Err);
        Assert.False(File.Exists(outPath));
        Assert.Empty(Directory.GetFiles(dir));
        r = Cli.Run([.. args, "--force"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("written anyway", r.Err);
        Assert.True(File.Exists(outPath));
    }

    [Fact]
    public void ApproximateBudgetIsCheckedOnHeldOutData()
    {
        // Budget 0 is exact on the calibration data and stays within the limit on held-out data.
        var dir = Paths.TempDir();
        var report = Path.Combine(dir, "r.json");
        var r = Cli.Run("optimize", Mbv2, "-o", Path.Combine(dir, "o.onnx"), "--passes", "fold-bn,linearize{max-agreement-drop=0}",
            "--calib", Calib, "--eval", Test, "--report", report);
        Assert.True(r.ExitCode == 0, r.Err);
        var v = JsonDocument.Parse(File.ReadAllText(report)).RootElement.GetProperty("validation");
        Assert.Equal("agreement", v.GetProperty("mode").GetString());
        Assert.Contains("test", v.GetProperty("data").GetString());
    }

    [Theory]
    [InlineData("linearize", "needs calibration data")]
    [InlineData("quantize", "needs calibration data: give --calib DIR or --calib-random N; or --mode dynamic")]
    [InlineData("fold-bn,nosuch", "unknown pass 'nosuch'")]
    [InlineData("fold-conv{objective=fast}", "one of macs|params|latency|depth")]
    public void UsageErrorsExitTwoWithOneLineAndWriteNothing(string pipeline, string message)
    {
        var dir = Paths.TempDir();
        var r = Cli.Run("optimize", Resnet, "-o", Path.Combine(dir, "o.onnx"), "--passes", pipeline);
        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.Err.TrimEnd('\n').Split('\n'));
        Assert.Contains(message, r.Err);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void OptimizeRefusesToOverwriteItsInput()
    {
        var dir = Paths.TempDir();
        var copy = Path.Combine(dir, "m.onnx");
        File.Copy(Resnet, copy);
        var r = Cli.Run("optimize", copy, "-o", copy, "--passes", "fold-bn");
        Assert.Equal(2, r.ExitCode);
        Assert.Equal(Sha(Resnet), Sha(copy));
    }
}

public class OptimizerLibraryMatchesCliTests
{
    [Fact]
    public void OptimizerRunGivesTheCliModelAndReport()
    {
        var dir = Paths.TempDir();
        var (outPath, reportPath) = (Path.Combine(dir, "out.onnx"), Path.Combine(dir, "r.json"));
        var (input, calib, test) = (Cli.Model("digits/mobilenetv2.onnx"), Cli.Model("digits/data/calib"), Cli.Model("digits/data/test"));
        const string pipeline = "canonicalize,fold-bn,linearize{max-agreement-drop=0},fold-conv,fuse-bias,canonicalize";
        var r = Cli.Run("optimize", input, "-o", outPath, "--passes", pipeline, "--calib", calib, "--eval", test, "--report", reportPath);
        Assert.True(r.ExitCode == 0, r.Err);
        var lib = OnnxOpt.Passes.Optimizer.Run(input, new OnnxOpt.Passes.OptimizeOptions
        {
            Pipeline = OnnxOpt.Passes.Pipeline.Parse(pipeline),
            Calibration = OnnxOpt.Calibration.CalibrationSource.FromFolder(calib),
            Evaluation = OnnxOpt.Calibration.CalibrationSource.FromFolder(test),
        }, outPath);
        Assert.Equal(File.ReadAllBytes(outPath), lib.Bytes);
        static string NoTimes(string json) => Regex.Replace(json, "\"time_ms\": [0-9.]+", "\"time_ms\": 0");
        Assert.Equal(NoTimes(File.ReadAllText(reportPath)), NoTimes(OnnxOpt.Passes.OptimizeReportWriter.Json(lib.Report)));
    }
}
