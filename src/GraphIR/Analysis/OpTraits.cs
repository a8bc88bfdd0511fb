// What an operator is, as the passes need to know it: one table instead of op sets scattered over files.
//   Linear            y = W * x (+ b) with a constant weight: Conv, ConvTranspose, Gemm, MatMul (LinearOp views them)
//   AffineArithmetic  affine in each input for constant other operands: Add, Sub, BatchNormalization (inference)
//   LinearReduce      linear pooling/reduction: AveragePool, GlobalAveragePool, ReduceMean, ReduceSum
//   Layout            moves or regroups elements, no arithmetic: Reshape, Flatten, Transpose, Squeeze, ...
//   ElementWise       one output element from the same-position input elements (broadcasting binary ops too)
//   ChannelPreserving output channel c depends only on input channel c (activations, BN, pooling)
//   PositivelyHomogeneous  f(a x) = a f(x) for a > 0 (ReLU family, max/average pooling, layout)
//   NonLinear         a non-linear activation: counts towards non-linear depth
//   PiecewiseLinear   non-linear, but linear on each side of a breakpoint (what linearize can linearize)
//   SharesScale       int8: output takes its input's quantization scale (no requantization)
//   Random            nondeterministic (never constant-folded)
// Default-domain ops only; an unknown op has no traits.
namespace OnnxOpt.GraphIR;

[Flags]
public enum OpTrait
{
    None = 0,
    Linear = 1 << 0,
    AffineArithmetic = 1 << 1,
    LinearReduce = 1 << 2,
    Layout = 1 << 3,
    ElementWise = 1 << 4,
    ChannelPreserving = 1 << 5,
    PositivelyHomogeneous = 1 << 6,
    NonLinear = 1 << 7,
    PiecewiseLinear = 1 << 8,
    SharesScale = 1 << 9,
    Random = 1 << 10,
}

public static class OpTraits
{
    private const OpTrait Act = OpTrait.ElementWise | OpTrait.ChannelPreserving | OpTrait.NonLinear;
    private const OpTrait ReluLike = Act | OpTrait.PiecewiseLinear | OpTrait.PositivelyHomogeneous;
    private const OpTrait Pool = OpTrait.ChannelPreserving | OpTrait.PositivelyHomogeneous;
    private const OpTrait Move = OpTrait.Layout | OpTrait.PositivelyHomogeneous;

    private static readonly Dictionary<string, OpTrait> Table = new(StringComparer.Ordinal)
    {
        ["Conv"] = OpTrait.Linear,
        ["ConvTranspose"] = OpTrait.Linear,
        ["Gemm"] = OpTrait.Linear,
        ["MatMul"] = OpTrait.Linear,
        ["Add"] = OpTrait.AffineArithmetic | OpTrait.ElementWise,
        ["Sub"] = OpTrait.AffineArithmetic | OpTrait.ElementWise,
        ["Mul"] = OpTrait.ElementWise,
        ["Div"] = OpTrait.ElementWise,
        ["BatchNormalization"] = OpTrait.AffineArithmetic | OpTrait.ChannelPreserving,
        ["AveragePool"] = OpTrait.LinearReduce | Pool,
        ["GlobalAveragePool"] = OpTrait.LinearReduce | Pool,
        ["ReduceMean"] = OpTrait.LinearReduce | OpTrait.PositivelyHomogeneous,
        ["ReduceSum"] = OpTrait.LinearReduce | OpTrait.PositivelyHomogeneous,
        ["MaxPool"] = Pool | OpTrait.SharesScale,
        ["GlobalMaxPool"] = Pool,
        ["Identity"] = Move | OpTrait.ElementWise | OpTrait.ChannelPreserving,
        ["Reshape"] = Move | OpTrait.SharesScale,
        ["Flatten"] = Move | OpTrait.SharesScale,
        ["Transpose"] = Move | OpTrait.SharesScale,
        ["Squeeze"] = Move | OpTrait.SharesScale,
        ["Unsqueeze"] = Move | OpTrait.SharesScale,
        ["Split"] = Move | OpTrait.SharesScale,
        ["Slice"] = Move | OpTrait.SharesScale,
        ["Concat"] = Move,
        ["Resize"] = OpTrait.ChannelPreserving | OpTrait.SharesScale,
        ["Relu"] = ReluLike,
        ["LeakyRelu"] = ReluLike,
        ["PRelu"] = ReluLike,
        ["Clip"] = Act | OpTrait.PiecewiseLinear,
        ["Sigmoid"] = Act,
        ["HardSigmoid"] = Act,
        ["HardSwish"] = Act,
        ["Tanh"] = Act,
        ["Elu"] = Act,
        ["Selu"] = Act,
        ["Celu"] = Act,
        ["Gelu"] = Act,
        ["Mish"] = Act,
        ["Softplus"] = Act,
        ["Softsign"] = Act,
        ["ThresholdedRelu"] = Act,
        ["Erf"] = Act,
        ["RandomNormal"] = OpTrait.Random,
        ["RandomUniform"] = OpTrait.Random,
        ["RandomNormalLike"] = OpTrait.Random,
        ["RandomUniformLike"] = OpTrait.Random,
        ["Multinomial"] = OpTrait.Random,
        ["Bernoulli"] = OpTrait.Random,
    };

    /// <summary>The traits of a default-domain op type (None for unknown ops).</summary>
    public static OpTrait Of(string opType) => Table.GetValueOrDefault(opType);

    /// <summary>The traits of a node (None outside the default domain).</summary>
    public static OpTrait Of(Node n) => n.IsStandard ? Of(n.OpType) : OpTrait.None;

    /// <summary>Whether the node has every trait named.</summary>
    public static bool Has(Node n, OpTrait traits) => (Of(n) & traits) == traits;

    /// <summary>Whether the node has at least one of the traits named.</summary>
    public static bool HasAny(Node n, OpTrait traits) => (Of(n) & traits) != 0;

    /// <summary>Op types with every trait named, sorted.</summary>
    public static IEnumerable<string> With(OpTrait traits) =>
        Table.Where(kv => (kv.Value & traits) == traits).Select(kv => kv.Key).Order(StringComparer.Ordinal);
}
