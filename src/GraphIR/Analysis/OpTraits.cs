// What an operator is, as the passes need to know it; each op's traits live in its OpRegistry entry
// (src/GraphIR/Ops), this file names them.
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
// An unknown op has no traits.
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

/// <summary>An op's traits, as its OpRegistry entry declares them.</summary>
public static class OpTraits
{
    /// <summary>The traits of a default-domain op type (None for unknown ops).</summary>
    public static OpTrait Of(string opType) => OpRegistry.Find("", opType)?.Traits ?? OpTrait.None;

    /// <summary>The traits of a node (its registry entry's, in any domain; None for unknown ops).</summary>
    public static OpTrait Of(Node n) => OpRegistry.Find(n)?.Traits ?? OpTrait.None;

    /// <summary>Whether the node has every trait named.</summary>
    public static bool Has(Node n, OpTrait traits) => (Of(n) & traits) == traits;

    /// <summary>Whether the node has at least one of the traits named.</summary>
    public static bool HasAny(Node n, OpTrait traits) => (Of(n) & traits) != 0;

    /// <summary>Default-domain op types with every trait named, sorted.</summary>
    public static IEnumerable<string> With(OpTrait traits) => OpRegistry.All
        .Where(o => o.Domain.Length == 0 && traits != OpTrait.None && (o.Traits & traits) == traits)
        .Select(o => o.OpType).Distinct().Order(StringComparer.Ordinal);
}
