// `onnxopt groups` output: every dependency group with its channel count, share of the model's MACs,
// blocks (grouped convs: equal blocks kept in equal counts), members (producers, consumers with their
// input offset, tied ops) and either "prunable" or the reasons
// it is not; then, in a model with attention, each attention block's heads (AttentionHeads: the units of
// prune{unit=head}); MACs unknown (symbolic dims) are said to be, not read as 0; as text or JSON (keys in a
// fixed order, byte-identical across runs; "attention" only when the model has attention blocks).
using System.Globalization;
using System.Text;
using System.Text.Json;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class DependencyGroupsWriter
{
    public static string Text(DependencyGroups d, IReadOnlyList<HeadGroup>? heads = null)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        var prunable = d.Groups.Count(g => g.Prunable);
        var unknown = d.NodesWithUnknownMacs;
        var macs = unknown == 0 ? string.Create(c, $"{d.TotalMacs:N0} MACs in all")
            : string.Create(c, $"MACs unknown for {unknown} ops (a symbolic dim: --dim NAME=V counts them; "
                + $"{d.TotalMacs:N0} known)");
        sb.AppendLine(c, $"{d.Groups.Count} groups, {prunable} prunable, {macs}");
        foreach (var g in d.Groups)
        {
            var share = unknown > 0 ? "?" : (d.TotalMacs == 0 ? 0 : 100.0 * g.Macs / d.TotalMacs).ToString("F1", c);
            sb.AppendLine(c,
                $"group {g.Id}: {g.Channels} channels{Blocks(g.Blocks)}, {share}% of MACs, "
                + $"{(g.Prunable ? "" : "not ")}prunable");
            foreach (var p in g.Producers) sb.AppendLine(c, $"  produced by {p}");
            foreach (var u in g.Consumers)
                sb.AppendLine(c,
                    $"  read by {u.Node} (input channels from {u.Offset}{Each(u.Repeat)})");
            foreach (var t in g.Tied.Distinct()) sb.AppendLine(c, $"  tied {t}");
            foreach (var r in g.Reasons) sb.AppendLine(c, $"  not prunable: {r}");
        }
        if (heads is not { Count: > 0 }) return sb.ToString();
        var withHeads = heads.Count(h => h.Prunable);
        sb.AppendLine(c, $"{heads.Count} attention blocks, {withHeads} with prunable heads (prune --unit head)");
        foreach (var h in heads)
        {
            var state = h.Prunable ? "prunable" : "not prunable";
            sb.AppendLine(c, $"attention {h.Id}: {h.Name}, {h.Heads} heads of {h.HeadSize}, {state}");
            foreach (var p in h.Projections)
                sb.AppendLine(c, $"  {(p.Slot is null ? "projection" : "q/k/v projection")} {p.MatMul}");
            if (h.View.Output is { } o) sb.AppendLine(c, $"  output projection {o.MatMul}");
            foreach (var r in h.Reasons) sb.AppendLine(c, $"  not prunable: {r}");
        }
        return sb.ToString();
    }

    private static string Blocks(int blocks) => blocks > 1 ? $" in {blocks} equal blocks (grouped convs)" : "";

    private static string Each(long repeat) => repeat > 1 ? $", {repeat} features each" : "";

    public static string Json(DependencyGroups d, IReadOnlyList<HeadGroup>? heads = null)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, OptimizeReportWriter.Options))
        {
            w.WriteStartObject();
            w.WriteNumber("total_macs", d.TotalMacs);
            w.WriteNumber("nodes_with_unknown_macs", d.NodesWithUnknownMacs);
            w.WriteStartArray("groups");
            foreach (var g in d.Groups)
            {
                w.WriteStartObject();
                w.WriteNumber("id", g.Id);
                w.WriteNumber("channels", g.Channels);
                w.WriteNumber("blocks", g.Blocks);
                w.WriteNumber("macs", g.Macs);
                if (d.NodesWithUnknownMacs > 0) w.WriteNull("macs_share");
                else JsonNumbers.Write(w, "macs_share", d.TotalMacs == 0 ? 0 : (double)g.Macs / d.TotalMacs);
                w.WriteBoolean("prunable", g.Prunable);
                Strings(w, "producers", g.Producers.Select(n => n.ToString()));
                w.WriteStartArray("consumers");
                foreach (var u in g.Consumers)
                {
                    w.WriteStartObject();
                    w.WriteString("node", u.Node.ToString());
                    w.WriteNumber("offset", u.Offset);
                    w.WriteNumber("repeat", u.Repeat);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                Strings(w, "tied", g.Tied.Distinct().Select(n => n.ToString()));
                Strings(w, "reasons", g.Reasons);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (heads is { Count: > 0 })
            {
                w.WriteStartArray("attention");
                foreach (var h in heads)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", h.Id);
                    w.WriteString("softmax", h.Name);
                    w.WriteNumber("heads", h.Heads);
                    w.WriteNumber("head_size", h.HeadSize);
                    w.WriteBoolean("prunable", h.Prunable);
                    Strings(w, "projections", h.Projections.Select(p => p.MatMul.ToString()));
                    if (h.View.Output is { } o) w.WriteString("output_projection", o.MatMul.ToString());
                    Strings(w, "reasons", h.Reasons);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void Strings(Utf8JsonWriter w, string name, IEnumerable<string> items)
    {
        w.WriteStartArray(name);
        foreach (var s in items) w.WriteStringValue(s);
        w.WriteEndArray();
    }
}
