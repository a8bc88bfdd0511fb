// One step of one ai.onnx operator's history: how a node written against the opset before Version becomes
// the same computation at Version (ONNX's own version converter calls these adapters). A rule like any other
// (root op, the one opset it applies at: Version - 1): its pure Match says why a node cannot be moved (then
// upgrade-opset writes nothing); Apply rewrites it through the pass's rewriter. upgrade-opset matches every
// due node of a step before applying any (a step is all or nothing), so it applies them itself rather than
// through the greedy driver (an adapter that always matches would be applied again).
//   Slice(x){starts,ends,axes}   @9   ->  Slice(x, starts, ends, axes)   @10
//   Softmax(x){axis=1}, rank 4   @12  ->  Reshape(Softmax(Flatten(x){axis=1}){axis=1}, Shape(x))  @13
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class OpsetAdapter(string op, long version, Action<Node, OpsetStep> apply,
    Func<Node, OpsetStep, string?>? refuse = null) : RewriteRule<Node>
{
    public string Op => op;
    /// <summary>The opset the node moves to.</summary>
    public long Version => version;

    public override string Name => $"{op}-to-opset-{version}";
    public override IReadOnlyList<string> RootOps { get; } = [op];
    public override long MinOpset => version - 1;
    public override long MaxOpset => version - 1;

    public override RuleMatch<Node> Match(Node root, RuleContext ctx) =>
        refuse?.Invoke(root, new OpsetStep(ctx.Pass, version)) is { } why ? new NoMatch(why) : root;

    public override void Apply(Node root, Node match, RuleContext ctx)
    {
        apply(root, new OpsetStep(ctx.Pass, version));
        ctx.Stats.Count(Counters.Opset.Upgraded(op, version));
    }
}

/// <summary>What an adapter sees: the rewriter, value types from shape inference, constant makers.</summary>
public sealed class OpsetStep(PassContext ctx, long version)
{
    public Rewriter Rewriter { get; } = ctx.Rewriter;
    /// <summary>The opset the node moves to.</summary>
    public long Version { get; } = version;
    public PassStats Stats => ctx.Stats;

    /// <summary>An int64 1-D initializer beside the node.</summary>
    public Value Int64s(Node n, string what, long[] data) =>
        Rewriter.Constant(n.Graph, $"{BaseName(n)}_{what}", Tensor.FromInt64s("", [data.Length], data));

    /// <summary>A float 1-D initializer beside the node.</summary>
    public Value Floats(Node n, string what, float[] data) =>
        Rewriter.Constant(n.Graph, $"{BaseName(n)}_{what}", Tensor.FromFloats("", [data.Length], data));

    /// <summary>A scalar initializer of a floating element type (the type of the data it goes with).</summary>
    public Value Scalar(Node n, string what, DataType type, double value)
    {
        var t = type switch
        {
            DataType.Float => Tensor.FromFloats("", [], [(float)value]),
            DataType.Double => Tensor.FromValues<double>("", DataType.Double, [], [value]),
            DataType.Float16 => Tensor.FromValues<Half>("", DataType.Float16, [], [(Half)value]),
            DataType.Int8 => Tensor.FromValues<sbyte>("", DataType.Int8, [], [checked((sbyte)value)]),
            DataType.UInt8 => Tensor.FromValues<byte>("", DataType.UInt8, [], [checked((byte)value)]),
            DataType.Int32 => Tensor.FromValues<int>("", DataType.Int32, [], [checked((int)value)]),
            DataType.Int64 => Tensor.FromInt64s("", [], [checked((long)value)]),
            _ => throw new OnnxModelException($"upgrade-opset: node {n}: no scalar of type {type}"),
        };
        return Rewriter.Constant(n.Graph, $"{BaseName(n)}_{what}", t);
    }

    /// <summary>The element type of a value, if shape inference knows it.</summary>
    public static DataType? ElementType(Value? v) =>
        v?.Initializer?.ElementType ?? (v?.Type is { IsTensor: true, HasElementType: true } t
            && t.ElementType != DataType.Undefined ? t.ElementType : null);

    /// <summary>The rank of a value, if known.</summary>
    public static int? Rank(Value? v) => v?.Initializer?.Dims.Length ?? v?.Type?.Shape?.Dims.Count;

    public static string BaseName(Node n) => !string.IsNullOrEmpty(n.Name) ? n.Name : n.Output().Name;

    /// <summary>Moves an attribute of ints to input <paramref name="index"/> as an int64 tensor.</summary>
    public void IntsToInput(Node n, string attr, int index)
    {
        if (n.GetInts(attr) is not { } v) return;
        Rewriter.SetInput(n, index, Int64s(n, attr, v));
        Rewriter.RemoveAttr(n, attr);
    }

    /// <summary>A node's data input must have a known element type for its attribute to become an input.</summary>
    public static string? NeedsType(Node n, string what) => ElementType(n.Input(0)) is null
        ? $"the element type of input '{n.Input(0)?.Name}' is unknown, and {what} must have it" : null;

    /// <summary>Recreates a node with another op type, inputs, attributes and only its first output (for
    /// ops whose extra outputs or input layout changed).</summary>
    public Node Recreate(Node n, string opType, IReadOnlyList<Value?> inputs, IEnumerable<OnnxAttribute> attrs)
    {
        var fresh = Rewriter.Insert(n.Graph, opType, inputs, BaseName(n), 1, attrs.ToArray());
        Rewriter.RenameNode(fresh, n.Name);
        Rewriter.Replace(n.Output(), fresh.Output());
        Rewriter.Erase(n);
        return fresh;
    }
}
