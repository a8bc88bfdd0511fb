// The foundation commands end to end: inspect figures against hand counts, dump/convert
// determinism, and every error path (exit code 2, one line naming the problem, nothing written).
using System.Security.Cryptography;
using System.Text.Json;
using Google.Protobuf;
using OnnxOpt.GraphIR;
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.Tests;

public class InspectDumpConvertTests
{
    private static JsonElement InspectJson(string model)
    {
        var r = Cli.Run("inspect", model, "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        return JsonDocument.Parse(r.Out).RootElement;
    }

    [Fact]
    public void InspectCountsConvMacsByHand()
    {
        var j = InspectJson(Cli.Model("ops/conv.onnx"));
        // conv0: out [8,5,5], kernel 4*3*3 -> 8*25*36 = 7200
        // conv1: group 4, dilation 2: out [8,5,5], kernel 2*3*3 -> 8*25*18 = 3600
        // conv2: depthwise: out [8,5,5], kernel 1*3*3 -> 8*25*9 = 1800
        Assert.Equal(7200 + 3600 + 1800, j.GetProperty("macs").GetProperty("Conv").GetInt64());
        Assert.Equal(12600, j.GetProperty("total_macs").GetInt64());
        Assert.Equal(8 * 4 * 9 + 8 + 8 * 2 * 9 + 8 * 9, j.GetProperty("parameters").GetInt64());
    }

    [Fact]
    public void InspectCountsGemmAndMatMulMacsByHand()
    {
        var j = InspectJson(Cli.Model("ops/gemm_matmul.onnx"));
        Assert.Equal(16 * 12, j.GetProperty("macs").GetProperty("Gemm").GetInt64());  // [N,16] x [16,12]
        Assert.Equal(12 * 6, j.GetProperty("macs").GetProperty("MatMul").GetInt64()); // [N,12] x [12,6]
        Assert.Equal("float[N,16]", j.GetProperty("inputs")[0].GetProperty("type").GetString());
        Assert.Equal(1, j.GetProperty("op_histogram").GetProperty("Gemm").GetInt32());
    }

    [Fact]
    public void InspectDimGivesTransformerMacsAtThatSequence()
    {
        var path = Path.Combine(Paths.TempDir(), "bert.onnx");
        OnnxExporter.Save(TransformerGraphs.Bert(), path);
        var plain = Cli.Run("inspect", path);
        Assert.True(plain.ExitCode == 0, plain.Err);
        Assert.Contains("--dim sequence=128", plain.Out);
        var r = Cli.Run("inspect", path, "--dim", "sequence=16", "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        var j = JsonDocument.Parse(r.Out).RootElement;
        Assert.Equal(16, j.GetProperty("dims").GetProperty("sequence").GetInt64());
        Assert.Equal(0, j.GetProperty("nodes_with_unknown_macs").GetArrayLength());
        long s = 16, h = 32, i = 64;
        Assert.Equal(2 * (4 * s * h * h + 2 * s * s * h + 2 * s * h * i) + h * h, j.GetProperty("total_macs").GetInt64());
        var bad = Cli.Run("inspect", path, "--dim", "sequence=x");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--dim 'sequence=x'", bad.Err);
    }

    [Fact]
    public void InspectReportsNonLinearDepthOfTrainedNets()
    {
        // VGG-style: 6 conv+ReLU; ResNet-style: stem + 4 blocks x 2 ReLUs; MLP: 2 ReLUs.
        Assert.Equal(6, InspectJson(Cli.Model("digits/vgg.onnx")).GetProperty("non_linear_depth").GetInt32());
        Assert.Equal(9, InspectJson(Cli.Model("digits/resnet.onnx")).GetProperty("non_linear_depth").GetInt32());
        Assert.Equal(2, InspectJson(Cli.Model("digits/mlp.onnx")).GetProperty("non_linear_depth").GetInt32());
    }

    [Fact]
    public void InspectTextNamesTheFigures()
    {
        var r = Cli.Run("inspect", Cli.Model("digits/mobilenetv2.onnx"));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("input:       input float[N,1,16,16]", r.Out);
        Assert.Contains("non-linear depth:", r.Out);
        Assert.Contains("MACs:", r.Out);
    }

    [Fact]
    public void DumpAndConvertAreByteIdenticalAcrossRuns()
    {
        var dir = Paths.TempDir();
        var model = Cli.Model("digits/resnet.onnx");
        Assert.Equal(0, Cli.Run("dump", model, "-o", Path.Combine(dir, "a.txt")).ExitCode);
        Assert.Equal(0, Cli.Run("dump", model, "-o", Path.Combine(dir, "b.txt")).ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "a.txt")), File.ReadAllBytes(Path.Combine(dir, "b.txt")));
        Assert.Equal(0, Cli.Run("convert", model, "-o", Path.Combine(dir, "a.onnx")).ExitCode);
        Assert.Equal(0, Cli.Run("convert", model, "-o", Path.Combine(dir, "b.onnx")).ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "a.onnx")), File.ReadAllBytes(Path.Combine(dir, "b.onnx")));
        // The converted model prints exactly as the original.
        Assert.Equal(Cli.Run("dump", model, "--full").Out, Cli.Run("dump", Path.Combine(dir, "a.onnx"), "--full").Out);
    }

    [Fact]
    public void ConvertWithExternalDataKeepsTheModelAndNeverTouchesTheInput()
    {
        var dir = Paths.TempDir();
        var model = Cli.Model("digits/vgg.onnx");
        var before = SHA256.HashData(File.ReadAllBytes(model));
        var outPath = Path.Combine(dir, "vgg_ext.onnx");
        var r = Cli.Run("convert", model, "-o", outPath, "--external-data", "1024");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.True(File.Exists(outPath + ".data"));
        Assert.True(new FileInfo(outPath).Length < new FileInfo(model).Length / 4);
        Assert.Equal(Cli.Run("dump", model).Out, Cli.Run("dump", outPath).Out);
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(model)));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories).Concat(Directory.GetFiles(dir, ".*")));
    }

    private static void AssertUserError(CliResult r, params string[] mentions)
    {
        Assert.Equal(2, r.ExitCode);
        var line = r.Err.TrimEnd('\n');
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith("onnxopt: error: ", line);
        Assert.DoesNotContain("   at ", line);
        foreach (var m in mentions) Assert.Contains(m, line);
    }

    private static string Write(string dir, string name, byte[] bytes)
    {
        var p = Path.Combine(dir, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    private static byte[] GraphModel(Action<GraphProto> edit, long opset = 13)
    {
        var g = new GraphProto { Name = "g" };
        g.Input.Add(new ValueInfoProto { Name = "x", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
        g.Output.Add(new ValueInfoProto { Name = "z" });
        edit(g);
        var m = new ModelProto { IrVersion = 8, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return m.ToByteArray();
    }

    private static NodeProto Node(string op, string name, string[] ins, string[] outs)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.Add(ins);
        n.Output.Add(outs);
        return n;
    }

    public static TheoryData<string, string[]> BadModels() => new()
    {
        { "missing", ["file not found"] },
        { "truncated", ["not a valid ONNX model", "protobuf parse failed"] },
        { "garbage", ["not a valid ONNX model"] },
        { "unknown_opset", ["unknown opset", "999"] },
        { "cycle", ["cycle", "node '"] },
        { "dangling", ["'add0'", "'nowhere'", "dangling"] },
    };

    [Theory]
    [MemberData(nameof(BadModels))]
    public void EveryCommandRefusesBadModelsWithOneLineAndWritesNothing(string kind, string[] mentions)
    {
        var dir = Paths.TempDir();
        var good = File.ReadAllBytes(Cli.Model("ops/conv.onnx"));
        var path = kind switch
        {
            "missing" => Path.Combine(dir, "missing.onnx"),
            "truncated" => Write(dir, "t.onnx", good[..(good.Length / 2)]),
            "garbage" => Write(dir, "g.onnx", Enumerable.Range(0, 300).Select(i => (byte)(i * 7919 % 251)).ToArray()),
            "unknown_opset" => Write(dir, "o.onnx", GraphModel(g => g.Node.Add(Node("Relu", "r", ["x"], ["z"])), opset: 999)),
            "cycle" => Write(dir, "c.onnx", GraphModel(g =>
            {
                g.Node.Add(Node("Add", "a", ["x", "w"], ["y"]));
                g.Node.Add(Node("Relu", "b", ["y"], ["w"]));
                g.Node.Add(Node("Relu", "c", ["y"], ["z"]));
            })),
            "dangling" => Write(dir, "d.onnx", GraphModel(g => g.Node.Add(Node("Add", "add0", ["x", "nowhere"], ["z"])))),
            _ => throw new ArgumentException(kind),
        };
        var outPath = Path.Combine(dir, "out.onnx");
        AssertUserError(Cli.Run("convert", path, "-o", outPath), mentions);
        Assert.False(File.Exists(outPath));
        AssertUserError(Cli.Run("inspect", path), mentions);
        AssertUserError(Cli.Run("dump", path, "-o", Path.Combine(dir, "out.txt")), mentions);
        Assert.False(File.Exists(Path.Combine(dir, "out.txt")));
    }

    [Fact]
    public void ConvertRefusesToOverwriteItsInput()
    {
        var dir = Paths.TempDir();
        var p = Write(dir, "m.onnx", File.ReadAllBytes(Cli.Model("ops/conv.onnx")));
        AssertUserError(Cli.Run("convert", p, "-o", p), "overwrite the input");
    }

    [Fact]
    public void UsageErrorsExitTwo()
    {
        AssertUserError(Cli.Run("inspect"));
        AssertUserError(Cli.Run("frobnicate", "x"));
        AssertUserError(Cli.Run("convert", Cli.Model("ops/conv.onnx")));
    }

    private static string OldModel(string dir, string body, long opset = 9)
    {
        var m = TextParser.ParseModel($$"""
            <ir_version: 4, opset_import: ["" : {{opset}}]>
            g (float[N,2,4,4] x) => (float[N,2,8,8] y)
            {
            {{body}}
            }
            """);
        var path = Path.Combine(dir, "old.onnx");
        OnnxExporter.Save(m, path);
        return path;
    }

    [Fact]
    public void ConvertUpgradesTheOpsetAndValidatesInOrt()
    {
        var dir = Paths.TempDir();
        var model = OldModel(dir, """
               s = Constant <value: tensor = float[4] {1, 1, 2, 2}> ()
               u = Upsample (x, s)
               y = Softmax (u)
            """);
        var before = File.ReadAllBytes(model);
        var outPath = Path.Combine(dir, "new.onnx");
        var report = Path.Combine(dir, "r.json");
        var r = Cli.Run("convert", model, "-o", outPath, "--opset", "13", "--report", report);
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("ai.onnx opset 9 -> 13", r.Err);
        Assert.Equal(before, File.ReadAllBytes(model));
        var m = OnnxImporter.Load(outPath);
        Assert.Equal(13, m.OpsetVersion(""));
        Assert.Contains(m.Graph.Nodes, n => n.OpType == "Resize");
        var v = JsonDocument.Parse(File.ReadAllText(report)).RootElement.GetProperty("validation");
        Assert.True(v.GetProperty("passed").GetBoolean());
    }

    [Theory]
    [InlineData("y = Crop <border: ints = [0, 0, 1, 1]> (x)", "13", "node Crop -> 'y' cannot move to opset 10")]
    [InlineData("y = Upsample (x, x)", "8", "downgrades are not supported")]
    [InlineData("y = Upsample (x, x)", "30", "outside 7..21")]
    public void ConvertRefusesWhatItCannotUpgrade(string body, string opset, string message)
    {
        var dir = Paths.TempDir();
        var model = OldModel(dir, body);
        var outPath = Path.Combine(dir, "new.onnx");
        var r = Cli.Run("convert", model, "-o", outPath, "--opset", opset);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void ARandomInputFailureInOrtNamesTheDimToGive()
    {
        // With N = 1 the Reshape to [2, -1, 8] has 8 elements for 16 per row: ORT fails, and the error
        // says which symbolic dim was defaulted and how to set it.
        var dir = Paths.TempDir();
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,8] x) => (float[N,8] y) <int64[3] s = {2, -1, 8}, int64[2] t = {-1, 8}>
            {
               r = Reshape (x, s)
               y = Reshape (r, t)
            }
            """);
        var model = Path.Combine(dir, "m.onnx");
        OnnxExporter.Save(m, model);
        var outPath = Path.Combine(dir, "o.onnx");
        var r = Cli.Run("optimize", model, "-o", outPath, "--passes", "canonicalize", "--validate");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("symbolic dims N set to 1 (give their values with --dim N=V)", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
        Assert.False(File.Exists(outPath));
        var ok = Cli.Run("optimize", model, "-o", outPath, "--passes", "canonicalize", "--validate", "--dim", "N=4");
        Assert.True(ok.ExitCode == 0, ok.Err);
        var v = Cli.Run("validate", model, model);
        Assert.Equal(2, v.ExitCode);
        Assert.Contains("--dim N=V", v.Err);
        Assert.Equal(0, Cli.Run("validate", model, model, "--dim", "N=2").ExitCode);
        var run = Cli.Run("run", model, "-o", Path.Combine(dir, "outs"));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("a run on random inputs failed in ONNX Runtime", run.Err);
    }
}
