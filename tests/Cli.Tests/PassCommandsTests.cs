// passes, quantize and score end to end: the listing comes from the declarations, quantize validates,
// reports and is deterministic, score writes deterministic JSON and refuses bad input.
using System.Text.Json;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Tests;

public class PassCommandsTests
{
    [Fact]
    public void EveryPassIsListedWithItsOptions()
    {
        var r = Cli.Run("passes");
        Assert.Equal(0, r.ExitCode);
        foreach (var p in PassRegistry.Passes)
        {
            Assert.Contains(p.Name, r.Out);
            foreach (var o in p.Options) Assert.Contains($"{o.Name}={o.Format(o.Default)}", r.Out);
        }
    }

    [Fact]
    public void RulesListsEveryRuleWithItsPassAndOpsets()
    {
        var r = Cli.Run("passes", "--rules");
        Assert.Equal(0, r.ExitCode);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(RuleRegistry.Rules.Count, lines.Length);
        Assert.Contains("fold-bn  [fold-bn]  on BatchNormalization", lines);
        Assert.Contains("Slice-to-opset-10  [upgrade-opset]  on Slice, opset 9", lines);
        Assert.Contains("fuse-layernorm  [fuse]  on Add, opset >= 17", lines);
    }

    [Fact]
    public void QuantizeCommandValidatesReportsAndIsDeterministic()
    {
        var dir = Paths.TempDir();
        var model = Path.Combine(Paths.TestModels, "digits", "vgg.onnx");
        var data = Path.Combine(Paths.TestModels, "digits", "data");
        string Once(string tag)
        {
            var r = Cli.Run("quantize", model, "-o", Path.Combine(dir, tag + ".onnx"), "--calib", Path.Combine(data, "calib"), "--eval", Path.Combine(data, "test"),
                "--method", "entropy", "--report", Path.Combine(dir, tag + ".json"));
            Assert.True(r.ExitCode == 0, r.Err);
            return System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(Path.Combine(dir, tag + ".json")), "\"time_ms\": [0-9.E+-]+", "\"time_ms\": 0").Replace(tag + ".onnx", "");
        }
        var a = Once("a");
        Assert.Equal(a, Once("b"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "a.onnx")), File.ReadAllBytes(Path.Combine(dir, "b.onnx")));
        var j = JsonDocument.Parse(a).RootElement;
        Assert.StartsWith("canonicalize{", j.GetProperty("pipeline").GetString());
        Assert.Contains("quantize{format=qdq,calibrate=entropy,", j.GetProperty("pipeline").GetString());
        Assert.True(j.GetProperty("validation").GetProperty("accepted").GetBoolean());
        Assert.True(j.GetProperty("after").GetProperty("initializer_bytes").GetInt64() < j.GetProperty("before").GetProperty("initializer_bytes").GetInt64() / 3);
        var bad = Cli.Run("quantize", model, "-o", Path.Combine(dir, "c.onnx"), "--calib", Path.Combine(data, "calib"), "--method", "kl");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("one of minmax|percentile|entropy|mse", bad.Err);
    }

    [Fact]
    public void ScoreCommandWritesDeterministicJsonAndRefusesBadInput()
    {
        var dir = Paths.TempDir();
        var model = Path.Combine(Paths.TestModels, "digits", "resnet.onnx");
        string Once(string f)
        {
            var r = Cli.Run("score", model, "--iterations", "3", "--density", "0.2", "--json", Path.Combine(dir, f));
            Assert.True(r.ExitCode == 0, r.Err);
            Assert.Contains("layer collapse:", r.Out);
            return File.ReadAllText(Path.Combine(dir, f));
        }
        var a = Once("a.json");
        Assert.Equal(a, Once("b.json"));
        var j = JsonDocument.Parse(a).RootElement;
        Assert.Equal("synflow", j.GetProperty("method").GetString());
        Assert.Equal(12, j.GetProperty("layers").GetArrayLength());
        var first = j.GetProperty("layers")[0];
        Assert.Equal(first.GetProperty("shape")[0].GetInt32(), first.GetProperty("filter_scores").GetArrayLength());

        var bad = Cli.Run("score", model, "--method", "snip");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("unknown saliency method 'snip'", bad.Err);
        var sym = new GraphBuilder("sym");
        var x = sym.Input("x", DataType.Float, "N", 3, "H", 8);
        sym.Output(sym.Node("Conv", [x, sym.Initializer("w", [1f, 2f, 3f, 4f, 5f, 6f], 2, 3, 1, 1)], OnnxAttribute.IntList("kernel_shape", 1, 1)));
        var symPath = Path.Combine(dir, "sym.onnx");
        OnnxExporter.Save(sym.Build(), symPath);
        var e = Cli.Run("score", symPath);
        Assert.Equal(2, e.ExitCode);
        Assert.Contains("symbolic dimension 'H'", e.Err);
        Assert.Equal(0, Cli.Run("score", symPath, "--input-shape", "x=1x3x5x8").ExitCode);
    }
}

public class GroupsCommandTests
{
    [Fact]
    public void GroupsListsTheAttentionHeadsOfATransformer()
    {
        var vit = Cli.Run("groups", Cli.Model("transformers/vit_op17.onnx"));
        Assert.Equal(0, vit.ExitCode);
        Assert.Contains("3 attention blocks, 3 with prunable heads (prune --unit head)", vit.Out);
        Assert.Contains("attention 0: '/blocks.0/Softmax' (Softmax), 4 heads of 16, prunable", vit.Out);
        Assert.Contains("\"head_size\": 16", Cli.Run("groups", Cli.Model("transformers/bert_op13.onnx"), "--json").Out);
        Assert.DoesNotContain("attention", Cli.Run("groups", Cli.Model("digits/vgg.onnx"), "--json").Out);
    }

    [Fact]
    public void GroupsSaysWhenATransformersMacsAreUnknownAndCountsThemAtAGivenSequence()
    {
        // MACs over a symbolic sequence are unknown, not 0: without --dim the shares are "?", with it they are real.
        var bert = Cli.Model("transformers/bert_op13.onnx");
        var t = Cli.Run("groups", bert);
        Assert.True(t.ExitCode == 0, t.Err);
        Assert.Matches(@"^15 groups, 2 prunable, MACs unknown for \d+ ops \(a symbolic dim: --dim NAME=V", t.Out);
        Assert.Contains("64 channels, ?% of MACs", t.Out);
        var j = JsonDocument.Parse(Cli.Run("groups", bert, "--json").Out).RootElement;
        Assert.True(j.GetProperty("nodes_with_unknown_macs").GetInt32() > 0);
        Assert.Equal(JsonValueKind.Null, j.GetProperty("groups")[0].GetProperty("macs_share").ValueKind);
        var at = JsonDocument.Parse(Cli.Run("groups", bert, "--json", "--dim", "sequence=32").Out).RootElement;
        Assert.Equal(0, at.GetProperty("nodes_with_unknown_macs").GetInt32());
        // inspect counts the same model's MACs at the same sequence the same way.
        var inspect = JsonDocument.Parse(Cli.Run("inspect", bert, "--json", "--dim", "sequence=32").Out).RootElement;
        Assert.Equal(inspect.GetProperty("total_macs").GetInt64(), at.GetProperty("total_macs").GetInt64());
        Assert.All(at.GetProperty("groups").EnumerateArray(), g => Assert.InRange(g.GetProperty("macs_share").GetDouble(), 0, 1));
        Assert.StartsWith("15 groups, 2 prunable, 3,411,968 MACs in all", Cli.Run("groups", bert, "--dim", "sequence=32").Out);
        // A mistyped dim is refused, not ignored (groups and inspect alike).
        foreach (var command in new[] { "groups", "inspect" })
        {
            var bad = Cli.Run(command, bert, "--dim", "seq=32");
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains("--dim seq: the model's inputs have no symbolic dim 'seq' (their dims: batch, sequence)",
                bad.Err);
        }
    }

    [Fact]
    public void GroupsListsEveryGroupAsTextAndDeterministicJson()
    {
        var model = Cli.Model("digits/resnet.onnx");
        var t = Cli.Run("groups", model);
        Assert.True(t.ExitCode == 0, t.Err);
        Assert.StartsWith("9 groups, 5 prunable", t.Out);
        Assert.Contains("not prunable: reaches graph output 'logits'", t.Out);
        var a = Cli.Run("groups", model, "--json");
        Assert.Equal(a.Out, Cli.Run("groups", model, "--json").Out);
        var j = JsonDocument.Parse(a.Out).RootElement;
        Assert.Equal(9, j.GetProperty("groups").GetArrayLength());
        var residual = j.GetProperty("groups").EnumerateArray().Single(g => g.GetProperty("producers").GetArrayLength() == 3);
        Assert.Contains("canonicalize first", residual.GetProperty("reasons")[0].GetString());
        var bad = Cli.Run("groups", Path.Combine(Paths.TempDir(), "missing.onnx"));
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("missing.onnx", bad.Err);
    }
}

public class PruneCommandTests
{
    private static readonly string Data = Path.Combine(Paths.TestModels, "digits", "data");

    [Fact]
    public void PruneValidatesOnHeldOutDataReportsAndIsDeterministic()
    {
        var dir = Paths.TempDir();
        string Once(string model, string tag, params string[] extra)
        {
            var r = Cli.Run(["prune", Cli.Model(model), "-o", Path.Combine(dir, tag + ".onnx"), "--calib",
                Path.Combine(Data, "calib"), "--eval", Path.Combine(Data, "test"), "--min-speedup", "0",
                "--report", Path.Combine(dir, tag + ".json"), .. extra]);
            Assert.True(r.ExitCode == 0, r.Err);
            return System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(Path.Combine(dir, tag + ".json")),
                "\"time_ms\": [0-9.E+-]+", "\"time_ms\": 0").Replace(tag + ".onnx", "");
        }
        var before = File.ReadAllBytes(Cli.Model("digits/vgg.onnx"));
        string[] best = ["--macs", "0.5", "--criterion", "taylor", "--allocate", "sensitivity", "--sensitivity-samples", "16",
            "--recover", "bias", "--max-agreement-drop", "100"];
        var a = Once("digits/vgg.onnx", "a", best);
        Assert.Equal(a, Once("digits/vgg.onnx", "b", best));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "a.onnx")), File.ReadAllBytes(Path.Combine(dir, "b.onnx")));
        Assert.Equal(before, File.ReadAllBytes(Cli.Model("digits/vgg.onnx")));
        var j = JsonDocument.Parse(a).RootElement;
        Assert.Contains("prune{criterion=taylor,", j.GetProperty("pipeline").GetString());
        Assert.True(j.GetProperty("validation").GetProperty("accepted").GetBoolean());
        Assert.True(j.GetProperty("after").GetProperty("total_macs").GetInt64()
            <= j.GetProperty("before").GetProperty("total_macs").GetInt64() / 2);
        Assert.Contains("\"damage\"", a);

        var blocks = Once("digits/resnet.onnx", "c", "--unit", "block", "--ratio", "0.25", "--sensitivity-samples", "16");
        Assert.Contains("\"dropped\": true", blocks);
        var bn = Once("digits/vgg.onnx", "d", "--criterion", "bn-scale", "--ratio", "0.3");
        Assert.Contains("prune{criterion=bn-scale,", bn);
        Assert.Contains("},fold-bn", bn);
    }

    [Fact]
    public void PruneRefusesBadOptionsAndMissingDataWithOneLine()
    {
        var dir = Paths.TempDir();
        var model = Cli.Model("digits/vgg.onnx");
        var bad = Cli.Run("prune", model, "-o", Path.Combine(dir, "x.onnx"), "--criterion", "magic");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("taylor", bad.Err);
        var noData = Cli.Run("prune", model, "-o", Path.Combine(dir, "y.onnx"), "--criterion", "taylor", "--recover",
            "none");
        Assert.NotEqual(0, noData.ExitCode);
        Assert.Single(noData.Err.Trim().Split('\n'));
        Assert.Contains("calib", noData.Err);
        Assert.False(File.Exists(Path.Combine(dir, "x.onnx")) || File.Exists(Path.Combine(dir, "y.onnx")));
    }

    [Fact]
    public void PruneThatRemovesNothingSaysSoAndWritesNothingUnlessForced()
    {
        var dir = Paths.TempDir();
        var model = Cli.Model("digits/vgg.onnx");
        var output = Path.Combine(dir, "x.onnx");
        var r = Cli.Run("prune", model, "-o", output, "--unit", "head", "--recover", "none", "--min-speedup", "0");
        Assert.True(r.ExitCode == 1, r.Err);
        Assert.Contains("prune changes nothing: no attention block", r.Err);
        Assert.Contains("not written", r.Err);
        Assert.False(File.Exists(output));
        var forced = Cli.Run("prune", model, "-o", output, "--unit", "head", "--recover", "none", "--min-speedup",
            "0", "--force");
        Assert.Equal(1, forced.ExitCode);
        Assert.True(File.Exists(output));
        // A transformer's heads do go.
        var vit = Cli.Run("prune", Cli.Model("transformers/vit_op17.onnx"), "-o", Path.Combine(dir, "v.onnx"),
            "--unit", "head", "--recover", "none", "--min-speedup", "0", "--force", "-v");
        Assert.Contains("heads removed 6", vit.Err);
        Assert.True(File.Exists(Path.Combine(dir, "v.onnx")), vit.Err);
    }
}

public class ClusterCommandTests
{
    [Fact]
    public void ClusterWritesEveryFormatValidatedAndRefusesBadOptions()
    {
        var dir = Paths.TempDir();
        var model = Cli.Model("digits/vgg.onnx");
        var data = Path.Combine(Paths.TestModels, "digits", "data");
        long? floatSize = null;
        foreach (var format in new[] { "float", "lut4" })
        {
            var output = Path.Combine(dir, format + ".onnx");
            var r = Cli.Run("cluster", model, "-o", output, "--bits", "4", "--format", format, "--eval",
                Path.Combine(data, "test"), "--report", Path.Combine(dir, format + ".json"));
            Assert.True(r.ExitCode == 0, r.Err);
            var j = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, format + ".json"))).RootElement;
            Assert.True(j.GetProperty("validation").GetProperty("accepted").GetBoolean());
            Assert.Contains("\"distinct_after\"", File.ReadAllText(Path.Combine(dir, format + ".json")));
            var size = new FileInfo(output).Length;
            if (floatSize is null) floatSize = size; else Assert.True(size * 4 < floatSize, $"{size} vs {floatSize}");
        }
        var flag = Cli.Run("cluster", model, "-o", Path.Combine(dir, "pc.onnx"), "--bits", "3", "--per-channel",
            "--report", Path.Combine(dir, "pc.json"));
        Assert.True(flag.ExitCode == 0, flag.Err);
        Assert.Contains("per-channel=true", File.ReadAllText(Path.Combine(dir, "pc.json")));
        var bad = Cli.Run("cluster", model, "-o", Path.Combine(dir, "bad.onnx"), "--bits", "6", "--format", "lut4");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("at most 16 clusters", bad.Err);
        Assert.False(File.Exists(Path.Combine(dir, "bad.onnx")));
    }
}

public class PackCommandTests
{
    [Fact]
    public void PackAndUnpackRoundTripAndRefuseBadArchivesWritingNothing()
    {
        var dir = Paths.TempDir();
        var clustered = Path.Combine(dir, "c.onnx");
        Assert.Equal(0, Cli.Run("cluster", Cli.Model("digits/vgg.onnx"), "-o", clustered, "--bits", "4").ExitCode);
        var archive = Path.Combine(dir, "c.onnxz");
        var p = Cli.Run("pack", clustered, "-o", archive, "--json");
        Assert.True(p.ExitCode == 0, p.Err);
        var j = JsonDocument.Parse(p.Out).RootElement;
        Assert.True(j.GetProperty("bytes_restored").GetBoolean());
        Assert.True(j.GetProperty("packed_bytes").GetInt64() * 7 < new FileInfo(Cli.Model("digits/vgg.onnx")).Length);
        var inspect = Cli.Run("inspect", clustered, "--weights", "--json");
        Assert.True(inspect.ExitCode == 0, inspect.Err);
        var ij = JsonDocument.Parse(inspect.Out).RootElement;
        Assert.Equal(j.GetProperty("packed_bytes").GetInt64(), ij.GetProperty("packed_bytes").GetInt64());
        Assert.Contains(ij.GetProperty("weights").EnumerateArray(), w => w.GetProperty("distinct").GetInt64() == 16
            && w.GetProperty("bits_per_weight").GetInt32() == 4);
        Assert.Contains("16 distinct", Cli.Run("inspect", clustered, "--weights").Out);
        var back = Path.Combine(dir, "back.onnx");
        Assert.Equal(0, Cli.Run("unpack", archive, "-o", back).ExitCode);
        Assert.Equal(File.ReadAllBytes(clustered), File.ReadAllBytes(back));

        var bytes = File.ReadAllBytes(archive);
        var truncated = Path.Combine(dir, "t.onnxz");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        var t = Cli.Run("unpack", truncated, "-o", Path.Combine(dir, "t.onnx"));
        Assert.Equal(2, t.ExitCode);
        Assert.Contains("t.onnxz: not a valid .onnxz archive", t.Err);
        Assert.Single(t.Err.Trim().Split('\n'));
        Assert.False(File.Exists(Path.Combine(dir, "t.onnx")));
        var same = Cli.Run("unpack", archive, "-o", archive);
        Assert.NotEqual(0, same.ExitCode);
        Assert.Equal(bytes, File.ReadAllBytes(archive));
    }
}

public class BadDataTests
{
    private static readonly string Calib = Path.Combine(Paths.TestModels, "digits", "data", "calib");

    // A copy of the digits calibration folder with sample `bad` of input.npy set to `value` (and labels as given).
    private static string Folder(float? value = null, int bad = 7, long[]? labels = null)
    {
        var dir = Paths.TempDir();
        var input = OnnxOpt.Data.Npy.Read(Path.Combine(Calib, "input.npy"));
        var data = input.ToFloatArray();
        if (value is float v) data[bad * (data.Length / input.Dims[0]) + 3] = v;
        OnnxOpt.Data.Npy.Write(Path.Combine(dir, "input.npy"), Tensor.FromFloats("input", input.Dims, data));
        var l = labels ?? OnnxOpt.Data.Npy.Read(Path.Combine(Calib, "labels.npy")).ToInt64Array();
        OnnxOpt.Data.Npy.Write(Path.Combine(dir, "labels.npy"), Tensor.FromInt64s("labels", [l.Length], l));
        return dir;
    }

    [Fact]
    public void NonFiniteCalibrationDataIsRefusedOrSkippedWhenAsked()
    {
        var model = Cli.Model("digits/vgg.onnx");
        var dir = Paths.TempDir();
        var nan = Folder(float.NaN);
        var r = Cli.Run("quantize", model, "-o", Path.Combine(dir, "q.onnx"), "--calib", nan);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("input.npy: sample 7 holds NaN or infinity", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
        Assert.False(File.Exists(Path.Combine(dir, "q.onnx")));
        var skip = Cli.Run("quantize", model, "-o", Path.Combine(dir, "q.onnx"), "--calib", Folder(float.PositiveInfinity),
            "--skip-nonfinite");
        Assert.True(skip.ExitCode == 0, skip.Err);
        Assert.Contains("skipped 1 calibration samples holding NaN or infinity", skip.Err);
    }

    [Fact]
    public void AnOpsetRefusalComesBeforeTheCalibrationData()
    {
        // Opset 9 is upgraded to 13 first; an Upsample with run-time scales cannot be, and quantize must say
        // so before it reads (here: bad) calibration data.
        var b = new GraphBuilder("old", opset: 9);
        var x = b.Input("input", DataType.Float, "N", 1, 16, 16);
        var s = b.Input("s", DataType.Float, 4);
        var c = b.Node("Conv", [x, b.Initializer("w", new float[4 * 9], 4, 1, 3, 3)]);
        b.Output(b.Node("Upsample", [c, s]));
        var path = Path.Combine(Paths.TempDir(), "old.onnx");
        OnnxExporter.Save(b.Build(), path);
        var r = Cli.Run("quantize", path, "-o", Path.Combine(Paths.TempDir(), "q.onnx"), "--calib", Folder(float.NaN));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("quantize needs opset 13 (per-channel int8 weights); the model is at opset 9", r.Err);
        Assert.Contains("computed at run time", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
    }

    [Fact]
    public void AnOldOpsetModelIsUpgradedForPerChannelWeights()
    {
        var b = new GraphBuilder("old", opset: 9);
        var x = b.Input("input", DataType.Float, "N", 2, 8, 8);
        var w = Enumerable.Range(0, 4 * 2 * 9).Select(i => (i % 7 - 3) * (1 + i / 18) * 0.1f).ToArray();
        var c = b.Node("Conv", [x, b.Initializer("w", w, 4, 2, 3, 3)]);
        b.Output(b.Node("Relu", [c]));
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "old.onnx");
        OnnxExporter.Save(b.Build(), path);
        var outPath = Path.Combine(dir, "q.onnx");
        var r = Cli.Run("quantize", path, "-o", outPath, "--calib-random", "16");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("upgraded the model from opset 9 to 13 first (per-channel int8 weights)", r.Err);
        var q = OnnxImporter.Load(outPath);
        Assert.Equal(13, q.OpsetVersion(""));
        Assert.Contains(q.Graph.Nodes, n => n.OpType == "DequantizeLinear"
            && Rewriter.ConstantOf(n.Input(1)) is { ElementCount: 4 });
    }

    [Fact]
    public void ScoreSeesWeightsHeldInConstantNodes()
    {
        // Older exporters put weights in Constant nodes; score works on a canonicalized copy.
        var b = new GraphBuilder("constw", opset: 11);
        var x = b.Input("x", DataType.Float, 1, 3, 8, 8);
        var w = b.Node("Constant", [], OnnxAttribute.FromTensor("value",
            Tensor.FromFloats("", [4, 3, 3, 3], Enumerable.Range(0, 108).Select(i => (float)Math.Sin(i)).ToArray())));
        b.Output(b.Node("Conv", [x, w], OnnxAttribute.IntList("pads", 1, 1, 1, 1)));
        var path = Path.Combine(Paths.TempDir(), "constw.onnx");
        OnnxExporter.Save(b.Build(), path);
        var r = Cli.Run("score", path, "--iterations", "2");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("[4,3,3,3]", r.Out);
    }

    [Fact]
    public void ScoreOnAnAbsurdDimensionSaysSoInOneLine()
    {
        var b = new GraphBuilder("huge");
        var x = b.Input("x", DataType.Float, 1, 3, 100000, 100000);
        b.Output(b.Node("Conv", [x, b.Initializer("w", new float[4 * 3 * 9], 4, 3, 3, 3)],
            OnnxAttribute.IntList("pads", 1, 1, 1, 1)));
        var path = Path.Combine(Paths.TempDir(), "huge.onnx");
        OnnxExporter.Save(b.Build(inferShapes: false), path);
        var r = Cli.Run("score", path);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("shape [1,3,100000,100000] is too large", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
    }

    [Fact]
    public void SymlinkedEmptyAndMislabelledDataGetOneClearLine()
    {
        var model = Cli.Model("digits/vgg.onnx");
        var dir = Paths.TempDir();
        var linked = Paths.TempDir();
        File.CreateSymbolicLink(Path.Combine(linked, "input.npy"), Path.Combine(Calib, "input.npy"));
        File.CreateSymbolicLink(Path.Combine(linked, "labels.npy"), Path.Combine(Calib, "labels.npy"));
        var ok = Cli.Run("validate", model, model, "--data", linked);
        Assert.True(ok.ExitCode == 0, ok.Err);

        var empty = Paths.TempDir();
        OnnxOpt.Data.Npy.Write(Path.Combine(empty, "input.npy"), Tensor.FromFloats("input", [0, 1, 16, 16], []));
        var e = Cli.Run("quantize", model, "-o", Path.Combine(dir, "e.onnx"), "--calib", empty);
        Assert.Equal(2, e.ExitCode);
        Assert.Contains("holds no samples", e.Err);

        var labels = OnnxOpt.Data.Npy.Read(Path.Combine(Calib, "labels.npy")).ToInt64Array();
        labels[5] = 10;
        var m = Cli.Run("validate", model, model, "--data", Folder(labels: labels));
        Assert.Equal(2, m.ExitCode);
        Assert.Contains("label 10 of sample 5 is outside the model's 10 classes", m.Err);
        Assert.Single(m.Err.Trim().Split('\n'));
    }
}

public class EqualizeCommandTests
{
    [Fact]
    public void OptimizeRunsEqualizeAsAnExactPassAndSaysWhatItRefused()
    {
        var dir = Paths.TempDir();
        var out1 = Path.Combine(dir, "e.onnx");
        // MobileNetV2-style digits net: its inverted residual blocks give pairs and refusals (ReLU6, residuals).
        var r = Cli.Run("optimize", Paths.Model("digits/mobilenetv2.onnx"), "-o", out1, "--passes",
            "canonicalize,fold-bn,equalize", "--validate", "--report", Path.Combine(dir, "r.json"), "-v");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("equalize", r.Err);
        var report = File.ReadAllText(Path.Combine(dir, "r.json"));
        Assert.Contains("\"decision\": \"refused\"", report);
        Assert.Contains("Clip (ReLU6) between them", report);
    }
}
