// The budget's measure: chosen from the output's shape (a sentence encoder's hidden states pooled over the
// attention mask, a classifier's top-1 agreement or accuracy), or as asked, and refused when it cannot apply.
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Tests;

public class FidelityMetricTests
{
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
