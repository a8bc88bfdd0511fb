// upgrade-opset: each conversion rule on a small model at the opset before the change, checked in ORT
// against the original (the same outputs on seeded random inputs) and for the form it writes; refusals
// name the node and the reason.
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class UpgradeOpsetTests
{
    private static Model Parse(long opset, string signature, string body, string inits = "") =>
        TextParser.ParseModel($$"""
            <ir_version: {{Math.Max(4, UpgradeOpset.IrVersionFor(opset))}}, opset_import: ["" : {{opset}}]>
            g {{signature}} {{(inits.Length > 0 ? $"<{inits}>" : "")}}
            {
            {{body}}
            }
            """);

    private static Model Upgrade(Model m, long to)
    {
        var (after, runs) = Run(m, $"upgrade-opset{{version={to}}}");
        Assert.Equal(to, after.OpsetVersion(""));
        Assert.True(after.IrVersion >= UpgradeOpset.IrVersionFor(to));
        Assert.Contains(runs.SelectMany(r => r.Stats.Notes), n => n.Contains($"-> {to}"));
        AssertEquivalent(m, after);
        return after;
    }

    private static Node Only(Model m, string op) => Assert.Single(m.Graph.Nodes, n => n.OpType == op);

    public static TheoryData<string, long, string, string, long> Cases => new()
    {
        { "slice", 9, "(float[N,6,8] x) => (float[N,3,6] y)",
            "y = Slice <starts: ints = [1, 2], ends: ints = [4, 100], axes: ints = [1, 2]> (x)", 13 },
        { "slice-no-axes", 9, "(float[N,6,8] x) => (float[N,6,4] y)",
            "y = Slice <starts: ints = [0, 0, 4], ends: ints = [1000, 1000, 8]> (x)", 10 },
        { "topk", 9, "(float[N,8] x) => (float[N,3] v, int64[N,3] i)", "v, i = TopK <k: int = 3, axis: int = 1> (x)", 11 },
        { "clip", 9, "(float[N,8] x) => (float[N,8] y)", "y = Clip <min: float = -0.2, max: float = 0.3> (x)", 13 },
        { "clip-max-only", 9, "(float[N,8] x) => (float[N,8] y)", "y = Clip <max: float = 0.1> (x)", 11 },
        { "pad", 9, "(float[N,2,4,4] x) => (float[N,2,7,6] y)",
            "y = Pad <pads: ints = [0, 0, 1, 0, 0, 0, 2, 2], value: float = 1.5> (x)", 13 },
        { "pad-reflect", 10, "(float[N,2,4,4] x) => (float[N,2,6,6] y)",
            "y = Pad <mode: string = \"reflect\", pads: ints = [0, 0, 1, 1, 0, 0, 1, 1]> (x)", 18 },
        { "dropout", 9, "(float[N,8] x) => (float[N,8] y)", "d = Dropout <ratio: float = 0.3> (x)\n y = Relu (d)", 13 },
        { "squeeze", 11, "(float[N,1,8,1] x) => (float[N,1,8] y)",
            "s = Squeeze <axes: ints = [1, 3]> (x)\n y = Unsqueeze <axes: ints = [1]> (s)", 13 },
        { "squeeze-all", 11, "(float[1,8,1] x) => (float[8] y)", "y = Squeeze (x)", 13 },
        { "split", 11, "(float[N,6] x) => (float[N,2] a, float[N,4] b)", "a, b = Split <axis: int = 1, split: ints = [2, 4]> (x)", 13 },
        { "split-equal", 11, "(float[N,6] x) => (float[N,3] a, float[N,3] b)", "a, b = Split <axis: int = 1> (x)", 18 },
        { "reduce", 11, "(float[N,4,5] x) => (float[N,1,5] a, float[N,5] b, float[N,4] c)",
            "a = ReduceSum <axes: ints = [1]> (x)\n b = ReduceMean <axes: ints = [-2], keepdims: int = 0> (x)\n"
            + " c = ReduceMax <axes: ints = [2], keepdims: int = 0> (x)", 18 },
        { "softmax-4d", 11, "(float[N,3,4,5] x) => (float[N,3,4,5] y)", "y = Softmax (x)", 13 },
        { "softmax-last", 11, "(float[N,3,5] x) => (float[N,3,5] y)", "y = LogSoftmax <axis: int = -1> (x)", 13 },
        { "softmax-2d", 9, "(float[N,5] x) => (float[N,5] y)", "y = Softmax (x)", 13 },
        { "hardmax-inner", 11, "(float[N,3,5] x) => (float[N,3,5] y)", "y = Hardmax <axis: int = 1> (x)", 13 },
        { "upsample7", 7, "(float[N,2,3,4] x) => (float[N,2,6,12] y)",
            "y = Upsample <mode: string = \"nearest\", scales: floats = [1.0, 1.0, 2.0, 3.0]> (x)", 11 },
        { "upsample9-linear", 9, "(float[N,2,3,4] x) => (float[N,2,6,8] y)",
            "s = Constant <value: tensor = float[4] {1, 1, 2, 2}> ()\n y = Upsample <mode: string = \"linear\"> (x, s)", 13 },
        { "resize10-down", 10, "(float[N,2,8,8] x) => (float[N,2,4,4] y)",
            "s = Constant <value: tensor = float[4] {1, 1, 0.5, 0.5}> ()\n y = Resize <mode: string = \"nearest\"> (x, s)", 11 },
        { "resize10-linear", 10, "(float[N,2,3,4] x) => (float[N,2,6,8] y)",
            "s = Constant <value: tensor = float[4] {1, 1, 2, 2}> ()\n y = Resize <mode: string = \"linear\"> (x, s)", 21 },
        { "batchnorm", 7, "(float[N,2,3,3] x) => (float[N,2,3,3] y)",
            "y = BatchNormalization <epsilon: float = 0.001, spatial: int = 1> (x, s, b, m, v)", 15 },
        { "scatter", 9, "(float[N,4] x) => (float[N,4] y)",
            "i = Constant <value: tensor = int64[1,2] {3, 0}> ()\n u = Constant <value: tensor = float[1,2] {7, 8}> ()\n"
            + " xs = Slice <starts: ints = [0], ends: ints = [1], axes: ints = [0]> (x)\n"
            + " z = Scatter <axis: int = 1> (xs, i, u)\n y = Add (x, z)", 11 },
        { "groupnorm", 18, "(float[N,4,3,3] x) => (float[N,4,3,3] y)",
            "y = GroupNormalization <num_groups: int = 2, epsilon: float = 0.01> (x, gs, gb)", 21 },
        { "imagescaler", 9, "(float[N,2,3,3] x) => (float[N,2,3,3] y)",
            "y = ImageScaler <scale: float = 2.0, bias: floats = [1.0, -2.0]> (x)", 13 },
        { "gridsample", 16, "(float[N,2,4,4] x, float[N,3,3,2] grid) => (float[N,2,3,3] y)",
            "y = GridSample <mode: string = \"bilinear\", align_corners: int = 1> (x, grid)", 20 },
    };

    private const string Inits = "float[2] s = {1.5, 0.5}, float[2] b = {0.1, -0.2}, float[2] m = {0.3, 0.0}, "
        + "float[2] v = {1.0, 2.0}, float[2] gs = {1.5, -0.5}, float[2] gb = {0.25, 1.0}";

    [Theory]
    [MemberData(nameof(Cases))]
    public void RuleKeepsTheFunction(string name, long from, string signature, string body, long to)
    {
        var inits = body.Contains("BatchNormalization") || body.Contains("GroupNormalization") ? Inits : "";
        var after = Upgrade(Parse(from, signature, body, inits), to);
        // Attributes that became inputs are gone.
        foreach (var n in after.Graph.Nodes)
            foreach (var attr in new[] { "starts", "ends", "k", "min", "max", "pads", "value", "ratio", "scales", "split",
                "spatial" })
                Assert.True(n.Attr(attr) is null || n.OpType == "Constant", $"{name}: {n} keeps attribute {attr}");
        Assert.DoesNotContain(after.Graph.Nodes, n => n.OpType is "Upsample" or "Scatter" or "ImageScaler");
        if (name.StartsWith("reduce") || name == "squeeze")
            Assert.DoesNotContain(after.Graph.Nodes, n => n.Attr("axes") is not null);
    }

    [Fact]
    public void SoftmaxOverAnInnerAxisIsWrappedAndOverTheLastIsNot()
    {
        var wrapped = Upgrade(Parse(11, "(float[N,3,4,5] x) => (float[N,3,4,5] y)", "y = Softmax (x)"), 13);
        Assert.Equal(1, Count(wrapped, "Flatten"));
        Assert.Equal(1, Count(wrapped, "Reshape"));
        Assert.Equal("y", wrapped.Graph.Outputs[0].Name);
        var kept = Upgrade(Parse(11, "(float[N,3,5] x) => (float[N,3,5] y)", "y = Softmax <axis: int = 2> (x)"), 13);
        Assert.Equal(0, Count(kept, "Flatten"));
        Assert.Equal(2, Only(kept, "Softmax").GetInt("axis", -1));
    }

    [Fact]
    public void ResizeTenBecomesAsymmetricFloorOrCeil()
    {
        var up = Upgrade(Parse(9, "(float[N,2,3,4] x) => (float[N,2,6,8] y)",
            "s = Constant <value: tensor = float[4] {1, 1, 2, 2}> ()\n y = Upsample (x, s)"), 11);
        var r = Only(up, "Resize");
        Assert.Empty(Rewriter.ConstantOf(r.Input(1))!.ToFloatArray());
        Assert.Equal("asymmetric", r.GetString("coordinate_transformation_mode"));
        Assert.Equal("floor", r.GetString("nearest_mode"));
        var down = Upgrade(Parse(10, "(float[N,2,8,8] x) => (float[N,2,4,4] y)",
            "s = Constant <value: tensor = float[4] {1, 1, 0.5, 0.5}> ()\n y = Resize (x, s)"), 11);
        Assert.Equal("ceil", Only(down, "Resize").GetString("nearest_mode"));
    }

    [Fact]
    public void SubgraphsAreUpgradedToo()
    {
        var m = Parse(11, "(bool c, float[N,1,4] x) => (float[N,4] y)", """
               y = If (c) <then_branch: graph = t () => (float[N,4] a) { a = Squeeze <axes: ints = [1]> (x) },
                           else_branch: graph = e () => (float[N,4] b) { q = Squeeze <axes: ints = [1]> (x)
                                                                          b = Neg (q) }>
            """);
        var (after, _) = Run(m, "upgrade-opset{version=13}");
        foreach (var g in after.Graph.SelfAndSubgraphs())
            foreach (var n in g.Nodes.Where(n => n.OpType == "Squeeze"))
            {
                Assert.Null(n.Attr("axes"));
                Assert.NotNull(n.Input(1));
            }
    }

    [Fact]
    public void GroupNormScaleIsWidenedPerChannel()
    {
        var after = Upgrade(Parse(18, "(float[N,4,3,3] x) => (float[N,4,3,3] y)",
            "y = GroupNormalization <num_groups: int = 2> (x, gs, gb)", Inits), 21);
        var scale = Rewriter.ConstantOf(Only(after, "GroupNormalization").Input(1))!.ToFloatArray();
        Assert.Equal([1.5f, 1.5f, -0.5f, -0.5f], scale);
    }

    [Theory]
    [InlineData(7, "y = BatchNormalization <spatial: int = 0> (x, s, b, m, v)", 9, "spatial=0")]
    [InlineData(9, "y = Crop <border: ints = [0, 0, 1, 1]> (x)", 10, "experimental op")]
    [InlineData(10, "y = Resize (x, sc)", 11, "computed at run time")]
    [InlineData(13, "y = Relu (x)", 11, "downgrades are not supported")]
    [InlineData(6, "y = Relu (x)", 13, "conversion starts at opset 7")]
    [InlineData(13, "y = Relu (x)", 22, "outside 7..21")]
    public void RefusalsNameTheNodeAndTheReason(long from, string body, long to, string reason)
    {
        var sig = body.Contains("sc") ? "(float[N,2,3,3] x, float[4] sc) => (float[N,2,3,3] y)"
            : "(float[N,2,3,3] x) => (float[N,2,3,3] y)";
        var m = Parse(from, sig, body, Inits);
        var e = Assert.Throws<OnnxModelException>(() => Run(m, $"upgrade-opset{{version={to}}}"));
        Assert.Contains(reason, e.Message);
        if (from < to && from >= UpgradeOpset.Oldest && to <= UpgradeOpset.Newest) Assert.Contains("node ", e.Message);
    }

    [Fact]
    public void AModelAtTheTargetIsLeftAlone()
    {
        var m = Parse(13, "(float[N,4] x) => (float[N,4] y)", "y = Relu (x)");
        var (after, runs) = Run(m, "upgrade-opset{version=13}");
        Assert.Equal(OnnxExporter.ToBytes(m), OnnxExporter.ToBytes(after));
        Assert.Empty(runs.SelectMany(r => r.Stats.Notes));
    }
}
