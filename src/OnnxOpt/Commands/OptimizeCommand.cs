// onnxopt optimize IN -o OUT --passes PIPELINE [--calib DIR | --calib-random N] [--eval DIR]
//                  [--report R.json] [--validate] [--force] [--verify-each] [--bench]
// Runs the pipeline, verifies the result, optionally validates it against the input in ORT (exact
// pipelines by tolerance, approximate ones by top-1 agreement, and accuracy when labels exist; on the
// --eval folder when given, else on the calibration data, else on 10 seeded random inputs), and
// writes it atomically. A failed validation writes nothing (exit 1) unless --force (then the output
// is written and the exit code is still 1). The JSON report holds the input/output inspect summaries, the normalized pipeline,
// per-pass counters, time and decisions, validation and (with --bench) ORT latency before/after.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Data;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Cli;

/// <summary>Everything one optimize run needs (optimize and quantize build it from their options).</summary>
public sealed record OptimizeRequest(string Input, string Output, Pipeline Pipeline)
{
    public string? Calib { get; init; }
    public int? CalibRandom { get; init; }
    public string? Eval { get; init; }
    public ulong Seed { get; init; } = 1;
    public string? Report { get; init; }
    public bool Validate { get; init; }
    public bool Force { get; init; }
    public bool VerifyEach { get; init; }
    public bool Bench { get; init; }
    public double Rtol { get; init; } = 1e-4;
    public double Atol { get; init; } = 1e-5;
    public double? MaxDrop { get; init; }
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
        public readonly Option<string?> Eval = new("--eval") { Description = "held-out data folder: validation runs on it (implies --validate) and accuracy budgets are measured on it" };
        public readonly Option<ulong> Seed = new("--seed") { Description = "seed for random calibration/validation inputs", DefaultValueFactory = _ => 1UL };
        public readonly Option<string?> Report = new("--report") { Description = "write a JSON report here" };
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
            foreach (var o in new Option[] { Output, Calib, CalibRandom, Eval, Seed, Report, Validate, Force, VerifyEach, Bench, Rtol, Atol, MaxDrop }) c.Add(o);
        }

        public OptimizeRequest Read(ParseResult r, Pipeline pipeline) => new(r.GetValue(Input)!, r.GetValue(Output)!, pipeline)
        {
            Calib = r.GetValue(Calib), CalibRandom = r.GetValue(CalibRandom), Eval = r.GetValue(Eval), Seed = r.GetValue(Seed),
            Report = r.GetValue(Report), Validate = r.GetValue(Validate), Force = r.GetValue(Force), VerifyEach = r.GetValue(VerifyEach),
            Bench = r.GetValue(Bench), Rtol = r.GetValue(Rtol), Atol = r.GetValue(Atol), MaxDrop = r.GetValue(MaxDrop),
        };
    }

    public static Command Create(CliContext ctx)
    {
        var common = new CommonOptions();
        var passes = new Option<string>("--passes") { Description = "pipeline, e.g. \"canonicalize,fold-bn,linearize{max-agreement-drop=0.5},fold-conv\" (or @file.json)", Required = true };
        var cmd = new Command("optimize", "Run a pass pipeline on a model, verify, validate in ORT and write the result");
        common.AddTo(cmd);
        cmd.Add(passes);
        cmd.SetAction(r => Execute(ctx, common.Read(r, Pipeline.FromArgument(r.GetValue(passes)!))));
        return cmd;
    }

    /// <summary>The pipeline's budget options (max-agreement-drop, max-drop), used as the default validation limit.</summary>
    private static double DefaultLimit(Pipeline p) => Math.Max(0.5, p.Steps
        .SelectMany(s => s.Pass.Options.Where(o => o.Name is "max-agreement-drop" or "max-drop").Select(o => s.Options.Double(o.Name)))
        .DefaultIfEmpty(0).Max());

    public static int Execute(CliContext ctx, OptimizeRequest q)
    {
        if (Path.GetFullPath(q.Input) == Path.GetFullPath(q.Output))
            throw new OnnxModelException($"{q.Output}: output would overwrite the input model; choose another path");
        var pipeline = q.Pipeline;
        if (q.Calib is not null && q.CalibRandom is not null) throw new OnnxModelException("give either --calib or --calib-random, not both");
        CalibrationSource? source = q.Calib is not null ? CalibrationSource.FromFolder(q.Calib)
            : q.CalibRandom is int n ? (n > 0 ? CalibrationSource.FromRandom(n, q.Seed) : throw new OnnxModelException("--calib-random must be positive")) : null;
        var evaluation = q.Eval is not null ? CalibrationSource.FromFolder(q.Eval) : null;
        foreach (var step in pipeline.Steps)
            if (step.Pass.NeedsCalibration && source is null)
                throw new OnnxModelException($"pass '{step.Pass.Name}' needs calibration data: give --calib DIR or --calib-random N");

        var original = CliContext.LoadModel(q.Input);
        var originalBytes = OnnxExporter.ToBytes(original);
        var before = ModelStats.Compute(OnnxImporter.Parse(originalBytes), new FileInfo(q.Input).Length);
        var model = OnnxImporter.Parse(originalBytes, Path.GetDirectoryName(Path.GetFullPath(q.Input)));
        var pctx = new PassContext(model, source, ctx.Err, evaluation);
        var runs = PipelineRunner.Run(model, pipeline, pctx, q.VerifyEach);
        Verifier.Verify(model);
        var outBytes = OnnxExporter.ToBytes(model);
        var after = ModelStats.Compute(OnnxImporter.Parse(outBytes), outBytes.LongLength);

        ValidationReport? val = null;
        string? verdict = null;
        bool exact = pipeline.Steps.All(s => s.Pass.IsExact);
        if (q.Validate || q.Eval is not null)
        {
            // Exact rewrites are checked as math (ORT's own rewrites off); approximate ones as they will
            // run (optimizations on: for int8 models, the fused int8 kernels).
            var settings = new SessionSettings { Optimization = exact ? GraphOptimization.Disabled : GraphOptimization.All };
            using var a = InferenceSession.FromBytes(originalBytes, settings);
            using var b = InferenceSession.FromBytes(outBytes, settings);
            var data = q.Eval is { } evalDir ? DataSet.FromFolder(evalDir, a.Inputs)
                : source?.DataFor(a.Inputs) ?? DataSet.Random(a.Inputs, 10, q.Seed);
            val = Validator.Compare(a, b, data, new ValidationOptions { Rtol = q.Rtol, Atol = q.Atol });
            if (exact) verdict = val.Passed ? null : "outputs differ beyond tolerance";
            else
            {
                var limit = q.MaxDrop ?? DefaultLimit(pipeline);
                var c = CultureInfo.InvariantCulture;
                if (val.ReferenceAccuracy is double ra && val.CandidateAccuracy is double ca)
                {
                    var drop = 100 * (ra - ca);
                    verdict = drop <= limit + 1e-9 ? null : string.Create(c, $"accuracy dropped {drop:F2} points (limit {limit:G3})");
                }
                else
                {
                    var agreement = val.Outputs.Select(o => o.Top1Agreement).FirstOrDefault(x => x is not null);
                    var drop = agreement is double ag ? 100 * (1 - ag) : 100 * (1 - val.Outputs[0].Cosine);
                    verdict = drop <= limit + 1e-9 ? null : string.Create(c, $"agreement dropped {drop:F2} points (limit {limit:G3})");
                }
            }
        }
        BenchReport? latency = q.Bench ? Benchmark.Run(originalBytes, outBytes, new BenchOptions()) : null;
        if (q.Report is { } rp)
            AtomicFile.WriteAllText(rp, Report(q.Input, q.Output, pipeline, before, after, runs, val, verdict, exact, latency));
        ctx.Err.WriteLine(Summary(pipeline, before, after, val, verdict, latency));
        foreach (var note in runs.SelectMany(x => x.Stats.Notes)) ctx.Err.WriteLine("note: " + note);
        if (verdict is not null && !q.Force)
        {
            ctx.Err.WriteLine($"onnxopt: validation failed ({verdict}); {q.Output} not written (use --force to write it anyway)");
            return 1;
        }
        OnnxExporter.Save(model, q.Output);
        if (verdict is not null)
        {
            ctx.Err.WriteLine($"onnxopt: validation failed ({verdict}); {q.Output} written anyway (--force)");
            return 1;
        }
        ctx.Err.WriteLine($"wrote {q.Output}");
        return 0;
    }

    private static string Summary(Pipeline p, ModelStats b, ModelStats a, ValidationReport? v, string? verdict, BenchReport? lat)
    {
        var c = CultureInfo.InvariantCulture;
        var s = string.Create(c, $"pipeline {p}: nodes {b.NodeCount} -> {a.NodeCount}, MACs {b.TotalMacs:N0} -> {a.TotalMacs:N0}, non-linear depth {b.NonLinearDepth} -> {a.NonLinearDepth}, parameters {b.ParameterCount:N0} -> {a.ParameterCount:N0} ({a.ZeroParameterCount:N0} zero), file {b.FileBytes:N0} -> {a.FileBytes:N0} bytes");
        if (v is not null)
        {
            var o = v.Outputs[0];
            s += string.Create(c, $"\nvalidation on {v.Data}: {(verdict is null ? "passed" : "FAILED: " + verdict)}; max abs error {o.MaxAbsError:G3}, cosine {o.Cosine:F6}, SQNR {ValidateCommand.SqnrText(o.SqnrDb)}");
            if (o.Top1Agreement is double t) s += string.Create(c, $", top-1 agreement {t * 100:F2}%");
            if (v.ReferenceAccuracy is double ra) s += string.Create(c, $", accuracy {ra * 100:F2}% -> {v.CandidateAccuracy!.Value * 100:F2}%");
        }
        if (lat is not null) s += string.Create(c, $"\nlatency (ORT, 1 thread): {lat.Model.MedianMs:F4} ms -> {lat.Other!.MedianMs:F4} ms ({lat.Speedup:F2}x)");
        return s;
    }

    public static string Report(string inPath, string outPath, Pipeline pipeline, ModelStats before, ModelStats after,
        List<PassRun> runs, ValidationReport? val, string? verdict, bool exact, BenchReport? latency)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("input", inPath);
            w.WriteString("output", outPath);
            w.WriteString("pipeline", pipeline.ToString());
            w.WritePropertyName("before");
            InspectCommand.Write(w, before);
            w.WritePropertyName("after");
            InspectCommand.Write(w, after);
            w.WriteStartArray("passes");
            foreach (var run in runs)
            {
                w.WriteStartObject();
                w.WriteString("pass", run.Step);
                w.WriteNumber("time_ms", Math.Round(run.Milliseconds, 3));
                w.WriteStartObject("counters");
                foreach (var (k, v) in run.Stats.Counters) w.WriteNumber(k, v);
                w.WriteEndObject();
                w.WriteStartArray("decisions");
                foreach (var d in run.Stats.Decisions)
                {
                    w.WriteStartObject();
                    foreach (var (k, v) in d) WriteValue(w, k, v);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                if (run.Stats.Notes.Count > 0)
                {
                    w.WriteStartArray("notes");
                    foreach (var n in run.Stats.Notes) w.WriteStringValue(n);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (val is not null)
            {
                w.WriteStartObject("validation");
                w.WriteString("mode", exact ? "tolerance" : "agreement");
                w.WriteBoolean("accepted", verdict is null);
                if (verdict is not null) w.WriteString("reason", verdict);
                ValidateCommand.Write(w, val);
                w.WriteEndObject();
            }
            if (latency is not null)
            {
                w.WriteStartObject("latency");
                w.WriteNumber("threads", latency.Options.Threads);
                w.WriteNumber("iterations", latency.Options.Iterations);
                w.WriteNumber("before_median_ms", latency.Model.MedianMs);
                w.WriteNumber("after_median_ms", latency.Other!.MedianMs);
                w.WriteNumber("speedup", latency.Speedup!.Value);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void WriteValue(Utf8JsonWriter w, string k, object? v)
    {
        switch (v)
        {
            case null: w.WriteNull(k); break;
            case bool b: w.WriteBoolean(k, b); break;
            case long l: w.WriteNumber(k, l); break;
            case int i: w.WriteNumber(k, i); break;
            case double d when double.IsFinite(d): w.WriteNumber(k, d); break;
            case double: w.WriteNull(k); break;
            default: w.WriteString(k, v.ToString()); break;
        }
    }
}
