// The budget's measure: chosen from the output's shape (a sentence encoder's hidden states pooled over the
// attention mask, a classifier's top-1 agreement or accuracy), or as asked, and refused when it cannot apply.
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Tests;

public class FidelityMetricTests
{
    /// <summary>A runner that answers every input with a fixed output.</summary>
    private sealed class Fixed(Tensor output) : IModelRunner
    {
        public IReadOnlyList<IoInfo> Inputs { get; } = [new("x", DataType.Float, new Shape([Dim.Of(1)]))];
        public IReadOnlyList<IoInfo> Outputs { get; } =
            [new(output.Name, output.ElementType, new Shape(output.Dims.Select(Dim.Of)))];
        public Tensor[] Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string>? outputNames = null) =>
            [output];
        public void Dispose() { }
    }

    private static ValidationReport Compare(Tensor a, Tensor b, MetricSpec spec) => Validator.Compare(new Fixed(a),
        new Fixed(b), DataSet.FromTensors(new Dictionary<string, Tensor> { ["x"] = Tensor.FromFloats("x", [1], [0f]) }),
        new ValidationOptions { Metric = spec });

    [Fact]
    public void AScoreMapIsJudgedByTheIouOfItsElementsAboveTheThreshold()
    {
        Assert.Equal((MetricKind.Iou, 0.3), MetricSpec.Parse("iou:0.3"));
        Assert.Equal((MetricKind.Iou, 0.5), MetricSpec.Parse("IoU"));
        Assert.Contains("iou:THRESHOLD", Assert.Throws<OnnxModelException>(() => MetricSpec.Parse("iou:x")).Message);
        // Above 0.3: reference {0, 1, 2}, candidate {1, 2, 3}: IoU 2 / 4.
        var a = Tensor.FromFloats("map", [1, 1, 2, 3], [0.9f, 0.8f, 0.31f, 0.1f, 0.2f, 0f]);
        var b = Tensor.FromFloats("map", [1, 1, 2, 3], [0.2f, 0.7f, 0.5f, 0.4f, 0.29f, 0f]);
        var r = Compare(a, b, new MetricSpec(MetricKind.Iou) { Threshold = 0.3 });
        Assert.Equal(0.5, r.Primary!.Value, 1e-12);
        Assert.Equal(50, r.Primary.DropPoints, 1e-9);
        Assert.Equal("IoU above 0.3 of map", r.Primary.Metric.Description);
        Assert.Equal(DropMetric.Iou, Fidelity.DropOf(r).Metric);
        // Two maps empty at the threshold are the same map.
        Assert.Equal(1, Compare(a, b, new MetricSpec(MetricKind.Iou) { Threshold = 0.95 }).Primary!.Value);
    }

    [Fact]
    public void ASequenceOutputIsJudgedByItsPerPositionArgmaxAgreement()
    {
        // [batch 1, positions 4, classes 3]: positions 0, 1 and 3 agree.
        var a = Tensor.FromFloats("probs", [1, 4, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5f, 0.4f, 0.1f]);
        var b = Tensor.FromFloats("probs", [1, 4, 3], [0.9f, 0, 0, 0, 0.8f, 0.1f, 0.7f, 0, 0.2f, 0.6f, 0.3f, 0.1f]);
        var r = Compare(a, b, new MetricSpec(MetricKind.Agreement));
        Assert.Equal(75, r.Primary!.Value, 1e-9);
        Assert.Equal("per-position agreement of probs", r.Primary.Metric.Description);
        Assert.Equal(DropMetric.PositionAgreement, Fidelity.DropOf(r).Metric);
    }

    private static (IReadOnlyList<IoInfo> Outputs, IReadOnlyList<IoInfo> Inputs) Io(string rel)
    {
        var g = OnnxImporter.Load(Paths.Model(rel)).Graph;
        return (IoInfo.OutputsOf(g), IoInfo.InputsOf(g));
    }

    [Fact]
    public void ASentenceEncoderIsScoredOnItsMaskedMeanPooledHiddenStates()
    {
        var (o, i) = Io("transformers/bert_op13.onnx");
        var m = ResolvedMetric.Resolve(MetricSpec.Default, o, i, hasLabels: false);
        Assert.Equal((MetricKind.Cosine, "last_hidden_state", "attention_mask"), (m.Kind, m.Output, m.MaskInput));
        Assert.Equal("cosine of the mean-pooled last_hidden_state (masked by attention_mask)", m.Description);
        m = ResolvedMetric.Resolve(new MetricSpec(MetricKind.Agreement), o, i, false);
        Assert.Equal("neighbour agreement", m.Name);
        m = ResolvedMetric.Resolve(new MetricSpec(Pool: Pooling.None), o, i, false);
        Assert.False(m.Pooled);
        Assert.Equal(MetricKind.Cosine, m.Kind);
    }

    [Fact]
    public void AClassifierGetsAccuracyWithLabelsAndAgreementWithout()
    {
        var (o, i) = Io("digits/resnet.onnx");
        Assert.Equal(MetricKind.Accuracy, ResolvedMetric.Resolve(MetricSpec.Default, o, i, true).Kind);
        Assert.Equal(MetricKind.Agreement, ResolvedMetric.Resolve(MetricSpec.Default, o, i, false).Kind);
        Assert.Equal(MetricKind.Sqnr, ResolvedMetric.Resolve(new MetricSpec(MetricKind.Sqnr), o, i, false).Kind);
    }

    [Fact]
    public void MeasuresThatCannotApplyAreRefusedWithTheReason()
    {
        var (o, i) = Io("digits/resnet.onnx");
        Assert.Contains("is not [batch, sequence, hidden]", Assert.Throws<OnnxModelException>(() =>
            ResolvedMetric.Resolve(new MetricSpec(Pool: Pooling.Mean), o, i, false)).Message);
        Assert.Contains("needs labels", Assert.Throws<OnnxModelException>(() =>
            ResolvedMetric.Resolve(new MetricSpec(MetricKind.Accuracy), o, i, false)).Message);
        var (bo, bi) = Io("transformers/bert_op13.onnx");
        Assert.Contains("no output 'logits'", Assert.Throws<OnnxModelException>(() =>
            ResolvedMetric.Resolve(new MetricSpec(Output: "logits"), bo, bi, false)).Message);
        Assert.Throws<OnnxModelException>(() => MetricSpec.ParseKind("f1"));
    }

    [Fact]
    public void PoolingAveragesOnlyTheMaskedPositionsAndNeighboursAreComparedAcrossSamples()
    {
        // Three samples, sequence 2, hidden 2; the second position of sample 0 is padding.
        var h = Tensor.FromFloats("h", [3, 2, 2], [1, 0, 100, 100, 0, 1, 0, 1, 1, 1, 1, 1]);
        var mask = Tensor.FromInt64s("m", [3, 2], [1, 0, 1, 1, 1, 1]);
        var e = PooledComparison.Pool(h, mask);
        Assert.Equal([1.0, 0.0], e[0]);
        Assert.Equal([0.0, 1.0], e[1]);
        var p = new PooledComparison();
        p.Add(h, h, mask);
        Assert.Equal(1.0, p.MeanCosine, 12);
        Assert.Equal(100.0, p.NeighbourAgreement);
        // A candidate whose sample 1 moves next to sample 0: both 0's and 1's neighbours change.
        var moved = Tensor.FromFloats("h", [3, 2, 2], [1, 0, 100, 100, 1, 0.01f, 1, 0.01f, 1, 1, 1, 1]);
        var q = new PooledComparison();
        q.Add(h, moved, mask);
        Assert.True(q.NeighbourAgreement < 100);
        Assert.True(q.MeanCosine < 0.7);
    }

    [Fact]
    public void ValidationReportsItsMeasureAndTheDropFollowsIt()
    {
        var m = OnnxImporter.Load(Paths.Model("transformers/bert_op13.onnx"));
        using var s = InferenceSession.FromModel(m, new SessionSettings { Optimization = GraphOptimization.Disabled });
        var data = DataSet.FromFolder(Paths.Model("transformers/bert_eval"), s.Inputs);
        var r = Validator.Compare(s, s, data);
        Assert.Equal("attention_mask", r.Primary!.Metric.MaskInput);
        Assert.Equal(0, Fidelity.DropOf(r).Points, 9);
        Assert.Equal(DropMetric.Cosine, Fidelity.DropOf(r).Metric);
        r = Validator.Compare(s, s, data, new ValidationOptions { Metric = new(MetricKind.Agreement) });
        Assert.Equal("neighbour_agreement", Fidelity.DropOf(r).MetricName);
    }
}
