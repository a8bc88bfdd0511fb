// A pipeline is a string that round-trips: "fold-bn,linearize{max-agreement-drop=0.5,mode=affine},fold-conv".
// Normalized form: every pass with all its options in declaration order ("name{k=v,...}", or just
// "name" for a pass without options); parse(normalized) == normalized. A pipeline may also come
// from a JSON file: {"passes": [{"name": "fold-bn"}, {"name": "linearize", "options": {"mode": "affine"}}]}
// or ["fold-bn", "canonicalize"].
using System.Text;
using System.Text.Json;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record PipelineStep(Pass Pass, PassOptions Options)
{
    public override string ToString()
    {
        var o = Options.Canonical();
        return o.Length == 0 ? Pass.Name : $"{Pass.Name}{{{o}}}";
    }

    /// <summary>Only the options that differ from their defaults (for people; parses to the same step).</summary>
    public string Brief()
    {
        var o = Options.Brief();
        return o.Length == 0 ? Pass.Name : $"{Pass.Name}{{{o}}}";
    }
}

public sealed class Pipeline(IReadOnlyList<PipelineStep> steps)
{
    public IReadOnlyList<PipelineStep> Steps { get; } = steps;

    public override string ToString() => string.Join(",", Steps);

    /// <summary>Each step with only its non-default options ("prune{macs=0.5},distill{steps=400}").</summary>
    public string Brief() => string.Join(",", Steps.Select(s => s.Brief()));

    /// <summary>The brief form of a pipeline text ("" stays "").</summary>
    public static string Brief(string text) => text.Length == 0 ? "" : Parse(text).Brief();

    public static Pipeline Parse(string text)
    {
        var steps = new List<PipelineStep>();
        int i = 0;
        void Skip() { while (i < text.Length && char.IsWhiteSpace(text[i])) i++; }
        Skip();
        if (i >= text.Length) throw new OnnxModelException("empty pipeline: name at least one pass (see 'onnxopt passes')");
        while (i < text.Length)
        {
            Skip();
            var start = i;
            while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] is '-' or '_')) i++;
            var name = text[start..i];
            if (name.Length == 0) throw new OnnxModelException($"pipeline '{text}': expected a pass name at position {i + 1}");
            var pass = PassRegistry.Get(name);
            var opts = new List<KeyValuePair<string, string>>();
            Skip();
            if (i < text.Length && text[i] == '{')
            {
                var close = text.IndexOf('}', i);
                if (close < 0) throw new OnnxModelException($"pipeline '{text}': '{{' after '{name}' is not closed");
                foreach (var kv in text[(i + 1)..close].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var eq = kv.IndexOf('=');
                    if (eq <= 0) throw new OnnxModelException($"pipeline '{text}': option '{kv}' of '{name}' must be key=value");
                    opts.Add(new(kv[..eq].Trim(), kv[(eq + 1)..].Trim()));
                }
                i = close + 1;
            }
            steps.Add(new PipelineStep(pass, new PassOptions(pass, opts)));
            Skip();
            if (i < text.Length)
            {
                if (text[i] != ',') throw new OnnxModelException($"pipeline '{text}': expected ',' at position {i + 1}");
                i++;
            }
        }
        return new Pipeline(steps);
    }

    /// <summary>"@file": a JSON pipeline config or a text file holding a pipeline string; else the string itself.</summary>
    public static Pipeline FromArgument(string arg)
    {
        if (!arg.StartsWith('@')) return Parse(arg);
        var path = arg[1..];
        if (!File.Exists(path)) throw new OnnxModelException($"pipeline file '{path}' not found");
        var text = FileKinds.ReadAllText(path, "pipeline file", 1 << 20).Trim();
        if (!text.StartsWith('{') && !text.StartsWith('[')) return Parse(text);
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            var list = root.ValueKind == JsonValueKind.Array ? root : root.GetProperty("passes");
            var sb = new StringBuilder();
            foreach (var p in list.EnumerateArray())
            {
                if (sb.Length > 0) sb.Append(',');
                if (p.ValueKind == JsonValueKind.String) { sb.Append(p.GetString()); continue; }
                sb.Append(p.GetProperty("name").GetString());
                if (p.TryGetProperty("options", out var o))
                    sb.Append('{').Append(string.Join(",", o.EnumerateObject().Select(x => $"{x.Name}={(x.Value.ValueKind == JsonValueKind.String ? x.Value.GetString() : x.Value.GetRawText())}"))).Append('}');
            }
            return Parse(sb.ToString());
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new OnnxModelException($"pipeline file '{path}': {e.Message}");
        }
    }
}
