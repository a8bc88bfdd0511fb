// onnxopt: the command-line entry point. Every command returns an exit code: 0 success,
// 1 a check that ran and failed (validation outside tolerance), 2 bad input or usage. User errors
// print one line to stderr ("onnxopt: error: ..."), never a stack trace.
using System.CommandLine;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        // ORT's own warnings and errors (the libraries never write to the console themselves).
        OnnxOpt.Runtime.OrtEnvironment.Log = (level, msg) => Console.Error.WriteLine($"onnxruntime [{level}]: {msg}");
        return Run(args, Console.Out, Console.Error);
    }

    /// <summary>"onnxopt 0.15.0+commit, ONNX Runtime 1.30.0" (--version).</summary>
    public static string VersionLine()
    {
        var info = typeof(Program).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion;
        return $"onnxopt {info ?? "unknown"}, ONNX Runtime {OnnxOpt.Runtime.OrtEnvironment.Version}";
    }

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args is ["--version"])
        {
            stdout.WriteLine(VersionLine());
            return 0;
        }
        var root = new RootCommand("onnxopt: makes ONNX models shallower, smaller and faster, and proves it in ONNX Runtime.");
        var ctx = new CliContext(stdout, stderr);
        root.Add(InspectCommand.Create(ctx));
        root.Add(DumpCommand.Create(ctx));
        root.Add(ConvertCommand.Create(ctx));
        root.Add(RunCommand.Create(ctx));
        root.Add(ValidateCommand.Create(ctx));
        root.Add(BenchCommand.Create(ctx));
        root.Add(OptimizeCommand.Create(ctx));
        root.Add(PassesCommand.Create(ctx));
        root.Add(ScoreCommand.Create(ctx));
        root.Add(QuantizeCommand.Create(ctx));
        root.Add(GroupsCommand.Create(ctx));
        root.Add(PruneCommand.Create(ctx));
        root.Add(ClusterCommand.Create(ctx));
        root.Add(PackCommand.Create(ctx));
        root.Add(PackCommand.CreateUnpack(ctx));
        root.Add(CompressCommand.Create(ctx));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            stderr.WriteLine($"onnxopt: error: {string.Join("; ", parse.Errors.Select(e => e.Message))} (see 'onnxopt --help')");
            return 2;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration
            {
                Output = stdout,
                Error = stderr,
                EnableDefaultExceptionHandler = false
            });
        }
        catch (Exception e) when (CliContext.IsUserError(e))
        {
            stderr.WriteLine($"onnxopt: error: {CliContext.OneLine(e.Message)}");
            return 2;
        }
    }
}

/// <summary>Output streams for one invocation (tests pass their own).</summary>
public sealed class CliContext(TextWriter stdout, TextWriter stderr)
{
    public TextWriter Out { get; } = stdout;
    public TextWriter Err { get; } = stderr;

    /// <summary>Progress of long library work on stderr ("\rtask: done/total"), when stderr is a terminal.</summary>
    public OnnxOpt.Data.ProgressSink? Progress => Err == Console.Error && !Console.IsErrorRedirected
        ? (task, done, total) =>
        {
            Err.Write($"\r{task}: {done}/{total} samples");
            if (done >= total) Err.WriteLine();
        }
    : null;

    public static bool IsUserError(Exception e) =>
        e is OnnxModelException or OnnxOpt.Runtime.OrtException or OnnxOpt.Runtime.OrtNotFoundException or IOException or UnauthorizedAccessException or NotSupportedException or FormatException or ArgumentException;

    public static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    /// <summary>Symbol values from repeated "--dim NAME=VALUE" options.</summary>
    public static Dictionary<string, long> ParseDims(IEnumerable<string>? specs)
    {
        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var s in specs ?? [])
        {
            var parts = s.Split('=', 2);
            if (parts.Length != 2 || !long.TryParse(parts[1], out var v) || v <= 0)
                throw new OnnxModelException($"--dim '{s}': expected NAME=VALUE with a positive VALUE, e.g. --dim N=8");
            d[parts[0]] = v;
        }
        return d;
    }

    /// <summary>Loads and verifies a model, turning every problem into an OnnxModelException.</summary>
    public static Model LoadModel(string path)
    {
        var m = OnnxImporter.Load(path);
        var errors = Verifier.Check(m);
        if (errors.Count > 0) throw new OnnxModelException($"{path}: {errors[0]}");
        return m;
    }
}
