// The model-runner seam: our evaluator answers like ONNX Runtime through the same interface, so
// validation and calibration run on either; in-memory data sets batch like folders; progress reaches
// the caller's sink.
using OnnxOpt.Autodiff;
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Tests;

public class EvaluatorRunnerTests
{
    private static string Model(string rel) => Path.Combine(Paths.TestModels, rel);

    [Theory]
    [InlineData("digits/resnet.onnx")]
    [InlineData("digits/mobilenetv2.onnx")]
    public void EvaluatorAndOrtAgreeThroughTheRunnerInterface(string path)
    {
        var m = OnnxImporter.Load(Model(path));
        using IModelRunner ort = InferenceSession.FromModel(m, new SessionSettings { Optimization = GraphOptimization.Disabled });
        using IModelRunner ours = new EvaluatorRunner<double>(m);
        Assert.Equal(ort.Inputs.Select(i => i.ToString()), ours.Inputs.Select(i => i.ToString()));
        var data = DataSet.FromFolder(Model("digits/data/test"), ort.Inputs);
        var r = Validator.Compare(ort, ours, data, new ValidationOptions { Rtol = 1e-4, Atol = 1e-4 });
        Assert.True(r.Passed, $"max abs {r.Outputs[0].MaxAbsError}");
        Assert.Equal(1.0, r.Outputs[0].Top1Agreement);
        Assert.Equal(r.ReferenceAccuracy, r.CandidateAccuracy);
    }

    [Fact]
    public void CalibrationRunsOnTheEvaluatorAndFindsOrtsRanges()
    {
        var m = OnnxImporter.Load(Model("digits/vgg.onnx"));
        ShapeInference.Run(m);
        var relus = m.Graph.Nodes.Where(n => n.OpType == "Relu").Select(n => n.Output().Name).ToList();
        var calib = CalibrationSource.FromFolder(Model("digits/data/calib"));
        var viaOrt = ActivationRanges.Collect(calib, m, relus, RangeCalibrator.Factory("minmax"), null);
        var viaOurs = ActivationRanges.Collect(calib.With(EvaluatorRunner<double>.Factory), m, relus, RangeCalibrator.Factory("minmax"), null);
        foreach (var t in relus)
        {
            var (a, b) = (viaOrt[t].Range(RangeKind.Asymmetric), viaOurs[t].Range(RangeKind.Asymmetric));
            Assert.Equal(a.Item2, b.Item2, 1e-4 * Math.Max(1, Math.Abs(a.Item2)));
        }
    }

    [Fact]
    public void InMemoryDataSetsBatchInOrderWithLabels()
    {
        var x = Tensor.FromFloats("x", [5, 2], Enumerable.Range(0, 10).Select(i => (float)i).ToArray());
        var ds = DataSet.FromTensors(new Dictionary<string, Tensor> { ["x"] = x }, [0, 1, 2, 3, 4]);
        Assert.Equal("5 samples in memory, with labels", ds.Description);
        var batches = ds.Batches(2).ToList();
        Assert.Equal([2L, 2L, 1L], batches.Select(b => b.Inputs["x"].Dims[0]));
        Assert.Equal([8f, 9f], batches[2].Inputs["x"].ToFloatArray());
        Assert.Equal([4L], batches[2].Labels!);
        Assert.Throws<OnnxModelException>(() => DataSet.FromTensors(new Dictionary<string, Tensor> { ["x"] = x }, [1, 2]));
    }

    [Fact]
    public void ProgressGoesToTheCallersSink()
    {
        var m = OnnxImporter.Load(Model("digits/mlp.onnx"));
        var seen = new List<(string, long, long)>();
        var calib = CalibrationSource.FromFolder(Model("digits/data_mlp/calib")).WithProgress((t, d, n) => seen.Add((t, d, n)));
        ActivationRanges.Collect(calib, m, [m.Graph.Outputs[0].Name], RangeCalibrator.Factory("minmax"), "calibrating");
        Assert.NotEmpty(seen);
        Assert.All(seen, s => Assert.Equal("calibrating", s.Item1));
        Assert.Equal(seen[^1].Item3, seen[^1].Item2);
    }
}
