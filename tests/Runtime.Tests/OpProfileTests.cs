// bench --profile: ORT's profiler trace read back as time per op type (the warm-up runs left out), on a real
// session over the digits ResNet and on a hand-written trace whose sums are known.
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Tests;

public class OpProfileTests
{
    [Fact]
    public void AProfiledBenchReportsEveryOpTypeOfTheRunGraph()
    {
        var model = OnnxImporter.Load(Paths.Model("digits/resnet.onnx"));
        var bytes = OnnxExporter.ToBytes(model);
        var o = new BenchOptions { Warmup = 2, Iterations = 5, Optimization = GraphOptimization.Disabled, Profile = true };
        static string[] Traces() => Directory.GetFiles(Environment.CurrentDirectory, "onnxruntime_profile*");
        var before = Traces();
        var r = Benchmark.Run(bytes, bytes, o);
        Assert.Equal(before, Traces()); // the traces went to a temporary folder, now deleted
        foreach (var p in new[] { r.ModelProfile!, r.OtherProfile! })
        {
            Assert.Equal(5, p.Runs);
            // With ORT's rewrites off, the op types and node counts are the model's own.
            var expected = model.Graph.Nodes.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal(expected.Keys.Order(), p.Ops.Select(t => t.OpType).Order());
            foreach (var t in p.Ops) Assert.Equal(expected[t.OpType], t.Nodes);
            Assert.Equal(1, p.Ops.Sum(t => t.Share), 6);
            Assert.True(p.KernelMs > 0 && p.KernelMs <= p.RunMs * 1.01, $"{p.KernelMs} of {p.RunMs}");
            Assert.Equal(p.Ops.OrderByDescending(t => t.MsPerRun).Select(t => t.OpType), p.Ops.Select(t => t.OpType));
        }
        Assert.Null(Benchmark.Run(bytes, null, o with { Profile = false }).ModelProfile);
    }

    [Fact]
    public void WarmUpRunsAndTheirKernelsAreLeftOut()
    {
        static string Kernel(string node, string op, double ts, double dur) =>
            $$$"""{"cat":"Node","name":"{{{node}}}_kernel_time","ts":{{{ts}}},"dur":{{{dur}}},"args":{"op_name":"{{{op}}}"}}""";
        static string Run(double ts, double dur) => $$"""{"cat":"Session","name":"model_run","ts":{{ts}},"dur":{{dur}}}""";
        var events = new[]
        {
            Kernel("a", "MatMul", 1, 900), Kernel("b", "Relu", 2, 900), Run(0, 2000),       // warm-up, left out
            Kernel("a", "MatMul", 3001, 300), Kernel("b", "Relu", 3302, 100), Run(3000, 500),
            Kernel("a", "MatMul", 4001, 500), Kernel("b", "Relu", 4502, 100), Kernel("c", "Relu", 4603, 200),
            Run(4000, 1000),
            """{"cat":"Node","name":"a_fence_before","ts":4000,"dur":7,"args":{"op_name":"MatMul"}}""",
        };
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "[" + string.Join(",\n", events) + "]");
            var p = OpProfile.Read(file, skipRuns: 1);
            Assert.Equal(2, p.Runs);
            Assert.Equal(0.75, p.RunMs, 9);
            Assert.Equal(["MatMul", "Relu"], p.Ops.Select(t => t.OpType));
            Assert.Equal(0.4, p.Ops[0].MsPerRun, 9);
            Assert.Equal(0.2, p.Ops[1].MsPerRun, 9);
            Assert.Equal(2, p.Ops[1].Nodes);
            Assert.Equal(2.0 / 3, p.Ops[0].Share, 9);
            Assert.Equal(3, OpProfile.Read(file).Runs);
        }
        finally { File.Delete(file); }
    }
}
