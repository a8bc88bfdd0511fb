// Finds and loads libonnxruntime.so.1, fetches the API table and creates the process-wide
// environment (ORT allows one) with a logger that routes ORT's messages to OrtLibrary.Log.
// Search order: $ONNXOPT_ORT_LIB, next to our assemblies, then .ort/ in an enclosing checkout.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace OnnxOpt.Runtime.Native;

public enum OrtLogLevel { Verbose = 0, Info = 1, Warning = 2, Error = 3, Fatal = 4 }

public static unsafe class OrtLibrary
{
    public const uint ApiVersion = 30;
    public const string LibraryName = "libonnxruntime.so.1";

    private static readonly object Gate = new();
    private static OrtApi? _api;
    private static IntPtr _env;
    private static IntPtr _cpuMemory;

    /// <summary>Where ORT's log messages go (default: warnings and errors to stderr).</summary>
    public static Action<OrtLogLevel, string> Log { get; set; } = (level, msg) => Console.Error.WriteLine($"onnxruntime [{level}]: {msg}");

    /// <summary>Minimum level ORT reports; set before the first session is created.</summary>
    public static OrtLogLevel MinimumLogLevel { get; set; } = OrtLogLevel.Warning;

    public static string? LoadedPath { get; private set; }
    public static string? Version { get; private set; }

    internal static OrtApi Api { get { EnsureLoaded(); return _api!; } }
    internal static IntPtr Env { get { EnsureLoaded(); return _env; } }
    internal static IntPtr CpuMemoryInfo { get { EnsureLoaded(); return _cpuMemory; } }

    public static IEnumerable<string> Candidates()
    {
        var env = Environment.GetEnvironmentVariable("ONNXOPT_ORT_LIB");
        if (!string.IsNullOrEmpty(env)) { yield return env; yield break; }
        yield return Path.Combine(AppContext.BaseDirectory, LibraryName);
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            yield return Path.Combine(d.FullName, ".ort", LibraryName);
    }

    public static void EnsureLoaded()
    {
        if (_api is not null) return;
        lock (Gate)
        {
            if (_api is not null) return;
            var tried = new List<string>();
            IntPtr handle = IntPtr.Zero;
            string? path = null;
            foreach (var c in Candidates())
            {
                tried.Add(c);
                if (File.Exists(c) && NativeLibrary.TryLoad(c, out handle)) { path = c; break; }
            }
            if (handle == IntPtr.Zero)
                throw new OrtNotFoundException($"ONNX Runtime library not found or not loadable (tried {string.Join(", ", tried.Take(4))}{(tried.Count > 4 ? ", ..." : "")}); run 'bash scripts/fetch-ort.sh' or set ONNXOPT_ORT_LIB to a libonnxruntime.so.1 (1.30)");
            var getApiBase = (delegate* unmanaged<IntPtr*>)NativeLibrary.GetExport(handle, "OrtGetApiBase");
            var apiBase = getApiBase();
            var getApi = (delegate* unmanaged<uint, IntPtr*>)apiBase[0];
            var getVersion = (delegate* unmanaged<byte*>)apiBase[1];
            var table = getApi(ApiVersion);
            var version = Marshal.PtrToStringUTF8((IntPtr)getVersion()) ?? "?";
            if (table is null)
                throw new OrtNotFoundException($"{path} is ONNX Runtime {version}, which does not offer API version {ApiVersion}; use 1.30 or newer");
            var api = new OrtApi(table);
            IntPtr env;
            var logid = "onnxopt"u8;
            fixed (byte* id = logid)
            {
                var nameZ = stackalloc byte[logid.Length + 1];
                logid.CopyTo(new Span<byte>(nameZ, logid.Length));
                nameZ[logid.Length] = 0;
                api.Check(api.CreateEnvWithCustomLogger((IntPtr)(delegate* unmanaged<IntPtr, int, byte*, byte*, byte*, byte*, void>)&Logger, IntPtr.Zero, (int)MinimumLogLevel, nameZ, &env), "CreateEnv");
            }
            IntPtr mem;
            api.Check(api.CreateCpuMemoryInfo(1, 0, &mem), "CreateCpuMemoryInfo");
            _env = env;
            _cpuMemory = mem;
            LoadedPath = path;
            Version = version;
            _api = api;
        }
    }

    [UnmanagedCallersOnly]
    private static void Logger(IntPtr param, int severity, byte* category, byte* logid, byte* location, byte* message)
    {
        try { Log((OrtLogLevel)severity, Marshal.PtrToStringUTF8((IntPtr)message) ?? ""); }
        catch { /* never let an exception cross into native code */ }
    }

    /// <summary>A null-terminated UTF-8 copy of a string, freed by the caller with Marshal.FreeCoTaskMem.</summary>
    internal static IntPtr Utf8(string s) => Marshal.StringToCoTaskMemUTF8(s);
}

/// <summary>The ONNX Runtime library could not be found or loaded.</summary>
public sealed class OrtNotFoundException(string message) : Exception(message);
