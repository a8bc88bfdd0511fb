// compress: the search never chooses (or writes) a candidate over the budget, recipes round-trip through JSON
// and YAML, the chosen model is the same for a fixed seed, and the HTML report renders in a real headless
// browser with its charts (a screenshot is saved for a person to look at).
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Tests;

public class CompressTests
{
    private static readonly string Data = Paths.Model("digits/data");

    private static readonly Recipe Small = Recipe.Parse("""
        target: size
        max_drop: 0.5
        beam: 2
        stages:
          - name: clean-up
            candidates: ["canonicalize,fold-bn"]
          - name: pruning
            candidates: ["", "prune{macs=0.6,min-speedup=0}"]
          - name: clustering
            candidates: ["cluster{bits=4}", "cluster{bits=1}", "cluster{bits=3,train-steps=20,train-lr=0.001}"]
        """, json: false);

    private static CompressResult Compress(Recipe r) => Compressor.Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")),
        new CompressOptions
        {
            Calibration = CalibrationSource.FromFolder(Path.Combine(Data, "calib")),
            Evaluation = CalibrationSource.FromFolder(Path.Combine(Data, "test")),
            Recipe = r,
            Bench = new Runtime.Validation.BenchOptions { Iterations = 10, Warmup = 2 },
        }, "vgg.onnx", "vgg.c.onnx");

    [Fact]
    public void RecipesRoundTripThroughJsonAndYaml()
    {
        foreach (var target in Recipe.Targets)
        {
            var r = Recipe.Auto(target, 1);
            Assert.True(r.SameAs(Recipe.Parse(r.ToJson(), json: true)));
            Assert.True(r.SameAs(Recipe.Parse(r.ToYaml(), json: false)));
            Assert.True(r.SameAs(r.Normalize()));
        }
        Assert.True(Small.SameAs(Recipe.Parse(Small.ToYaml(), json: false)));
        var shipped = Recipe.Load(Path.Combine(Paths.RepoRoot(), "bench", "recipes", "small-size.yaml"));
        Assert.Equal(3, shipped.Stages.Count);
        Assert.Contains("prune{criterion=l2,", Small.Stages[1].Candidates[1]);
        var bad = Assert.Throws<OnnxModelException>(() => Recipe.Parse("""{"target": "speed", "stages": []}""", json: true));
        Assert.Contains("target 'speed'", bad.Message);
        var opt = Assert.Throws<OnnxModelException>(() => Recipe.Parse(
            "stages: [{name: a, candidates: [\"prune{speed=2}\"]}]", json: false));
        Assert.Contains("no option 'speed'", opt.Message);
    }

    [Fact]
    public void SearchRespectsTheBudgetIsDeterministicAndRenders()
    {
        var a = Compress(Small);
        var r = a.Report;
        Assert.True(r.ChosenCandidate.WithinBudget);
        Assert.True(r.ChosenCandidate.DropUpper <= 0.5 + 1e-9);
        // Judged by the drop's upper bound at 90% (binomial on the 500 held-out images), never below the drop.
        Assert.Equal(0.9, r.Confidence);
        Assert.All(r.Candidates.Where(c => c.Error is null), c =>
        {
            Assert.Equal(c.DropUpper <= 0.5 + 1e-9, c.WithinBudget);
            Assert.True(c.DropUpper >= c.Drop - 1e-9);
        });
        Assert.Contains(r.Candidates, c => c.Error is null && c.DropUpper > c.Drop + 0.1);
        // bits=1 destroys the model: evaluated, over the budget, never chosen.
        Assert.Contains(r.Candidates, c => c.Step.StartsWith("cluster{bits=1,", StringComparison.Ordinal) && !c.WithinBudget);
        // Within the budget, nothing smaller than the chosen one.
        Assert.All(r.Candidates.Where(c => c.WithinBudget), c => Assert.True(c.PackedBytes >= r.ChosenCandidate.PackedBytes));
        Assert.True(r.ChosenCandidate.PackedBytes * 5 < r.Candidates[0].Bytes, "at least 5x smaller");
        Assert.Contains(r.Candidates, c => c.Pareto);
        Assert.Equal(a.Bytes, OnnxExporter.ToBytes(a.Model));
        // Same seed, same choice, same bytes.
        var b = Compress(Small);
        Assert.Equal(r.Chosen, b.Report.Chosen);
        Assert.Equal(a.Bytes, b.Bytes);
        // Reports.
        var json = CompressReportWriter.Json(r);
        Assert.Contains("\"chosen\": " + r.Chosen, json);
        Assert.Contains("\"drop_upper\": ", json);
        Assert.Contains("at 90% confidence", CompressReportWriter.Summary(r));
        var recipe = System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("recipe").GetRawText();
        Assert.True(Small.SameAs(Recipe.Parse(recipe, json: true)));
        var html = HtmlReport.Compress(r);
        Assert.Contains("id=\"pareto-latency\"", html);
        Assert.Contains("class=\"point chosen", html);
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("http", html.Replace("http://www.w3.org", ""));
        RenderInBrowser(html, "compress");
    }

    [Fact]
    public void NothingWithinABudgetOfZeroButTheExactOnes()
    {
        var r = Compress((Small with { MaxDrop = 0, Stages = [Small.Stages[0], Small.Stages[2]] }).Normalize()).Report;
        Assert.Equal(0, r.ChosenCandidate.Drop);
    }

    [Fact]
    public void UnderATimeBudgetTheCheapCandidatesRunFirstAndAreNotRunTwice()
    {
        // Anytime: the clustering of the cleaned model (no training) runs before pruning + 450 distillation steps,
        // and the full sweep after it reuses that candidate instead of evaluating it again.
        var recipe = Recipe.Parse("""
            target: size
            max_drop: 1
            beam: 2
            stages:
              - name: clean-up
                candidates: ["canonicalize,fold-bn"]
              - name: pruning
                candidates: ["", "prune{macs=0.6,min-speedup=0},distill{steps=450,eval-every=0}", "canonicalize"]
              - name: clustering
                candidates: ["cluster{bits=4}"]
            """, json: false).Normalize();
        Assert.Equal(450, Compressor.TrainingSteps(recipe.Stages[1].Candidates[1]));
        Assert.Equal(0, Compressor.TrainingSteps(recipe.Stages[2].Candidates[0]));
        var r = Compressor.Run(OnnxImporter.Load(Paths.Model("digits/vgg.onnx")), new CompressOptions
        {
            Calibration = CalibrationSource.FromFolder(Path.Combine(Data, "calib")),
            Evaluation = CalibrationSource.FromFolder(Path.Combine(Data, "test")),
            Recipe = recipe,
            TimeBudgetMinutes = 30,
            Bench = new Runtime.Validation.BenchOptions { Iterations = 5, Warmup = 1 },
        }).Report;
        Assert.Equal("clean-up", r.Candidates[1].Stage);
        var firstCluster = r.Candidates.First(c => c.Stage == "clustering");
        var pruned = r.Candidates.Single(c => c.Step.StartsWith("prune", StringComparison.Ordinal));
        Assert.Equal(1, firstCluster.Parent);
        Assert.True(firstCluster.Id < pruned.Id, "the clustering of the cleaned model runs before the pruning");
        Assert.Equal(r.Candidates.Count, r.Candidates.Select(c => (c.Parent, c.Step)).Distinct().Count());
        Assert.Contains(r.Candidates, c => c.Stage == "clustering" && c.Parent == pruned.Id);
        // canonicalize leaves the cleaned model as it was: it goes on as its parent, never clustered a second time.
        var again = r.Candidates.Single(c => c.Stage == "pruning" && c.Step.StartsWith("canonicalize", StringComparison.Ordinal));
        Assert.Equal(r.Candidates[1].Bytes, again.Bytes);
        Assert.DoesNotContain(r.Candidates, c => c.Parent == again.Id);
        Assert.Single(r.Candidates, c => c.Stage == "clustering" && c.Parent == 1);
    }

    [Fact]
    public void TransformerCandidatesCountTheirMacsAtTheHeldOutSequenceLength()
    {
        // A BERT-style model's MACs are mostly per token: at the eval data's sequence (32) they are the model's,
        // not the few terms without a symbolic dim (the pooler), so --target macs can rank head and neuron pruning.
        var recipe = Recipe.Parse("""
            target: macs
            max_drop: 5
            stages:
              - name: clean-up
                candidates: ["canonicalize"]
              - name: pruning
                candidates: ["prune{ratio=0.5,min-speedup=0}"]
            """, json: false).Normalize();
        var model = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx"));
        var r = Compressor.Run(model, new CompressOptions
        {
            Calibration = CalibrationSource.FromFolder(Paths.Model("transformers/bert_data")),
            Evaluation = CalibrationSource.FromFolder(Paths.Model("transformers/bert_eval")),
            Recipe = recipe,
            Bench = new Runtime.Validation.BenchOptions { Iterations = 5, Warmup = 1 },
        }).Report;
        var dims = new Dictionary<string, long> { ["sequence"] = 32 };
        Assert.Equal(ModelStats.Compute(model, dims: dims).TotalMacs, r.Candidates[0].Macs);
        Assert.True(r.Candidates[0].Macs > 32 * ModelStats.Compute(model).TotalMacs, $"{r.Candidates[0].Macs} MACs");
        var pruned = r.Candidates.Single(c => c.Stage == "pruning");
        Assert.InRange(pruned.Macs, r.Candidates[0].Macs / 2, r.Candidates[0].Macs * 9 / 10);
    }

    [BrowserFact]
    public void OptimizeReportRendersInTheBrowser()
    {
        var result = Optimizer.Run(Paths.Model("digits/resnet.onnx"), new OptimizeOptions
        {
            Pipeline = Presets.Prune.Build([new("macs", "0.6"), new("min-speedup", "0")]),
            Calibration = CalibrationSource.FromFolder(Path.Combine(Data, "calib")),
            Evaluation = CalibrationSource.FromFolder(Path.Combine(Data, "test")),
            Bench = new Runtime.Validation.BenchOptions { Iterations = 10, Warmup = 2 },
        });
        var html = HtmlReport.Optimize(result.Report);
        Assert.Contains("channels kept per group", html);
        RenderInBrowser(html, "prune");
    }

    [BrowserFact]
    public void QuantizeReportChartsEveryQuantizedWeight()
    {
        var result = Optimizer.Run(Paths.Model("transformers/bert_op13.onnx"), new OptimizeOptions
        {
            Pipeline = Pipeline.Parse("quantize"),
            Calibration = CalibrationSource.FromFolder(Paths.Model("transformers/bert_data")),
            Evaluation = CalibrationSource.FromFolder(Paths.Model("transformers/bert_eval")),
        });
        var html = HtmlReport.Optimize(result.Report);
        Assert.Contains("weight SQNR after quantization", html);
        Assert.Contains("bits per quantized weight", html);
        Assert.Contains("SmoothQuant: simulated int8 error", html);
        RenderInBrowser(html, "quantize-transformer");
    }

    /// <summary>Loads the page in headless chromium: no console errors, the charts and tables in the DOM, and a
    /// screenshot next to the test binaries (screenshots/NAME.png).</summary>
    private static void RenderInBrowser(string html, string name)
    {
        if (Browser.Path is null) return;
        var dir = Paths.TempDir();
        var page = Path.Combine(dir, name + ".html");
        File.WriteAllText(page, html);
        var (dom, err) = Browser.Run(page, "--dump-dom");
        Assert.Contains("<svg class=\"chart", dom);
        Assert.Contains("id=\"summary-table\"", dom);
        Assert.Contains("id=\"validation-table\"", dom);
        Assert.DoesNotContain("Uncaught", err);
        Assert.DoesNotMatch(@"CONSOLE\(\d+\).*(error|Error)", err);
        var shots = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(shots);
        var png = Path.Combine(shots, name + ".png");
        Browser.Run(page, $"--screenshot={png}", "--window-size=1200,2200", "--hide-scrollbars");
        Assert.True(new FileInfo(png).Length > 10_000, $"screenshot {png}");
    }
}
