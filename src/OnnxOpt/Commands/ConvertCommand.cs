// onnxopt convert IN -o OUT [--opset N] [--external-data BYTES] [--external-data-file NAME]: load, verify,
// write. With --opset, the ai.onnx opset moves up to N (the upgrade-opset pass) and the result is checked
// in ORT against the input on seeded random inputs before it is written (--force writes a failed one).
// Initializers of at least BYTES go to one data file beside OUT. The input is never touched; the output is
// written atomically; on any error nothing is written.
using System.CommandLine;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class ConvertCommand
{
    public static Command Create(CliContext ctx)
    {
        var input = new Argument<string>("IN") { Description = "ONNX model file" };
        var output = new Option<string>("--output", "-o") { Description = "output model file", Required = true };
        var opset = new Option<long?>("--opset")
        {
            Description = $"move the ai.onnx opset up to N ({UpgradeOpset.Oldest}..{UpgradeOpset.Newest}), "
                + "validated in ORT against the input",
        };
        var ext = new Option<long?>("--external-data")
        {
            Description = "store initializers of at least this many bytes in an external data file",
        };
        var extFile = new Option<string?>("--external-data-file")
        {
            Description = "name of the external data file (default: OUT.data)",
        };
        var report = new Option<string?>("--report") { Description = "with --opset: write a JSON report here" };
        var force = new Option<bool>("--force")
        {
            Description = "with --opset: write the output even if validation fails",
        };
        var seed = new Option<ulong>("--seed")
        {
            Description = "seed for the random validation inputs",
            DefaultValueFactory = _ => 1UL,
        };
        var dims = new Option<string[]>("--dim")
        {
            Description = "value of a symbolic dimension in the random validation inputs, e.g. --dim N=8 (default 1)",
        };
        var cmd = new Command("convert", "Load, verify and write a model: opset upgrade, external data")
        {
            input, output, opset, ext, extFile, report, force, seed, dims,
        };
        cmd.SetAction(r =>
        {
            var inPath = r.GetValue(input)!;
            var outPath = r.GetValue(output)!;
            CliContext.CheckOutput(inPath, outPath);
            var threshold = r.GetValue(ext);
            if (threshold is < 0) throw new OnnxModelException("--external-data must be a byte count >= 0");
            var export = new ExportOptions
            {
                ExternalDataThreshold = threshold,
                ExternalDataFile = r.GetValue(extFile),
            };
            if (r.GetValue(opset) is { } n)
                return OptimizeCommand.Execute(ctx, new OptimizeRequest(inPath, outPath,
                    Pipeline.Parse($"upgrade-opset{{version={n}}}"))
                {
                    Validate = true,
                    Force = r.GetValue(force),
                    Report = r.GetValue(report),
                    Seed = r.GetValue(seed),
                    Dims = CliContext.ParseDims(r.GetValue(dims)),
                    Export = export,
                });
            var m = CliContext.LoadModel(inPath);
            // Read all external data now: the output may replace the files it came from.
            foreach (var g in m.Graph.SelfAndSubgraphs())
                foreach (var v in g.Initializers) v.Initializer!.DetachExternal();
            OnnxExporter.Save(m, outPath, export);
            ctx.Err.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }
}
