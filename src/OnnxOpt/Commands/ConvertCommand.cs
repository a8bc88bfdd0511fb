// onnxopt convert IN -o OUT [--external-data BYTES] [--external-data-file NAME]: load, verify,
// write. Initializers of at least BYTES go to one data file beside OUT. The input is never touched;
// the output is written atomically; on any error nothing is written.
using System.CommandLine;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Cli;

public static class ConvertCommand
{
    public static Command Create(CliContext ctx)
    {
        var input = new Argument<string>("IN") { Description = "ONNX model file" };
        var output = new Option<string>("--output", "-o") { Description = "output model file", Required = true };
        var ext = new Option<long?>("--external-data") { Description = "store initializers of at least this many bytes in an external data file" };
        var extFile = new Option<string?>("--external-data-file") { Description = "name of the external data file (default: OUT.data)" };
        var cmd = new Command("convert", "Load, verify and write a model (optionally with external data)") { input, output, ext, extFile };
        cmd.SetAction(r =>
        {
            var inPath = r.GetValue(input)!;
            var outPath = r.GetValue(output)!;
            if (Path.GetFullPath(inPath) == Path.GetFullPath(outPath))
                throw new OnnxModelException($"{outPath}: output would overwrite the input model; choose another path");
            var threshold = r.GetValue(ext);
            if (threshold is < 0) throw new OnnxModelException("--external-data must be a byte count >= 0");
            var m = CliContext.LoadModel(inPath);
            // Read all external data now: the output may replace the files it came from.
            foreach (var g in m.Graph.SelfAndSubgraphs())
                foreach (var v in g.Initializers) v.Initializer!.DetachExternal();
            OnnxExporter.Save(m, outPath, new ExportOptions
            {
                ExternalDataThreshold = threshold,
                ExternalDataFile = r.GetValue(extFile)
            });
            ctx.Err.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }
}
