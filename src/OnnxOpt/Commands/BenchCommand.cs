// onnxopt bench MODEL [--vs OTHER] [--threads 1] [--warmup 10] [--iters 100] [--batch 1] [--data DIR]
//   [--dim NAME=V] [--int-range NAME=LO:HI] [--profile] [--denormals-as-zero] [--json]:
// latency in ONNX Runtime on the first batch of a data folder, or on seeded random inputs (integer inputs in
// the range the model takes: InputRanges); with --vs both models interleaved in one run and the speed-up
// (median MODEL / median OTHER); --profile adds ORT's time per op type of each model (OpProfile);
// --denormals-as-zero runs both with ORT's flush-to-zero (SessionSettings.DenormalsAsZero).
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OnnxOpt.Data;
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
        var data = new Option<string?>("--data")
        {
            Description = "time on the first batch of this data folder (<input>.npy per input) instead of random "
                + "inputs",
        };
        var dims = new Option<string[]>("--dim")
        {
            Description = "value of a symbolic dimension, e.g. --dim sequence=128 (others take --batch)",
        };
        var ranges = CliContext.IntRangeOption();
        var profile = new Option<bool>("--profile")
        {
            Description = "also run each model under ONNX Runtime's profiler and print its time per op type",
        };
        var ftz = new Option<bool>("--denormals-as-zero")
        {
            Description = "run with ORT's session.set_denormal_as_zero (flush-to-zero; see README)",
        };
        var cmd = new Command("bench", "Measure latency in ONNX Runtime, optionally against a second model")
        {
            model, vs, threads, warmup, iters, batch, opt, data, dims, ranges, profile, ftz, json,
        };
        cmd.SetAction(r =>
        {
            var o = new BenchOptions
            {
                Threads = r.GetValue(threads),
                Warmup = r.GetValue(warmup),
                Iterations = r.GetValue(iters),
                Batch = r.GetValue(batch),
                Optimization = ValidateCommand.ParseLevel(r.GetValue(opt)!),
                Dims = CliContext.ParseDims(r.GetValue(dims)),
                IntRanges = CliContext.ParseIntRanges(r.GetValue(ranges)),
                Profile = r.GetValue(profile),
                DenormalsAsZero = r.GetValue(ftz),
            };
            if (o.Threads < 1 || o.Warmup < 0 || o.Iterations < 1 || o.Batch < 1)
                throw new OnnxModelException("--threads, --iters and --batch must be >= 1 and --warmup >= 0");
            var path = r.GetValue(model)!;
            var other = r.GetValue(vs);
            var ma = CliContext.LoadModel(path);
            var a = OnnxExporter.ToBytes(ma);
            var b = other is null ? null : OnnxExporter.ToBytes(CliContext.LoadModel(other));
            if (r.GetValue(data) is { } dir)
                o = o with
                {
                    Inputs = DataSet.FromFolder(dir, IoInfo.InputsOf(ma.Graph)).Batches(o.Batch)
                        .FirstOrDefault()?.Inputs
                        ?? throw new OnnxModelException($"{dir}: the data folder holds no samples"),
                };
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
        var dims = o.Dims is { Count: > 0 } d ? ", " + string.Join(", ", d.Select(kv => $"{kv.Key}={kv.Value}")) : "";
        sb.AppendLine(c, $"threads {o.Threads}, warm-up {o.Warmup}, iterations {o.Iterations}, batch {o.Batch}{dims}, "
            + $"graph optimization {o.Optimization}, inputs: {(o.Inputs is null ? "random" : "data")}"
            + $"{(o.DenormalsAsZero ? ", denormals as zero" : "")}");
        void Line(string label, LatencyStats s, string file) =>
            sb.AppendLine(c, $"{label,-6} median {s.MedianMs,9:F4} ms   p90 {s.P90Ms,9:F4} ms   "
                + $"mean {s.MeanMs,9:F4} ms   min {s.MinMs,9:F4} ms   {file}");
        Line("model", r.Model, model);
        if (r.Other is not null) Line("vs", r.Other, other!);
        if (r.Speedup is double sp)
        {
            sb.AppendLine(c, $"speed-up {sp:F3}x (median model / median vs)");
            if (r.SpeedupInterval is { } i)
                sb.AppendLine(string.Create(c, $"95% interval {i.Low:F3}-{i.High:F3}x: ")
                    + (r.Measurable ? "beyond the timing noise" : "no measurable change"));
        }
        if (r.ModelProfile is { } pa) ProfileText(sb, pa, r.OtherProfile);
        return sb.ToString();
    }

    // One row per op type: ms per run and share of the kernels' time, for the model and (with --vs) the other.
    private static void ProfileText(System.Text.StringBuilder sb, OpProfile a, OpProfile? b)
    {
        var c = CultureInfo.InvariantCulture;
        void Head(string label, OpProfile p) => sb.AppendLine(c, $"profile of {label}: {p.Runs} runs, "
            + $"{p.RunMs:F4} ms per run, of which kernels {p.KernelMs:F4} ms");
        Head("model", a);
        if (b is not null) Head("vs", b);
        sb.AppendLine(b is null ? $"{"op type",-28} {"nodes",6} {"ms/run",9} {"share",7}"
            : $"{"op type",-28} {"nodes",6} {"ms/run",9} {"share",7}   {"nodes",6} {"ms/run",9} {"share",7}");
        var types = a.Ops.Concat(b?.Ops ?? []).GroupBy(o => o.OpType)
            .OrderByDescending(g => g.Max(o => o.MsPerRun)).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.Key);
        string Cells(OpProfile p, string type) => p.Ops.FirstOrDefault(o => o.OpType == type) is { } t
            ? string.Create(c, $"{t.Nodes,6} {t.MsPerRun,9:F4} {t.Share,7:P1}") : $"{"",6} {"-",9} {"",7}";
        foreach (var t in types)
            sb.AppendLine(b is null ? $"{t,-28} {Cells(a, t)}" : $"{t,-28} {Cells(a, t)}   {Cells(b, t)}");
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
            w.WriteStartObject("dims");
            foreach (var (k, v) in r.Options.Dims ?? new Dictionary<string, long>()) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteString("inputs", r.Options.Inputs is null ? "random" : "data");
            w.WriteString("graph_optimization", r.Options.Optimization.ToString().ToLowerInvariant());
            w.WriteBoolean("denormals_as_zero", r.Options.DenormalsAsZero);
            Stats(w, "model", model, r.Model);
            if (r.Other is not null) Stats(w, "vs", other!, r.Other);
            if (r.Speedup is double sp) JsonNumbers.Write(w, "speedup", sp);
            if (r.SpeedupInterval is { } iv)
            {
                JsonNumbers.Write(w, "speedup_low", iv.Low);
                JsonNumbers.Write(w, "speedup_high", iv.High);
                w.WriteBoolean("measurable", r.Measurable);
            }
            if (r.ModelProfile is { } pa) ProfileJson(w, "model_profile", pa);
            if (r.OtherProfile is { } pb) ProfileJson(w, "vs_profile", pb);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void ProfileJson(Utf8JsonWriter w, string key, OpProfile p)
    {
        w.WriteStartObject(key);
        w.WriteNumber("runs", p.Runs);
        JsonNumbers.Write(w, "run_ms", p.RunMs);
        JsonNumbers.Write(w, "kernel_ms", p.KernelMs);
        w.WriteStartArray("ops");
        foreach (var o in p.Ops)
        {
            w.WriteStartObject();
            w.WriteString("op_type", o.OpType);
            w.WriteNumber("nodes", o.Nodes);
            JsonNumbers.Write(w, "ms_per_run", o.MsPerRun);
            JsonNumbers.Write(w, "share", o.Share);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
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
