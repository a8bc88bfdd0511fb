// Tensor shapes with symbolic dimensions. A Dim is a known size, a named symbol (e.g. "N"), or
// unknown ("?"). A Shape of null (on a TensorType) means the rank itself is unknown.
namespace OnnxOpt.GraphIR;

public readonly record struct Dim(long? Value, string? Param, string? Denotation = null)
{
    public static Dim Of(long v) => new(v, null);
    public static Dim Symbol(string s) => new(null, s);
    public static readonly Dim Unknown = new(null, null);
    public bool IsKnown => Value.HasValue;
    public override string ToString() =>
        Value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? Param ?? "?";
}

public sealed class Shape : IEquatable<Shape>
{
    public IReadOnlyList<Dim> Dims { get; }
    public Shape(IEnumerable<Dim> dims) => Dims = dims.ToArray();
    public static Shape Of(params long[] dims) => new(dims.Select(Dim.Of));
    public static readonly Shape Scalar = new(Array.Empty<Dim>());

    public int Rank => Dims.Count;
    public Dim this[int i] => Dims[i];
    public bool IsFullyKnown => Dims.All(d => d.IsKnown);

    /// <summary>Known sizes; throws if any dimension is symbolic.</summary>
    public long[] ToArray() =>
        Dims.Select(d => d.Value ?? throw new InvalidOperationException($"dimension '{d}' is not static")).ToArray();

    public long? ElementCount()
    {
        long n = 1;
        foreach (var d in Dims)
        {
            if (d.Value is not long v) return null;
            n *= v;
        }
        return n;
    }

    public bool Equals(Shape? other) => other is not null && Dims.SequenceEqual(other.Dims);
    public override bool Equals(object? obj) => Equals(obj as Shape);
    public override int GetHashCode() => Dims.Aggregate(Rank, (h, d) => HashCode.Combine(h, d));
    public override string ToString() => "[" + string.Join(",", Dims) + "]";
}
