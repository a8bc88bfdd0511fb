// strip: golden text before/after, ORT equivalence, the interface keeps its names, short names never meet
// old ones, equal initializers merge (not the interface's), models with subgraphs keep their names, each
// option alone, and the digits ResNet gets smaller.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class StripTests
{
    private static Model Sample() => TextParser.ParseModel("""
        <ir_version: 8, opset_import: ["" : 13], doc_string: "exported by hand">
        g (float[N,4] x) => (float[N,4] y)
           <float[4] "/layer1/conv/weight" = {1,2,3,4}, float[4] "1" = {0.5,0.5,0.5,0.5}>
        {
           "/layer1/Mul_output_0" = Mul ("x", "/layer1/conv/weight")
           "/layer1/Add_output_0" = Add ("/layer1/Mul_output_0", "1")
           y = Relu ("/layer1/Add_output_0")
        }
        """);

    [Fact]
    public void GoldenAndEquivalent()
    {
        var m = Sample();
        m.Graph.Nodes[0].Name = "/layer1/Mul";
        m.Graph.Nodes[1].DocString = "from model.py:12";
        m.Graph.AddValueInfo(m.Graph.Find("/layer1/Mul_output_0")!);
        var (after, runs) = Run(m, "strip");
        Golden.Assert("passes/strip.txt", TextPrinter.Print(after, TextOptions.Full));
        Assert.Equal(["x"], after.Graph.Inputs.Select(v => v.Name));
        Assert.Equal(["y"], after.Graph.Outputs.Select(v => v.Name));
        Assert.All(after.Graph.Nodes, n => Assert.True(string.IsNullOrEmpty(n.Name) && n.DocString is null));
        Assert.Empty(after.Graph.ValueInfos);
        Assert.Null(after.DocString);
        Assert.Equal(2, Counter(runs, Counters.Strip.DocStrings));
        Assert.Equal(4, Counter(runs, Counters.Strip.ValuesRenamed));
        AssertEquivalent(m, after);
        Assert.True(OnnxExporter.SizeOf(after) < OnnxExporter.SizeOf(m));
    }

    [Fact]
    public void ShortNamesSkipTheInterfaceAndNeverMeetOldNames()
    {
        // The graph output is named "0" and an initializer already has the short name "1".
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[2] x) => (float[2] "0")
               <float[2] "1" = {1,2}, float[2] w = {3,4}>
            {
               a = Add ("x", "1")
               b = Mul (a, w)
               "0" = Relu (b)
            }
            """);
        var (after, _) = Run(m, "strip");
        var names = after.Graph.Values.Select(v => v.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Equal(["x"], after.Graph.Inputs.Select(v => v.Name));
        Assert.Equal(["0"], after.Graph.Outputs.Select(v => v.Name));
        Assert.DoesNotContain(after.Graph.Values, v => v.Name is "a" or "b" or "w");
        AssertEquivalent(m, after);
    }

    [Fact]
    public void OptionsWorkAlone()
    {
        var m = Sample();
        m.Graph.AddValueInfo(m.Graph.Find("/layer1/Mul_output_0")!);
        var (keepNames, _) = Run(m, "strip{names=false}");
        Assert.NotNull(keepNames.Graph.Find("/layer1/Mul_output_0"));
        Assert.Empty(keepNames.Graph.ValueInfos);
        Assert.Null(keepNames.DocString);
        var (onlyNames, _) = Run(m, "strip{docs=false,value-info=false}");
        Assert.Equal("exported by hand", onlyNames.DocString);
        Assert.Single(onlyNames.Graph.ValueInfos);
        Assert.Null(onlyNames.Graph.Find("/layer1/Mul_output_0"));
    }

    [Fact]
    public void EqualInitializersMergeButTheInterfaceAndOtherBytesStay()
    {
        // Two ReLU6 with their own 0 and 6, a graph-input initializer equal to them, and a 6 of another shape.
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (float[N,2] x, float lo) => (float[N,2] y)
               <float lo0 = {0}, float hi0 = {6}, float lo1 = {0}, float hi1 = {6}, float lo = {0},
                float[1] hi2 = {6}>
            {
               a = Clip (x, lo0, hi0)
               b = Clip (a, lo1, hi1)
               c = Clip (b, lo, hi0)
               y = Min (c, hi2)
            }
            """);
        var (after, runs) = Run(m, "strip{names=false}");
        Assert.Equal(2, Counter(runs, Counters.Strip.InitializersMerged));
        Assert.Equal(["hi0", "hi2", "lo", "lo0"], after.Graph.Initializers.Select(v => v.Name).Order());
        Assert.Equal(["a", "lo0", "hi0"], after.Graph.Nodes[1].Inputs.Select(v => v!.Name));
        AssertEquivalent(m, after);
        Assert.Equal(6, Run(m, "strip{names=false,dedupe=false}").After.Graph.Initializers.Count);
    }

    [Fact]
    public void ModelsWithSubgraphsKeepTheirNames()
    {
        var m = TextParser.ParseModel("""
            <ir_version: 8, opset_import: ["" : 13]>
            g (bool c, float[2] x) => (float[2] y)
            {
               inner = Neg (x)
               y = If (c) <then_branch: graph = t () => (float[2] o) { o = Abs (inner) },
                           else_branch: graph = e () => (float[2] o) { o = Identity (inner) }>
            }
            """);
        var (after, runs) = Run(m, "strip");
        Assert.NotNull(after.Graph.Find("inner"));
        Assert.Contains(runs.SelectMany(r => r.Stats.Notes), n => n.Contains("subgraphs", StringComparison.Ordinal));
    }

    [Fact]
    public void TheDigitsResNetLosesItsNamesAndStaysEqual()
    {
        var m = OnnxImporter.Load(Paths.Model("digits/resnet.onnx"));
        var (after, _) = Run(m, "strip");
        Assert.True(OnnxExporter.SizeOf(m) - OnnxExporter.SizeOf(after) > 3000);
        AssertEquivalent(m, after);
        Assert.Equal(OnnxExporter.ToBytes(after), OnnxExporter.ToBytes(Run(m, "strip").After)); // deterministic
    }
}
