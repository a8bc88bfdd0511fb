// An operator of the reference evaluator: a forward function and its vector-Jacobian product (VJP).
// Forward maps the node's inputs to its outputs (and may save state for the VJP); Backward maps the
// gradients of the outputs (null: zero) to the gradients of the inputs that are asked for (null: none,
// e.g. integer inputs such as shapes and indices). Ops are stateless singletons per element type.
using System.Numerics;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Autodiff.Ops;

public sealed class OpCall<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public required Node Node { get; init; }
    public required NdArray<T>?[] Inputs { get; init; }
    /// <summary>Opset version of the default domain (semantics of Softmax, Clip, Split, ... depend on it).</summary>
    public long Opset { get; init; }
    public NdArray<T>[] Outputs { get; set; } = [];
    /// <summary>Whatever Forward keeps for Backward (e.g. max-pool argmax positions).</summary>
    public object? Saved { get; set; }

    public NdArray<T> In(int i) => i < Inputs.Length && Inputs[i] is { } a ? a
        : throw new OnnxModelException($"node {Node}: input {i} is required");

    public NdArray<T>? Optional(int i) => i < Inputs.Length ? Inputs[i] : null;

    public OnnxModelException Error(string what) => new($"node {Node}: {what}");
}

public interface IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    NdArray<T>[] Forward(OpCall<T> c);

    /// <summary>Gradients of the inputs; <paramref name="needed"/>[i] says whether input i needs one.</summary>
    NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed);
}

/// <summary>Ops with no gradient (shape and index computations).</summary>
public abstract class ConstantOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public abstract NdArray<T>[] Forward(OpCall<T> c);
    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed) =>
        new NdArray<T>?[c.Inputs.Length];
}

/// <summary>The evaluator's kernel for an op, attached to the op's OpRegistry entry (one per element type).</summary>
public sealed record EvaluatorKernel<T>(IOp<T> Op) where T : unmanaged, IFloatingPointIeee754<T>;

/// <summary>The evaluator's kernels (default ONNX domain), attached to the ops' OpRegistry entries on first use
/// (an op the registry does not list yet is registered with no shape function, which the completeness test
/// refuses).</summary>
public static class Kernels<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static readonly Dictionary<string, IOp<T>> All = new(StringComparer.Ordinal)
    {
        ["Conv"] = new ConvOp<T>(),
        ["ConvTranspose"] = new ConvTransposeOp<T>(),
        ["Gemm"] = new GemmOp<T>(),
        ["MatMul"] = new MatMulOp<T>(),
        ["Add"] = new BinaryOp<T>(BinaryKind.Add),
        ["Sub"] = new BinaryOp<T>(BinaryKind.Sub),
        ["Mul"] = new BinaryOp<T>(BinaryKind.Mul),
        ["Div"] = new BinaryOp<T>(BinaryKind.Div),
        ["Relu"] = new ReluOp<T>(),
        ["LeakyRelu"] = new LeakyReluOp<T>(),
        ["PRelu"] = new PReluOp<T>(),
        ["Clip"] = new ClipOp<T>(),
        ["Sigmoid"] = new SigmoidOp<T>(),
        ["HardSigmoid"] = new HardSigmoidOp<T>(),
        ["HardSwish"] = new HardSwishOp<T>(),
        ["Tanh"] = new TanhOp<T>(),
        ["Softmax"] = new SoftmaxOp<T>(log: false),
        ["LogSoftmax"] = new SoftmaxOp<T>(log: true),
        ["MaxPool"] = new MaxPoolOp<T>(),
        ["AveragePool"] = new AveragePoolOp<T>(),
        ["GlobalAveragePool"] = new GlobalAveragePoolOp<T>(),
        ["GlobalMaxPool"] = new GlobalMaxPoolOp<T>(),
        ["BatchNormalization"] = new BatchNormOp<T>(),
        ["ReduceMean"] = new ReduceOp<T>(mean: true),
        ["ReduceSum"] = new ReduceOp<T>(mean: false),
        ["Identity"] = new IdentityOp<T>(),
        ["Dropout"] = new DropoutOp<T>(),
        ["Flatten"] = new FlattenOp<T>(),
        ["Reshape"] = new ReshapeOp<T>(),
        ["Squeeze"] = new SqueezeOp<T>(),
        ["Unsqueeze"] = new UnsqueezeOp<T>(),
        ["Transpose"] = new TransposeOp<T>(),
        ["Slice"] = new SliceOp<T>(),
        ["Pad"] = new PadOp<T>(),
        ["Gather"] = new GatherOp<T>(),
        ["Concat"] = new ConcatOp<T>(),
        ["Split"] = new SplitOp<T>(),
        ["Shape"] = new ShapeOp<T>(),
        ["Constant"] = new ConstantValueOp<T>(),
        ["Cast"] = new CastOp<T>(),
        ["ConstantOfShape"] = new ConstantOfShapeOp<T>(),
        ["Abs"] = MathOps<T>.Abs,
        ["Neg"] = MathOps<T>.Neg,
        ["Sqrt"] = MathOps<T>.Sqrt,
        ["Exp"] = MathOps<T>.Exp,
        ["Log"] = MathOps<T>.Log,
        ["Reciprocal"] = MathOps<T>.Reciprocal,
        ["Erf"] = MathOps<T>.ErfOp,
        ["Softplus"] = MathOps<T>.SoftplusOp,
        ["Mish"] = MathOps<T>.Mish,
        ["Selu"] = new SeluOp<T>(),
        ["Elu"] = new EluOp<T>(),
        ["Gelu"] = new GeluOp<T>(),
        ["Pow"] = new PowOp<T>(),
        ["Max"] = new VariadicOp<T>(VariadicKind.Max),
        ["Min"] = new VariadicOp<T>(VariadicKind.Min),
        ["Sum"] = new VariadicOp<T>(VariadicKind.Sum),
        ["Mean"] = new VariadicOp<T>(VariadicKind.Mean),
        ["ReduceMax"] = new ReduceKindOp<T>(ReduceKind.Max),
        ["ReduceMin"] = new ReduceKindOp<T>(ReduceKind.Min),
        ["ReduceProd"] = new ReduceKindOp<T>(ReduceKind.Prod),
        ["ReduceL2"] = new ReduceKindOp<T>(ReduceKind.L2),
        ["ReduceLogSumExp"] = new ReduceKindOp<T>(ReduceKind.LogSumExp),
        ["LayerNormalization"] = new LayerNormOp<T>(),
        ["InstanceNormalization"] = new InstanceNormOp<T>(),
        ["GroupNormalization"] = new GroupNormOp<T>(),
        ["Expand"] = new ExpandOp<T>(),
        ["Tile"] = new TileOp<T>(),
        ["Where"] = new WhereOp<T>(),
        ["Equal"] = new CompareOp<T>(CompareKind.Equal),
        ["Less"] = new CompareOp<T>(CompareKind.Less),
        ["Greater"] = new CompareOp<T>(CompareKind.Greater),
        ["LessOrEqual"] = new CompareOp<T>(CompareKind.LessOrEqual),
        ["GreaterOrEqual"] = new CompareOp<T>(CompareKind.GreaterOrEqual),
        ["Not"] = new NotOp<T>(),
        ["ArgMax"] = new ArgExtremeOp<T>(max: true),
        ["ArgMin"] = new ArgExtremeOp<T>(max: false),
        ["Range"] = new RangeOp<T>(),
        ["Resize"] = new ResizeOp<T>(),
        ["Einsum"] = new EinsumOp<T>(),
        ["QuantizeLinear"] = new QuantizeLinearOp<T>(),
        ["DequantizeLinear"] = new DequantizeLinearOp<T>(),
    };

    static Kernels()
    {
        foreach (var (op, kernel) in All)
        {
            var info = OpRegistry.Find("", op);
            if (info is null) OpRegistry.Register(info = new OpInfo(op));
            info.Attach(new EvaluatorKernel<T>(kernel));
        }
    }

    public static IReadOnlyCollection<string> OpTypes => All.Keys;

    /// <summary>The kernel attached to the node's registry entry, or null.</summary>
    public static IOp<T>? Find(Node n) => OpRegistry.Find(n)?.Get<EvaluatorKernel<T>>()?.Op;
}

internal static class Attr
{
    public static long Int(Node n, string name, long dflt) => n.GetInt(name, dflt);

    public static float Float(Node n, string name, float dflt) => n.GetFloat(name, dflt);

    /// <summary>Integer list from an attribute (older opsets) or from an input (newer opsets), or null.</summary>
    public static long[]? Ints<T>(OpCall<T> c, string attr, int input) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (c.Optional(input) is { } a) return a.ToLongs();
        return c.Node.GetInts(attr);
    }
}
