// onnxopt passes: every pass with its summary and declared options (name, type, default, meaning).
using System.CommandLine;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class PassesCommand
{
    public static Command Create(CliContext ctx)
    {
        var cmd = new Command("passes", "List the passes a pipeline can use, with their options and defaults");
        cmd.SetAction(_ =>
        {
            foreach (var p in PassRegistry.Passes)
            {
                var d = p.Defaults();
                var needs = p.Needs(d).HasFlag(DataNeeds.Calibration) ? " (needs calibration data)" : "";
                ctx.Out.WriteLine($"{p.Name}{(p.IsExact(d) ? "" : " (approximate)")}{needs}");
                ctx.Out.WriteLine($"    {p.Summary}");
                foreach (var o in p.Options)
                    ctx.Out.WriteLine($"    {o.Name}={o.Format(o.Default)}  [{o.TypeName}]  {o.Description}");
            }
            return 0;
        });
        return cmd;
    }
}
