// Small inline SVG charts for the HTML report (no script, no network): a scatter plot with marked points and an
// optional horizontal limit line, and a horizontal bar chart with one or two series. Every element carries a
// class (chart, point, bar, limit, axis) so tests and styles can find it. Text is HTML-escaped.
using System.Globalization;
using System.Net;
using System.Text;

namespace OnnxOpt.Passes;

public sealed record ChartPoint(double X, double Y, string Label, string Kind);

public static class SvgChart
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    private static string F(double v) => v.ToString("0.##", C);

    public static string Esc(string s) => WebUtility.HtmlEncode(s);

    /// <summary>A scatter plot; Kind is a class per point (e.g. "pareto", "over", "chosen"); limitY draws a dashed
    /// line (the budget).</summary>
    public static string Scatter(string id, string title, string xLabel, string yLabel, IReadOnlyList<ChartPoint> pts,
        double? limitY = null, bool logX = false)
    {
        const int w = 520, h = 320, l = 60, r = 20, t = 30, b = 45;
        var sb = new StringBuilder();
        sb.Append(C,
            $"<svg class=\"chart scatter\" id=\"{Esc(id)}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" "
            + $"role=\"img\">");
        sb.Append(C, $"<title>{Esc(title)}</title><text class=\"title\" x=\"{l}\" y=\"18\">{Esc(title)}</text>");
        if (pts.Count == 0) return sb.Append("</svg>").ToString();
        double Tx(double x) => logX ? Math.Log10(Math.Max(x, 1e-12)) : x;
        double x0 = pts.Min(p => Tx(p.X)), x1 = pts.Max(p => Tx(p.X));
        double y0 = Math.Min(pts.Min(p => p.Y), limitY ?? double.MaxValue), y1 = Math.Max(pts.Max(p => p.Y),
            limitY ?? double.MinValue);
        if (x1 - x0 < 1e-12) { x0 -= 1; x1 += 1; }
        if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
        double padX = (x1 - x0) * 0.06, padY = (y1 - y0) * 0.08;
        x0 -= padX; x1 += padX; y0 -= padY; y1 += padY;
        double Px(double x) => l + (Tx(x) - x0) / (x1 - x0) * (w - l - r);
        double Py(double y) => h - b - (y - y0) / (y1 - y0) * (h - t - b);
        sb.Append(C, $"<line class=\"axis\" x1=\"{l}\" y1=\"{h - b}\" x2=\"{w - r}\" y2=\"{h - b}\"/>");
        sb.Append(C, $"<line class=\"axis\" x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{h - b}\"/>");
        for (int k = 0; k <= 4; k++)
        {
            double xv = x0 + (x1 - x0) * k / 4, yv = y0 + (y1 - y0) * k / 4;
            double xs = logX ? Math.Pow(10, xv) : xv;
            sb.Append(C,
                $"<text class=\"tick\" x=\"{F(l + (w - l - r) * k / 4.0)}\" y=\"{h - b + 16}\" "
                + $"text-anchor=\"middle\">{Esc(Short(xs))}</text>");
            sb.Append(C,
                $"<text class=\"tick\" x=\"{l - 6}\" y=\"{F(Py(yv) + 4)}\" "
                + $"text-anchor=\"end\">{Esc(Short(yv))}</text>");
        }
        sb.Append(C,
            $"<text class=\"label\" x=\"{(l + w - r) / 2}\" y=\"{h - 8}\" text-anchor=\"middle\">{Esc(xLabel)}</text>");
        sb.Append(C,
            $"<text class=\"label\" transform=\"translate(14,{(t + h - b) / 2}) rotate(-90)\" "
            + $"text-anchor=\"middle\">{Esc(yLabel)}</text>");
        if (limitY is { } ly)
            sb.Append(C,
                $"<line class=\"limit\" x1=\"{l}\" y1=\"{F(Py(ly))}\" x2=\"{w - r}\" "
                + $"y2=\"{F(Py(ly))}\"><title>budget</title></line>");
        foreach (var p in pts.OrderBy(p => p.Kind.Contains("chosen") ? 1 : 0))
        {
            var rr = p.Kind.Contains("chosen") ? 7 : 4.5;
            sb.Append(C,
                $"<circle class=\"point {Esc(p.Kind)}\" cx=\"{F(Px(p.X))}\" cy=\"{F(Py(p.Y))}\" "
                + $"r=\"{F(rr)}\"><title>{Esc(p.Label)}</title></circle>");
            if (p.Kind.Contains("chosen"))
                sb.Append(C, $"<text class=\"callout\" x=\"{F(Px(p.X) + 9)}\" y=\"{F(Py(p.Y) - 9)}\">chosen</text>");
        }
        return sb.Append("</svg>").ToString();
    }

    /// <summary>Horizontal bars, one row per label; a second series (e.g. "before") is drawn behind the
    /// first.</summary>
    public static string Bars(string id, string title, IReadOnlyList<string> labels, IReadOnlyList<double> values,
        IReadOnlyList<double>? behind = null, string unit = "", double? limit = null)
    {
        const int w = 620, row = 16, l = 230, r = 70, t = 28;
        int h = t + labels.Count * row + 12;
        var sb = new StringBuilder();
        sb.Append(C,
            $"<svg class=\"chart bars\" id=\"{Esc(id)}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" "
            + $"role=\"img\">");
        sb.Append(C, $"<title>{Esc(title)}</title><text class=\"title\" x=\"4\" y=\"18\">{Esc(title)}</text>");
        double max = Math.Max(values.DefaultIfEmpty(0).Max(), behind?.DefaultIfEmpty(0).Max() ?? 0);
        if (limit is { } lim) max = Math.Max(max, lim);
        if (max <= 0) max = 1;
        double Px(double v) => l + Math.Max(0, v) / max * (w - l - r);
        for (int i = 0; i < labels.Count; i++)
        {
            double y = t + i * row;
            var name = labels[i].Length > 34 ? labels[i][..33] + "…" : labels[i];
            sb.Append(C,
                $"<text class=\"tick\" x=\"{l - 6}\" y=\"{F(y + 11)}\" "
                + $"text-anchor=\"end\">{Esc(name)}<title>{Esc(labels[i])}</title></text>");
            if (behind is not null)
                sb.Append(C,
                    $"<rect class=\"bar behind\" x=\"{l}\" y=\"{F(y + 2)}\" width=\"{F(Px(behind[i]) - l)}\" "
                    + $"height=\"{row - 4}\"/>");
            sb.Append(C,
                $"<rect class=\"bar\" x=\"{l}\" y=\"{F(y + 2)}\" width=\"{F(Px(values[i]) - l)}\" "
                + $"height=\"{row - 4}\"><title>{Esc(labels[i])}: {Esc(Short(values[i]))}{Esc(unit)}</title></rect>");
            sb.Append(C,
                $"<text class=\"value\" x=\"{F(Px(Math.Max(values[i], behind?[i] ?? 0)) + 4)}\" "
                + $"y=\"{F(y + 11)}\">{Esc(Short(values[i]))}{Esc(unit)}</text>");
        }
        if (limit is { } lm)
            sb.Append(C, $"<line class=\"limit\" x1=\"{F(Px(lm))}\" y1=\"{t}\" x2=\"{F(Px(lm))}\" y2=\"{h - 8}\"/>");
        return sb.Append("</svg>").ToString();
    }

    private static string Short(double v) => Math.Abs(v) >= 1e6 ? (v / 1e6).ToString("0.##", C) + "M"
        : Math.Abs(v) >= 1e4 ? (v / 1e3).ToString("0.#", C) + "k" : v.ToString(Math.Abs(v) >= 100 ? "0" : "0.###", C);
}
