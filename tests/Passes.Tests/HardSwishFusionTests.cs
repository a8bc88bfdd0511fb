// fuse-hardswish: every decomposed hard-swish exporters write becomes HardSwish at opset 14 and x * HardSigmoid(x)
// below, equal in ORT to the decomposed graph; what is not a hard-swish (other bounds or offsets, an inner value
// read elsewhere) is left, and x * HardSigmoid(x) below opset 14 is already the fused form.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests.Passes;

public class HardSwishFusionTests
{
    /// <summary>conv -> hard-swish (the named form) -> conv, at <paramref name="opset"/>.</summary>
    private static Model Block(string form, long opset, double offset = 3, double top = 6, bool leak = false)
    {
        var b = new GraphBuilder("hswish", opset);
        var x = b.Input("x", DataType.Float, "N", 3, 6, 6);
        var z = Conv(b, x, "c1", 1, 8, 3, 3, pad: 1, scale: 8);
        Value Clip(Value v) => opset < 11
            ? b.Node("Clip", [v], OnnxAttribute.Float("min", 0), OnnxAttribute.Float("max", (float)top))
            : b.Node("Clip", [v, b.Initializer("lo", [0f]), b.Initializer("hi", [(float)top])]);
        var shifted = form == "hardsigmoid" ? z : b.Node("Add", [z, b.Initializer("three", [(float)offset])]);
        var gate = form == "hardsigmoid" ? z : Clip(shifted);
        Value y = form switch
        {
            "div" => b.Node("Div", [b.Node("Mul", [z, gate]), b.Initializer("six", [6f])]),
            "sixth" => b.Node("Mul", [b.Initializer("sixth", [1f / 6]), b.Node("Mul", [gate, z])]),
            "gate-div" => b.Node("Mul", [z, b.Node("Div", [gate, b.Initializer("six", [6f])])]),
            "hardsigmoid" => b.Node("Mul", [z, b.Node("HardSigmoid", [z], OnnxAttribute.Float("alpha", 1f / 6),
                OnnxAttribute.Float("beta", 0.5f))]),
            _ => throw new ArgumentException(form),
        };
        var w = Conv(b, y, "c2", 2, 4, 8, 1);
        b.Output(leak ? b.Node("Add", [w, b.Node("ReduceMean", [shifted], OnnxAttribute.IntList("axes", 1))]) : w);
        return b.Build();
    }

    private static Value Conv(GraphBuilder b, Value x, string name, int seed, long cout, long cin, int k, int pad = 0,
        float scale = 0.5f) =>
        b.Node("Conv", [x, b.Initializer(name + ".w", Rand(seed, cout * cin * k * k, scale), cout, cin, k, k),
            W(b, name + ".b", seed + 100, cout)], OnnxAttribute.IntList("pads", pad, pad, pad, pad));

    [Theory]
    [InlineData("div", 14)]
    [InlineData("sixth", 14)]
    [InlineData("gate-div", 14)]
    [InlineData("hardsigmoid", 14)]
    [InlineData("div", 13)]
    [InlineData("sixth", 11)]
    [InlineData("gate-div", 9)]
    public void EveryFormFusesExactly(string form, long opset)
    {
        var m = Block(form, opset);
        var (after, runs) = Run(m, "fuse");
        Assert.Equal(1, Counter(runs, Counters.Fuse.HardSwishes));
        if (opset >= 14)
        {
            Assert.Equal(1, Count(after, "HardSwish"));
            Assert.Equal(["Conv", "HardSwish", "Conv"], after.Graph.Nodes.Select(n => n.OpType));
        }
        else
        {
            Assert.Equal(["Conv", "HardSigmoid", "Mul", "Conv"], after.Graph.Nodes.Select(n => n.OpType));
            // Fused once: the result is not matched again.
            Assert.Equal(0, Counter(Run(after, "fuse").Runs, Counters.Fuse.HardSwishes));
        }
        AssertEquivalent(m, after);
    }

    [Theory]
    [InlineData(2.5, 6.0, false)]
    [InlineData(3.0, 5.0, false)]
    [InlineData(3.0, 6.0, true)]
    public void WhatIsNotAHardSwishIsLeft(double offset, double top, bool leak)
    {
        var m = Block("div", 14, offset, top, leak);
        var (after, runs) = Run(m, "fuse");
        Assert.Equal(0, Counter(runs, Counters.Fuse.HardSwishes));
        Assert.Equal(m.Graph.Nodes.Select(n => n.OpType), after.Graph.Nodes.Select(n => n.OpType));
    }

    [Fact]
    public void BelowOpset14TheHardSigmoidFormIsAlreadyFused()
    {
        var m = Block("hardsigmoid", 13);
        var (after, runs) = Run(m, "fuse");
        Assert.Equal(0, Counter(runs, Counters.Fuse.HardSwishes));
        Assert.Equal(m.Graph.Nodes.Select(n => n.OpType), after.Graph.Nodes.Select(n => n.OpType));
    }
}
