// onnxopt optimize IN -o OUT [--passes PIPELINE] [--opset N] [--dim NAME=V] [--calib DIR | --calib-random N]
//                  [--eval DIR] [--report R.json] [--html R.html] [--validate] [--force] [--verify-each] [--bench]
// Without --passes: Presets.Exact (clean-up and fusions; with --dim, fix-dims first), always validated.
// Parses flags into OptimizeOptions, runs the library's driver (Optimizer.Run: passes, verification,
// validation in ORT, latency), then renders: the summary on stderr, the JSON report (OptimizeReportWriter),
// and the model written atomically. A refused result writes nothing (exit 1) unless --force (then the
// output is written and the exit code is still 1).
using System.CommandLine;
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Cli;

/// <summary>Everything one optimize run needs (optimize and quantize build it from their options).</summary>
public sealed record OptimizeRequest(string Input, string Output, Pipeline Pipeline)
{
    public string? Calib { get; init; }
    public int? CalibRandom { get; init; }
    public bool SkipNonFinite { get; init; }
    public string? Eval { get; init; }
    /// <summary>Without --eval, the share of --calib held out for budgets when a pass trains (--hold-out).</summary>
    public double HoldOut { get; init; } = 0.2;
    public ulong Seed { get; init; } = 1;
    public string? Report { get; init; }
    public string? Html { get; init; }
    public bool Validate { get; init; }
    public bool Force { get; init; }
    public bool VerifyEach { get; init; }
    public bool Bench { get; init; }
    public double Rtol { get; init; } = 1e-4;
    public double Atol { get; init; } = 1e-5;
    public double? MaxDrop { get; init; }
    /// <summary>Values of symbolic dims for random validation inputs (--dim NAME=V).</summary>
    public IReadOnlyDictionary<string, long>? Dims { get; init; }
    /// <summary>Ranges of random integer inputs (--int-range NAME=LO:HI), over the ones the model's use
    /// gives.</summary>
    public IReadOnlyDictionary<string, ValueRange>? IntRanges { get; init; }
    /// <summary>The measure approximate pipelines are judged on (--metric, --metric-output, --pool).</summary>
    public MetricSpec Metric { get; init; } = MetricSpec.Default;
    /// <summary>How the output is written (external data); null: everything inline.</summary>
    public ExportOptions? Export { get; init; }
}

public static class OptimizeCommand
{
    /// <summary>The options optimize and quantize share (declared once), with the code reading them.</summary>
    public sealed class CommonOptions
    {
        public readonly Argument<string> Input = new("IN") { Description = "ONNX model file" };
        public readonly Option<string> Output = new("--output", "-o") { Description = "output model file", Required = true };
        public readonly Option<string?> Calib = new("--calib") { Description = "calibration data folder" };
        public readonly Option<int?> CalibRandom = new("--calib-random") { Description = "use N seeded random calibration samples" };
        public readonly Option<bool> SkipNonFinite = new("--skip-nonfinite")
        {
            Description = "drop calibration and evaluation samples holding NaN or infinity (default: refuse the data)",
        };
        public readonly Option<string?> Eval = new("--eval") { Description = "held-out data folder: validation runs on it (implies --validate) and accuracy budgets are measured on it" };
        public readonly Option<double> HoldOut = new("--hold-out")
        {
            Description = "without --eval, the share of --calib held out (seeded, at least 50 samples) for the budget "
                + "and the validation when a pass trains on it; 0: none (the result is then refused unless --force)",
            DefaultValueFactory = _ => 0.2,
        };
        public readonly Option<ulong> Seed = new("--seed") { Description = "seed for random calibration/validation inputs", DefaultValueFactory = _ => 1UL };
        public readonly Option<string?> Report = new("--report") { Description = "write a JSON report here" };
        public readonly Option<string?> Html = new("--html")
        {
            Description = "write a self-contained HTML report "
            + "here"
        };
        public readonly Option<string[]> Dims = new("--dim")
        {
            Description = "value of a symbolic dimension in random validation inputs, e.g. --dim N=8 (default 1)",
        };
        public readonly Option<string[]> IntRanges = CliContext.IntRangeOption();
        public readonly MetricOptions Metric = new();
        public readonly Option<bool> Validate = new("--validate") { Description = "compare the output with the input in ORT before writing" };
        public readonly Option<bool> Force = new("--force") { Description = "write the output even if validation fails" };
        public readonly Option<bool> VerifyEach = new("--verify-each") { Description = "run the IR verifier after every pass" };
        public readonly Option<bool> Bench = new("--bench") { Description = "measure ORT latency before/after (1 thread) into the report" };
        public readonly Option<double> Rtol = new("--rtol") { Description = "validation tolerance for exact pipelines", DefaultValueFactory = _ => 1e-4 };
        public readonly Option<double> Atol = new("--atol") { Description = "validation tolerance for exact pipelines", DefaultValueFactory = _ => 1e-5 };
        public readonly Option<double?> MaxDrop = new("--max-agreement-drop") { Description = "validation limit for approximate pipelines, in points of accuracy (with labels) or top-1 agreement (default: the pipeline's largest budget, at least 0.5)" };

        public void AddTo(Command c)
        {
            c.Add(Input);
            foreach (var o in new Option[] { Output, Calib, CalibRandom, SkipNonFinite, Eval, HoldOut, Seed, Dims,
                IntRanges,
                Report, Html,
                Validate,
                Force, VerifyEach, Bench, Rtol, Atol, MaxDrop }) c.Add(o);
            Metric.AddTo(c);
        }

        public OptimizeRequest Read(ParseResult r, Pipeline pipeline) => new(r.GetValue(Input)!, r.GetValue(Output)!,
            pipeline)
        {
            Calib = r.GetValue(Calib),
            CalibRandom = r.GetValue(CalibRandom),
            SkipNonFinite = r.GetValue(SkipNonFinite),
            Eval = r.GetValue(Eval),
            HoldOut = r.GetValue(HoldOut),
            Seed = r.GetValue(Seed),
            Dims = CliContext.ParseDims(r.GetValue(Dims)),
            IntRanges = CliContext.ParseIntRanges(r.GetValue(IntRanges)),
            Metric = Metric.Read(r),
            Report = r.GetValue(Report),
            Html = r.GetValue(Html),
            Validate = r.GetValue(Validate),
            Force = r.GetValue(Force),
            VerifyEach = r.GetValue(VerifyEach),
            Bench = r.GetValue(Bench),
            Rtol = r.GetValue(Rtol),
            Atol = r.GetValue(Atol),
            MaxDrop = r.GetValue(MaxDrop),
        };
    }

    public static Command Create(CliContext ctx)
    {
        var common = new CommonOptions();
        var passes = new Option<string?>("--passes")
        {
            Description = "pipeline, e.g. \"canonicalize,fold-bn,linearize{max-agreement-drop=0.5},fold-conv\" (or "
                + "@file.json); default: the exact clean-up with fusions, specialized to --dim when given, validated",
        };
        var opset = new Option<long?>("--opset")
        {
            Description = "raise the ai.onnx opset to N first (17 lets LayerNorm fuse, 20 GELU)",
        };
        var cmd = new Command("optimize", "Run a pass pipeline on a model, verify, validate in ORT and write the result");
        common.AddTo(cmd);
        cmd.Add(passes);
        cmd.Add(opset);
        cmd.SetAction(r =>
        {
            var to = r.GetValue(opset);
            if (to is long v && (v < UpgradeOpset.Oldest || v > UpgradeOpset.Newest))
                throw new OnnxModelException($"--opset {v}: give {UpgradeOpset.Oldest}..{UpgradeOpset.Newest}");
            if (r.GetValue(passes) is not { } text)
            {
                var dims = CliContext.ParseDims(r.GetValue(common.Dims));
                var q = common.Read(r, Presets.Exact(dims, to));
                // A specialized model is timed against the input: ORT may run it slower (see LatencyWarning).
                return Execute(ctx, q with { Validate = true, Bench = q.Bench || dims.Count > 0 });
            }
            var pipeline = Pipeline.FromArgument(text);
            if (to is long version)
                pipeline = Pipeline.Parse($"upgrade-opset{{version={version}}},{pipeline}");
            return Execute(ctx, common.Read(r, pipeline));
        });
        return cmd;
    }

    /// <summary>Builds the library's options from the request, runs Optimizer.Run, writes the report and
    /// (when accepted, or forced) the model, and prints the summary.</summary>
    public static int Execute(CliContext ctx, OptimizeRequest q)
    {
        CliContext.CheckOutput(q.Input, q.Output);
        if (q.Calib is not null && q.CalibRandom is not null)
            throw new OnnxModelException("give either --calib or --calib-random, not both");
        CalibrationSource? source = q.Calib is not null ? CalibrationSource.FromFolder(q.Calib, q.SkipNonFinite)
            : q.CalibRandom is int n ? (n > 0 ? CalibrationSource.FromRandom(n,
                q.Seed, q.Dims, q.IntRanges) : throw new OnnxModelException("--calib-random must be positive")) : null;
        source = source?.WithProgress(ctx.Progress);
        var options = new OptimizeOptions
        {
            Pipeline = q.Pipeline,
            Calibration = source,
            Evaluation = q.Eval is not null ? CalibrationSource.FromFolder(q.Eval, q.SkipNonFinite)
                .WithProgress(ctx.Progress) : null,
            Validate = q.Validate,
            HoldOut = q.HoldOut is >= 0 and < 1 ? q.HoldOut
                : throw new OnnxModelException($"--hold-out {q.HoldOut}: give a share in [0, 1)"),
            Seed = q.Seed,
            Dims = q.Dims,
            IntRanges = q.IntRanges,
            Metric = q.Metric,
            Rtol = q.Rtol,
            Atol = q.Atol,
            MaxDrop = q.MaxDrop,
            VerifyEach = q.VerifyEach,
            Bench = q.Bench ? new BenchOptions { Dims = q.Dims, IntRanges = q.IntRanges } : null,
            Log = ctx.Err,
        };
        Optimizer.CheckDataNeeds(options);
        var result = Optimizer.Run(q.Input, options, q.Output);
        ctx.EndProgress();
        if (q.Report is { } rp) AtomicFile.WriteAllText(rp, OptimizeReportWriter.Json(result.Report));
        if (q.Html is { } hp) AtomicFile.WriteAllText(hp, HtmlReport.Optimize(result.Report));
        ctx.Err.WriteLine(OptimizeReportWriter.Summary(result.Report));
        foreach (var note in result.Report.Notes) ctx.Err.WriteLine("note: " + note);
        if (ctx.Verbose)
            foreach (var run in result.Report.Passes)
                ctx.Err.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"pass {run.Step}: {run.Milliseconds:F0} ms")
                    + string.Concat(run.Stats.Counters.Select(kv => $"; {kv.Key} {kv.Value}")));
        foreach (var (what, s) in new[] { ("calibration", options.Calibration), ("evaluation", options.Evaluation) })
            if (s?.SkippedNonFinite is > 0 and var k)
                ctx.Err.WriteLine($"note: skipped {k} {what} samples holding NaN or infinity (--skip-nonfinite)");
        var failed = result.Idle is { } idle ? idle : $"validation failed ({result.Verdict})";
        if (!result.Accepted && !q.Force)
        {
            ctx.Err.WriteLine($"onnxopt: {failed}; {q.Output} not written (use --force to write it anyway)");
            return 1;
        }
        OnnxExporter.Save(result.Model, q.Output, q.Export);
        if (!result.Accepted)
        {
            ctx.Err.WriteLine($"onnxopt: {failed}; {q.Output} written anyway (--force)");
            return 1;
        }
        ctx.Err.WriteLine($"wrote {q.Output}");
        return 0;
    }
}
