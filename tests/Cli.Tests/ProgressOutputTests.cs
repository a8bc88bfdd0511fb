// Progress and verbosity: the renderer's lines (rate, ETA, throttling, an end newline) on a fake clock;
// redirected stderr gets no progress unless --verbose (then plain lines); --quiet keeps only errors and
// refusals; summaries are unchanged otherwise.
using OnnxOpt.Cli;

namespace OnnxOpt.Tests;

public class ProgressOutputTests
{
    [Fact]
    public void ATerminalGetsOneRewrittenLineWithRateAndEta()
    {
        double now = 0;
        var w = new StringWriter();
        var r = new ProgressRenderer(w, terminal: true, () => now);
        r.Report("calibration", 0, 100);
        now = 0.05;
        r.Report("calibration", 10, 100); // within 0.1 s of the last draw: skipped
        now = 2;
        r.Report("calibration", 50, 100);
        now = 4;
        r.Report("calibration", 100, 100);
        var text = w.ToString();
        Assert.Equal(3, text.Count(ch => ch == '\r'));
        Assert.Contains("\rcalibration  50/100  25/s  ETA 2s", text);
        Assert.EndsWith("calibration  100/100  25/s  4s\u001b[K" + Environment.NewLine, text);
        Assert.DoesNotContain("10/100", text);
    }

    [Fact]
    public void RedirectedVerboseProgressIsPlainLinesEveryTenthAndAtTheEnd()
    {
        double now = 0;
        var w = new StringWriter();
        var r = new ProgressRenderer(w, terminal: false, () => now);
        for (int i = 0; i <= 1000; i++) { now = i / 100.0; r.Report("training steps", i, 1000); }
        var lines = w.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(11, lines.Length);
        Assert.DoesNotContain('\r', w.ToString());
        Assert.StartsWith("training steps  1000/1000  100/s  10s", lines[^1]);
        Assert.Equal("1m05s", ProgressRenderer.Duration(65));
    }

    private static string[] Quantize(string dir, params string[] extra) =>
    [
        "quantize", Paths.Model("digits/vgg.onnx"), "-o", Path.Combine(dir, "q.onnx"),
        "--calib", Paths.Model("digits/data/calib"), .. extra,
    ];

    [Fact]
    public void RedirectedOutputHasNoProgressUnlessVerbose()
    {
        var dir = Paths.TempDir();
        var plain = Cli.Run(Quantize(dir));
        Assert.True(plain.ExitCode == 0, plain.Err);
        Assert.DoesNotContain('\r', plain.Err);
        Assert.DoesNotContain("quantize: calibration", plain.Err);
        Assert.StartsWith("pipeline canonicalize", plain.Err);
        var verbose = Cli.Run(Quantize(dir, "--verbose"));
        Assert.True(verbose.ExitCode == 0, verbose.Err);
        Assert.Contains("quantize: calibration  200/200", verbose.Err);
        Assert.Contains("pass quantize{", verbose.Err);
        Assert.DoesNotContain('\r', verbose.Err);
    }

    [Fact]
    public void QuietKeepsOnlyErrorsAndRefusals()
    {
        var dir = Paths.TempDir();
        var ok = Cli.Run(Quantize(dir, "--quiet"));
        Assert.Equal(0, ok.ExitCode);
        Assert.Equal("", ok.Err);
        Assert.True(File.Exists(Path.Combine(dir, "q.onnx")));
        // A refused result still says why (exit 1), and a user error still prints its line (exit 2).
        var refused = Cli.Run("optimize", Paths.Model("digits/mobilenetv2.onnx"), "-o", Path.Combine(dir, "l.onnx"),
            "--passes", "linearize{max-agreement-drop=5}", "--calib", Paths.Model("digits/data/calib"),
            "--eval", Paths.Model("digits/data/test"), "--max-agreement-drop", "0", "-q");
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("onnxopt: validation failed", refused.Err);
        Assert.Single(refused.Err.Trim().Split('\n'));
        var bad = Cli.Run("inspect", Path.Combine(dir, "missing.onnx"), "--quiet");
        Assert.Equal(2, bad.ExitCode);
        Assert.StartsWith("onnxopt: error:", bad.Err);
        Assert.Equal(2, Cli.Run("inspect", Paths.Model("digits/vgg.onnx"), "-q", "-v").ExitCode);
    }
}
