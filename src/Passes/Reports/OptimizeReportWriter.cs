// Renders an OptimizeReport: the JSON report (`--report`, keys in a fixed order: input, output,
// pipeline, before, after, passes (pass, time_ms, counters, decisions, rules, notes), validation,
// latency) and the text summary optimize prints.
// Numbers are written as what they mean (JsonNumbers: 10 significant digits, no 0.4062600000000001),
// times to the microsecond, non-finite values as null.
using System.Globalization;
using System.Text.Json;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public static class OptimizeReportWriter
{
    /// <summary>
    /// Indented, and readable: "->" and quotes in node labels are not escaped (the text is UTF-8 JSON).</summary>
    public static readonly JsonWriterOptions Options = new()
    {
        Indented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Json(OptimizeReport r)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, Options))
        {
            w.WriteStartObject();
            if (r.Input is not null) w.WriteString("input", r.Input);
            if (r.Output is not null) w.WriteString("output", r.Output);
            w.WriteString("pipeline", r.Pipeline);
            if (r.DataNote is not null) w.WriteString("data", r.DataNote);
            w.WritePropertyName("before");
            ModelStatsWriter.Write(w, r.Before);
            w.WritePropertyName("after");
            ModelStatsWriter.Write(w, r.After);
            w.WriteStartArray("passes");
            foreach (var run in r.Passes) WriteRun(w, run);
            w.WriteEndArray();
            if (r.Validation is { } v)
            {
                w.WriteStartObject("validation");
                w.WriteString("mode", v.ModeName);
                w.WriteBoolean("accepted", v.Accepted);
                if (v.Reason is not null) w.WriteString("reason", v.Reason);
                ValidationReportWriter.Write(w, v.Report);
                w.WriteEndObject();
            }
            if (r.Latency is { } lat) WriteLatency(w, lat);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>"latency": threads, iterations, before/after medians and the speed-up.</summary>
    internal static void WriteLatency(Utf8JsonWriter w, BenchReport lat)
    {
        w.WriteStartObject("latency");
        w.WriteNumber("threads", lat.Options.Threads);
        w.WriteNumber("iterations", lat.Options.Iterations);
        JsonNumbers.Write(w, "before_median_ms", lat.Model.MedianMs);
        JsonNumbers.Write(w, "after_median_ms", lat.Other!.MedianMs);
        JsonNumbers.Write(w, "speedup", lat.Speedup!.Value);
        if (lat.SpeedupInterval is { } iv)
        {
            JsonNumbers.Write(w, "speedup_low", iv.Low);
            JsonNumbers.Write(w, "speedup_high", iv.High);
            w.WriteBoolean("measurable", lat.Measurable);
        }
        w.WriteEndObject();
    }

    internal static void WriteRun(Utf8JsonWriter w, PassRun run)
    {
        w.WriteStartObject();
        w.WriteString("pass", run.Step);
        w.WriteNumber("time_ms", Math.Round(run.Milliseconds, 3));
        w.WriteStartObject("counters");
        foreach (var (k, v) in run.Stats.Counters) w.WriteNumber(k, v);
        w.WriteEndObject();
        w.WriteStartArray("decisions");
        foreach (var d in run.Stats.Decisions) WriteDecision(w, d);
        w.WriteEndArray();
        if (run.Stats.Rules.Any(r => r.Applied > 0 || r.Failures.Count > 0))
        {
            w.WriteStartArray("rules");
            // Rules never tried on this model (no root op of theirs) are left out.
            foreach (var r in run.Stats.Rules.Where(r => r.Applied > 0 || r.Failures.Count > 0))
            {
                w.WriteStartObject();
                w.WriteString("rule", r.Rule);
                w.WriteNumber("applied", r.Applied);
                w.WriteStartObject("failed");
                foreach (var (why, n) in r.Failures) w.WriteNumber(why, n);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (run.Stats.Notes.Count > 0)
        {
            w.WriteStartArray("notes");
            foreach (var n in run.Stats.Notes) w.WriteStringValue(n);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    // Decisions of onnxopt's passes serialize through the source-generated context; a user's own
    // decision records by reflection, with the same conventions.
    private static readonly JsonSerializerOptions Reflected = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        Converters = { new MeaningfulDoubleConverter() },
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };

    public static void WriteDecision(Utf8JsonWriter w, Decision d)
    {
        var info = ReportJson.Default.GetTypeInfo(d.GetType());
        if (info is not null) JsonSerializer.Serialize(w, d, info);
        else JsonSerializer.Serialize(w, d, d.GetType(), Reflected);
    }

    /// <summary>The lines optimize prints: what changed, the validation, the latency.</summary>
    public static string Summary(OptimizeReport r)
    {
        var c = CultureInfo.InvariantCulture;
        var (b, a) = (r.Before, r.After);
        // MACs of nodes with symbolic dims (a transformer's sequence) are not guessed: a function of the one symbol
        // left when it is a polynomial in it, else unknown or "at least", and the --dim that counts them.
        string Macs(ModelStats m) => m.MacsInSymbol is { } p ? p.ToString()
            : m.UnknownMacNodes.Count > 0 && m.TotalMacs == 0 ? "unknown"
            : (m.UnknownMacNodes.Count > 0 ? "at least " : "") + m.TotalMacs.ToString("N0", c);
        var dims = b.UnknownMacNodes.Count > 0 && b.SymbolicDims.Count > 0
            && (b.MacsInSymbol is null || a.MacsInSymbol is null)
            ? " (" + string.Join(" ", b.SymbolicDims.Select(d => $"--dim {d}=128")) + " counts them)" : "";
        var s = string.Create(c,
            $"pipeline {r.Pipeline}: nodes {b.NodeCount} -> {a.NodeCount}, MACs {Macs(b)} -> {Macs(a)}{dims}, "
            + $"non-linear depth {b.NonLinearDepth} -> {a.NonLinearDepth}, parameters {b.ParameterCount:N0} -> "
            + $"{a.ParameterCount:N0} ({a.ZeroParameterCount:N0} zero), file {b.FileBytes:N0} -> {a.FileBytes:N0} bytes");
        if (r.Validation is { } v)
        {
            var o = v.Report.Outputs[0];
            s += string.Create(c,
                $"\nvalidation on {v.Report.Data}: {(v.Accepted ? "passed" : "FAILED: " + v.Reason)}; max abs error "
                + $"{o.MaxAbsError:G3}, cosine {o.Cosine:F6}, SQNR {ValidationReportWriter.SqnrText(o.SqnrDb)}");
            if (o.Top1Agreement is double t) s += string.Create(c, $", top-1 agreement {t * 100:F2}%");
            if (v.Report.ReferenceAccuracy is double ra)
                s += string.Create(c, $", accuracy {ra * 100:F2}% -> {v.Report.CandidateAccuracy!.Value * 100:F2}%");
            if (v.Mode == ValidationMode.Agreement && v.Report.Primary is { } p) s += $"\nbudget measure: {p}";
        }
        if (r.Latency is { } lat)
            s += string.Create(c,
                $"\nlatency (ORT, {lat.Options.Threads} thread{(lat.Options.Threads == 1 ? "" : "s")}): "
                + $"{lat.Model.MedianMs:F4} ms -> {lat.Other!.MedianMs:F4} ms ({lat.SpeedupText()})");
        return s;
    }
}
