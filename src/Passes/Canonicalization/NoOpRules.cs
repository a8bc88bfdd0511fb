// canonicalize's no-op rules: a node that computes its input unchanged is removed and its uses read
// the input.   y = op(x, ...) with op a no-op here  ->  uses of y read x
//   Identity(x);  Dropout(x) in inference with the mask unused;  Cast(x, to = type of x);
//   Transpose(x, perm = identity);  Reshape(x, s) with static shape(y) == shape(x);  Pad(x, all pads 0);
//   PRelu(x, slope all 1);  LeakyRelu(x, alpha = 1);  Clip(x) without bounds.
// A graph output that would become an alias of a graph input, initializer or another output stays.
// Main graph and subgraphs alike (canonicalize runs these rules in every graph).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>
/// One no-op rule: <paramref name="whyNot"/> says why a node of that op is not a no-op (null: it is).</summary>
public sealed class NoOpRule(string op, Func<Node, Value, Value, long, string?> whyNot) : RewriteRule<Value>
{
    public override string Name => "remove-no-op-" + op.ToLowerInvariant();
    public override IReadOnlyList<string> RootOps { get; } = [op];

    public override RuleMatch<Value> Match(Node n, RuleContext ctx)
    {
        if (n.Input(0) is not { } x || n.Outputs[0] is not { } y) return new NoMatch("no data input or output");
        if (whyNot(n, x, y, ctx.Opset) is { } why) return new NoMatch(why);
        if (!Rewriter.CanReplace(y,
            x)) return new NoMatch("its output is a graph output that would alias another interface value");
        return x;
    }

    public override void Apply(Node n, Value x, RuleContext ctx)
    {
        ctx.Rewriter.Replace(n.Output(), x);
        ctx.Rewriter.Erase(n);
    }

    public static IReadOnlyList<RewriteRule> All { get; } =
    [
        new NoOpRule("Identity", (_, _, _, _) => null),
        new NoOpRule("Dropout", (n, _, _, opset) =>
        {
            if (n.Outputs.Count > 1 && n.Outputs[1] is { } mask && (mask.Uses.Count > 0
                || mask.IsGraphOutput)) return "its mask is used";
            if (opset < 12) return n.GetInt("is_test", 1) != 0 || opset >= 7 ? null : "training mode (is_test = 0)";
            return n.Input(2) is null || Rewriter.ConstantOf(n.Input(2)) is { } tm && tm.ToDoubleArray() is [0]
                ? null : "training_mode is not a constant false";
        }),
        new NoOpRule("Cast", (n, x, _, _) =>
            x.ElementType == DataType.Undefined ? "input type unknown"
            : (long)x.ElementType == n.GetInt("to", -1) ? null : "casts to another type"),
        new NoOpRule("Transpose", (n, _, _, _) =>
            n.GetInts("perm") is { } perm && perm.Select((p, i) => p == i).All(b => b) ? null : "not an identity permutation"),
        new NoOpRule("Reshape", (_, x, y, _) =>
            x.Shape is not { IsFullyKnown: true } xs || y.Shape is not { IsFullyKnown: true } ys ? "shapes not static"
            : xs.Equals(ys) ? null : "changes the shape"),
        new NoOpRule("Pad", (n, _, _, _) =>
        {
            var pads = n.GetInts("pads") ?? Rewriter.ConstantOf(n.Input(1))?.ToInt64Array();
            if (pads is null) return "pads not constant";
            if (pads.Any(p => p != 0)) return "pads a border";
            return (n.GetString("mode") ?? "constant") is "constant" or "reflect" or "edge" or "wrap" ? null : "unknown mode";
        }),
        // Unidirectional broadcasting: y has x's shape, and a slope of 1 everywhere makes y = x.
        new NoOpRule("PRelu", (n, _, _, _) =>
            Rewriter.ConstantOf(n.Input(1)) is { } slope && slope.ElementType.IsFloatingPoint()
                ? (slope.ToDoubleArray().All(v => v == 1) ? null : "a slope is not 1") : "slope not constant float"),
        new NoOpRule("LeakyRelu", (n, _, _, _) => n.GetFloat("alpha", 0.01f) == 1f ? null : "alpha is not 1"),
        new NoOpRule("Clip", (n, _, _, opset) =>
            (opset < 11 ? n.Attr("min") is null && n.Attr("max") is null : n.Input(1) is null && n.Input(2) is null)
                ? null : "has a bound"),
    ];
}
