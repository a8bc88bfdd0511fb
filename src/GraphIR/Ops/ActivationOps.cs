// Activations and element-wise unary math: each output element from the same input element, so the
// output has the input's type and shape, and channel c of the output comes from channel c of the input.
// Traits: the ReLU family is piecewise linear and positively homogeneous (what Layer Folding linearizes);
// every non-linear activation counts towards non-linear depth.
namespace OnnxOpt.GraphIR;

internal static class ActivationOps
{
    private const OpTrait Act = OpTrait.ElementWise | OpTrait.ChannelPreserving | OpTrait.NonLinear;
    private const OpTrait ReluLike = Act | OpTrait.PiecewiseLinear | OpTrait.PositivelyHomogeneous;

    private static OpInfo Unary(string op, OpTrait traits, ChannelMapping channels = ChannelMapping.ElementWise) =>
        new(op) { Traits = traits, Infer = (n, c) => [c.SameAsInput(n)], Channels = channels };

    public static IEnumerable<OpInfo> All =>
    [
        Unary("Relu", ReluLike),
        Unary("LeakyRelu", ReluLike),
        Unary("PRelu", ReluLike, ChannelMapping.Tied),
        Unary("Clip", Act | OpTrait.PiecewiseLinear),
        Unary("Sigmoid", Act),
        Unary("HardSigmoid", Act),
        Unary("HardSwish", Act),
        Unary("Tanh", Act),
        Unary("Elu", Act),
        Unary("Selu", Act),
        Unary("Celu", Act),
        Unary("Gelu", Act),
        Unary("Mish", Act),
        Unary("Softplus", Act),
        Unary("Softsign", Act),
        Unary("ThresholdedRelu", Act),
        Unary("Erf", Act),
        Unary("Exp", OpTrait.None),
        Unary("Log", OpTrait.None, ChannelMapping.Unknown),
        Unary("Sqrt", OpTrait.None),
        Unary("Neg", OpTrait.None),
        Unary("Abs", OpTrait.None),
        Unary("Reciprocal", OpTrait.None),
        Unary("Floor", OpTrait.None),
        Unary("Ceil", OpTrait.None),
        Unary("Round", OpTrait.None),
        Unary("Sign", OpTrait.None, ChannelMapping.Unknown),
        Unary("Sin", OpTrait.None, ChannelMapping.Unknown),
        Unary("Cos", OpTrait.None, ChannelMapping.Unknown),
    ];
}
