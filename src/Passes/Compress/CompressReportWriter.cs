// Renders a CompressReport: the JSON report (keys in a fixed order: input, output, target, max_drop, recipe
// (the normalized recipe, which parses back), drop_metric, reference_accuracy, search_seconds, chosen,
// candidates, skipped, before, after, passes, validation, latency) and the text summary compress prints.
using System.Globalization;
using System.Text.Json;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public static class CompressReportWriter
{
    public static string Json(CompressReport r)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, OptimizeReportWriter.Options))
        {
            w.WriteStartObject();
            if (r.Input is not null) w.WriteString("input", r.Input);
            if (r.Output is not null) w.WriteString("output", r.Output);
            w.WriteString("target", r.Target);
            JsonNumbers.Write(w, "max_drop", r.MaxDrop);
            JsonNumbers.Write(w, "confidence", r.Confidence);
            w.WritePropertyName("recipe");
            using (var doc = JsonDocument.Parse(r.Recipe.ToJson())) doc.WriteTo(w);
            w.WriteString("drop_metric", r.DropMetric);
            if (r.ReferenceAccuracy is { } ra) JsonNumbers.Write(w, "reference_accuracy", ra);
            JsonNumbers.Write(w, "search_seconds", r.SearchSeconds);
            w.WriteNumber("chosen", r.Chosen);
            w.WriteStartArray("candidates");
            foreach (var c in r.Candidates) WriteCandidate(w, c);
            w.WriteEndArray();
            w.WriteStartArray("skipped");
            foreach (var s in r.Skipped) w.WriteStringValue(s);
            w.WriteEndArray();
            w.WritePropertyName("before");
            ModelStatsWriter.Write(w, r.Before);
            w.WritePropertyName("after");
            ModelStatsWriter.Write(w, r.After);
            w.WriteStartArray("passes");
            foreach (var run in r.Passes) OptimizeReportWriter.WriteRun(w, run);
            w.WriteEndArray();
            w.WriteStartObject("validation");
            ValidationReportWriter.Write(w, r.Validation);
            w.WriteEndObject();
            OptimizeReportWriter.WriteLatency(w, r.Latency);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void WriteCandidate(Utf8JsonWriter w, CompressCandidate c)
    {
        w.WriteStartObject();
        w.WriteNumber("id", c.Id);
        if (c.Parent is { } p) w.WriteNumber("parent", p);
        w.WriteString("stage", c.Stage);
        w.WriteString("step", c.Step);
        w.WriteString("pipeline", c.Pipeline);
        if (c.Error is not null) w.WriteString("error", c.Error);
        else
        {
            if (c.Accuracy is { } a) JsonNumbers.Write(w, "accuracy", a);
            JsonNumbers.Write(w, "drop", c.Drop);
            JsonNumbers.Write(w, "drop_upper", c.DropUpper);
            JsonNumbers.Write(w, "latency_ms", c.LatencyMs);
            JsonNumbers.Write(w, "input_latency_ms", c.ReferenceLatencyMs);
            w.WriteNumber("bytes", c.Bytes);
            w.WriteNumber("packed_bytes", c.PackedBytes);
            w.WriteNumber("macs", c.Macs);
            w.WriteNumber("parameters", c.Parameters);
            w.WriteNumber("non_linear_depth", c.NonLinearDepth);
            w.WriteBoolean("within_budget", c.WithinBudget);
            w.WriteBoolean("pareto", c.Pareto);
        }
        w.WriteBoolean("chosen", c.Chosen);
        JsonNumbers.Write(w, "seconds", c.Seconds);
        w.WriteEndObject();
    }

    /// <summary>The lines compress prints: what was chosen, against the input, and how long the search took.</summary>
    public static string Summary(CompressReport r)
    {
        var c = CultureInfo.InvariantCulture;
        var x = r.ChosenCandidate;
        var input = r.Candidates[0];
        var metric = r.DropMetricName;
        var unit = r.MaxDrop == 1 ? "point" : "points";
        var s = string.Create(c, $"compress (target {r.Target}, budget {r.MaxDrop:G3} {unit} of {metric}): "
            + $"{r.Candidates.Count} candidates in {r.SearchSeconds:F0} s, chose #{x.Id}: "
            + $"{(x.Pipeline.Length == 0 ? "(the input)" : Pipeline.Brief(x.Pipeline))}");
        s += string.Create(c, $"\n  {metric} drop {x.Drop:F2} points");
        if (x.Accuracy is { } a && r.ReferenceAccuracy is { } ra) s += string.Create(c, $" ({ra:F2}% -> {a:F2}%)");
        if (r.Confidence > 0)
            s += string.Create(c,
                $", at most {x.DropUpper:F2} at {r.Confidence * 100:G3}% confidence (what the budget judged)");
        s += string.Create(c,
            $"; latency {r.Latency.Model.MedianMs:F4} -> {r.Latency.Other!.MedianMs:F4} ms "
            + $"({r.Latency.SpeedupText()}); "
            + $"file {input.Bytes:N0} -> {x.Bytes:N0} B, packed {x.PackedBytes:N0} B "
                + $"({(double)input.Bytes / x.PackedBytes:F1}x "
            + $"smaller than the input); MACs {input.Macs:N0} -> {x.Macs:N0}; non-linear depth "
                + $"{input.NonLinearDepth} -> "
            + $"{x.NonLinearDepth}");
        // "[stage] step: reason" lines, one per stage and reason.
        foreach (var g in r.Skipped.GroupBy(k => (Stage: k[..(k.IndexOf(']') + 1)], Reason: k[(k.IndexOf(": ",
            StringComparison.Ordinal) + 2)..])))
            s += $"\n  cut {g.Key.Stage} {g.Count()} candidate{(g.Count() == 1 ? "" : "s")}: {g.Key.Reason}";
        return s;
    }
}
