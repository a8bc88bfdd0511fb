// The masked attention Softmax kept out of denormal arithmetic:
//
//   before:  P = Softmax(S + mask)                          mask: 0 or -10,000 (or the float minimum) per key
//   after:   X = S + mask;  P = Softmax(Max(X, ReduceMax(X, axis -1, keepdims) - 80))
//
// Softmax computes exp(x - max) per row. A masked key's x - max is about -10,000, and ONNX Runtime's exp reaches 0
// there through denormal intermediates, which x86 processes a hundred times slower than normal numbers: on padded
// sentences the attention Softmax is a quarter to a third of a BERT-style encoder's run (README, bench --profile;
// flush-to-zero in the session, bench --denormals-as-zero, is the other cure, but it is the deployer's setting).
// Clamping each row at its max - 80 keeps every exponent in the normal range (e^-80 = 1.8e-35 > 1.2e-38).
// Equal up to float rounding: an entry changes only when it was below max - 80, where its weight e^(x - max) / Z
// (Z >= 1, the max's own term) goes from under e^-80 to e^-80 / Z', so each of the row's n weights moves by at most
// e^-80 and Z by at most n e^-80, about 1e-30 for a million keys, far under float32's resolution at 1; a fully masked
// row stays uniform. Only Softmaxes over the last axis of an attention block with a mask (AttentionView) are
// guarded: without a mask the three extra element-wise passes are pure cost (0.97x on unpadded inputs). Before opset 13
// Softmax flattens to 2-D at its axis, the same as the last axis when axis is the last (opset 8: Max broadcasts).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record SoftmaxGuardMatch(Value X);

public sealed class SoftmaxGuard : RewriteRule<SoftmaxGuardMatch>
{
    /// <summary>How far below its row's max an entry is clamped (e^-80 is a normal float32).</summary>
    public const float Margin = 80f;

    public override string Name => "guard-masked-softmax";
    public override IReadOnlyList<string> RootOps { get; } = ["Softmax"];
    public override long MinOpset => 8;

    public override RuleMatch<SoftmaxGuardMatch> Match(Node root, RuleContext ctx)
    {
        if (root.Input(0) is not { } x || x.ElementType != DataType.Float)
            return new NoMatch("not a float32 Softmax");
        long axis = root.GetInt("axis", ctx.Opset >= 13 ? -1 : 1);
        if (axis != -1 && (x.Shape?.Rank is not int rank || axis != rank - 1))
            return new NoMatch("not over the last axis");
        if (IsGuard(x.Producer)) return new NoMatch("already guarded");
        if (AttentionView.Of(root, out var why) is not { Mask: not null })
            return new NoMatch(why ?? "an attention Softmax without a mask");
        return new SoftmaxGuardMatch(x);
    }

    /// <summary>Max(x, Sub(ReduceMax(x), c)): the guard this rule writes (AttentionView steps through it).</summary>
    public static bool IsGuard(Node? n) =>
        n is { OpType: "Max", IsStandard: true } && n.Inputs.Count == 2 && n.Input(1)?.Producer is
        { OpType: "Sub", IsStandard: true } sub && sub.Input(0)?.Producer is { OpType: "ReduceMax" } rm
        && rm.Input(0) == n.Input(0);

    public override void Apply(Node root, SoftmaxGuardMatch m, RuleContext ctx)
    {
        var rw = ctx.Rewriter;
        var g = root.Graph;
        rw.InsertionPoint = root;
        var keep = OnnxAttribute.Int("keepdims", 1);
        var max = ctx.Opset >= 18
            ? rw.Insert(g, "ReduceMax", [m.X, rw.Constant(g, "guard_axes", Tensor.FromInt64s("", [1], [-1]))],
                "guard_rowmax", 1, keep)
            : rw.Insert(g, "ReduceMax", [m.X], "guard_rowmax", 1, OnnxAttribute.IntList("axes", -1), keep);
        var margin = rw.Constant(g, "guard_margin", Tensor.FromFloats("", [], [Margin]));
        var low = rw.Insert(g, "Sub", [max.Output(), margin], "guard_low");
        var clamped = rw.Insert(g, "Max", [m.X, low.Output()], "guard_clamped");
        rw.SetType(clamped.Output(), m.X.Type);
        rw.SetInput(root, 0, clamped.Output());
    }
}
