// The hidden temporary files atomic writes go through (".<name>.<pid>.tmp" beside the output), and what
// removes them when the write does not finish: the writer on an exception, a SIGTERM/SIGINT/SIGHUP/SIGQUIT
// handler for every temporary file still open when the signal arrives, and, before each new write, a sweep
// of the same output's temporary files left by processes that no longer run (kill -9, a power cut).
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace OnnxOpt.GraphIR;

public static partial class TempFiles
{
    private static readonly ConcurrentDictionary<string, byte> Open = new();
    private static readonly List<PosixSignalRegistration> Handlers = [];
    private static readonly Lock Gate = new();

    /// <summary>A new temporary file name for writing <paramref name="fileName"/> in <paramref name="dir"/>,
    /// removed if the process is stopped by a signal before <see cref="Release"/>.</summary>
    public static string Create(string dir, string fileName)
    {
        SweepStale(dir, fileName);
        InstallHandlers();
        var temp = Path.Combine(dir, $".{fileName}.{Environment.ProcessId}.tmp");
        Open[temp] = 0;
        return temp;
    }

    /// <summary>The temporary file was renamed or deleted: nothing to clean up any more.</summary>
    public static void Release(string temp) => Open.TryRemove(temp, out _);

    /// <summary>Deletes the temporary file (if it is still there) and forgets it.</summary>
    public static void Discard(string temp)
    {
        try
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        Release(temp);
    }

    /// <summary>Removes ".<paramref name="fileName"/>.PID.tmp" files of processes that are gone.</summary>
    public static int SweepStale(string dir, string fileName)
    {
        int removed = 0;
        IEnumerable<string> candidates;
        try { candidates = Directory.EnumerateFiles(dir, $".{fileName}.*.tmp").ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
        foreach (var f in candidates)
        {
            var m = TempName().Match(Path.GetFileName(f));
            if (!m.Success || m.Groups[1].Value != fileName || !int.TryParse(m.Groups[2].Value, out var pid)) continue;
            if (pid == Environment.ProcessId || Alive(pid)) continue;
            try
            {
                File.Delete(f);
                removed++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return removed;
    }

    private static bool Alive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    private static void InstallHandlers()
    {
        lock (Gate)
        {
            if (Handlers.Count > 0 || OperatingSystem.IsWindows() || OperatingSystem.IsBrowser()) return;
            PosixSignal[] signals = [PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP, PosixSignal.SIGQUIT];
            foreach (var signal in signals)
                Handlers.Add(PosixSignalRegistration.Create(signal, _ => RemoveAll()));
        }
    }

    private static void RemoveAll()
    {
        foreach (var temp in Open.Keys) Discard(temp);
    }

    [GeneratedRegex(@"^\.(.+)\.(\d+)\.tmp$")]
    private static partial Regex TempName();
}
