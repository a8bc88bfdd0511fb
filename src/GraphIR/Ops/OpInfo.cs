// What onnxopt knows about one operator, in one place (MLIR's op definition, ONNX Runtime's kernel and
// schema registration): for (domain, op type, since-version)
//   - Infer: output element types and shapes from the inputs' (with small integer constants tracked through
//     shape arithmetic, see ShapeContext);
//   - Traits: what the passes may assume (OpTrait: linear, element-wise, layout, non-linear, ...);
//   - Macs: multiply-accumulates per sample from the node's typed shapes (null: unknown shapes);
//   - Channels: how channels flow through it, for dependency groups (ChannelMapping);
//   - Quant: how int8 treats it (QuantClass).
// Libraries above GraphIR attach what they add to the same entry (MLIR's external models): the autodiff
// evaluator attaches its kernels (forward and VJP), read back with Get<T>(). One file per op family holds
// the entries (BinaryOps.cs, LinearOps.cs, ...); OpRegistry lists them and takes a user's own.
namespace OnnxOpt.GraphIR;

/// <summary>Output types of a node from its inputs' (null entries: unknown).</summary>
public delegate OnnxType?[] ShapeFunction(Node node, ShapeContext context);

/// <summary>Multiply-accumulates per sample (a symbolic leading batch dim counts as 1); null when shapes are
/// unknown.</summary>
public delegate long? MacFunction(Node node);

/// <summary>How output channels relate to input channels (for dependency groups). Channels are on axis 1 for
/// feature maps; the linear ops say which axis their weights map.</summary>
public enum ChannelMapping
{
    /// <summary>Not known: a group reaching it cannot be pruned.</summary>
    Unknown,
    /// <summary>Output channel c from input channel c alone (activations, pooling, casts).</summary>
    ElementWise,
    /// <summary>Like ElementWise, with per-channel parameters sliced with the group (BatchNorm, PRelu).</summary>
    Tied,
    /// <summary>y = W x (+ b): the weight maps input channels to output channels (LinearOp).</summary>
    Linear,
    /// <summary>Element-wise with broadcasting: operands that carry channels are tied together.</summary>
    Binary,
    /// <summary>Concatenates channels (on the channel axis).</summary>
    Concat,
    /// <summary>Splits or slices channels (on the channel axis).</summary>
    SplitOrSlice,
    /// <summary>Pads spatial axes only (the channel axis unpadded).</summary>
    Pad,
    /// <summary>Resizes spatial axes only.</summary>
    Resize,
    /// <summary>Flattens [N, C, spatial...] to [N, C * spatial].</summary>
    Flatten,
    /// <summary>Reshape or Squeeze that keeps the channel axis whole: unit axes dropped ([N, C, 1, 1] -> [N, C]) or
    /// axes merged or split around it ([N, C, H, W] -> [N, C, H*W]).</summary>
    DropUnitAxes,
    /// <summary>Moves the channel axis where the permutation says.</summary>
    Transpose,
}

/// <summary>How static int8 quantization treats an op (ops that only move elements take their input's scale:
/// the SharesScale trait).</summary>
public enum QuantClass
{
    /// <summary>Stays float (its inputs and outputs are dequantized as needed).</summary>
    None,
    /// <summary>Runs as an int8 kernel on quantized activations: its inputs and output get Q/DQ pairs.</summary>
    Compute,
    /// <summary>Like Compute, with a constant weight quantized too (per channel where allowed).</summary>
    WeightedCompute,
}

public sealed class OpInfo
{
    // Copy on write, like the registry's table: Get (per node, per evaluator step) takes no lock.
    private Dictionary<Type, object> _attached = new();

    public OpInfo(string opType, string domain = "", int sinceVersion = 1)
    {
        OpType = opType;
        Domain = Model.IsDefaultDomain(domain) ? "" : domain;
        SinceVersion = sinceVersion;
    }

    /// <summary>"" is the default ai.onnx domain.</summary>
    public string Domain { get; }
    public string OpType { get; }
    /// <summary>The first opset of its domain this entry describes (the newest one not above the model's
    /// opset applies).</summary>
    public int SinceVersion { get; }
    public OpTrait Traits { get; init; }
    public ShapeFunction? Infer { get; init; }
    public MacFunction? Macs { get; init; }
    public ChannelMapping Channels { get; init; }
    public QuantClass Quant { get; init; }

    /// <summary>What a library above GraphIR attached to this op (e.g. the evaluator's kernels), or null.</summary>
    public T? Get<T>() where T : class =>
        Volatile.Read(ref _attached).TryGetValue(typeof(T), out var v) ? (T)v : null;

    /// <summary>Attaches (or replaces) one aspect of this op that GraphIR does not know about.</summary>
    public void Attach<T>(T value) where T : class
    {
        lock (_gate)
            Volatile.Write(ref _attached, new Dictionary<Type, object>(_attached) { [typeof(T)] = value });
    }

    private readonly Lock _gate = new();

    public override string ToString() =>
        (Domain.Length == 0 ? "" : Domain + ".") + OpType + (SinceVersion > 1 ? $" (since {SinceVersion})" : "");
}
