// strip: what a deployed model does not need to compute, removed; the function is unchanged (exact).
//   docs=true        doc strings of the model, graphs, nodes, values and tensors go;
//   value-info=true  the value_info shape annotations of intermediate values go (runtimes infer them again;
//                    the inputs' and outputs' types stay);
//   names=true       nodes lose their names and every value that is not a graph input or output gets a short
//                    name ("0", "1", ... in graph order, skipping names the interface holds), e.g.
//                      %/layer1/layer1.0/conv1/Conv_output_0 = Conv(%input, %layer1.0.conv1.weight, ...)
//                    ->
//                      %3 = Conv(%input, %0, %1)
//                    A model with subgraphs keeps its names (a subgraph may capture an outer name), with a note.
//   dedupe=true      initializers of the same type, shape and bytes become one (exporters write a Clip's 0 and 6
//                    once per activation), e.g. %a = Clip(%x, %min0, %max0); %b = Clip(%a, %min1, %max1) ->
//                    %b = Clip(%a, %min0, %max0); graph inputs and outputs are never merged (not with subgraphs).
// Exporters name values after the source code, so in a small net the names are a large part of the file:
// the digits ResNet's 398 KB hold 9.8 KB that are not weights. compress --target size runs strip last.
// Graph inputs and outputs, metadata, opsets and producer keep what they had.
using System.Globalization;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record StripOptions
{
    [Option("docs", "remove doc strings")]
    public bool Docs { get; init; } = true;
    [Option("value-info", "remove the value_info of intermediate values")]
    public bool ValueInfo { get; init; } = true;
    [Option("names", "empty node names and short names for internal values (not with subgraphs)")]
    public bool Names { get; init; } = true;
    [Option("dedupe", "merge initializers of the same type, shape and bytes (not with subgraphs)")]
    public bool Dedupe { get; init; } = true;
}

public sealed class Strip : Pass<StripOptions>
{
    public override string Name => "strip";
    public override string Summary =>
        "remove doc strings, intermediate value_info and long internal names, merge equal initializers (exact)";

    public override void Run(PassContext ctx, StripOptions o)
    {
        var rw = ctx.Rewriter;
        var graphs = ctx.Model.Graph.SelfAndSubgraphs().ToList();
        if (o.Docs) ctx.Stats.Count(Counters.Strip.DocStrings, rw.ClearDocStrings(ctx.Model));
        if (o.ValueInfo)
            ctx.Stats.Count(Counters.Strip.ValueInfos, graphs.Sum(rw.ClearValueInfos));
        if (!o.Names && !o.Dedupe) return;
        if (graphs.Count > 1)
        {
            ctx.Stats.Notes.Add("names kept and initializers not merged: the model has subgraphs, which may refer "
                + "to outer values by name");
            return;
        }
        var g = ctx.Model.Graph;
        if (o.Dedupe) ctx.Stats.Count(Counters.Strip.InitializersMerged, Dedupe(g, rw));
        if (!o.Names) return;
        var reserved = g.Inputs.Concat(g.Outputs).Select(v => v.Name).ToHashSet(StringComparer.Ordinal);
        // Initializers first, then node outputs in graph order: the same model always gets the same names.
        var values = g.Initializers.Where(v => !v.IsGraphInput && !v.IsGraphOutput)
            .Concat(g.Nodes.SelectMany(n => n.Outputs).Where(v => v is { IsGraphOutput: false }).Select(v => v!))
            .Distinct().ToList();
        // Two rounds, so that a new name never meets an old one: first out of the way, then the short names.
        foreach (var v in values) rw.Rename(v, "\u0001" + v.Name);
        int next = 0, renamed = 0;
        foreach (var v in values)
        {
            string name;
            do name = (next++).ToString(CultureInfo.InvariantCulture); while (reserved.Contains(name));
            rw.Rename(v, name);
            renamed++;
        }
        int nodes = 0;
        foreach (var n in g.Nodes.Where(n => !string.IsNullOrEmpty(n.Name)).ToList())
        {
            rw.RenameNode(n, null);
            nodes++;
        }
        ctx.Stats.Count(Counters.Strip.ValuesRenamed, renamed);
        ctx.Stats.Count(Counters.Strip.NodeNamesRemoved, nodes);
    }

    /// <summary>Uses of every initializer equal to an earlier one move to the earlier one; returns how many
    /// were merged (and removed).</summary>
    private static int Dedupe(Graph g, Rewriter rw)
    {
        var first = new Dictionary<string, List<Value>>(StringComparer.Ordinal);
        int merged = 0;
        foreach (var v in g.Initializers.ToList())
        {
            if (v.IsGraphInput || v.IsGraphOutput || v.Initializer is not { } t) continue;
            var key = $"{(int)t.ElementType}:{string.Join(",", t.Dims)}:{t.ContentHash()}";
            if (!first.TryGetValue(key, out var seen)) first[key] = seen = new List<Value>();
            if (seen.FirstOrDefault(s => s.Initializer!.ContentEquals(t)) is { } same)
            {
                rw.Replace(v, same);
                merged++;
            }
            else seen.Add(v);
        }
        rw.RemoveUnusedInitializers(g);
        return merged;
    }
}
