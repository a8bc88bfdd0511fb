// onnxopt score MODEL [--method synflow|magnitude] [--iterations 100] [--density 0.1] [--scope global|local]
//                     [--precision float64|float32] [--input-shape NAME=1x3x224x224] [--json FILE]
// Weight saliency without data: per layer the total score (with SynFlow's conservation deviation),
// per-filter scores, the density the masks reach and layer collapse. The table goes to stdout, the
// JSON report (deterministic: no timings) to FILE, timing to stderr.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class ScoreCommand
{
    public static Command Create(CliContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model file" };
        // The flags are sparsify's options: descriptions and defaults come from its declaration (SparsifyOptions).
        var declared = new Sparsify().Options.ToDictionary(o => o.Name);
        var d = new SparsifyOptions();
        string Help(string name) => declared[name].Description;
        var method = new Option<string>("--method")
        {
            Description = Help("method"),
            DefaultValueFactory = _ => d.Method,
        };
        var iterations = new Option<int>("--iterations")
        {
            Description = Help("iterations"),
            DefaultValueFactory = _ => (int)d.Iterations,
        };
        var density = new Option<double>("--density")
        {
            Description = Help("density"),
            DefaultValueFactory = _ => d.Density,
        };
        var scope = new Option<string>("--scope") { Description = Help("scope"), DefaultValueFactory = _ => d.Scope };
        var precision = new Option<string>("--precision")
        {
            Description = Help("precision"),
            DefaultValueFactory = _ => d.Precision,
        };
        var shapes = new Option<string[]>("--input-shape")
        {
            Description = "NAME=1x3x224x224 for inputs with symbolic dims beyond the batch axis (repeatable)",
            AllowMultipleArgumentsPerToken = false,
        };
        var json = new Option<string?>("--json") { Description = "write the full report (per-filter scores) as JSON here" };
        var cmd = new Command("score", "Score weights without data (SynFlow through onnxopt's own autodiff, or magnitude): per-layer totals, per-filter scores, densities, layer collapse")
            { model, method, iterations, density, scope, precision, shapes, json };
        cmd.SetAction(r =>
        {
            var path = r.GetValue(model)!;
            var m = CliContext.LoadModel(path);
            var o = new SparsifyOptions
            {
                Method = r.GetValue(method)!,
                Iterations = r.GetValue(iterations),
                Density = r.GetValue(density),
                Scope = r.GetValue(scope)!,
                Precision = r.GetValue(precision)!,
                InputShape = string.Join(";", r.GetValue(shapes) ?? []),
            }.ToSaliency(ctx.Progress);
            var result = Saliency.Score(m, o);
            ctx.Out.Write(ToText(path, result));
            foreach (var note in result.Notes) ctx.Err.WriteLine("note: " + note);
            if (r.GetValue(json) is { } jp) GraphIR.AtomicFile.WriteAllText(jp, ToJson(path, result));
            ctx.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{result.Rounds} round(s) in {result.Seconds:F2} s ({result.MsPerRound:F1} ms per round)"));
            return 0;
        });
        return cmd;
    }

    public static string ToText(string path, SaliencyResult r)
    {
        var c = CultureInfo.InvariantCulture;
        var o = r.Options;
        var sb = new System.Text.StringBuilder();
        var precision = o.Method == "synflow" ? string.Create(c, $", {o.Precision}, R = {r.R:G6}") : "";
        sb.AppendLine(c, $"{o.Method} on {path}: {r.Rounds} round(s), density {o.Density:G4} ({o.Scope}){precision}");
        int w = Math.Max(5, r.Layers.Max(l => l.Layer.Length));
        sb.AppendLine(c, $"{"layer".PadRight(w)}  {"shape",-16} {"weights",9} {"score share",11} "
            + $"{"conservation",12} {"kept",9} {"density",9}");
        var total = r.Layers.Sum(l => l.ScoreTotal);
        foreach (var l in r.Layers)
        {
            var cons = double.IsNaN(l.ConservationDeviation) ? "-" : l.ConservationDeviation.ToString("E1", c);
            var shape = "[" + string.Join(",", l.Shape) + "]";
            var share = total > 0 ? l.ScoreTotal / total : 0;
            sb.AppendLine(c, $"{l.Layer.PadRight(w)}  {shape,-16} {l.Weights,9} {share,11:P2} {cons,12} {l.Kept,9} "
                + $"{l.Density,9:G4}{(l.Collapsed ? "  COLLAPSED" : "")}");
        }
        var collapsed = r.LayerCollapse
            ? string.Join(", ", r.Layers.Where(l => l.Collapsed).Select(l => l.Layer)) : "none";
        sb.AppendLine(c, $"kept {r.Kept} of {r.Weights} weights (density {(double)r.Kept / r.Weights:G4}); "
            + $"layer collapse: {collapsed}");
        return sb.ToString();
    }

    public static string ToJson(string path, SaliencyResult r)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            var o = r.Options;
            w.WriteStartObject();
            w.WriteString("model", path);
            w.WriteString("method", o.Method);
            w.WriteNumber("rounds", r.Rounds);
            w.WriteNumber("density", o.Density);
            w.WriteString("scope", o.Scope);
            w.WriteString("precision", o.Precision);
            JsonNumbers.Write(w, "r", r.R);
            w.WriteNumber("weights", r.Weights);
            w.WriteNumber("kept", r.Kept);
            w.WriteBoolean("layer_collapse", r.LayerCollapse);
            w.WriteStartArray("layers");
            foreach (var l in r.Layers)
            {
                w.WriteStartObject();
                w.WriteString("layer", l.Layer);
                w.WriteString("op", l.OpType);
                w.WriteString("weight", l.Weight);
                w.WriteStartArray("shape"); foreach (var d in l.Shape) w.WriteNumberValue(d); w.WriteEndArray();
                w.WriteNumber("weights", l.Weights);
                w.WriteNumber("score_total", l.ScoreTotal);
                if (double.IsNaN(l.ConservationDeviation)) w.WriteNull("conservation_deviation"); else w.WriteNumber("conservation_deviation", l.ConservationDeviation);
                w.WriteNumber("kept", l.Kept);
                w.WriteNumber("density", l.Density);
                w.WriteBoolean("collapsed", l.Collapsed);
                w.WriteStartArray("filter_scores"); foreach (var f in l.FilterScores) w.WriteNumberValue(f); w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
