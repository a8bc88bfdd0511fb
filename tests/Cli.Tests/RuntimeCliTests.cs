// run / validate / bench end to end, with their exit codes and reports.
using System.Text.Json;
using OnnxOpt.GraphIR;
using OnnxOpt.Data;

namespace OnnxOpt.Tests;

public class RuntimeCliTests
{
    private static readonly string Resnet = Cli.Model("digits/resnet.onnx");
    private static readonly string TestData = Cli.Model("digits/data/test");

    [Fact]
    public void ValidateAModelAgainstItselfPassesWithAccuracy()
    {
        var r = Cli.Run("validate", Resnet, Resnet, "--data", TestData, "--json");
        Assert.True(r.ExitCode == 0, r.Err + r.Out);
        var j = JsonDocument.Parse(r.Out).RootElement;
        Assert.True(j.GetProperty("passed").GetBoolean());
        Assert.Equal(500, j.GetProperty("samples").GetInt32());
        var o = j.GetProperty("outputs")[0];
        Assert.Equal("logits", o.GetProperty("name").GetString());
        Assert.Equal(0.0, o.GetProperty("max_abs_error").GetDouble());
        Assert.Equal(1.0, o.GetProperty("top1_agreement").GetDouble());
        Assert.Equal(0.996, j.GetProperty("accuracy").GetProperty("reference").GetDouble(), 3);
    }

    [Fact]
    public void ValidateAPerturbedCopyFailsNamingTheOutput()
    {
        var dir = Paths.TempDir();
        var m = OnnxImporter.Load(Resnet);
        var w = m.Graph.Initializers.First(v => v.Initializer!.ElementType == DataType.Float && v.Initializer.ElementCount > 100);
        var data = w.Initializer!.ToFloatArray();
        data[0] += 0.5f;
        m.Graph.SetInitializerData(w, Tensor.FromFloats(w.Name, w.Initializer.Dims, data));
        var perturbed = Path.Combine(dir, "perturbed.onnx");
        OnnxExporter.Save(m, perturbed);
        var r = Cli.Run("validate", Resnet, perturbed, "--random", "4", "--seed", "3");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("FAIL", r.Out);
        Assert.Contains("output 'logits'", r.Err);
    }

    [Fact]
    public void ValidateWithAWrongDataFolderExitsTwoWithOneLine()
    {
        var r = Cli.Run("validate", Resnet, Resnet, "--data", Cli.Model("digits/data_mlp/test"));
        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.Err.TrimEnd('\n').Split('\n'));
        Assert.Contains("input", r.Err);
        r = Cli.Run("validate", Resnet, Resnet, "--data", "/nonexistent/folder");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("not found", r.Err);
    }

    [Fact]
    public void RunSavesOutputsAndIntermediatesAsNpy()
    {
        var dir = Paths.TempDir();
        var m = OnnxImporter.Load(Resnet);
        var inner = m.Graph.Nodes.First(n => n.OpType == "Relu").Output().Name;
        var r = Cli.Run("run", Resnet, "--data", TestData, "-o", dir, "--outputs", $"logits,{inner}", "--batch", "64");
        Assert.True(r.ExitCode == 0, r.Err);
        var logits = Npy.Read(Path.Combine(dir, "logits.npy"));
        Assert.Equal(new long[] { 500, 10 }, logits.Dims);
        var relu = Npy.Read(Path.Combine(dir, OnnxOpt.Cli.RunCommand.SafeFileName(inner) + ".npy"));
        Assert.Equal(500, relu.Dims[0]);
        Assert.True(relu.ToFloatArray().All(v => v >= 0));
    }

    [Fact]
    public void AnOrtFailureIsOneLineOnStderrInTheRealProcess()
    {
        // ORT logs the failed run itself; only our one line may reach the user.
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "reshape.onnx");
        OnnxExporter.Save(TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,8] x) => (float[3,5] y)
               <int64[2] s = {3,5}>
            {
               y = Reshape (x, s)
            }
            """), path);
        var (code, _, err) = Cli.RunProcess("bench", path, "--iters", "2", "--warmup", "0");
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(code == 2, err);
        var line = Assert.Single(lines);
        Assert.StartsWith("onnxopt: error:", line);
        Assert.Contains("Reshape", line);
    }

    [Fact]
    public void BenchJsonRoundsItsNumbers()
    {
        var r = Cli.Run("bench", Resnet, "--iters", "7", "--warmup", "1", "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        // Every number is written with at most 10 significant digits (no 0.16052000000000002).
        foreach (System.Text.RegularExpressions.Match m in
                 System.Text.RegularExpressions.Regex.Matches(r.Out, @"-?\d+\.\d+(?:[eE][-+]?\d+)?"))
            Assert.True(m.Value.TrimStart('-').Replace(".", "").TrimStart('0').Split('e', 'E')[0].Length <= 10,
                m.Value);
    }

    [Fact]
    public void BenchVsPrintsBothLatenciesTheRatioAndTheSettings()
    {
        var r = Cli.Run("bench", Resnet, "--vs", Cli.Model("digits/mobilenetv2.onnx"), "--iters", "20", "--warmup", "3", "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        var j = JsonDocument.Parse(r.Out).RootElement;
        Assert.Equal(1, j.GetProperty("threads").GetInt32());
        Assert.Equal(3, j.GetProperty("warmup").GetInt32());
        Assert.Equal(20, j.GetProperty("iterations").GetInt32());
        var a = j.GetProperty("model").GetProperty("median_ms").GetDouble();
        var b = j.GetProperty("vs").GetProperty("median_ms").GetDouble();
        Assert.True(a > 0 && b > 0);
        Assert.Equal(a / b, j.GetProperty("speedup").GetDouble(), 6);
        var text = Cli.Run("bench", Resnet, "--vs", Resnet, "--iters", "5", "--warmup", "1");
        Assert.Contains("threads 1, warm-up 1, iterations 5", text.Out);
        Assert.Contains("speed-up", text.Out);
    }

    [Fact]
    public void BenchProfilePrintsTheTimePerOpTypeOfBothModels()
    {
        var mb = Cli.Model("digits/mobilenetv2.onnx");
        var r = Cli.Run("bench", Resnet, "--vs", mb, "--iters", "4", "--warmup", "1", "--profile", "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        var j = JsonDocument.Parse(r.Out).RootElement;
        foreach (var key in new[] { "model_profile", "vs_profile" })
        {
            var p = j.GetProperty(key);
            Assert.Equal(4, p.GetProperty("runs").GetInt32());
            var ops = p.GetProperty("ops").EnumerateArray().ToList();
            Assert.Contains(ops, o => o.GetProperty("op_type").GetString() == "Conv" && o.GetProperty("nodes").GetInt32() > 1);
            Assert.Equal(1, ops.Sum(o => o.GetProperty("share").GetDouble()), 3);
        }
        var text = Cli.Run("bench", Resnet, "--vs", mb, "--iters", "3", "--warmup", "0", "--profile");
        Assert.True(text.ExitCode == 0, text.Err);
        Assert.Contains("profile of model: 3 runs", text.Out);
        Assert.Contains("profile of vs: 3 runs", text.Out);
        Assert.Matches(@"\nConv +\d+ +[0-9.]+ +[0-9.]+ ?% +\d+ +[0-9.]+", text.Out);
        Assert.DoesNotContain("profile of", Cli.Run("bench", Resnet, "--iters", "2", "--warmup", "0").Out);
    }

    [Fact]
    public void BenchSaysWhetherDenormalsWereFlushed()
    {
        // A process of its own: ORT takes the setting from the process's first session.
        var (code, text, err) = Cli.RunProcess("bench", Resnet, "--iters", "2", "--warmup", "0", "--denormals-as-zero");
        Assert.True(code == 0, err);
        Assert.Contains(", denormals as zero", text);
        var j = JsonDocument.Parse(Cli.Run("bench", Resnet, "--iters", "2", "--warmup", "0", "--json").Out).RootElement;
        Assert.False(j.GetProperty("denormals_as_zero").GetBoolean());
    }
}
