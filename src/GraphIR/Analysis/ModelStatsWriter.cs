// ModelStats rendered: the `inspect --json` object (also embedded in optimize reports, keys in a fixed
// order) and the `inspect` text. Libraries and the CLI share these renderers.
using System.Globalization;
using System.Text.Json;

namespace OnnxOpt.GraphIR;

public static class ModelStatsWriter
{
    public static string Json(ModelStats s)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            Write(w, s);
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>Writes the summary as one JSON object (also embedded in optimize reports).</summary>
    /// <summary>macs (per op), total_macs, nodes_with_unknown_macs, and when they apply macs_polynomial and
    /// symbolic_dims.</summary>
    private static void WriteMacs(Utf8JsonWriter w, ModelStats s)
    {
        w.WriteStartObject("macs");
        foreach (var (k, v) in s.MacsByOp) w.WriteNumber(k, v);
        w.WriteEndObject();
        w.WriteNumber("total_macs", s.TotalMacs);
        w.WriteStartArray("nodes_with_unknown_macs");
        foreach (var n in s.UnknownMacNodes) w.WriteStringValue(n);
        w.WriteEndArray();
        if (s.MacsInSymbol is { } p)
        {
            w.WriteStartObject("macs_polynomial");
            w.WriteString("symbol", p.Symbol);
            w.WriteNumber("squared", p.A);
            w.WriteNumber("linear", p.B);
            w.WriteNumber("constant", p.C);
            w.WriteEndObject();
        }
        if (s.UnknownMacNodes.Count > 0 && s.SymbolicDims.Count > 0)
        {
            w.WriteStartArray("symbolic_dims");
            foreach (var d in s.SymbolicDims) w.WriteStringValue(d);
            w.WriteEndArray();
        }
    }

    public static void Write(Utf8JsonWriter w, ModelStats s)
    {
        w.WriteStartObject();
        w.WriteStartArray("opsets");
        foreach (var o in s.Opsets)
        {
            w.WriteStartObject();
            w.WriteString("domain", o.Domain.Length == 0 ? "ai.onnx" : o.Domain);
            w.WriteNumber("version", o.Version);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        void Tensors(string name, IEnumerable<TensorSummary> ts)
        {
            w.WriteStartArray(name);
            foreach (var t in ts)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("type", t.Type);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        Tensors("inputs", s.Inputs);
        Tensors("outputs", s.Outputs);
        if (s.Dims.Count > 0)
        {
            w.WriteStartObject("dims");
            foreach (var (k, v) in s.Dims) w.WriteNumber(k, v);
            w.WriteEndObject();
        }
        w.WriteNumber("nodes", s.NodeCount);
        w.WriteStartObject("op_histogram");
        foreach (var (k, v) in s.OpHistogram) w.WriteNumber(k, v);
        w.WriteEndObject();
        w.WriteNumber("parameters", s.ParameterCount);
        w.WriteNumber("zero_parameters", s.ZeroParameterCount);
        w.WriteNumber("initializer_bytes", s.InitializerBytes);
        if (s.FileBytes is long fb) w.WriteNumber("file_bytes", fb);
        WriteMacs(w, s);
        w.WriteNumber("non_linear_depth", s.NonLinearDepth);
        if (s.Transformer is { } t)
        {
            w.WriteStartObject("transformer");
            w.WriteNumber("layers", t.Layers);
            if (t.Heads is long h) w.WriteNumber("heads", h);
            if (t.Hidden is long hd) w.WriteNumber("hidden", hd);
            w.WriteStartArray("sequence_dims");
            foreach (var d in t.SequenceDims) w.WriteStringValue(d);
            w.WriteEndArray();
            w.WriteStartArray("embeddings");
            foreach (var e in t.Embeddings)
            {
                w.WriteStartObject();
                w.WriteString("name", e.Name);
                w.WriteNumber("rows", e.Rows);
                w.WriteNumber("width", e.Width);
                w.WriteNumber("bytes", e.Bytes);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    public static string Text(ModelStats s)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("opsets:      " + string.Join(", ", s.Opsets.Select(o => $"{(o.Domain.Length == 0 ? "ai.onnx" : o.Domain)} {o.Version}")));
        foreach (var t in s.Inputs) sb.AppendLine($"input:       {t.Name} {t.Type}");
        foreach (var t in s.Outputs) sb.AppendLine($"output:      {t.Name} {t.Type}");
        if (s.Dims.Count > 0)
            sb.AppendLine("dims:        " + string.Join(", ", s.Dims.Select(d => $"{d.Key}={d.Value}")));
        sb.AppendLine(c, $"nodes:       {s.NodeCount}");
        var zeros = s.ZeroParameterCount > 0 ? string.Create(c,
            $" ({s.ZeroParameterCount:N0} zero, sparsity {100.0 * s.ZeroParameterCount / s.ParameterCount:F1}%)") : "";
        sb.AppendLine(c, $"parameters:  {s.ParameterCount:N0}{zeros}");
        sb.AppendLine(c, $"initializers: {s.InitializerBytes:N0} bytes");
        if (s.FileBytes is long fb) sb.AppendLine(c, $"file:        {fb:N0} bytes");
        if (s.MacsInSymbol is { } p)
            sb.AppendLine(c, $"MACs:        {p} per sample");
        else
            sb.AppendLine(s.UnknownMacNodes.Count > 0 && s.TotalMacs == 0 ? "MACs:        unknown"
                : string.Create(c,
                    $"MACs:        {(s.UnknownMacNodes.Count > 0 ? "at least " : "")}{s.TotalMacs:N0} per sample"));
        int width = Math.Max(22, s.MacsByOp.Keys.Select(k => k.Length).DefaultIfEmpty(0).Max());
        foreach (var (k, v) in s.MacsByOp) sb.AppendLine(c, $"  {k.PadRight(width)} {v,16:N0}");
        if (s.UnknownMacNodes.Count > 0)
        {
            var hint = s.SymbolicDims.Count == 0 ? ""
                : "; give the symbolic dims, e.g. " + string.Join(" ", s.SymbolicDims.Select(d => $"--dim {d}=128"));
            if (s.MacsInSymbol is { } q)
                sb.AppendLine(c, $"  (per op: the nodes of static shape; {s.UnknownMacNodes.Count} more depend on "
                    + $"{q.Symbol}{hint})");
            else sb.AppendLine(c, $"  (MACs unknown for {s.UnknownMacNodes.Count} nodes with dynamic shapes{hint})");
        }
        sb.AppendLine(c, $"non-linear depth: {s.NonLinearDepth}");
        if (s.Transformer is { } tr) Transformer(sb, tr, s.FileBytes ?? s.InitializerBytes);
        sb.AppendLine("op histogram:");
        foreach (var (k, v) in s.OpHistogram) sb.AppendLine(c, $"  {k,-22} {v,6}");
        return sb.ToString();
    }

    private static void Transformer(System.Text.StringBuilder sb, TransformerSummary t, long fileBytes)
    {
        var c = CultureInfo.InvariantCulture;
        var parts = new List<string> { $"{t.Layers} attention layer{(t.Layers == 1 ? "" : "s")}" };
        if (t.Heads is long h) parts.Add($"{h} heads");
        if (t.Hidden is long hd) parts.Add($"hidden {hd}");
        if (t.SequenceDims.Count > 0) parts.Add("sequence dims " + string.Join(", ", t.SequenceDims));
        sb.AppendLine("transformer: " + string.Join(", ", parts));
        foreach (var e in t.Embeddings)
            sb.AppendLine(c, $"  embedding {e.Name}: {e.Rows:N0} x {e.Width:N0}, {e.Bytes:N0} bytes "
                + $"({100.0 * e.Bytes / Math.Max(1, fileBytes):F1}% of the file)");
    }
}
