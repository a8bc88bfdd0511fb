// onnxopt passes: every pass with its summary and declared options (name, type, default, meaning);
// --rules: every rewrite rule instead (name, the pass that runs it, root ops, domain, opsets).
using System.CommandLine;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class PassesCommand
{
    public static Command Create(CliContext ctx)
    {
        var rules = new Option<bool>("--rules")
        {
            Description = "list the rewrite rules the passes run (name, pass, root ops, opsets) instead",
        };
        var cmd = new Command("passes", "List the passes a pipeline can use, with their options and defaults")
        {
            rules,
        };
        cmd.SetAction(r =>
        {
            if (r.GetValue(rules))
            {
                foreach (var (rule, pass) in RuleRegistry.Rules)
                {
                    var opsets = (rule.MinOpset, rule.MaxOpset) switch
                    {
                        (1, long.MaxValue) => "",
                        (var a, long.MaxValue) => $", opset >= {a}",
                        (var a, var b) when a == b => $", opset {a}",
                        (var a, var b) => $", opset {a}..{b}",
                    };
                    var domain = rule.Domain.Length == 0 ? "" : rule.Domain + ".";
                    var roots = string.Join(", ", rule.RootOps.Select(o => domain + o));
                    ctx.Out.WriteLine($"{rule.Name}  [{pass}]  on {roots}{opsets}");
                }
                return 0;
            }
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
