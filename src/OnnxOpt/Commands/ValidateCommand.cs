// onnxopt validate REFERENCE CANDIDATE [--data DIR | --random N] [--rtol R --atol A] [--json]:
// runs both models in ONNX Runtime on the same inputs and compares every output. Exit 0 within
// tolerance, 1 outside it (naming the output), 2 on bad input.
using System.CommandLine;
using System.Globalization;
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
        var maxDrop = new Option<double?>("--max-drop")
        {
            Description = "judge by the measure (--metric) instead of element tolerance: pass while it drops at most "
                + "this many points (for approximate models: int8, pruned, distilled)",
        };
        var data = new DataOptions();
        var metric = new MetricOptions();
        var cmd = new Command("validate", "Compare two models' outputs in ONNX Runtime on the same inputs")
        {
            reference, candidate, rtol, atol, maxDrop, json, opt,
        };
        data.AddTo(cmd);
        metric.AddTo(cmd);
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
                Rtol = r.GetValue(rtol),
                Atol = r.GetValue(atol),
                BatchSize = r.GetValue(data.Batch),
                Settings = settings,
                Metric = metric.Read(r),
            });
            if (r.GetValue(json)) ctx.Out.Write(ValidationReportWriter.Json(report, refPath, candPath));
            else ctx.Out.Write(ValidationReportWriter.Text(report));
            if (r.GetValue(maxDrop) is double limit)
            {
                var p = report.Primary!;
                if (p.DropPoints <= limit + 1e-9) return 0;
                ctx.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"onnxopt: validation failed: {p.Metric.Description} dropped {p.DropPoints:F3} points "
                    + $"(limit {limit:G3})"));
                return 1;
            }
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
        string.Create(CultureInfo.InvariantCulture, $"{o.Failures} of {o.Elements} elements outside rtol={r.Rtol:G3}, "
            + $"atol={r.Atol:G3} (max abs error {o.MaxAbsError:G4}, max rel error {o.MaxRelError:G4})");
}
