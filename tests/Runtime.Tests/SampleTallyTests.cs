// The drop's upper confidence bound (SampleTally): the paired binomial bound for accuracy against the formula,
// the bootstrap's quantile for the other measures (deterministic, never below the drop, narrowing with more
// samples), the normal quantile, and the validator handing its per-sample sums over.
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Tests;

public class SampleTallyTests
{
    [Fact]
    public void NormalQuantileMatchesTheTable()
    {
        Assert.Equal(1.2815516, SampleTally.NormalQuantile(0.9), 6);
        Assert.Equal(1.9599640, SampleTally.NormalQuantile(0.975), 6);
        Assert.Equal(-2.3263479, SampleTally.NormalQuantile(0.01), 6);
        Assert.Equal(0, SampleTally.NormalQuantile(0.5), 12);
    }

    [Fact]
    public void AccuracyIsBoundedByThePairedBinomialFormula()
    {
        // 500 samples: 12 the reference gets right and the candidate wrong, 3 the other way round.
        var t = new SampleTally(SampleTally.Form.Accuracy);
        for (int i = 0; i < 500; i++) t.Add(i < 12 ? 1 : i < 15 ? 0 : 1, i < 12 ? 0 : i < 15 ? 1 : 1);
        Assert.Equal(1.8, t.Drop(), 9);
        double z = SampleTally.NormalQuantile(0.9), d = 0.018, q = (15 + z * z / 2) / (500 + z * z);
        Assert.Equal(100 * (d + z * Math.Sqrt((q - d * d) / 500)), t.Upper(0.9), 9);
        Assert.True(t.Upper(0.95) > t.Upper(0.9));
        Assert.Equal(t.Drop(), t.Upper(0));
        // Not one sample scored differently: the bound is the drop.
        var same = new SampleTally(SampleTally.Form.Accuracy);
        for (int i = 0; i < 100; i++) same.Add(i % 3 == 0 ? 0 : 1, i % 3 == 0 ? 0 : 1);
        Assert.Equal(0, same.Upper(0.9));
    }

    [Fact]
    public void TheBootstrapBoundIsDeterministicAboveTheDropAndNarrowsWithSamples()
    {
        SampleTally Agreement(int n)
        {
            var t = new SampleTally(SampleTally.Form.Ratio);
            for (int i = 0; i < n; i++) t.Add(i % 25 == 0 ? 0 : 1, 1);  // 4% disagree
            return t;
        }
        var small = Agreement(200);
        var large = Agreement(5000);
        Assert.Equal(4, small.Drop(), 9);
        Assert.Equal(small.Upper(0.9), Agreement(200).Upper(0.9));
        Assert.True(small.Upper(0.9) > small.Drop() + 0.5, $"{small.Upper(0.9)}");
        Assert.True(large.Upper(0.9) < small.Upper(0.9));
        Assert.True(large.Upper(0.9) > large.Drop());
        // The binomial's own width at 200 samples, sqrt(p(1-p)/n) z = 1.78 points: the bootstrap is near it.
        Assert.InRange(small.Upper(0.9) - small.Drop(), 1.0, 2.6);
        // Cosine of summed dot products: identical rows bound nothing away from 0.
        var cos = new SampleTally(SampleTally.Form.Cosine);
        for (int i = 0; i < 50; i++) cos.Add(4, 4, 4);
        Assert.Equal(0, cos.Upper(0.9), 12);
    }

    [Fact]
    public void TheValidatorHandsOverPerSampleSums()
    {
        // 40 samples of 2 classes: the candidate flips the answer of every fourth sample.
        float[] Logits(bool flip) => Enumerable.Range(0, 40).SelectMany(i =>
            (i % 2 == 0) ^ (flip && i % 4 == 0) ? new[] { 1f, 0f } : new[] { 0f, 1f }).ToArray();
        var data = DataSet.FromTensors(new Dictionary<string, Tensor> { ["x"] = Tensor.FromFloats("x", [40, 1], new float[40]) },
            Enumerable.Range(0, 40).Select(i => (long)(i % 2 == 0 ? 0 : 1)).ToArray());
        var r = Validator.Compare(new Fixed(Tensor.FromFloats("y", [40, 2], Logits(false))),
            new Fixed(Tensor.FromFloats("y", [40, 2], Logits(true))), data, new ValidationOptions { BatchSize = 40 });
        Assert.Equal(MetricKind.Accuracy, r.Primary!.Metric.Kind);
        Assert.Equal(25, r.Primary.DropPoints, 9);
        Assert.Equal(40, r.Primary.Tally!.Count);
        Assert.True(r.Primary.UpperDrop(0.9) > 25 + 5);
        Assert.Equal(25, r.Primary.UpperDrop(0), 9);
    }

    private sealed class Fixed(Tensor output) : IModelRunner
    {
        public IReadOnlyList<IoInfo> Inputs { get; } = [new("x", DataType.Float, new Shape([Dim.Of(40), Dim.Of(1)]))];
        public IReadOnlyList<IoInfo> Outputs { get; } =
            [new(output.Name, output.ElementType, new Shape(output.Dims.Select(Dim.Of)))];
        public Tensor[] Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string>? outputNames = null) =>
            [output];
        public void Dispose() { }
    }
}
