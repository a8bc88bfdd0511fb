// The reference evaluator against ONNX Runtime (forward, float32 and float64, every op case and every
// test model) and every vector-Jacobian product against central finite differences in float64.
using OnnxOpt.Autodiff;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Data;

namespace OnnxOpt.Tests;

public class EvaluatorTests
{
    public static TheoryData<string> Cases() => new(OpCases.All.Keys.Order(StringComparer.Ordinal));

    /// <summary>The cases whose VJP is the exact derivative (Q/DQ's straight-through estimator is not: its own test
    /// checks it, QuantizationAwareTests).</summary>
    public static TheoryData<string> GradientCases() => new(OpCases.All.Keys.Where(k => !k.StartsWith("qdq-"))
        .Order(StringComparer.Ordinal));

    public static TheoryData<string> TestModels() => new(
        Directory.GetFiles(Path.Combine(Paths.TestModels, "digits"), "*.onnx")
            .Concat(Directory.GetFiles(Path.Combine(Paths.TestModels, "ops"), "*.onnx"))
            .Select(f => Path.GetRelativePath(Paths.TestModels, f)).Order(StringComparer.Ordinal));

    private static readonly SessionSettings Plain = new() { Optimization = GraphOptimization.Disabled };

    /// <summary>ORT's outputs and ours on the same seeded inputs; element fails if |a-b| > 1e-4 |a| + 1e-5 max(1, max|a|).</summary>
    private static void AssertMatchesOrt(Model m, long batch = 2)
    {
        using var s = InferenceSession.FromModel(m, Plain);
        var feed = DataSet.Random(s.Inputs, 1, 7, new Dictionary<string, long> { ["N"] = batch }).Batches().Single().Inputs;
        var want = s.Run(feed);
        var f32 = new Evaluator<float>(m).Forward(feed.ToDictionary(kv => kv.Key, kv => NdArray<float>.FromTensor(kv.Value))).Outputs;
        var f64 = new Evaluator<double>(m).Forward(feed.ToDictionary(kv => kv.Key, kv => NdArray<double>.FromTensor(kv.Value))).Outputs;
        for (int k = 0; k < want.Length; k++)
        {
            var name = s.Outputs[k].Name;
            var a = want[k].ToDoubleArray();
            Assert.Equal(want[k].Dims, f32[k].Shape.Select(d => (long)d).ToArray());
            Assert.Equal(want[k].Dims, f64[k].Shape.Select(d => (long)d).ToArray());
            double scale = Math.Max(1, a.Select(Math.Abs).DefaultIfEmpty(0).Max());
            foreach (var (ours, label) in new (Func<int, double>, string)[] { (f32[k].ToDouble, "float32"), (f64[k].ToDouble, "float64") })
                for (int i = 0; i < a.Length; i++)
                {
                    var b = ours(i);
                    Assert.True(Math.Abs(a[i] - b) <= 1e-4 * Math.Abs(a[i]) + 1e-5 * scale,
                        $"{label} output '{name}' element {i}: ours {b}, ORT {a[i]}");
                }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ForwardMatchesOrt(string name) => AssertMatchesOrt(OpCases.All[name]());

    [Theory]
    [MemberData(nameof(TestModels))]
    public void TestModelsForwardMatchesOrt(string rel) => AssertMatchesOrt(OnnxImporter.Load(Path.Combine(Paths.TestModels, rel)));

    [Theory]
    [MemberData(nameof(GradientCases))]
    public void VjpMatchesFiniteDifferences(string name)
    {
        var m = OpCases.All[name]();
        var ev = new Evaluator<double>(m);
        var g = m.Graph;
        var rng = new SplitMix64(17);
        var inputs = g.Inputs.Where(i => !i.IsInitializer).ToDictionary(i => i.Name, i =>
        {
            var shape = i.Shape!.ToArray().Select(d => (int)d).ToArray();
            return new NdArray<double>(shape, Enumerable.Range(0, NdArray<double>.Size(shape)).Select(_ => rng.NextGaussian()).ToArray());
        });
        // Resize's scales choose the output size: a step function, not a differentiable parameter.
        var wrt = g.Inputs.Where(i => i.ElementType == DataType.Float).Select(i => i.Name)
            .Concat(g.Initializers.Where(v => v.Initializer!.ElementType == DataType.Float
                && !v.Uses.All(u => u.Node.OpType == "Resize" && u.InputIndex == 2)).Select(v => v.Name)).ToList();
        var trace = ev.Forward(inputs);
        // R = sum over outputs of <output, r> with fixed random r.
        var seeds = g.Outputs.Where(o => !trace[o.Name].IsInt).ToDictionary(o => o.Name, o =>
        {
            var shape = trace[o.Name].Shape;
            return new NdArray<double>(shape, Enumerable.Range(0, NdArray<double>.Size(shape)).Select(_ => rng.NextGaussian()).ToArray());
        });
        double R(IReadOnlyDictionary<string, NdArray<double>> ins, IReadOnlyDictionary<string, NdArray<double>>? over)
        {
            var t = ev.Forward(ins, over);
            return seeds.Sum(kv => t[kv.Key].R.Zip(kv.Value.R, (a, b) => a * b).Sum());
        }
        var grads = ev.Backward(trace, seeds, wrt);
        const double h = 1e-6;
        int checkedCount = 0;
        foreach (var w in wrt)
        {
            var isInput = inputs.ContainsKey(w);
            var baseArr = isInput ? inputs[w] : ev.Initializer(g.Find(w)!);
            var n = baseArr.Length;
            foreach (var i in Enumerable.Range(0, Math.Min(n, 12)).Select(j => (int)((long)j * n / Math.Min(n, 12))))
            {
                double Eval(double delta)
                {
                    var copy = (double[])baseArr.R.Clone();
                    copy[i] += delta;
                    var arr = new NdArray<double>(baseArr.Shape, copy);
                    return isInput ? R(new Dictionary<string, NdArray<double>>(inputs) { [w] = arr }, null)
                        : R(inputs, new Dictionary<string, NdArray<double>> { [w] = arr });
                }
                var numeric = (Eval(h) - Eval(-h)) / (2 * h);
                var analytic = grads[w].R[i];
                Assert.True(Math.Abs(numeric - analytic) <= 1e-6 + 1e-5 * Math.Abs(numeric),
                    $"d/d {w}[{i}]: analytic {analytic}, finite difference {numeric}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount > 0);
    }

    [Fact]
    public void UnsupportedOpsAreNamedWithTheNode()
    {
        var b = new GraphBuilder("u");
        var x = b.Input("x", DataType.Float, 2, 3);
        b.Output(b.Node("Hardmax", [x]));
        var e = Assert.Throws<OnnxModelException>(() => new Evaluator<double>(b.Build()));
        Assert.Contains("Hardmax", e.Message);
        Assert.Contains("Hardmax_0", e.Message);
    }
}
