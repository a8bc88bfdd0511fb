// Element-wise ops of two or more operands with numpy broadcasting: the output shape is the broadcast of
// the inputs' (Broadcast); arithmetic keeps the first operand's type, comparisons and logic give
// bool, Where takes its branches' type. Integer Add/Sub/Mul/Div of known small vectors is evaluated, so shape
// arithmetic as exporters write it (channels // groups, Shape * 2) stays known.
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class BinaryOps
{
    private static OpInfo Arithmetic(string op, OpTrait traits, QuantClass quant = QuantClass.None) => new(op)
    {
        Traits = traits,
        Channels = ChannelMapping.Binary,
        Quant = quant,
        Infer = (n, c) =>
        {
            if (IntArithmetic(n.OpType, c.Const(n.Input(0)), c.Const(n.Input(1))) is { } folded)
                c.SetConst(n.Output(), folded);
            return [T(TypeOf(n.Input(0)), Broadcast(n.Inputs.Select(ShapeOf)))];
        },
    };

    private static OpInfo Broadcasting(string op, DataType? result = null,
        ChannelMapping channels = ChannelMapping.Unknown) => new(op)
        {
            Channels = channels,
            Infer = (n, c) => [T(result ?? TypeOf(n.Input(0)),
            Broadcast(n.Inputs.Select(ShapeOf)))],
        };

    public static IEnumerable<OpInfo> All =>
    [
        Arithmetic("Add", OpTrait.AffineArithmetic | OpTrait.ElementWise, QuantClass.Compute),
        Arithmetic("Sub", OpTrait.AffineArithmetic | OpTrait.ElementWise),
        Arithmetic("Mul", OpTrait.ElementWise, QuantClass.Compute),
        Arithmetic("Div", OpTrait.ElementWise),
        Broadcasting("Pow", channels: ChannelMapping.Binary),
        Broadcasting("Max", channels: ChannelMapping.Binary),
        Broadcasting("Min", channels: ChannelMapping.Binary),
        Broadcasting("Sum"),
        Broadcasting("Mean"),
        new("Equal")
        {
            // Tracked as 0/1 where decidable: exporters write expand(-1) as Where(Equal(shape, -1), 1, shape),
            // and a symbolic dim (>= 0) never equals a negative constant.
            Infer = (n, c) =>
            {
                if (Zip(c.SymConst(n.Input(0)), c.SymConst(n.Input(1))) is { } pairs)
                {
                    var eq = pairs.Select(p => p.A.IsKnown && p.B.IsKnown ? (p.A.Value == p.B.Value ? 1 : 0)
                        : p.A.Value is < 0 || p.B.Value is < 0 ? 0 : -1).ToArray();
                    if (eq.All(e => e >= 0)) c.SetConst(n.Output(), eq.Select(e => (long)e));
                }
                return [T(DataType.Bool, Broadcast(n.Inputs.Select(ShapeOf)))];
            },
        },
        Broadcasting("Less", DataType.Bool),
        Broadcasting("Greater", DataType.Bool),
        Broadcasting("LessOrEqual", DataType.Bool),
        Broadcasting("GreaterOrEqual", DataType.Bool),
        Broadcasting("And", DataType.Bool),
        Broadcasting("Or", DataType.Bool),
        Broadcasting("Xor", DataType.Bool),
        new("Not") { Infer = (n, c) => [T(DataType.Bool, ShapeOf(n.Input(0)))] },
        new("Where")
        {
            Infer = (n, c) =>
            {
                var cond = c.Const(n.Input(0));
                var (a, b) = (c.SymConst(n.Input(1)), c.SymConst(n.Input(2)));
                if (cond is not null && a is not null && b is not null && Zip(a, b) is { } ab
                    && (cond.Length == ab.Length || cond.Length == 1 || ab.Length == 1))
                {
                    var len = Math.Max(cond.Length, ab.Length);
                    c.SetConst(n.Output(), Enumerable.Range(0, len).Select(i =>
                    {
                        var p = ab[ab.Length == 1 ? 0 : i];
                        return cond[cond.Length == 1 ? 0 : i] != 0 ? p.A : p.B;
                    }).ToArray());
                }
                return [T(FirstType([n.Input(1), n.Input(2)]), Broadcast(n.Inputs.Select(ShapeOf)))];
            },
        },
    ];

    /// <summary>Two tracked vectors paired element-wise (a length-1 side broadcast), or null.</summary>
    private static (Dim A, Dim B)[]? Zip(Dim[]? a, Dim[]? b)
    {
        if (a is null || b is null || (a.Length != b.Length && a.Length != 1 && b.Length != 1)) return null;
        var len = Math.Max(a.Length, b.Length);
        return Enumerable.Range(0, len).Select(i => (a[a.Length == 1 ? 0 : i], b[b.Length == 1 ? 0 : i])).ToArray();
    }
}
