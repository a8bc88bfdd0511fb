// onnxopt dump MODEL [-o FILE] [--full]: the model in ONNX text syntax (large initializers summarized
// by hash unless --full), byte-identical across runs.
using System.CommandLine;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Cli;

public static class DumpCommand
{
    public static Command Create(CliContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model file" };
        var output = new Option<string?>("--output", "-o") { Description = "write the text to this file instead of stdout" };
        var full = new Option<bool>("--full") { Description = "print every initializer inline (parseable back), not summarized by hash" };
        var cmd = new Command("dump", "Print a model in the ONNX text syntax") { model, output, full };
        cmd.SetAction(r =>
        {
            if (r.GetValue(output) is { } target) CliContext.CheckOutput(r.GetValue(model)!, target);
            var m = CliContext.LoadModel(r.GetValue(model)!);
            var options = r.GetValue(full) ? TextOptions.Full : new TextOptions();
            var o = r.GetValue(output);
            if (o is null) TextPrinter.Print(m, ctx.Out, options);
            else AtomicFile.WriteText(o, w => TextPrinter.Print(m, w, options));
            return 0;
        });
        return cmd;
    }
}
