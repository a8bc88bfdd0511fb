// onnxopt quantize IN -o OUT --calib DIR [--method minmax|percentile|entropy|mse] [--format qdq|qoperator]
//                  [--eval DIR --max-drop X] [--report R.json] [...optimize's options]
// Post-training int8 quantization: the same as
//   onnxopt optimize IN -o OUT --passes "canonicalize,fold-bn,quantize{...}"
// (BatchNorm is folded first so every Conv quantizes as one group), with optimize's validation,
// atomic write and report. The options map one to one onto the quantize pass's declared options
// (the library's Presets.Quantize builds the pipeline).
using System.CommandLine;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class QuantizeCommand
{
    public static Command Create(CliContext ctx)
    {
        var common = new OptimizeCommand.CommonOptions();
        var preset = Presets.Quantize;
        var pass = preset.Pass;
        // One CLI option per declared pass option (--method is calibrate's name on the command line).
        var options = pass.Options.Select(o => (Spec: o,
            Cli: new Option<string?>("--" + (o.Name == "calibrate" ? "method" : o.Name))
            {
                Description = $"{o.Description} (default {o.Format(o.Default)}; {o.TypeName})",
            })).ToList();
        var cmd = new Command("quantize", "Post-training int8 quantization (QDQ or QOperator) with calibration, optional accuracy budget, validated in ORT");
        common.AddTo(cmd);
        foreach (var (_, o) in options) cmd.Add(o);
        cmd.SetAction(r =>
        {
            var given = options.Where(x => r.GetValue(x.Cli) is not null)
                .Select(x => new KeyValuePair<string, string>(x.Spec.Name, r.GetValue(x.Cli)!));
            var pipeline = preset.Build(given);
            return OptimizeCommand.Execute(ctx, common.Read(r, pipeline));
        });
        return cmd;
    }
}
