// onnxopt groups MODEL [--json] [--exclude A;B]: the dependency groups structured pruning works on
// (DependencyGroups), each with its members and either "prunable" or why not, and the attention blocks whose heads
// prune --unit head removes (AttentionHeads).
using System.CommandLine;
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
        var cmd = new Command("groups", "List the channel dependency groups structured pruning would remove together")
        {
            model, json, exclude,
        };
        cmd.SetAction(r =>
        {
            var m = CliContext.LoadModel(r.GetValue(model)!);
            var ex = (r.GetValue(exclude) ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries
                    | StringSplitOptions.TrimEntries)
                .ToHashSet(StringComparer.Ordinal);
            var d = DependencyGroups.Analyze(m, ex);
            var heads = AttentionHeads.Analyze(m);
            ctx.Out.Write(r.GetValue(json) ? DependencyGroupsWriter.Json(d, heads)
                : DependencyGroupsWriter.Text(d, heads));
            return 0;
        });
        return cmd;
    }
}
