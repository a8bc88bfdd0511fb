// onnxopt groups MODEL [--json] [--exclude A;B] [--dim NAME=V]: the dependency groups structured pruning works on
// (DependencyGroups), each with its members and either "prunable" or why not, and the attention blocks whose heads
// prune --unit head removes (AttentionHeads). --dim gives symbolic dims values, so that a transformer's MACs (and
// each group's share of them) are counted at that sequence length.
using System.CommandLine;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class GroupsCommand
{
    public static Command Create(CliContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model file" };
        var json = new Option<bool>("--json") { Description = "print the groups as JSON" };
        var exclude = new Option<string?>("--exclude")
        {
            Description = "node names, output names or op types never to prune (';'-separated)",
        };
        var dims = new Option<string[]>("--dim")
        {
            Description = "value of a symbolic dimension for the MACs, e.g. --dim sequence=128 (repeatable)",
        };
        var cmd = new Command("groups", "List the channel dependency groups structured pruning would remove together")
        {
            model, json, exclude, dims,
        };
        cmd.SetAction(r =>
        {
            var m = CliContext.LoadModel(r.GetValue(model)!);
            var ex = (r.GetValue(exclude) ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries
                    | StringSplitOptions.TrimEntries)
                .ToHashSet(StringComparer.Ordinal);
            var (d, heads) = ShapeInference.WhileInferred(m,
                () => (DependencyGroups.Analyze(m, ex), AttentionHeads.Analyze(m)),
                CliContext.ParseDims(r.GetValue(dims), m));
            ctx.Out.Write(r.GetValue(json) ? DependencyGroupsWriter.Json(d, heads)
                : DependencyGroupsWriter.Text(d, heads));
            return 0;
        });
        return cmd;
    }
}
