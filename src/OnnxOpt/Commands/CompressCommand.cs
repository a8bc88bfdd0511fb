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
        var f = new Flags();
        var cmd = new Command("compress",
            "Search clean-up, Layer Folding, pruning + distillation and int8 or clustering for the "
            + "smallest or fastest model within an accuracy budget, validated in ORT");
        cmd.Add(f.Input);
        foreach (var o in new Option[] { f.Output, f.Calib, f.CalibRandom, f.Eval, f.EvalRandom, f.MaxDrop,
            f.Confidence, f.Target, f.Recipe, f.Time, f.Report, f.Html, f.Iters }) cmd.Add(o);
        var metric = new MetricOptions();
        metric.AddTo(cmd);
        cmd.SetAction(r =>
        {
            string inPath = r.GetValue(f.Input)!, outPath = r.GetValue(f.Output)!;
            CliContext.CheckOutput(inPath, outPath);
            var model = OnnxImporter.Load(inPath);
            var errors = Verifier.Check(model);
            if (errors.Count > 0) throw new OnnxModelException($"{inPath}: {errors[0]}");
            if (r.GetValue(f.Confidence) is var conf && (conf < 0 || conf >= 1 || (conf > 0 && conf < 0.5)))
                throw new OnnxModelException("--confidence must be 0 (judge the measured drop) or in [0.5, 1)");
            var spec = r.GetValue(f.Recipe)!;
            var rec = spec == "auto" ? Recipe.Auto(r.GetValue(f.Target)!, r.GetValue(f.MaxDrop) ?? 1)
                : Recipe.Load(spec);
            if (spec != "auto" && r.GetValue(f.MaxDrop) is { } md) rec = rec with { MaxDrop = md };
            if (spec != "auto" && r.GetResult(f.Target) is not null) rec = rec with { Target = r.GetValue(f.Target)! };
            var options = new CompressOptions
            {
                Calibration = Source(r.GetValue(f.Calib), r.GetValue(f.CalibRandom), "--calib", 1)
                    .WithProgress(ctx.Progress),
                Evaluation = Source(r.GetValue(f.Eval), r.GetValue(f.EvalRandom), "--eval", 2),
                Recipe = rec.Normalize(),
                TimeBudgetMinutes = r.GetValue(f.Time),
                Bench = new Runtime.Validation.BenchOptions { Iterations = r.GetValue(f.Iters), Warmup = 10 },
                Metric = metric.Read(r),
                Confidence = r.GetValue(f.Confidence),
                Log = ctx.Err,
            };
            var result = Compressor.Run(model, options, inPath, outPath);
            if (r.GetValue(f.Report) is { } rp) AtomicFile.WriteAllText(rp, CompressReportWriter.Json(result.Report));
            if (r.GetValue(f.Html) is { } hp) AtomicFile.WriteAllText(hp, HtmlReport.Compress(result.Report));
            ctx.Err.WriteLine(CompressReportWriter.Summary(result.Report));
            if (outPath.EndsWith(".onnxz", StringComparison.OrdinalIgnoreCase)) AtomicFile.Write(outPath, s =>
                s.Write(result.Packed));
            else OnnxExporter.Save(result.Model, outPath);
            ctx.Err.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }

    // compress's arguments and options, declared once.
    private sealed class Flags
    {
        public readonly Argument<string> Input = new("IN") { Description = "ONNX model file" };
        public readonly Option<string> Output = new("--output", "-o")
        {
            Description = "output: .onnx model, or .onnxz for the packed archive",
            Required = true,
        };
        public readonly Option<string?> Calib = new("--calib")
        {
            Description = "calibration/training data folder (no labels needed)",
        };
        public readonly Option<int?> CalibRandom = new("--calib-random")
        {
            Description = "use N seeded random calibration samples",
        };
        public readonly Option<string?> Eval = new("--eval")
        {
            Description = "held-out data folder every candidate is validated on",
        };
        public readonly Option<int?> EvalRandom = new("--eval-random")
        {
            Description = "validate on N seeded random samples (top-1 agreement or cosine with the input) instead",
        };
        public readonly Option<double?> MaxDrop = new("--max-drop")
        {
            Description = "accuracy budget in points (labels) or of top-1 agreement (default: the recipe's, 1 for "
                + "auto)",
        };
        public readonly Option<double> Confidence = new("--confidence")
        {
            Description = "judge each candidate by the upper bound of its drop at this confidence (binomial for "
                + "accuracy, bootstrap otherwise; 0: the measured drop)",
            DefaultValueFactory = _ => 0.9,
        };
        public readonly Option<string> Target = new("--target")
        {
            Description = "what to minimize within the budget",
            DefaultValueFactory = _ => "size",
        };
        public readonly Option<string> Recipe = new("--recipe")
        {
            Description = "auto, or a YAML/JSON recipe file",
            DefaultValueFactory = _ => "auto",
        };
        public readonly Option<double?> Time = new("--time-budget")
        {
            Description = "stop starting candidates after this many minutes",
        };
        public readonly Option<string?> Report = new("--report") { Description = "write the JSON report here" };
        public readonly Option<string?> Html = new("--html")
        {
            Description = "write the self-contained HTML report here",
        };
        public readonly Option<int> Iters = new("--bench-iterations")
        {
            Description = "ORT timing runs per candidate",
            DefaultValueFactory = _ => 100,
        };

        public Flags() => Target.AcceptOnlyFromAmong(OnnxOpt.Passes.Recipe.Targets);
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
