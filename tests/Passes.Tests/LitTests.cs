// Text in, pipeline, text out (MLIR's lit tests, for ONNX): each tests/lit/*.onnxtxt file holds
//   # a line saying what the case shows
//   # RUN: <pipeline string>
//   <the input model in ONNX text syntax>
//   # ---- expected
//   <the model after the pipeline, as `onnxopt dump --full` prints it>
// The pipeline runs with the verifier after every pass; when every pass in it is exact, the result must
// also match the input in ONNX Runtime. ONNXOPT_UPDATE_GOLDEN=1 rewrites the expected part (review the diff).
// A rule test is a file of a few lines; adding one needs no C#.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class LitTests
{
    private const string Separator = "# ---- expected";
    private static string LitDir => Path.Combine(Paths.RepoRoot(), "tests", "lit");

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(LitDir, "*.onnxtxt").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TextInPipelineTextOut(string file)
    {
        var path = Path.Combine(LitDir, file);
        var text = File.ReadAllText(path).ReplaceLineEndings("\n");
        var sep = text.IndexOf(Separator, StringComparison.Ordinal);
        var head = sep < 0 ? text : text[..sep];
        var lines = head.Split('\n');
        var run = lines.FirstOrDefault(l => l.StartsWith("# RUN:", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"{file}: no '# RUN: <pipeline>' line");
        var pipeline = Pipeline.Parse(run["# RUN:".Length..].Trim());
        var input = TextParser.ParseModel(string.Join('\n', lines.Where(l => !l.StartsWith('#'))));

        var after = input.Clone();
        PipelineRunner.Run(after, pipeline, new PassContext(after), verifyEach: true);
        var actual = TextPrinter.Print(after, TextOptions.Full);

        if (Environment.GetEnvironmentVariable("ONNXOPT_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(path, head.TrimEnd('\n') + "\n" + Separator + "\n" + actual);
            return;
        }
        Assert.True(sep >= 0, $"{file}: no '{Separator}' part; run with ONNXOPT_UPDATE_GOLDEN=1 to write it");
        Assert.Equal(text[(sep + Separator.Length + 1)..], actual);
        // The expected text is itself a model that parses back (what the printer writes, the parser reads).
        Assert.Equal(actual, TextPrinter.Print(TextParser.ParseModel(actual), TextOptions.Full));
        if (pipeline.Steps.All(s => s.Pass.IsExact(s.Options))) AssertEquivalent(input, after);
    }

    [Fact]
    public void EveryCaseNamesItsPipelineAndSaysWhatItShows()
    {
        foreach (var f in Directory.GetFiles(LitDir, "*.onnxtxt"))
        {
            var lines = File.ReadAllLines(f);
            Assert.True(lines.Length > 2 && lines[0].StartsWith("# ", StringComparison.Ordinal)
                && !lines[0].StartsWith("# RUN:", StringComparison.Ordinal), $"{f}: first line says what it shows");
            Assert.Contains(lines, l => l.StartsWith("# RUN: ", StringComparison.Ordinal));
        }
    }
}
