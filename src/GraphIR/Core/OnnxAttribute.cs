// A node attribute: a name, a kind and exactly one typed payload. Inside functions an attribute
// may instead reference an attribute of the calling node (RefAttrName, written "@name" in text).
namespace OnnxOpt.GraphIR;

public enum AttributeKind
{
    Undefined = 0, Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5, Floats = 6, Ints = 7,
    Strings = 8, Tensors = 9, Graphs = 10, SparseTensor = 11, SparseTensors = 12, TypeProto = 13, TypeProtos = 14,
}

public sealed class OnnxAttribute
{
    public required string Name { get; init; }
    public AttributeKind Kind { get; init; }
    public float F { get; init; }
    public long I { get; init; }
    public byte[]? S { get; init; }
    public Tensor? T { get; init; }
    public Graph? G { get; init; }
    public SparseTensor? Sparse { get; init; }
    public OnnxType? Tp { get; init; }
    public float[]? Floats { get; init; }
    public long[]? Ints { get; init; }
    public byte[][]? Strings { get; init; }
    public Tensor[]? Tensors { get; init; }
    public Graph[]? Graphs { get; init; }
    public SparseTensor[]? SparseTensors { get; init; }
    public OnnxType[]? Tps { get; init; }
    public string? RefAttrName { get; init; }
    public string? DocString { get; init; }
    public byte[]? UnknownFields { get; set; }
    /// <summary>The kind field was absent in the file (IR v1 style); re-exported as absent.</summary>
    public bool KindImplicit { get; init; }

    public string StringValue => System.Text.Encoding.UTF8.GetString(S ?? Array.Empty<byte>());

    public static OnnxAttribute Int(string name, long v) => new() { Name = name, Kind = AttributeKind.Int, I = v };
    public static OnnxAttribute Float(string name, float v) => new() { Name = name, Kind = AttributeKind.Float, F = v };
    public static OnnxAttribute String(string name, string v) => new()
    {
        Name = name,
        Kind = AttributeKind.String,
        S = System.Text.Encoding.UTF8.GetBytes(v)
    };
    public static OnnxAttribute IntList(string name, params long[] v) => new()
    {
        Name = name,
        Kind = AttributeKind.Ints,
        Ints = v
    };
    public static OnnxAttribute FloatList(string name, params float[] v) => new()
    {
        Name = name,
        Kind = AttributeKind.Floats,
        Floats = v
    };
    public static OnnxAttribute FromTensor(string name, Tensor t) => new()
    {
        Name = name,
        Kind = AttributeKind.Tensor,
        T = t
    };
    public static OnnxAttribute FromGraph(string name, Graph g) => new()
    {
        Name = name,
        Kind = AttributeKind.Graph,
        G = g
    };

    public IEnumerable<Graph> Subgraphs()
    {
        if (G is not null) yield return G;
        if (Graphs is not null) foreach (var g in Graphs) yield return g;
    }

    public static string KindName(AttributeKind k) => k switch
    {
        AttributeKind.Float => "float",
        AttributeKind.Int => "int",
        AttributeKind.String => "string",
        AttributeKind.Tensor => "tensor",
        AttributeKind.Graph => "graph",
        AttributeKind.Floats => "floats",
        AttributeKind.Ints => "ints",
        AttributeKind.Strings => "strings",
        AttributeKind.Tensors => "tensors",
        AttributeKind.Graphs => "graphs",
        AttributeKind.SparseTensor => "sparse_tensor",
        AttributeKind.SparseTensors => "sparse_tensors",
        AttributeKind.TypeProto => "type_proto",
        AttributeKind.TypeProtos => "type_protos",
        _ => "undefined",
    };

    public static bool TryParseKind(string s, out AttributeKind k)
    {
        foreach (AttributeKind c in Enum.GetValues<AttributeKind>())
            if (KindName(c) == s) { k = c; return true; }
        k = AttributeKind.Undefined;
        return false;
    }
}
