// onnxopt bench MODEL [--vs OTHER] [--threads 1] [--warmup 10] [--iters 100] [--batch 1] [--json]:
// latency in ONNX Runtime on seeded random inputs; with --vs both models interleaved in one run and
// the speed-up (median MODEL / median OTHER).
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Cli;

public static class BenchCommand
{
    public static Command Create(CliContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model file" };
        var vs = new Option<string?>("--vs") { Description = "a second model (e.g. the optimized one) to time in the same run" };
        var threads = new Option<int>("--threads") { Description = "intra-op threads", DefaultValueFactory = _ => 1 };
        var warmup = new Option<int>("--warmup") { Description = "untimed runs first", DefaultValueFactory = _ => 10 };
        var iters = new Option<int>("--iters") { Description = "timed runs", DefaultValueFactory = _ => 100 };
        var batch = new Option<int>("--batch") { Description = "value of symbolic (batch) dims", DefaultValueFactory = _ => 1 };
        var opt = new Option<string>("--opt-level") { Description = "ORT graph optimization: disabled|basic|extended|all", DefaultValueFactory = _ => "all" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON" };
        var cmd = new Command("bench", "Measure latency in ONNX Runtime, optionally against a second model") { model, vs, threads, warmup, iters, batch, opt, json };
        cmd.SetAction(r =>
        {
            var o = new BenchOptions
            {
                Threads = r.GetValue(threads),
                Warmup = r.GetValue(warmup),
                Iterations = r.GetValue(iters),
                Batch = r.GetValue(batch),
                Optimization = ValidateCommand.ParseLevel(r.GetValue(opt)!),
            };
            if (o.Threads < 1 || o.Warmup < 0 || o.Iterations < 1 || o.Batch < 1)
                throw new OnnxModelException("--threads, --iters and --batch must be >= 1 and --warmup >= 0");
            var path = r.GetValue(model)!;
            var other = r.GetValue(vs);
            var a = OnnxExporter.ToBytes(CliContext.LoadModel(path));
            var b = other is null ? null : OnnxExporter.ToBytes(CliContext.LoadModel(other));
            var report = Benchmark.Run(a, b, o);
            ctx.Out.Write(r.GetValue(json) ? ToJson(report, path, other) : ToText(report, path, other));
            return 0;
        });
        return cmd;
    }

    public static string ToText(BenchReport r, string model, string? other)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        var o = r.Options;
        sb.AppendLine(c, $"threads {o.Threads}, warm-up {o.Warmup}, iterations {o.Iterations}, batch {o.Batch}, "
            + $"graph optimization {o.Optimization}");
        void Line(string label, LatencyStats s, string file) =>
            sb.AppendLine(c, $"{label,-6} median {s.MedianMs,9:F4} ms   p90 {s.P90Ms,9:F4} ms   "
                + $"mean {s.MeanMs,9:F4} ms   min {s.MinMs,9:F4} ms   {file}");
        Line("model", r.Model, model);
        if (r.Other is not null) Line("vs", r.Other, other!);
        if (r.Speedup is double sp) sb.AppendLine(c, $"speed-up {sp:F3}x (median model / median vs)");
        return sb.ToString();
    }

    public static string ToJson(BenchReport r, string model, string? other)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("threads", r.Options.Threads);
            w.WriteNumber("warmup", r.Options.Warmup);
            w.WriteNumber("iterations", r.Options.Iterations);
            w.WriteNumber("batch", r.Options.Batch);
            w.WriteString("graph_optimization", r.Options.Optimization.ToString().ToLowerInvariant());
            Stats(w, "model", model, r.Model);
            if (r.Other is not null) Stats(w, "vs", other!, r.Other);
            if (r.Speedup is double sp) JsonNumbers.Write(w, "speedup", sp);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void Stats(Utf8JsonWriter w, string key, string file, LatencyStats s)
    {
        w.WriteStartObject(key);
        w.WriteString("file", file);
        JsonNumbers.Write(w, "median_ms", s.MedianMs);
        JsonNumbers.Write(w, "p90_ms", s.P90Ms);
        JsonNumbers.Write(w, "mean_ms", s.MeanMs);
        JsonNumbers.Write(w, "min_ms", s.MinMs);
        w.WriteEndObject();
    }
}
