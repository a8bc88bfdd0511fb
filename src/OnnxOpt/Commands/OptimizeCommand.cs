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

public static class OptimizeCommand
{
    public static Command Create(CliContext ctx)
    {
        var input = new Argument<string>("IN") { Description = "ONNX model file" };
        var output = new Option<string>("--output", "-o") { Description = "output model file", Required = true };
        var passes = new Option<string>("--passes") { Description = "pipeline, e.g. \"canonicalize,fold-bn,linearize{max-agreement-drop=0.5},fold-conv\" (or @file.json)", Required = true };
        var calib = new Option<string?>("--calib") { Description = "calibration data folder" };
        var calibRandom = new Option<int?>("--calib-random") { Description = "use N seeded random calibration samples" };
        var eval = new Option<string?>("--eval") { Description = "held-out data folder to validate on (implies --validate; default: the calibration data)" };
        var seed = new Option<ulong>("--seed") { Description = "seed for random calibration/validation inputs", DefaultValueFactory = _ => 1UL };
        var report = new Option<string?>("--report") { Description = "write a JSON report here" };
        var validate = new Option<bool>("--validate") { Description = "compare the output with the input in ORT before writing" };
        var force = new Option<bool>("--force") { Description = "write the output even if validation fails" };
        var verifyEach = new Option<bool>("--verify-each") { Description = "run the IR verifier after every pass" };
        var bench = new Option<bool>("--bench") { Description = "measure ORT latency before/after (1 thread) into the report" };
        var rtol = new Option<double>("--rtol") { Description = "validation tolerance for exact pipelines", DefaultValueFactory = _ => 1e-4 };
        var atol = new Option<double>("--atol") { Description = "validation tolerance for exact pipelines", DefaultValueFactory = _ => 1e-5 };
        var maxDrop = new Option<double?>("--max-agreement-drop") { Description = "validation limit for approximate pipelines, in top-1 agreement points (default: the pipeline's largest budget, at least 0.5)" };
        var cmd = new Command("optimize", "Run a pass pipeline on a model, verify, validate in ORT and write the result")
            { input, output, passes, calib, calibRandom, eval, seed, report, validate, force, verifyEach, bench, rtol, atol, maxDrop };
        cmd.SetAction(r =>
        {
            var inPath = r.GetValue(input)!;
            var outPath = r.GetValue(output)!;
            if (Path.GetFullPath(inPath) == Path.GetFullPath(outPath))
                throw new OnnxModelException($"{outPath}: output would overwrite the input model; choose another path");
            var pipeline = Pipeline.FromArgument(r.GetValue(passes)!);
            var calibDir = r.GetValue(calib);
            var calibN = r.GetValue(calibRandom);
            if (calibDir is not null && calibN is not null) throw new OnnxModelException("give either --calib or --calib-random, not both");
            CalibrationSource? source = calibDir is not null ? CalibrationSource.FromFolder(calibDir)
                : calibN is int n ? (n > 0 ? CalibrationSource.FromRandom(n, r.GetValue(seed)) : throw new OnnxModelException("--calib-random must be positive")) : null;
            foreach (var step in pipeline.Steps)
                if (step.Pass.NeedsCalibration && source is null)
                    throw new OnnxModelException($"pass '{step.Pass.Name}' needs calibration data: give --calib DIR or --calib-random N");

            var original = CliContext.LoadModel(inPath);
            var originalBytes = OnnxExporter.ToBytes(original);
            var before = ModelStats.Compute(OnnxImporter.Parse(originalBytes), new FileInfo(inPath).Length);
            var model = OnnxImporter.Parse(originalBytes, Path.GetDirectoryName(Path.GetFullPath(inPath)));
            var pctx = new PassContext(model, source, ctx.Err);
            var runs = PipelineRunner.Run(model, pipeline, pctx, r.GetValue(verifyEach));
            Verifier.Verify(model);
            var outBytes = OnnxExporter.ToBytes(model);
            var after = ModelStats.Compute(OnnxImporter.Parse(outBytes), outBytes.LongLength);

            ValidationReport? val = null;
            string? verdict = null;
            bool exact = pipeline.Steps.All(s => s.Pass.IsExact);
            if (r.GetValue(validate) || r.GetValue(eval) is not null)
            {
                var settings = new SessionSettings { Optimization = GraphOptimization.Disabled };
                using var a = InferenceSession.FromBytes(originalBytes, settings);
                using var b = InferenceSession.FromBytes(outBytes, settings);
                var data = r.GetValue(eval) is { } evalDir ? DataSet.FromFolder(evalDir, a.Inputs)
                    : source?.DataFor(a.Inputs) ?? DataSet.Random(a.Inputs, 10, r.GetValue(seed));
                val = Validator.Compare(a, b, data, new ValidationOptions { Rtol = r.GetValue(rtol), Atol = r.GetValue(atol) });
                if (exact) verdict = val.Passed ? null : "outputs differ beyond tolerance";
                else
                {
                    var limit = r.GetValue(maxDrop) ?? Math.Max(0.5, pipeline.Steps.Where(s => s.Pass.Options.Any(o => o.Name == "max-agreement-drop"))
                        .Select(s => s.Options.Double("max-agreement-drop")).DefaultIfEmpty(0).Max());
                    var agreement = val.Outputs.Select(o => o.Top1Agreement).FirstOrDefault(x => x is not null);
                    var drop = agreement is double ag ? 100 * (1 - ag) : 100 * (1 - val.Outputs[0].Cosine);
                    verdict = drop <= limit + 1e-9 ? null : string.Create(CultureInfo.InvariantCulture, $"agreement dropped {drop:F2} points (limit {limit:G3})");
                }
            }
            BenchReport? latency = r.GetValue(bench) ? Benchmark.Run(originalBytes, outBytes, new BenchOptions()) : null;
            if (r.GetValue(report) is { } rp)
                AtomicFile.WriteAllText(rp, Report(inPath, outPath, pipeline, before, after, runs, val, verdict, exact, latency));
            ctx.Err.WriteLine(Summary(pipeline, before, after, val, verdict, latency));
            if (verdict is not null && !r.GetValue(force))
            {
                ctx.Err.WriteLine($"onnxopt: validation failed ({verdict}); {outPath} not written (use --force to write it anyway)");
                return 1;
            }
            OnnxExporter.Save(model, outPath);
            if (verdict is not null)
            {
                ctx.Err.WriteLine($"onnxopt: validation failed ({verdict}); {outPath} written anyway (--force)");
                return 1;
            }
            ctx.Err.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }

    private static string Summary(Pipeline p, ModelStats b, ModelStats a, ValidationReport? v, string? verdict, BenchReport? lat)
    {
        var c = CultureInfo.InvariantCulture;
        var s = string.Create(c, $"pipeline {p}: nodes {b.NodeCount} -> {a.NodeCount}, MACs {b.TotalMacs:N0} -> {a.TotalMacs:N0}, non-linear depth {b.NonLinearDepth} -> {a.NonLinearDepth}, parameters {b.ParameterCount:N0} -> {a.ParameterCount:N0}");
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
