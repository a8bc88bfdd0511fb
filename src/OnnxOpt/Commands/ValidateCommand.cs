// onnxopt validate REFERENCE CANDIDATE [--data DIR | --random N] [--rtol R --atol A] [--json]:
// runs both models in ONNX Runtime on the same inputs and compares every output. Exit 0 within
// tolerance, 1 outside it (naming the output), 2 on bad input.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Cli;

public static class ValidateCommand
{
    public static Command Create(CliContext ctx)
    {
        var reference = new Argument<string>("REFERENCE") { Description = "the original model" };
        var candidate = new Argument<string>("CANDIDATE") { Description = "the rewritten model" };
        var rtol = new Option<double>("--rtol") { Description = "relative tolerance", DefaultValueFactory = _ => 1e-4 };
        var atol = new Option<double>("--atol") { Description = "absolute tolerance (an element fails only if it exceeds both)", DefaultValueFactory = _ => 1e-5 };
        var json = new Option<bool>("--json") { Description = "print the report as JSON" };
        var opt = new Option<string>("--opt-level") { Description = "ORT graph optimization: disabled|basic|extended|all", DefaultValueFactory = _ => "disabled" };
        var data = new DataOptions();
        var cmd = new Command("validate", "Compare two models' outputs in ONNX Runtime on the same inputs") { reference, candidate, rtol, atol, json, opt };
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var refPath = r.GetValue(reference)!;
            var candPath = r.GetValue(candidate)!;
            var settings = new SessionSettings { Optimization = ParseLevel(r.GetValue(opt)!) };
            using var a = InferenceSession.FromModel(CliContext.LoadModel(refPath), settings);
            using var b = InferenceSession.FromModel(CliContext.LoadModel(candPath), settings);
            var ds = data.Load(r, a.Inputs, defaultRandom: 10);
            var report = Validator.Compare(a, b, ds, new ValidationOptions
            {
                Rtol = r.GetValue(rtol), Atol = r.GetValue(atol), BatchSize = r.GetValue(data.Batch), Settings = settings,
            });
            if (r.GetValue(json)) ctx.Out.Write(ToJson(report, refPath, candPath));
            else ctx.Out.Write(ToText(report));
            foreach (var o in report.Outputs.Where(o => !o.Passed))
                ctx.Err.WriteLine($"onnxopt: validation failed: output '{o.Name}': {Describe(o, report)}");
            return report.Passed ? 0 : 1;
        });
        return cmd;
    }

    public static GraphOptimization ParseLevel(string s) => s.ToLowerInvariant() switch
    {
        "disabled" or "0" => GraphOptimization.Disabled,
        "basic" or "1" => GraphOptimization.Basic,
        "extended" or "2" => GraphOptimization.Extended,
        "all" or "99" => GraphOptimization.All,
        _ => throw new GraphIR.OnnxModelException($"--opt-level '{s}': expected disabled, basic, extended or all"),
    };

    private static string Describe(OutputComparison o, ValidationReport r) => o.Problem ??
        string.Create(CultureInfo.InvariantCulture, $"{o.Failures} of {o.Elements} elements outside rtol={r.Rtol:G3}, atol={r.Atol:G3} (max abs error {o.MaxAbsError:G4}, max rel error {o.MaxRelError:G4})");

    public static string ToText(ValidationReport r)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(c, $"data: {r.Data}; tolerance rtol={r.Rtol:G3}, atol={r.Atol:G3}");
        foreach (var o in r.Outputs)
        {
            sb.Append(c, $"{(o.Passed ? "ok  " : "FAIL")} {o.Name}: ");
            if (o.Problem is not null) { sb.AppendLine(o.Problem); continue; }
            sb.Append(c, $"max abs {o.MaxAbsError:G4}, max rel {o.MaxRelError:G4}, cosine {o.Cosine:F6}, SQNR {SqnrText(o.SqnrDb)}");
            if (o.Top1Agreement is double t) sb.Append(c, $", top-1 agreement {t * 100:F2}%");
            if (o.Failures > 0) sb.Append(c, $", {o.Failures}/{o.Elements} elements outside tolerance");
            sb.AppendLine();
        }
        if (r.ReferenceAccuracy is double ra) sb.AppendLine(c, $"accuracy: reference {ra * 100:F2}%, candidate {r.CandidateAccuracy!.Value * 100:F2}%");
        sb.AppendLine(r.Passed ? "PASS" : "FAIL");
        return sb.ToString();
    }

    public static string ToJson(ValidationReport r, string reference, string candidate)
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
            Num(w, "max_abs_error", o.MaxAbsError);
            Num(w, "max_rel_error", o.MaxRelError);
            Num(w, "cosine", o.Cosine);
            Num(w, "sqnr_db", o.SqnrDb);
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
    }

    /// <summary>"41.3 dB", or "inf" when the outputs are identical.</summary>
    public static string SqnrText(double db) => double.IsPositiveInfinity(db) ? "inf" : db.ToString("F1", CultureInfo.InvariantCulture) + " dB";

    private static void Num(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v); else w.WriteNull(name);
    }
}
