// A command for a library preset (quantize, prune): optimize's options plus one flag per option the
// preset's pass declares (renamed where the CLI has a clearer word), building the preset's pipeline.
using System.CommandLine;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class PresetCommands
{
    public static Command Create(CliContext ctx, Preset preset, string description, IReadOnlyDictionary<string,
        string>? renames = null)
    {
        var common = new OptimizeCommand.CommonOptions();
        // A boolean option is also a bare flag: "--per-channel" means "--per-channel true".
        var options = preset.Pass.Options.Select(o => (Spec: o,
            Cli: new Option<string?>("--" + (renames?.GetValueOrDefault(o.Name) ?? o.Name))
            {
                Description = $"{o.Description} (default {o.Format(o.Default)}; {o.TypeName})",
                Arity = o.Kind == OptionKind.Bool ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne,
            })).ToList();
        var cmd = new Command(preset.Name, description);
        common.AddTo(cmd);
        foreach (var (_, o) in options) cmd.Add(o);
        cmd.SetAction(r =>
        {
            var given = options.Where(x => r.GetResult(x.Cli) is not null)
                .Select(x => new KeyValuePair<string, string>(x.Spec.Name, r.GetValue(x.Cli) ?? "true"));
            return OptimizeCommand.Execute(ctx, common.Read(r, preset.Build(given)));
        });
        return cmd;
    }
}
