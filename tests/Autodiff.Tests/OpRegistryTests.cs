// The op registry is complete: every op with an evaluator kernel has an OpCases row (so its forward is
// checked against ORT and its VJP by finite differences) and a registry entry with a shape function; every
// entry with traits, a MAC count or a channel mapping has a shape function; kernels are found through the
// registry; a user's op registered at run time is inferred and evaluated like a shipped one.
using OnnxOpt.Autodiff;
using OnnxOpt.Autodiff.Ops;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class OpRegistryTests
{
    [Fact]
    public void EveryKernelHasAnOpCasesRowAndAShapeFunction()
    {
        var covered = OpCases.All.Values.SelectMany(make => make().Graph.Nodes).Select(n => n.OpType)
            .ToHashSet(StringComparer.Ordinal);
        var noCase = Kernels<float>.OpTypes.Where(op => !covered.Contains(op)).Order(StringComparer.Ordinal).ToList();
        Assert.True(noCase.Count == 0, "kernels without an OpCases row: " + string.Join(", ", noCase));
        var noShape = Kernels<float>.OpTypes.Where(op => OpRegistry.Find("", op)?.Infer is null)
            .Order(StringComparer.Ordinal).ToList();
        Assert.True(noShape.Count == 0, "kernels without a shape function: " + string.Join(", ", noShape));
    }

    [Fact]
    public void EveryEntryThatDeclaresSomethingCanBeInferred()
    {
        var missing = OpRegistry.All.Where(o => o.Infer is null
                && (o.Traits != OpTrait.None || o.Channels != ChannelMapping.Unknown || o.Quant != QuantClass.None))
            .Select(o => o.ToString()).ToList();
        Assert.True(missing.Count == 0, "entries with traits but no shape function: " + string.Join(", ", missing));
        Assert.All(OpRegistry.All.Where(o => o.Macs is not null), o => Assert.NotNull(o.Infer));
    }

    [Fact]
    public void KernelsAreAttachedToTheirRegistryEntries()
    {
        var relu = new GraphBuilder("r");
        relu.Output(relu.Node("Relu", [relu.Input("x", DataType.Float, 2)]));
        var n = relu.Build().Graph.Nodes[0];
        Assert.Same(Kernels<double>.Find(n), OpRegistry.Find("", "Relu")!.Get<EvaluatorKernel<double>>()!.Op);
        Assert.NotNull(Kernels<float>.Find(n));
    }

    /// <summary>y = x * sigmoid(x) as a user op of another domain.</summary>
    private sealed class SwishKernel : IOp<double>
    {
        public NdArray<double>[] Forward(OpCall<double> c)
        {
            var x = c.In(0);
            return [new NdArray<double>(x.Shape, x.R.Select(v => v / (1 + Math.Exp(-v))).ToArray())];
        }

        public NdArray<double>?[] Backward(OpCall<double> c, NdArray<double>?[] g, bool[] needed)
        {
            var x = c.In(0);
            var dy = g[0]!;
            var dx = x.R.Select((v, i) =>
            {
                var s = 1 / (1 + Math.Exp(-v));
                return dy.R[i] * (s + v * s * (1 - s));
            }).ToArray();
            return [new NdArray<double>(x.Shape, dx)];
        }
    }

    [Fact]
    public void AUserOpIsInferredEvaluatedAndDifferentiated()
    {
        var info = new OpInfo("Swish", "com.example")
        {
            Traits = OpTrait.ElementWise | OpTrait.NonLinear,
            Infer = (n, c) => [c.SameAsInput(n)],
            Channels = ChannelMapping.ElementWise,
        };
        info.Attach(new EvaluatorKernel<double>(new SwishKernel()));
        OpRegistry.Register(info);

        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13, "com.example" : 1]>
            g (float[N,3] x) => (y)
            {
               h = com.example.Swish (x)
               y = Relu (h)
            }
            """);
        ShapeInference.Run(m);
        Assert.Equal("float[N,3]", ModelStats.TypeText(m.Graph.Outputs[0].Type));
        Assert.Equal(2, ModelStats.Compute(m).NonLinearDepth);

        var ev = new Evaluator<double>(m);
        var x = new NdArray<double>([1, 3], [-1.0, 0.5, 2.0]);
        var t = ev.Forward(new Dictionary<string, NdArray<double>> { ["x"] = x });
        Assert.Equal(2.0 / (1 + Math.Exp(-2.0)), t["y"].R[2], 12);
        var grads = ev.Backward(t, new Dictionary<string, NdArray<double>> { ["y"] = new([1, 3], [1.0, 1.0, 1.0]) },
            ["x"]);
        var s2 = 1 / (1 + Math.Exp(-2.0));
        Assert.Equal(s2 + 2.0 * s2 * (1 - s2), grads["x"].R[2], 12);
    }
}
