// ValidationReport rendered: the `validate` text and `validate --json` object (whose fields are also
// embedded in optimize reports). Non-finite numbers are JSON null.
using System.Globalization;
using System.Text.Json;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Runtime.Validation;

public static class ValidationReportWriter
{
    public static string Text(ValidationReport r)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(c, $"data: {r.Data}; tolerance rtol={r.Rtol:G3}, atol={r.Atol:G3}");
        foreach (var o in r.Outputs)
        {
            sb.Append(c, $"{(o.Passed ? "ok  " : "FAIL")} {o.Name}: ");
            if (o.Problem is not null) { sb.AppendLine(o.Problem); continue; }
            sb.Append(c, $"max abs {o.MaxAbsError:G4}, max rel {o.MaxRelError:G4}, cosine {o.Cosine:F6}, "
                + $"SQNR {SqnrText(o.SqnrDb)}");
            if (o.Top1Agreement is double t) sb.Append(c, $", top-1 agreement {t * 100:F2}%");
            if (o.Failures > 0) sb.Append(c, $", {o.Failures}/{o.Elements} elements outside tolerance");
            sb.AppendLine();
        }
        if (r.ReferenceAccuracy is double ra) sb.AppendLine(c,
            $"accuracy: reference {ra * 100:F2}%, candidate {r.CandidateAccuracy!.Value * 100:F2}%");
        if (r.Primary is { } p) sb.AppendLine(c, $"measure: {p}");
        sb.AppendLine(r.Passed ? "PASS" : "FAIL");
        return sb.ToString();
    }

    public static string Json(ValidationReport r, string reference, string candidate)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("reference", reference);
            w.WriteString("candidate", candidate);
            Write(w, r);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>The report's fields (inside an object the caller opened).</summary>
    public static void Write(Utf8JsonWriter w, ValidationReport r)
    {
        w.WriteString("data", r.Data);
        w.WriteNumber("samples", r.Samples);
        w.WriteNumber("rtol", r.Rtol);
        w.WriteNumber("atol", r.Atol);
        w.WriteBoolean("passed", r.Passed);
        w.WriteStartArray("outputs");
        foreach (var o in r.Outputs)
        {
            w.WriteStartObject();
            w.WriteString("name", o.Name);
            w.WriteBoolean("passed", o.Passed);
            w.WriteNumber("elements", o.Elements);
            w.WriteNumber("failures", o.Failures);
            JsonNumbers.Write(w, "max_abs_error", o.MaxAbsError);
            JsonNumbers.Write(w, "max_rel_error", o.MaxRelError);
            JsonNumbers.Write(w, "cosine", o.Cosine);
            JsonNumbers.Write(w, "sqnr_db", o.SqnrDb);
            if (o.Top1Agreement is double t) w.WriteNumber("top1_agreement", t); else w.WriteNull("top1_agreement");
            if (o.Problem is not null) w.WriteString("problem", o.Problem);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (r.ReferenceAccuracy is double ra)
        {
            w.WriteStartObject("accuracy");
            w.WriteNumber("reference", ra);
            w.WriteNumber("candidate", r.CandidateAccuracy!.Value);
            w.WriteEndObject();
        }
        if (r.Primary is { } p)
        {
            w.WriteStartObject("metric");
            w.WriteString("name", p.Metric.Kind.ToString().ToLowerInvariant());
            w.WriteString("output", p.Metric.Output);
            if (p.Metric.MaskInput is { } mask) w.WriteString("pooled_by", mask);
            w.WriteString("description", p.Metric.Description);
            JsonNumbers.Write(w, "value", p.Value);
            if (p.ReferenceValue is double rv) JsonNumbers.Write(w, "reference_value", rv);
            JsonNumbers.Write(w, "drop_points", p.DropPoints);
            w.WriteEndObject();
        }
    }

    /// <summary>"41.3 dB", or "inf" when the outputs are identical.</summary>
    public static string SqnrText(double db) =>
        double.IsPositiveInfinity(db) ? "inf" : db.ToString("F1", CultureInfo.InvariantCulture) + " dB";
}
