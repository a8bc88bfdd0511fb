// The type of a value: a tensor (element type + optional shape) or one of ONNX's other types
// (sparse tensor, sequence, map, optional, opaque), carried through so that no model loses them.
namespace OnnxOpt.GraphIR;

public enum TypeKind { Tensor, SparseTensor, Sequence, Map, Optional, Opaque, None }

public sealed record OnnxType
{
    public TypeKind Kind { get; init; }
    /// <summary>Element type for tensors/sparse tensors; key type for maps.</summary>
    public DataType ElementType { get; init; }
    /// <summary>Null: rank unknown. Only for tensors and sparse tensors.</summary>
    public Shape? Shape { get; init; }
    /// <summary>Element type of a sequence/optional, value type of a map.</summary>
    public OnnxType? Inner { get; init; }
    public string? OpaqueDomain { get; init; }
    public string? OpaqueName { get; init; }
    public string? Denotation { get; init; }
    /// <summary>Whether the tensor type carried an element type field at all.</summary>
    public bool HasElementType { get; init; } = true;

    public static OnnxType Tensor(DataType t, Shape? shape) => new()
    {
        Kind = TypeKind.Tensor,
        ElementType = t,
        Shape = shape
    };
    public static OnnxType Tensor(DataType t, params long[] dims) => Tensor(t, Shape.Of(dims));

    public bool IsTensor => Kind == TypeKind.Tensor;

    public bool Equals(OnnxType? o) => o is not null && Kind == o.Kind && ElementType == o.ElementType &&
        Equals(Shape, o.Shape) && Equals(Inner, o.Inner) && OpaqueDomain == o.OpaqueDomain &&
        OpaqueName == o.OpaqueName && Denotation == o.Denotation && HasElementType == o.HasElementType;

    public override int GetHashCode() => HashCode.Combine(Kind, ElementType, Shape, Inner, OpaqueName, Denotation);
}
