// Softmax, LogSoftmax and Hardmax at opset 13: before 13 the input was coerced to 2-D at `axis` (default
// 1) and normalized over everything from `axis` on; from 13 they normalize over one axis (default -1).
//   Softmax(x){axis=a}, a the last axis            @12  ->  Softmax(x){axis=a}                         @13
//   Softmax(x){axis=a}, otherwise (or rank unknown) @12 ->  Reshape(Softmax(Flatten(x){axis=a}){axis=1},
//                                                             Shape(x))                                @13
// Flatten(x){axis=a} is exactly the old 2-D coercion, so the wrapped form computes the old function.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class SoftmaxAxis
{
    private static readonly string[] Ops = ["Softmax", "LogSoftmax", "Hardmax"];

    public static IEnumerable<OpsetAdapter> Adapters() =>
        Ops.Select(op => new OpsetAdapter(op, 13, Apply));

    private static void Apply(Node n, OpsetStep s)
    {
        var x = n.Input(0)!;
        var axis = n.GetInt("axis", 1);
        var rank = OpsetStep.Rank(x);
        if (rank is { } r && (axis < 0 ? axis + r : axis) == r - 1)
        {
            s.Rewriter.SetAttr(n, OnnxAttribute.Int("axis", axis));
            s.Stats.Count(Counters.Opset.AxisKept(n.OpType));
            return;
        }
        var g = n.Graph;
        var name = OpsetStep.BaseName(n);
        var flat = s.Rewriter.Insert(g, "Flatten", [x], name + "_2d", 1, OnnxAttribute.Int("axis", axis));
        s.Rewriter.SetInput(n, 0, flat.Output());
        s.Rewriter.SetAttr(n, OnnxAttribute.Int("axis", 1));
        var shape = s.Rewriter.Insert(g, "Shape", [x], name + "_shape");
        var back = s.Rewriter.Insert(g, "Reshape", [null, shape.Output()], name + "_nd");
        s.Rewriter.Replace(n.Output(), back.Output());
        s.Rewriter.SetInput(back, 0, n.Output());
        s.Stats.Count(Counters.Opset.Wrapped(n.OpType));
    }
}
