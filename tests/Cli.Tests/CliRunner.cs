// Runs the onnxopt CLI in-process with captured output, or as its own process (what a user's shell sees,
// Main's ORT logger included).
using System.Diagnostics;

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

    /// <summary>The built onnxopt in a process of its own: `dotnet onnxopt.dll ARGS`.</summary>
    public static (int Code, string Out, string Err) RunProcess(params string[] args) =>
        Exec("dotnet", Directory.GetCurrentDirectory(),
            [Path.Combine(AppContext.BaseDirectory, "onnxopt.dll"), .. args]);

    public static (int Code, string Out, string Err) Exec(string file, string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workDir,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(10))) { p.Kill(true); throw new TimeoutException($"{file} {args[0]}"); }
        return (p.ExitCode, output, err.Result);
    }
}
