// The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched) a person can open
// and send on. For optimize/quantize/prune/cluster (OptimizeReport) and for compress (CompressReport, which adds
// the search: the Pareto charts of accuracy against latency and against packed size with the chosen point
// marked, every candidate, the recipe and what the time budget skipped). Sections: summary before/after;
// every pass with its counters and per-layer charts drawn from its decisions (channels kept per group, bits and
// SQNR per clustered weight, learned slopes, linearization scores, refit SQNR, training runs); validation per
// output; latency distributions. Renders only: every figure comes from the report.
using System.Globalization;
using System.Text;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;
using static OnnxOpt.Passes.SvgChart;

namespace OnnxOpt.Passes;

public static class HtmlReport
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    private const string Css = """
        body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1b1f24;padding:0 16px}
        h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
        h3{font-size:15px;margin:18px 0 6px} code,pre{font:12px ui-monospace,monospace;background:#f6f8fa}
        pre{padding:8px;overflow:auto} table{border-collapse:collapse;margin:6px 0}
        td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:right} th{background:#f6f8fa}
        td.l,th.l{text-align:left} tr.chosen td{background:#fff3c4;font-weight:600} tr.over td{color:#8c959f}
        .charts{display:flex;flex-wrap:wrap;gap:12px} .meta{color:#57606a}
        svg.chart{background:#fff;border:1px solid #d0d7de} .title{font-weight:600;font-size:13px}
        .tick{font-size:10px;fill:#57606a} .label{font-size:11px} .axis{stroke:#57606a}
        .limit{stroke:#cf222e;stroke-dasharray:5 4} circle.point{fill:#8c959f;opacity:.8}
        circle.pareto{fill:#0969da} circle.over{fill:none;stroke:#8c959f} circle.chosen{fill:#cf222e;opacity:1}
        .callout{font-size:11px;fill:#cf222e} rect.bar{fill:#0969da} rect.behind{fill:#d0d7de}
        .value{font-size:10px;fill:#57606a} .ok{color:#1a7f37} .bad{color:#cf222e}
        """;

    public static string Optimize(OptimizeReport r)
    {
        var sb = Begin($"onnxopt report: {r.Input ?? "model"}");
        sb.Append(C, $"<p class=\"meta\">{Files(r.Input, r.Output)}pipeline "
            + $"<code title=\"{Esc(r.Pipeline)}\">{Esc(Pipeline.Brief(r.Pipeline))}</code></p>");
        var v = r.Validation;
        Summary(sb, r.Before, r.After, v?.Report, r.Latency, v is null ? null : v.Accepted ? "accepted" : "refused: "
            + v.Reason);
        Passes(sb, r.Passes);
        if (v is not null) Validation(sb, v.Report);
        if (r.Latency is { } lat) Latency(sb, lat);
        return End(sb);
    }

    public static string Compress(CompressReport r)
    {
        var sb = Begin($"onnxopt compress: {r.Input ?? "model"}");
        var x = r.ChosenCandidate;
        var metric = r.DropMetricName;
        sb.Append(C,
            $"<p class=\"meta\">{Files(r.Input, r.Output)}"
            + $"target <b>{Esc(r.Target)}</b>, budget "
            + $"{r.MaxDrop:G3} point{(r.MaxDrop == 1 ? "" : "s")} of {metric}; {r.Candidates.Count} candidates in "
            + $"{r.SearchSeconds:F0} s; chose "
                + $"#{x.Id}: "
            + $"<code title=\"{Esc(x.Pipeline)}\">{Esc(x.Pipeline.Length == 0 ? "(the "
                + "input)" : Pipeline.Brief(x.Pipeline))}</code></p>");
        Summary(sb, r.Before, r.After, r.Validation, r.Latency, $"{metric} drop {x.Drop.ToString("F2", C)} points");
        sb.Append("<h2 id=\"pareto\">Search</h2><div class=\"charts\">");
        var ok = r.Candidates.Where(c => c.Error is null).ToList();
        double Score(CompressCandidate c) => (r.ReferenceAccuracy ?? 100) - c.Drop;
        string Kind(CompressCandidate c) => (c.Chosen ? "chosen " : "") + (c.Pareto ? "pareto" : "")
            + (c.WithinBudget ? "" : " over");
        string Label(CompressCandidate c) =>
            $"#{c.Id} {(c.Pipeline.Length == 0 ? "input" : Pipeline.Brief(c.Step))}: drop {c.Drop.ToString("F2", C)}";
        var limit = (r.ReferenceAccuracy ?? 100) - r.MaxDrop;
        var yLabel = r.DropMetricName + (r.DropMetric == "cosine_x100" ? "" : " %");
        sb.Append(Scatter("pareto-latency", $"{yLabel} vs latency (ORT, 1 thread)", "median latency, ms", yLabel,
            ok.Select(c => new ChartPoint(c.LatencyMs, Score(c), Label(c), Kind(c))).ToList(), limit));
        sb.Append(Scatter("pareto-size", $"{yLabel} vs packed size", "packed size, bytes (log)", yLabel,
            ok.Select(c => new ChartPoint(c.PackedBytes, Score(c), Label(c), Kind(c))).ToList(), limit, logX: true));
        sb.Append("</div><h3>Candidates</h3><table id=\"candidates\"><tr><th>#</th><th>from</th><th "
            + "class=\"l\">stage</th>"
            + "<th class=\"l\">step</th><th>drop</th><th>latency ms</th><th>file B</th><th>packed B</th><th>MACs</th>"
            + "<th>depth</th><th>s</th><th class=\"l\">verdict</th></tr>");
        foreach (var c in r.Candidates)
        {
            var cls = c.Chosen ? "chosen" : c.WithinBudget ? "" : "over";
            var verdict = c.Error ?? (c.Chosen ? "chosen"
                : c.WithinBudget ? (c.Pareto ? "within budget, Pareto" : "within budget") : "over budget");
            var from = c.Parent is { } p ? "#" + p : "";
            var step = c.Step.Length == 0 ? "input" : Short(Pipeline.Brief(c.Step));
            sb.Append(C, $"<tr class=\"{cls}\"><td>{c.Id}</td><td>{from}</td><td class=\"l\">{Esc(c.Stage)}</td>"
                + $"<td class=\"l\"><code title=\"{Esc(c.Step)}\">{Esc(step)}</code></td>");
            if (c.Error is null)
                sb.Append(C,
                    $"<td>{c.Drop:F2}</td><td>{c.LatencyMs:F4}</td><td>{c.Bytes:N0}</td><td>{c.PackedBytes:N0}</td>"
                    + $"<td>{c.Macs:N0}</td><td>{c.NonLinearDepth}</td>");
            else sb.Append("<td colspan=\"6\"></td>");
            sb.Append(C, $"<td>{c.Seconds:F1}</td><td class=\"l\">{Esc(verdict)}</td></tr>");
        }
        sb.Append("</table>");
        if (r.Skipped.Count > 0)
        {
            sb.Append("<h3>Skipped (time budget)</h3><ul>");
            foreach (var s in r.Skipped) sb.Append(C, $"<li><code>{Esc(s)}</code></li>");
            sb.Append("</ul>");
        }
        sb.Append(C, $"<h3>Recipe (normalized)</h3><pre id=\"recipe\">{Esc(r.Recipe.ToYaml())}</pre>");
        Passes(sb, r.Passes);
        Validation(sb, r.Validation);
        Latency(sb, r.Latency);
        return End(sb);
    }

    /// <summary>"in → out" for the files the report names (nothing for a model run from the library).</summary>
    private static string Files(string? input, string? output) => input is null && output is null ? ""
        : Esc(input ?? "model") + (output is null ? "" : " → " + Esc(output)) + "<br>";

    private static string Short(string step) => step.Length <= 90 ? step : step[..89] + "…";

    private static StringBuilder Begin(string title)
    {
        var sb = new StringBuilder();
        sb.Append(C, $"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{Esc(title)}</title>");
        sb.Append(C, $"<style>{Css}</style></head><body><h1>{Esc(title)}</h1>");
        return sb;
    }

    private static string End(StringBuilder sb) =>
        sb.Append("<p class=\"meta\">written by onnxopt</p></body></html>\n").ToString();

    private static void Summary(StringBuilder sb, ModelStats b, ModelStats a, ValidationReport? v, BenchReport? lat,
        string? verdict)
    {
        sb.Append("<h2 id=\"summary\">Before and after</h2><table id=\"summary-table\"><tr><th "
            + "class=\"l\"></th><th>before</th><th>after</th><th>ratio</th></tr>");
        void Row(string name, double x, double y, string fmt) =>
            sb.Append(C, $"<tr><td class=\"l\">{name}</td><td>{x.ToString(fmt, C)}</td><td>{y.ToString(fmt, C)}</td>"
                + $"<td>{(y != 0 ? (x / y).ToString("F2", C) + "x" : "")}</td></tr>");
        Row("file bytes", b.FileBytes ?? 0, a.FileBytes ?? 0, "N0");
        Row("parameters", b.ParameterCount, a.ParameterCount, "N0");
        Row("MACs", b.TotalMacs, a.TotalMacs, "N0");
        Row("non-linear depth", b.NonLinearDepth, a.NonLinearDepth, "N0");
        Row("nodes", b.NodeCount, a.NodeCount, "N0");
        if (lat is { Other: { } o }) Row("median latency, ms (ORT)", lat.Model.MedianMs, o.MedianMs, "F4");
        if (v?.ReferenceAccuracy is { } ra)
            sb.Append(C,
                $"<tr><td class=\"l\">accuracy "
                + $"%</td><td>{ra * 100:F2}</td><td>{v.CandidateAccuracy * 100:F2}</td><td></td></tr>");
        sb.Append("</table>");
        if (verdict is not null) sb.Append(C,
            $"<p id=\"verdict\" "
            + $"class=\"{(verdict.StartsWith("refused", StringComparison.Ordinal) ? "bad" : "ok")}\">"
            + $"{Esc(verdict)}</p>");
    }

    private static void Passes(StringBuilder sb, IReadOnlyList<PassRun> runs)
    {
        sb.Append("<h2 id=\"passes\">Stages and decisions</h2>");
        int k = 0;
        foreach (var run in runs)
        {
            k++;
            var name = run.Step.Split('{')[0];
            sb.Append(C, $"<h3>{k}. {Esc(name)} <span class=\"meta\">({run.Milliseconds / 1000:F2} s)</span></h3>"
                + $"<p><code title=\"{Esc(run.Step)}\">{Esc(Pipeline.Brief(run.Step))}</code></p>");
            if (run.Stats.Counters.Count > 0)
                sb.Append("<p class=\"meta\">" + string.Join(", ", run.Stats.Counters.Select(kv =>
                    $"{Esc(kv.Key)}: {kv.Value.ToString("N0", C)}")) + "</p>");
            var d = run.Stats.Decisions;
            var charts = new List<string>();
            var groups = d.OfType<GroupPruned>().Where(g => g.NotPrunable is null).ToList();
            if (groups.Count > 0)
                charts.Add(Bars($"pass{k}-channels", "channels kept per group (grey: before)",
                    groups.Select(g => $"group {g.Group}: {g.Producers}").ToList(), groups.Select(g =>
                        (double)g.ChannelsAfter).ToList(),
                    groups.Select(g => (double)g.ChannelsBefore).ToList()));
            var clustered = d.OfType<WeightClustered>().ToList();
            if (clustered.Count > 0)
            {
                charts.Add(Bars($"pass{k}-bits", "bits per clustered weight", clustered.Select(c => c.Weight).ToList(),
                    clustered.Select(c => (double)c.Bits).ToList(), unit: " b"));
                charts.Add(Bars($"pass{k}-sqnr", "weight SQNR after clustering", clustered.Select(c =>
                    c.Weight).ToList(),
                    clustered.Select(c => c.SqnrDb).ToList(), unit: " dB"));
            }
            var slopes = d.OfType<SlopeDecision>().ToList();
            if (slopes.Count > 0)
                charts.Add(Bars($"pass{k}-slopes", "learned slope a per activation (line: threshold 0.9)",
                    slopes.Select(s => $"{s.Activation} ({s.Decision})").ToList(), slopes.Select(s =>
                        s.Slope).ToList(), limit: 0.9));
            var acts = d.OfType<ActivationDecision>().ToList();
            if (acts.Count > 0)
                charts.Add(Bars($"pass{k}-linearity", "energy the identity would change (lower: more linear)",
                    acts.Select(a => $"{a.Activation} ({a.Decision})").ToList(), acts.Select(a => a.Score).ToList()));
            var refits = d.OfType<LayerRefit>().ToList();
            if (refits.Count > 0)
                charts.Add(Bars($"pass{k}-refit", "layer SQNR after repair (grey: before)", refits.Select(x =>
                    x.Layer).ToList(),
                    refits.Select(x => Math.Max(0, x.SqnrDbAfter)).ToList(), refits.Select(x => Math.Max(0,
                        x.SqnrDbBefore)).ToList(), " dB"));
            QuantizationCharts(charts, k, d);
            if (charts.Count > 0) sb.Append("<div class=\"charts\">").Append(string.Join("", charts)).Append("</div>");
            var training = d.OfType<TrainingSummary>().ToList();
            if (training.Count > 0)
            {
                sb.Append("<table class=\"training\"><tr><th "
                    + "class=\"l\">training</th><th>steps</th><th>steps/s</th><th>loss</th>"
                    + "<th>held-out score</th><th>s</th></tr>");
                foreach (var t in training)
                {
                    var score = t.ScoreBest is { } best ? string.Create(C, $"{t.ScoreBefore:F2} → {best:F2}") : "";
                    sb.Append(C, $"<tr><td class=\"l\">{Esc(t.Stage)}</td><td>{t.Steps}</td>"
                        + $"<td>{t.StepsPerSecond:F1}</td><td>{t.FirstLoss:G3} → {t.FinalLoss:G3}</td>"
                        + $"<td>{score}</td>"
                        + $"<td>{t.Seconds:F1}</td></tr>");
                }
                sb.Append("</table>");
            }
            foreach (var n in run.Stats.Notes) sb.Append(C, $"<p class=\"meta\">note: {Esc(n)}</p>");
        }
    }

    /// <summary>quantize's per-layer charts: bits and weight SQNR of every quantized weight (static, dynamic,
    /// weight-only, embedding tables), and SmoothQuant's simulated int8 error per group of MatMuls.</summary>
    private static void QuantizationCharts(List<string> charts, int k, IReadOnlyList<Decision> d)
    {
        var weights = d.OfType<QuantizedOp>().Where(q => q.WeightSqnrDb is not null)
            .Select(q => (Label: $"{q.Node} ({q.Op})", Bits: q.Bits ?? 8, Sqnr: q.WeightSqnrDb!.Value))
            .Concat(d.OfType<WeightOnlyLayer>().Where(x => x.WeightSqnrDb is not null)
                .Select(x => (Label: $"{x.Node} ({x.Op})", Bits: x.Bits ?? 0, Sqnr: x.WeightSqnrDb!.Value)))
            .ToList();
        if (weights.Count > 0)
        {
            charts.Add(Bars($"pass{k}-qbits", "bits per quantized weight", weights.Select(w => w.Label).ToList(),
                weights.Select(w => (double)w.Bits).ToList(), unit: " b"));
            charts.Add(Bars($"pass{k}-qsqnr", "weight SQNR after quantization (200: exact)",
                weights.Select(w => w.Label).ToList(), weights.Select(w => w.Sqnr).ToList(), unit: " dB"));
        }
        var smooth = d.OfType<SmoothedGroup>().ToList();
        if (smooth.Count > 0)
            charts.Add(Bars($"pass{k}-smooth", "SmoothQuant: simulated int8 error, share of the unsmoothed "
                + "(line: 1)", smooth.Select(x => $"{x.Input} (alpha {(x.Alpha is { } a ? a.ToString(C) : "none")})")
                    .ToList(), smooth.Select(x => x.ErrorRatio).ToList(), limit: 1));
    }

    private static void Validation(StringBuilder sb, ValidationReport v)
    {
        sb.Append(C, $"<h2 id=\"validation\">Validation</h2><p class=\"meta\">{Esc(v.Data)}: {v.Samples} samples</p>");
        sb.Append("<table id=\"validation-table\"><tr><th class=\"l\">output</th><th>max abs "
            + "error</th><th>cosine</th><th>SQNR dB</th><th>top-1 agreement</th></tr>");
        foreach (var o in v.Outputs)
        {
            var agree = o.Top1Agreement is { } t ? (t * 100).ToString("F2", C) + "%" : "";
            sb.Append(C, $"<tr><td class=\"l\">{Esc(o.Name)}</td><td>{o.MaxAbsError:G4}</td><td>{o.Cosine:F6}</td>"
                + $"<td>{ValidationReportWriter.SqnrText(o.SqnrDb)}</td><td>{agree}</td></tr>");
        }
        sb.Append("</table>");
    }

    private static void Latency(StringBuilder sb, BenchReport lat)
    {
        if (lat.Other is not { } o) return;
        sb.Append(C, $"<h2 id=\"latency\">Latency</h2><p class=\"meta\">ONNX Runtime, {lat.Options.Threads} thread(s), "
            + $"{lat.Options.Iterations} interleaved runs each, batch {lat.Options.Batch}</p>");
        string[] labels = ["min", "median", "mean", "p90"];
        double[] Of(LatencyStats s) => [s.MinMs, s.MedianMs, s.MeanMs, s.P90Ms];
        sb.Append("<div class=\"charts\">");
        sb.Append(Bars("latency-after", "after (grey: before), ms", labels.ToList(), Of(o), Of(lat.Model), " ms"));
        sb.Append("</div>");
    }
}
