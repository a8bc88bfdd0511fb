// onnxopt as a .NET tool: `dotnet pack` makes the tool package (with ONNX Runtime's native library for
// linux-x64) and the library packages (with XML docs and the README); the tool installs into a temporary
// tool path from that folder and runs --version, inspect and quantize on a shipped model. Packing builds
// into its own artifacts folder, so it never touches the binaries other tests are running.
using System.Diagnostics;
using System.IO.Compression;

namespace OnnxOpt.Tests;

public class ToolPackageTests
{
    [Fact]
    public void TheToolPackageInstallsAndRuns()
    {
        var root = Paths.RepoRoot();
        var tmp = Paths.TempDir();
        var feed = Path.Combine(tmp, "feed");
        var pack = Cli.Exec("dotnet", root, "pack", "OnnxOpt.sln", "-c", "Release", "-o", feed,
            "--artifacts-path", Path.Combine(tmp, "artifacts"));
        Assert.True(pack.Code == 0, pack.Out + pack.Err);
        // The tool carries the native library; every library package has its XML docs and README.
        using (var tool = ZipFile.OpenRead(Path.Combine(feed, "onnxopt.linux-x64.0.15.0.nupkg")))
            Assert.Contains(tool.Entries, e => e.FullName.EndsWith("linux-x64/libonnxruntime.so"));
        foreach (var lib in new[] { "GraphIR", "Data", "Runtime", "Calibration", "Autodiff", "Training", "Passes" })
        {
            using var z = ZipFile.OpenRead(Path.Combine(feed, $"OnnxOpt.{lib}.0.15.0.nupkg"));
            Assert.Contains(z.Entries, e => e.FullName == $"lib/net10.0/OnnxOpt.{lib}.xml");
            Assert.Contains(z.Entries, e => e.FullName == "README.md");
        }
        Assert.False(File.Exists(Path.Combine(feed, "onnxopt-bench.1.0.0.nupkg")));

        var tools = Path.Combine(tmp, "tools");
        var install = Cli.Exec("dotnet", tmp, "tool", "install", "onnxopt", "--tool-path", tools, "--add-source", feed,
            "--version", "0.15.0");
        Assert.True(install.Code == 0, install.Out + install.Err);
        var exe = Path.Combine(tools, "onnxopt");
        var version = Cli.Exec(exe, tmp, "--version");
        Assert.Equal(0, version.Code);
        Assert.Matches(@"^onnxopt 0\.15\.0\S*, ONNX Runtime 1\.30\.\d+", version.Out.Trim());
        var model = Path.Combine(Paths.TestModels, "digits", "vgg.onnx");
        var inspect = Cli.Exec(exe, tmp, "inspect", model);
        Assert.True(inspect.Code == 0, inspect.Err);
        Assert.Contains("parameters:", inspect.Out);
        var q = Cli.Exec(exe, tmp, "quantize", model, "-o", Path.Combine(tmp, "q.onnx"), "--calib",
            Path.Combine(Paths.TestModels, "digits", "data", "calib"));
        Assert.True(q.Code == 0, q.Err);
        Assert.True(File.Exists(Path.Combine(tmp, "q.onnx")));
    }
}
