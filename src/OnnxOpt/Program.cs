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
        // ORT's own warnings (the libraries never write to the console themselves). Its errors are not
        // printed: each one reaches us as an exception too, which the command reports in its one line.
        OnnxOpt.Runtime.OrtEnvironment.Log = (level, msg) =>
        {
            if (level < OnnxOpt.Runtime.OrtLogLevel.Error) Console.Error.WriteLine($"onnxruntime [{level}]: {msg}");
        };
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

        var quiet = new Option<bool>("--quiet", "-q")
        {
            Description = "no progress and no summaries on stderr; errors still print",
            Recursive = true,
        };
        var verbose = new Option<bool>("--verbose", "-v")
        {
            Description = "progress also when stderr is redirected, and per-pass details",
            Recursive = true,
        };
        root.Add(quiet);
        root.Add(verbose);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            stderr.WriteLine($"onnxopt: error: {string.Join("; ", parse.Errors.Select(e => e.Message))} (see 'onnxopt --help')");
            return 2;
        }
        try
        {
            ctx.SetVerbosity(parse.GetValue(quiet), parse.GetValue(verbose));
            try
            {
                return parse.Invoke(new InvocationConfiguration
                {
                    Output = stdout,
                    Error = stderr,
                    EnableDefaultExceptionHandler = false
                });
            }
            finally
            {
                ctx.EndProgress();
            }
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
    private ProgressRenderer? _renderer;
    private readonly TextWriter _stderr = stderr;

    public TextWriter Out { get; } = stdout;
    /// <summary>Summaries and notes; with --quiet only the lines starting "onnxopt:" (errors, refusals).</summary>
    public TextWriter Err { get; private set; } = stderr;

    /// <summary>--quiet: no progress, no summaries; errors still print.</summary>
    public bool Quiet { get; private set; }
    /// <summary>--verbose: progress also when stderr is redirected (plain lines), and per-pass details.</summary>
    public bool Verbose { get; private set; }
    /// <summary>Whether stderr is an interactive terminal (then progress lines are rewritten in place).</summary>
    public bool Terminal { get; } = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;

    public void SetVerbosity(bool quiet, bool verbose)
    {
        if (quiet && verbose) throw new OnnxModelException("give either --quiet or --verbose, not both");
        Quiet = quiet;
        Verbose = verbose;
        if (quiet) Err = new ErrorLinesOnly(_stderr);
    }

    /// <summary>Ends an open progress line (before a summary is printed).</summary>
    public void EndProgress() => _renderer?.End();

    /// <summary>Progress of long library work on stderr (rate and ETA; see ProgressRenderer), or null.</summary>
    public OnnxOpt.Data.ProgressSink? Progress
    {
        get
        {
            if (Quiet || !(Terminal || Verbose)) return null;
            _renderer ??= new ProgressRenderer(_stderr, Terminal);
            return _renderer.Report;
        }
    }

    public static bool IsUserError(Exception e) =>
        e is OnnxModelException or OnnxOpt.Runtime.OrtException or OnnxOpt.Runtime.OrtNotFoundException or IOException or UnauthorizedAccessException or NotSupportedException or FormatException or ArgumentException;

    /// <summary>Refuses, before any work, an output that would overwrite the input (also through a link) or that
    /// cannot be written (a folder, a block device, a socket, a missing folder).</summary>
    public static void CheckOutput(string input, string output)
    {
        var target = AtomicFile.Resolve(output);
        if (!target.Direct && File.Exists(input) && FileKinds.RealPath(input) == FileKinds.RealPath(target.Path))
            throw new OnnxModelException($"{output}: output would overwrite the input model; choose another path");
    }

    /// <summary>A message on one line, at most 1,000 characters (a value echoed from a hostile file is cut).</summary>
    public static string OneLine(string s)
    {
        var line = s.ReplaceLineEndings(" ").Trim();
        return line.Length <= 1000 ? line : line[..1000] + "... (cut)";
    }

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

    /// <summary>As <see cref="ParseDims(IEnumerable{string}?)"/>, refusing a name that is not a symbolic dim of the
    /// model's inputs (as fix-dims and bench do), so a mistyped --dim is not silently ignored.</summary>
    public static Dictionary<string, long> ParseDims(IEnumerable<string>? specs, Model model)
    {
        var d = ParseDims(specs);
        var known = model.Graph.Inputs.Where(v => !v.IsInitializer).SelectMany(v => v.Shape?.Dims ?? [])
            .Select(x => x.Param).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var name in d.Keys.Where(k => !known.Contains(k)))
            throw new OnnxModelException($"--dim {name}: the model's inputs have no symbolic dim '{name}' (their dims: "
                + (known.Count == 0 ? "none" : string.Join(", ", known)) + ")");
        return d;
    }

    /// <summary>The --int-range option every command that may draw random inputs takes.</summary>
    public static Option<string[]> IntRangeOption() => new("--int-range")
    {
        Description = "values of a random integer input, NAME=LO:HI (HI excluded; default: the rows of the "
            + "table it indexes, 0/1 for a mask, else 0:4)",
    };

    /// <summary>Ranges from repeated "--int-range NAME=LO:HI" options.</summary>
    public static Dictionary<string, OnnxOpt.Data.ValueRange> ParseIntRanges(IEnumerable<string>? specs)
    {
        var d = new Dictionary<string, OnnxOpt.Data.ValueRange>(StringComparer.Ordinal);
        foreach (var s in specs ?? [])
        {
            var parts = s.Split('=', 2);
            if (parts.Length != 2 || parts[0].Length == 0)
                throw new OnnxModelException(
                    $"--int-range '{s}': expected NAME=LO:HI, e.g. --int-range input_ids=0:30522");
            d[parts[0]] = OnnxOpt.Data.ValueRange.Parse(parts[0], parts[1]);
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

/// <summary>--quiet's stderr: passes only whole lines that start with "onnxopt:" (errors and refusals).</summary>
internal sealed class ErrorLinesOnly(TextWriter inner) : TextWriter
{
    private readonly System.Text.StringBuilder _line = new();

    public override System.Text.Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        if (value != '\n') { _line.Append(value); return; }
        var line = _line.ToString();
        _line.Clear();
        if (line.StartsWith("onnxopt:", StringComparison.Ordinal)) inner.WriteLine(line);
    }
}
