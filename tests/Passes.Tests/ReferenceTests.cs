// The reference a budgeted search measures candidates against follows --metric: a score map by IoU above the
// threshold, a sequence by per-position agreement (not the cosine it used for every non-classifier).
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Tests;

public class ReferenceTests
{
    /// <summary>y = Sigmoid(x * scale): a score map [N, 1, 4, 4].</summary>
    private static Model Map(float scale)
    {
        var b = new GraphBuilder("map");
        var x = b.Input("x", DataType.Float, "N", 1, 4, 4);
        var y = b.Node("Sigmoid", [b.Node("Mul", [x, b.Initializer("s", [scale])])]);
        b.Output(y);
        return b.Build();
    }

    [Fact]
    public void AScoreMapCandidateIsMeasuredByIouUnderThatMetric()
    {
        var calib = CalibrationSource.FromRandom(8, 3);
        var spec = new MetricSpec(MetricKind.Iou) { Threshold = 0.6 };
        var reference = Reference.Capture(calib, Map(1), spec);
        Assert.Equal("iou_x100", reference.DropMetric);
        Assert.Equal(0, reference.Drop(reference.Measure(calib, Map(1))), 9);
        // A steeper sigmoid turns more elements on above 0.6: the IoU falls, cosine would barely move.
        var steeper = reference.Measure(calib, Map(3));
        var drop = reference.Drop(steeper);
        Assert.InRange(drop, 5, 95);
        var cosine = Reference.Capture(calib, Map(1));
        Assert.Equal("cosine_x100", cosine.DropMetric);
        Assert.True(cosine.Drop(cosine.Measure(calib, Map(3))) < drop);
    }
}
