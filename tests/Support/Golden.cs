// Golden-file assertions: compare text with tests/golden/<name>; with ONNXOPT_UPDATE_GOLDEN=1 the
// file is (re)written instead, so an intended change is one command and one reviewed diff.
using System.Runtime.CompilerServices;

namespace OnnxOpt.Tests;

public static class Golden
{
    public static string Dir([CallerFilePath] string here = "") => Path.Combine(Path.GetDirectoryName(here)!, "..", "golden");

    public static void Assert(string name, string actual)
    {
        var path = Path.GetFullPath(Path.Combine(Dir(), name));
        actual = actual.ReplaceLineEndings("\n");
        if (Environment.GetEnvironmentVariable("ONNXOPT_UPDATE_GOLDEN") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, actual);
            return;
        }
        if (!File.Exists(path))
            throw new Xunit.Sdk.XunitException($"golden file {path} is missing; run with ONNXOPT_UPDATE_GOLDEN=1 to create it");
        var expected = File.ReadAllText(path).ReplaceLineEndings("\n");
        if (expected == actual) return;
        var e = expected.Split('\n'); var a = actual.Split('\n');
        var i = 0;
        while (i < e.Length && i < a.Length && e[i] == a[i]) i++;
        throw new Xunit.Sdk.XunitException(
            $"golden {name} differs at line {i + 1}:\n expected: {(i < e.Length ? e[i] : "<end>")}\n   actual: {(i < a.Length ? a[i] : "<end>")}\n(set ONNXOPT_UPDATE_GOLDEN=1 to accept)");
    }
}

public static class Paths
{
    public static string RepoRoot([CallerFilePath] string here = "") => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", ".."));
    public static string TestModels => Path.Combine(RepoRoot(), "testmodels");

    /// <summary>A file or folder under testmodels/.</summary>
    public static string Model(string rel) => Path.Combine(TestModels, rel);
    public const string OnnxTestData = "/usr/share/libonnx-testdata/data";

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "onnxopt-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
