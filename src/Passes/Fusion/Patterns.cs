// Small pure helpers the fusion rules match with: the producer of a value if it is a given standard op, a
// value's only use, scalar constants, and the factors of a product tree (commutative Mul).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

internal static class Patterns
{
    /// <summary>The node producing <paramref name="v"/> if it is the standard op <paramref name="op"/>.</summary>
    public static Node? Op(Value? v, string op) =>
        v?.Producer is { } p && p.OpType == op && p.IsStandard ? p : null;

    /// <summary>Whether <paramref name="v"/> is read only inside the matched pattern (exactly
    /// <paramref name="uses"/> uses, not a graph output).</summary>
    public static bool Internal(Value? v, int uses = 1) => v is not null && !v.IsGraphOutput && v.Uses.Count == uses;

    /// <summary>A constant's single value (any float or integer type), else null.</summary>
    public static double? Scalar(Value? v) =>
        Rewriter.ConstantOf(v) is { ElementCount: 1 } t && t.Strings is null ? t.ToDoubleArray()[0] : null;

    public static bool Near(double? a, double b, double rel = 1e-4) =>
        a is double x && Math.Abs(x - b) <= rel * Math.Abs(b);

    /// <summary>The other input of a binary node, given one of them.</summary>
    public static Value? Other(Node n, Value v) => n.Input(0) == v ? n.Input(1) : n.Input(1) == v ? n.Input(0) : null;

    /// <summary>The leaves of a product: Mul inputs, expanded through Mul nodes used only here (up to
    /// <paramref name="max"/> leaves); the Mul nodes passed through are added to <paramref name="inner"/>.</summary>
    public static List<Value> Factors(Node mul, List<Node> inner, int max = 4)
    {
        var leaves = new List<Value>();
        void Walk(Value? v, bool root)
        {
            if (v is null || leaves.Count > max) return;
            if (!root && Op(v, "Mul") is { } m && Internal(v))
            {
                inner.Add(m);
                Walk(m.Input(0), false);
                Walk(m.Input(1), false);
                return;
            }
            leaves.Add(v);
        }
        Walk(mul.Input(0), false);
        Walk(mul.Input(1), false);
        return leaves;
    }

    /// <summary>The reduced axes of a ReduceMean (attribute, or input from opset 18) when they are exactly the
    /// last axis of a rank-<paramref name="rank"/> input and keepdims is on.</summary>
    public static bool ReducesLastAxis(Node reduce, int? rank)
    {
        if (reduce.GetInt("keepdims", 1) != 1) return false;
        var axes = reduce.GetInts("axes") ?? Rewriter.ConstantOf(reduce.Input(1))?.ToInt64Array();
        if (axes is not [var a]) return false;
        return a == -1 || (rank is int r && a == r - 1);
    }
}
