// onnxopt inspect MODEL [--json]: opsets, inputs/outputs, op histogram, node/parameter counts,
// initializer and file bytes, MACs per op type, non-linear depth.
using System.CommandLine;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Cli;

public static class InspectCommand
{
    public static Command Create(CliContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model file" };
        var json = new Option<bool>("--json") { Description = "print the summary as JSON" };
        var cmd = new Command("inspect", "Summarize a model: I/O, op histogram, parameters, MACs, non-linear depth") { model, json };
        cmd.SetAction(r =>
        {
            var path = r.GetValue(model)!;
            var m = CliContext.LoadModel(path);
            var stats = ModelStats.Compute(m, new FileInfo(path).Length);
            if (r.GetValue(json)) ctx.Out.Write(ModelStatsWriter.Json(stats));
            else ctx.Out.Write(ModelStatsWriter.Text(stats));
            return 0;
        });
        return cmd;
    }
}
