// Real exports at old opsets (testmodels/make_old_opset.py: a trained digits CNN from torch at opset 9
// and 11, every weight in a Constant node): quantize upgrades and keeps per-channel weights, score sees
// the weights, exact optimize and convert validate in ORT.
using System.Text.Json;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Tests;

public class OldOpsetModelTests
{
    private static string Fixture(int opset) => Paths.Model($"old_opset/digits_opset{opset}.onnx");
    private static string Data(string split) => Paths.Model($"digits/data/{split}");

    [Theory]
    [InlineData(9)]
    [InlineData(11)]
    public void QuantizeUpgradesAndKeepsAccuracy(int opset)
    {
        var dir = Paths.TempDir();
        var outPath = Path.Combine(dir, "q.onnx");
        var report = Path.Combine(dir, "q.json");
        var r = Cli.Run("quantize", Fixture(opset), "-o", outPath, "--calib", Data("calib"), "--eval", Data("test"),
            "--report", report);
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains($"upgraded the model from opset {opset} to 13 first (per-channel int8 weights)", r.Err);
        var q = OnnxImporter.Load(outPath);
        Assert.Equal(13, q.OpsetVersion(""));
        var convs = q.Graph.Nodes.Count(n => n.OpType == "Conv");
        Assert.Equal(4, convs);
        // Every conv weight is dequantized per output channel.
        Assert.All(q.Graph.Nodes.Where(n => n.OpType == "Conv"), n => Assert.True(
            n.Input(1)!.Producer is { OpType: "DequantizeLinear" } dq && Rewriter.ConstantOf(dq.Input(1)) is
            { ElementCount: > 1 }, $"{n}: weight not per-channel int8"));
        var acc = JsonDocument.Parse(File.ReadAllText(report)).RootElement.GetProperty("validation")
            .GetProperty("accuracy");
        Assert.True(acc.GetProperty("reference").GetDouble() - acc.GetProperty("candidate").GetDouble() <= 0.01);
    }

    [Theory]
    [InlineData(9)]
    [InlineData(11)]
    public void ScoreSeesTheConstantHeldWeights(int opset)
    {
        var r = Cli.Run("score", Fixture(opset), "--iterations", "2", "--density", "0.2");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("of 42096 weights", r.Out);
    }

    [Theory]
    [InlineData(9, "canonicalize,fold-bn,fuse-bias")]
    [InlineData(11, "canonicalize,fold-bn,fuse-bias")]
    [InlineData(9, "upgrade-opset{version=21},canonicalize")]
    [InlineData(11, "upgrade-opset{version=18},canonicalize,fuse-bias")]
    public void ExactPipelinesValidate(int opset, string passes)
    {
        var dir = Paths.TempDir();
        var outPath = Path.Combine(dir, "o.onnx");
        var r = Cli.Run("optimize", Fixture(opset), "-o", outPath, "--passes", passes, "--eval", Data("test"));
        Assert.True(r.ExitCode == 0, r.Err);
        var m = OnnxImporter.Load(outPath);
        // The weights are initializers now; no Constant node is left feeding a Conv or Gemm.
        Assert.All(m.Graph.Nodes.Where(n => n.OpType is "Conv" or "Gemm"),
            n => Assert.True(n.Input(1)!.IsInitializer, $"{n} reads its weight from a node"));
        Assert.Contains("validation on", r.Err);
        Assert.Contains("passed", r.Err);
    }

    [Fact]
    public void ConvertReachesEveryLaterOpset()
    {
        var dir = Paths.TempDir();
        foreach (var to in new[] { 10, 13, 17, 21 })
        {
            var outPath = Path.Combine(dir, $"c{to}.onnx");
            var r = Cli.Run("convert", Fixture(9), "-o", outPath, "--opset", to.ToString());
            Assert.True(r.ExitCode == 0, r.Err);
            Assert.Equal(to, OnnxImporter.Load(outPath).OpsetVersion(""));
        }
    }

    [Theory]
    [InlineData("groups")]
    [InlineData("prune", "--ratio", "0.1", "--calib", "C", "--eval", "E", "-o", "O")]
    [InlineData("cluster", "--bits", "6", "--eval", "E", "-o", "O")]
    [InlineData("optimize", "--passes", "sparsify{density=0.7,iterations=3}", "--eval", "E", "--max-agreement-drop", "2",
        "-o", "O")]
    [InlineData("compress", "--calib", "C", "--eval", "E", "--target", "size", "--time-budget", "0.2", "-o", "O.onnxz")]
    public void EveryCommandSeesTheConstantHeldWeights(string command, params string[] args)
    {
        // The opset-9 export holds every weight in a Constant node: each command works on it, and what it
        // writes holds the weights as initializers.
        var dir = Paths.TempDir();
        var full = args.Select(a => a switch
        {
            "C" => Data("calib"),
            "E" => Data("test"),
            "O" => Path.Combine(dir, "o.onnx"),
            "O.onnxz" => Path.Combine(dir, "o.onnxz"),
            _ => a,
        }).ToArray();
        var r = Cli.Run([command, Fixture(9), .. full]);
        Assert.True(r.ExitCode == 0, r.Err);
        if (command == "groups") Assert.Contains("prunable", r.Out);
        var written = Path.Combine(dir, "o.onnx");
        if (File.Exists(written))
        {
            var m = OnnxImporter.Load(written);
            Assert.DoesNotContain(m.Graph.Nodes, n => n.OpType == "Constant" && n.Outputs[0]!.Uses.Any(u =>
                u.Node.OpType is "Conv" or "Gemm" && u.InputIndex == 1));
        }
    }
}
