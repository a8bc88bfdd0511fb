// onnxopt compress IN -o OUT (--calib DIR | --calib-random N) (--eval DIR | --eval-random N) [--max-drop X]
//                  [--confidence 0.9] [--target latency|size|macs]
//                  [--recipe auto|FILE] [--time-budget MINUTES] [--html R.html] [--report R.json] [--force]
// The library's Compressor: a search over clean-up, Layer Folding, pruning with distillation, and int8 or
// clustering, every candidate validated in ORT on --eval; the best one within the budget is written
// (OUT.onnxz: the packed archive; otherwise the ONNX model), atomically. A search that finds nothing within
// the budget keeps the input (exact clean-up at worst), so a result breaking the budget is never written.
using System.CommandLine;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class CompressCommand
{
    public static Command Create(CliContext ctx)
    {
        var input = new Argument<string>("IN") { Description = "ONNX model file" };
        var output = new Option<string>("--output", "-o")
        {
            Description = "output: .onnx model, or .onnxz for the packed archive",
            Required = true,
        };
        var calib = new Option<string?>("--calib")
        {
            Description = "calibration/training data folder (no labels needed)",
        };
        var calibRandom = new Option<int?>("--calib-random")
        {
            Description = "use N seeded random calibration samples",
        };
        var eval = new Option<string?>("--eval")
        {
            Description = "held-out data folder every candidate is validated on",
        };
        var evalRandom = new Option<int?>("--eval-random")
        {
            Description = "validate on N seeded random samples (top-1 agreement or cosine with the input) instead",
        };
        var maxDrop = new Option<double?>("--max-drop")
        {
            Description = "accuracy budget in points (labels) or of top-1 agreement (default: the recipe's, 1 for "
                + "auto)",
        };
        var confidence = new Option<double>("--confidence")
        {
            Description = "judge each candidate by the upper bound of its drop at this confidence (binomial for "
                + "accuracy, bootstrap otherwise; 0: the measured drop)",
            DefaultValueFactory = _ => 0.9,
        };
        var target = new Option<string>("--target")
        {
            Description = "what to minimize within the budget",
            DefaultValueFactory = _ => "size",
        };
        target.AcceptOnlyFromAmong(Recipe.Targets);
        var recipe = new Option<string>("--recipe")
        {
            Description = "auto, or a YAML/JSON recipe file",
            DefaultValueFactory = _ => "auto",
        };
        var time = new Option<double?>("--time-budget")
        {
            Description = "stop starting candidates after this many minutes",
        };
        var report = new Option<string?>("--report") { Description = "write the JSON report here" };
        var html = new Option<string?>("--html") { Description = "write the self-contained HTML report here" };
        var iters = new Option<int>("--bench-iterations")
        {
            Description = "ORT timing runs per candidate",
            DefaultValueFactory = _ => 100,
        };
        var cmd = new Command("compress",
            "Search clean-up, Layer Folding, pruning + distillation and int8 or clustering for the "
            + "smallest or fastest model within an accuracy budget, validated in ORT");
        cmd.Add(input);
        foreach (var o in new Option[] { output, calib, calibRandom, eval, evalRandom, maxDrop, confidence, target,
            recipe, time, report, html, iters }) cmd.Add(o);
        var metric = new MetricOptions();
        metric.AddTo(cmd);
        cmd.SetAction(r =>
        {
            string inPath = r.GetValue(input)!, outPath = r.GetValue(output)!;
            CliContext.CheckOutput(inPath, outPath);
            var model = OnnxImporter.Load(inPath);
            var errors = Verifier.Check(model);
            if (errors.Count > 0) throw new OnnxModelException($"{inPath}: {errors[0]}");
            if (r.GetValue(confidence) is var conf && (conf < 0 || conf >= 1 || (conf > 0 && conf < 0.5)))
                throw new OnnxModelException("--confidence must be 0 (judge the measured drop) or in [0.5, 1)");
            var spec = r.GetValue(recipe)!;
            var rec = spec == "auto" ? Recipe.Auto(r.GetValue(target)!, r.GetValue(maxDrop) ?? 1) : Recipe.Load(spec);
            if (spec != "auto" && r.GetValue(maxDrop) is { } md) rec = rec with { MaxDrop = md };
            if (spec != "auto" && r.GetResult(target) is not null) rec = rec with { Target = r.GetValue(target)! };
            var options = new CompressOptions
            {
                Calibration = Source(r.GetValue(calib), r.GetValue(calibRandom), "--calib", 1)
                    .WithProgress(ctx.Progress),
                Evaluation = Source(r.GetValue(eval), r.GetValue(evalRandom), "--eval", 2),
                Recipe = rec.Normalize(),
                TimeBudgetMinutes = r.GetValue(time),
                Bench = new Runtime.Validation.BenchOptions { Iterations = r.GetValue(iters), Warmup = 10 },
                Metric = metric.Read(r),
                Confidence = r.GetValue(confidence),
                Log = ctx.Err,
            };
            var result = Compressor.Run(model, options, inPath, outPath);
            if (r.GetValue(report) is { } rp) AtomicFile.WriteAllText(rp, CompressReportWriter.Json(result.Report));
            if (r.GetValue(html) is { } hp) AtomicFile.WriteAllText(hp, HtmlReport.Compress(result.Report));
            ctx.Err.WriteLine(CompressReportWriter.Summary(result.Report));
            if (outPath.EndsWith(".onnxz", StringComparison.OrdinalIgnoreCase)) AtomicFile.Write(outPath, s =>
                s.Write(result.Packed));
            else OnnxExporter.Save(result.Model, outPath);
            ctx.Err.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }

    /// <summary>A data folder, or N seeded random samples; exactly one of them.</summary>
    private static CalibrationSource Source(string? dir, int? random, string flag, ulong seed) => (dir, random) switch
    {
        ({ } d, null) => CalibrationSource.FromFolder(d),
        (null, > 0 and int n) => CalibrationSource.FromRandom(n, seed),
        (null, null) => throw new OnnxModelException($"compress needs {flag} DIR or {flag}-random N"),
        (null, _) => throw new OnnxModelException($"{flag}-random must be positive"),
        _ => throw new OnnxModelException($"give either {flag} or {flag}-random, not both"),
    };
}
