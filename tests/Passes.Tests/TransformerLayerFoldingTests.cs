// Layer Folding for any activation: the trained slope y = act(z) + a (z - act(z)) on GELU (one op, or as exported
// with Erf or Tanh), SiLU and HardSwish; a linearized MLP folds into one matrix (x W1 + b1) W2 = x (W1 W2) + b1 W2.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class TransformerLayerFoldingTests
{
    /// <summary>x [N, 5, 8] -> MatMul + bias -> act -> MatMul + bias.</summary>
    private static Model Mlp(Func<GraphBuilder, Value, Value> act, long opset = 17)
    {
        var b = new GraphBuilder("mlp", opset);
        var x = b.Input("x", DataType.Float, "N", 5, 8);
        var h = b.Node("Add", [b.Node("MatMul", [x, W(b, "w1", 1, 8, 12)]), W(b, "b1", 2, 12)]);
        var y = b.Node("Add", [b.Node("MatMul", [act(b, h), W(b, "w2", 3, 12, 6)]), W(b, "b2", 4, 6)]);
        b.Output(y);
        return b.Build();
    }

    private static Value ErfGelu(GraphBuilder b, Value x)
    {
        var erf = b.Node("Erf", [b.Node("Div", [x, b.Initializer("sqrt2", [1.4142135f])])]);
        var half = b.Node("Mul", [x, b.Node("Add", [erf, b.Initializer("one", [1f])])]);
        return b.Node("Mul", [half, b.Initializer("half", [0.5f])]);
    }

    public static TheoryData<string> Kinds() => new("gelu-op", "gelu-erf", "silu", "hardswish");

    private static Model Kind(string kind) => kind switch
    {
        "gelu-op" => Mlp((b, h) => b.Node("Gelu", [h]), 20),
        "gelu-erf" => Mlp(ErfGelu),
        "silu" => Mlp((b, h) => b.Node("Mul", [h, b.Node("Sigmoid", [h])])),
        _ => Mlp((b, h) => b.Node("HardSwish", [h]), 14),
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void SmoothActivationsAreFoundWithTheirInputOnlyForTraining(string kind)
    {
        var m = Kind(kind);
        var site = Assert.Single(ActivationSite.Find(m.Graph, smooth: true, new PassContext(m)));
        Assert.Equal("Add", site.Z.Producer!.OpType);
        Assert.Equal("MatMul", Assert.Single(site.Y.Uses).Node.OpType);
        Assert.Empty(ActivationSite.Find(m.Graph, smooth: false, new PassContext(m)));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void TrainedSlopesLinearizeSmoothActivationsAndTheMlpFoldsExactly(string kind)
    {
        var m = Kind(kind);
        var calib = CalibrationSource.FromRandom(64, 3);
        // A budget no drop can exceed: the slopes train, the activation becomes the identity.
        var (linear, runs) = Run(m, "linearize{mode=train,max-agreement-drop=200,steps=60,finetune-steps=10,"
            + "batch=16,lambda=8,slope-init=0.5,slope-lr=0.05,mixup=0}", calib);
        Assert.Equal(1, Counter(runs, Counters.Linearize.Linearized));
        Assert.Equal(4, linear.Graph.Nodes.Count);
        var (folded, foldRuns) = Run(linear, "fold-conv,canonicalize");
        Assert.Equal(1, Counter(foldRuns, Counters.FoldConv.MatMulMatMul));
        Assert.Equal(1, folded.Graph.Nodes.Count(n => n.OpType == "MatMul"));
        AssertEquivalent(linear, folded);
    }

    [Fact]
    public void TrainedSlopesStopAtTheCallersDeadline()
    {
        // compress's --time-budget reaches the slope training and the fine-tunes (their own contexts).
        var m = Kind("gelu-erf").Clone();
        var ctx = PassContexts.Create(m, CalibrationSource.FromRandom(64, 3));
        ctx.Deadline = DateTime.UtcNow;
        var runs = PipelineRunner.Run(m, Pipeline.Parse("linearize{mode=train,max-agreement-drop=200,steps=500,"
            + "finetune-steps=500,batch=16,mixup=0}"), ctx);
        Assert.Contains(runs.SelectMany(r => r.Stats.Notes), n => n.StartsWith("linearize: slopes: stopped at the deadline after 1 of 500",
            StringComparison.Ordinal));
    }
}
