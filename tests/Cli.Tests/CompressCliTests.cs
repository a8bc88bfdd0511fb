// onnxopt compress end to end: a recipe file, the packed output that unpacks to a runnable model, the JSON and
// HTML reports; bad recipes and missing data are one-line errors with exit code 2 and nothing written.
using System.Text.Json;

namespace OnnxOpt.Tests;

public class CompressCliTests
{
    private const string Recipe = """
        target: size
        max_drop: 1
        beam: 1
        stages:
          - name: clean-up
            candidates: ["canonicalize,fold-bn"]
          - name: clustering
            candidates: ["cluster{bits=4}", "cluster{bits=3}"]
        """;

    [Fact]
    public void CompressWritesTheArchiveAndReports()
    {
        var dir = Paths.TempDir();
        var recipe = Path.Combine(dir, "r.yaml");
        File.WriteAllText(recipe, Recipe);
        var data = Path.Combine(Paths.TestModels, "digits", "data");
        var output = Path.Combine(dir, "vgg.onnxz");
        var r = Cli.Run("compress", Cli.Model("digits/vgg.onnx"), "-o", output, "--calib", Path.Combine(data, "calib"),
            "--eval", Path.Combine(data, "test"), "--recipe", recipe, "--bench-iterations", "5",
            "--report", Path.Combine(dir, "r.json"), "--html", Path.Combine(dir, "r.html"));
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("chose #", r.Err);
        var j = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "r.json"))).RootElement;
        var chosen = j.GetProperty("candidates")[j.GetProperty("chosen").GetInt32()];
        Assert.True(chosen.GetProperty("within_budget").GetBoolean());
        Assert.Equal(new FileInfo(output).Length, chosen.GetProperty("packed_bytes").GetInt64());
        Assert.Contains("<svg class=\"chart scatter\"", File.ReadAllText(Path.Combine(dir, "r.html")));
        var restored = Path.Combine(dir, "vgg.onnx");
        var u = Cli.Run("unpack", output, "-o", restored);
        Assert.True(u.ExitCode == 0, u.Err);
        Assert.Equal(0, Cli.Run("inspect", restored).ExitCode);
    }

    [Fact]
    public void BadRecipesAndMissingDataAreOneLineErrors()
    {
        var dir = Paths.TempDir();
        var bad = Path.Combine(dir, "bad.yaml");
        File.WriteAllText(bad, "target: speed\nstages: []\n");
        var data = Path.Combine(Paths.TestModels, "digits", "data");
        var output = Path.Combine(dir, "out.onnx");
        var r = Cli.Run("compress", Cli.Model("digits/vgg.onnx"), "-o", output, "--calib", Path.Combine(data, "calib"),
            "--eval", Path.Combine(data, "test"), "--recipe", bad);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("bad.yaml", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
        var m = Cli.Run("compress", Cli.Model("digits/vgg.onnx"), "-o", output, "--calib", Path.Combine(data, "calib"));
        Assert.Equal(2, m.ExitCode);
        Assert.Contains("--eval", m.Err);
        var c = Cli.Run("compress", Cli.Model("digits/vgg.onnx"), "-o", output, "--calib", Path.Combine(data, "calib"),
            "--eval", Path.Combine(data, "test"), "--confidence", "0.3");
        Assert.Equal(2, c.ExitCode);
        Assert.Contains("--confidence must be 0", c.Err);
        Assert.Single(c.Err.Trim().Split('\n'));
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void TheTimeBudgetIsADeadlineAndTheCutWorkIsReported()
    {
        var dir = Paths.TempDir();
        var recipe = Path.Combine(dir, "r.yaml");
        File.WriteAllText(recipe, """
            target: size
            max_drop: 5
            beam: 1
            stages:
              - name: pruning
                candidates: ["prune{macs=0.7},distill{steps=100000,eval-every=0}"]
              - name: clustering
                candidates: ["cluster{bits=4}", "cluster{bits=3}"]
            """);
        var data = Path.Combine(Paths.TestModels, "digits", "data");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var r = Cli.Run("compress", Cli.Model("digits/resnet.onnx"), "-o", Path.Combine(dir, "o.onnxz"), "--calib",
            Path.Combine(data, "calib"), "--eval", Path.Combine(data, "test"), "--recipe", recipe,
            "--bench-iterations", "5", "--time-budget", "0.25", "--report", Path.Combine(dir, "r.json"));
        Assert.True(r.ExitCode == 0, r.Err);
        // 15 s of budget: training stops at it, the clustering stage is cut (the pruning candidate took longer
        // than what is left), and the whole run ends within half a budget more.
        Assert.True(sw.Elapsed.TotalSeconds < 22.5, $"{sw.Elapsed.TotalSeconds:F1} s");
        Assert.Contains("distill: stopped at the deadline after", r.Err);
        Assert.Contains("cut [clustering]", r.Err);
    }

    [Fact]
    public void AStageThatCannotChangeTheModelIsSkippedWithItsReason()
    {
        // The ViT's GELUs are not piecewise linear (only linearize{mode=train} takes them), and with its MatMuls
        // excluded no channel group is left; a CNN has no attention heads.
        var dir = Paths.TempDir();
        var recipe = Path.Combine(dir, "r.yaml");
        File.WriteAllText(recipe, """
            target: latency
            max_drop: 1
            stages:
              - name: clean-up
                candidates: ["canonicalize"]
              - name: layer-folding
                candidates: ["", "linearize{max-agreement-drop=0.5},fold-conv", "linearize{mode=affine},fold-conv"]
              - name: pruning
                candidates: ["", "prune{exclude=MatMul,min-speedup=0}"]
            """);
        var data = Path.Combine(Paths.TestModels, "digits", "data");
        var r = Cli.Run("compress", Cli.Model("transformers/vit_op13.onnx"), "-o", Path.Combine(dir, "o.onnx"),
            "--calib", Path.Combine(data, "calib"), "--eval", Path.Combine(data, "test"), "--recipe", recipe,
            "--bench-iterations", "5");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("cut [layer-folding] 2 candidates: cannot change the model: linearize: no eligible activation", r.Err);
        Assert.Contains("cut [pruning] 1 candidate: cannot change the model: prune: no prunable channel group", r.Err);
        var cnn = Cli.Run("compress", Cli.Model("digits/mlp.onnx"), "-o", Path.Combine(dir, "c.onnx"),
            "--calib", Path.Combine(Paths.TestModels, "digits", "data_mlp", "calib"), "--eval",
            Path.Combine(Paths.TestModels, "digits", "data_mlp", "test"), "--recipe", WriteHeadsRecipe(dir),
            "--bench-iterations", "5");
        Assert.True(cnn.ExitCode == 0, cnn.Err);
        Assert.Contains("cut [heads] 1 candidate: cannot change the model: prune: no attention block", cnn.Err);
    }

    private static string WriteHeadsRecipe(string dir)
    {
        var path = Path.Combine(dir, "heads.yaml");
        File.WriteAllText(path, """
            target: latency
            max_drop: 1
            stages:
              - name: heads
                candidates: ["", "prune{unit=head,min-speedup=0}"]
            """);
        return path;
    }
}
