// Helpers for pass tests: run a pipeline with the verifier after every pass, check ORT equivalence
// of before/after on seeded random inputs, count op types, build random weights.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Data;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Tests;

public static class PassTestKit
{
    public static (Model After, List<PassRun> Runs) Run(Model m, string pipeline, CalibrationSource? calib = null)
    {
        var copy = m.Clone();
        var runs = PipelineRunner.Run(copy, Pipeline.Parse(pipeline), PassContexts.Create(copy, calib), verifyEach: true);
        return (copy, runs);
    }

    /// <summary>Before and after give the same outputs in ORT (rtol 1e-4, atol 1e-5) on seeded random inputs.</summary>
    public static ValidationReport AssertEquivalent(Model before, Model after, int samples = 4, long batch = 2)
    {
        var settings = new SessionSettings { Optimization = GraphOptimization.Disabled };
        using var a = InferenceSession.FromModel(before, settings);
        using var b = InferenceSession.FromModel(after, settings);
        var report = Validator.Compare(a, b, DataSet.Random(a.Inputs, samples, 11, new Dictionary<string, long> { ["N"] = batch }));
        Assert.True(report.Passed, string.Join("; ", report.Outputs.Select(o => $"{o.Name}: max abs {o.MaxAbsError}, failures {o.Failures} {o.Problem}")));
        return report;
    }

    public static int Count(Model m, string op) => m.Graph.Nodes.Count(n => n.OpType == op);

    public static float[] Rand(int seed, long n, float scale = 0.5f)
    {
        var r = new SplitMix64((ulong)seed);
        return Enumerable.Range(0, (int)n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();
    }

    public static Value W(GraphBuilder b, string name, int seed, params long[] dims) =>
        b.Initializer(name, Rand(seed, dims.Aggregate(1L, (x, y) => x * y)), dims);

    public static Value Conv(GraphBuilder b, Value x, string name, int seed, long cout, long cinPerGroup, int k,
        int stride = 1, int pad = 0, int dil = 1, int group = 1, bool bias = true)
    {
        var inputs = new List<Value?> { x, W(b, name + ".w", seed, cout, cinPerGroup, k, k) };
        if (bias) inputs.Add(W(b, name + ".b", seed + 1000, cout));
        return b.Node("Conv", inputs, OnnxAttribute.IntList("kernel_shape", k, k), OnnxAttribute.IntList("strides", stride, stride),
            OnnxAttribute.IntList("pads", pad, pad, pad, pad), OnnxAttribute.IntList("dilations", dil, dil), OnnxAttribute.Int("group", group));
    }

    public static long Counter(List<PassRun> runs, CounterKey key) => runs.Sum(r => r.Stats[key]);
}
