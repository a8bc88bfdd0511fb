// Debian's chromium, run headless from tests: the rendered DOM of a page, its console messages, a screenshot.
// Tests that need it are skipped (with the reason) when it is not installed; scripts/test.sh installs it.
using System.Diagnostics;

namespace OnnxOpt.Tests;

public static class Browser
{
    public static string? Path => new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }
        .FirstOrDefault(File.Exists);

    /// <summary>Runs chromium headless on a file; returns (stdout, stderr).</summary>
    public static (string Out, string Err) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(Path ?? throw new InvalidOperationException("chromium is not installed"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            $"--user-data-dir={System.IO.Path.Combine(System.IO.Path.GetTempPath(), "onnxopt-chromium-" + Environment.ProcessId)}" })
            psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("file://" + System.IO.Path.GetFullPath(file));
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var outText = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("chromium did not finish in 2 minutes"); }
        return (outText, err.Result);
    }
}

/// <summary>A fact skipped (with the reason) when no chromium is installed.</summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (Browser.Path is null) Skip = "chromium not installed (apt-get install chromium)";
    }
}
