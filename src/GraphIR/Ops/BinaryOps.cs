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

    private static OpInfo Broadcasting(string op, DataType? result = null) => new(op)
    {
        Infer = (n, c) => [T(result ?? TypeOf(n.Input(0)),
            Broadcast(n.Inputs.Select(ShapeOf)))],
    };

    public static IEnumerable<OpInfo> All =>
    [
        Arithmetic("Add", OpTrait.AffineArithmetic | OpTrait.ElementWise, QuantClass.Compute),
        Arithmetic("Sub", OpTrait.AffineArithmetic | OpTrait.ElementWise),
        Arithmetic("Mul", OpTrait.ElementWise, QuantClass.Compute),
        Arithmetic("Div", OpTrait.ElementWise),
        Broadcasting("Pow"),
        Broadcasting("Max"),
        Broadcasting("Min"),
        Broadcasting("Sum"),
        Broadcasting("Mean"),
        Broadcasting("Equal", DataType.Bool),
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
            Infer = (n, c) => [T(FirstType([n.Input(1), n.Input(2)]),
                Broadcast(n.Inputs.Select(ShapeOf)))],
        },
    ];
}
