// Every committed test model loads and runs in ONNX Runtime, and our shape inference agrees with the
// shapes ORT computes for every intermediate value (batch dims N = batch = 2, sequence = 5).
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Data;

namespace OnnxOpt.Tests;

public class TestModelRunTests
{
    public static TheoryData<string> Models() => new(ModelCorpus.TestModels().Select(p => Path.GetRelativePath(Paths.TestModels, p)));

    [Theory]
    [MemberData(nameof(Models))]
    public void RunsInOrtAndInferredShapesMatchOrt(string rel)
    {
        var m = OnnxImporter.Load(Path.Combine(Paths.TestModels, rel));
        ShapeInference.Run(m);
        var values = m.Graph.Nodes.SelectMany(n => n.Outputs).Where(v => v is not null && !v.IsGraphOutput).Select(v => v!.Name).ToList();
        using var s = InferenceSession.FromModel(m, new SessionSettings { Optimization = GraphOptimization.Disabled }, values);
        var dims = new Dictionary<string, long> { ["N"] = 2, ["batch"] = 2, ["sequence"] = 5 };
        var feed = DataSet.Random(s.Inputs, 1, 7, dims).Batches().First().Inputs;
        var names = s.Outputs.Select(o => o.Name).ToList();
        var outs = s.Run(feed, names);
        var mismatches = new List<string>();
        for (int i = 0; i < names.Count; i++)
        {
            var inferred = m.Graph.Find(names[i])?.Type?.Shape;
            if (inferred is null) { mismatches.Add($"{names[i]}: no inferred shape, ORT [{string.Join(",", outs[i].Dims)}]"); continue; }
            var concrete = inferred.Dims.Select(d => d.Value ?? (d.Param is { } p ? dims.GetValueOrDefault(p, -1) : -1))
                .ToArray();
            if (!concrete.SequenceEqual(outs[i].Dims))
                mismatches.Add($"{names[i]}: inferred {inferred}, ORT [{string.Join(",", outs[i].Dims)}]");
        }
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }
}
