// Runs the onnxopt CLI in-process with captured output.
namespace OnnxOpt.Tests;

public sealed record CliResult(int ExitCode, string Out, string Err);

public static class Cli
{
    public static CliResult Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = OnnxOpt.Cli.Program.Run(args, o, e);
        return new CliResult(code, o.ToString(), e.ToString());
    }

    public static string Model(string rel) => Paths.Model(rel);
}
