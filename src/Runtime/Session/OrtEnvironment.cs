// The process-wide ONNX Runtime environment (ORT allows one, and the first settings win): created on
// first use with a logger that routes ORT's messages to OrtEnvironment.Log, so libraries never write to
// the console themselves. ORT comes from the official Microsoft.ML.OnnxRuntime package; a machine whose
// native library cannot be loaded gets OrtNotFoundException with one line saying so.
using Ort = Microsoft.ML.OnnxRuntime;

namespace OnnxOpt.Runtime;

public enum OrtLogLevel { Verbose = 0, Info = 1, Warning = 2, Error = 3, Fatal = 4 }

public static class OrtEnvironment
{
    private static readonly Lock Gate = new();
    private static Ort.OrtEnv? _env;
    // Kept alive for as long as the environment: ORT calls it from native code.
    private static readonly Ort.DOrtLoggingFunction Logger = OnLog;

    /// <summary>Where ORT's log messages (warnings and errors by default) go; null drops them. The library
    /// never writes to the console itself: the CLI points this at stderr.</summary>
    public static Action<OrtLogLevel, string>? Log { get; set; }

    /// <summary>Minimum level ORT reports; set before the first session is created.</summary>
    public static OrtLogLevel MinimumLogLevel { get; set; } = OrtLogLevel.Warning;

    /// <summary>The ONNX Runtime version in use, e.g. "1.30.0".</summary>
    public static string Version => Env.GetVersionString();

    internal static Ort.OrtEnv Env
    {
        get
        {
            EnsureLoaded();
            return _env!;
        }
    }

    public static void EnsureLoaded()
    {
        if (_env is not null) return;
        lock (Gate)
        {
            if (_env is not null) return;
            try
            {
                var options = new Ort.EnvironmentCreationOptions
                {
                    logId = "onnxopt",
                    logLevel = (Ort.OrtLoggingLevel)MinimumLogLevel,
                    loggingFunction = Logger,
                };
                _env = Ort.OrtEnv.CreateInstanceWithOptions(ref options);
            }
            catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException
                                          or BadImageFormatException)
            {
                throw new OrtNotFoundException(
                    "ONNX Runtime's native library could not be loaded (" + FirstLine(e) + "); the "
                    + "Microsoft.ML.OnnxRuntime package ships it for linux-x64, linux-arm64, osx-arm64 and win-x64/arm64");
            }
        }
    }

    private static string FirstLine(Exception e)
    {
        while (e.InnerException is { } inner) e = inner;
        return e.Message.Split('\n')[0].Trim();
    }

    private static void OnLog(IntPtr param, Ort.OrtLoggingLevel severity, string category, string logId,
        string codeLocation,
        string message)
    {
        try { Log?.Invoke((OrtLogLevel)severity, message); }
        catch { /* never let an exception cross into native code */ }
    }
}

/// <summary>The ONNX Runtime library could not be found or loaded.</summary>
public sealed class OrtNotFoundException(string message) : Exception(message);
