// A value (an SSA edge): a name, an optional declared type and exactly one definition: a graph
// input, an initializer, or one output of one node. Uses lists every (node, input slot) reading it.
namespace OnnxOpt.GraphIR;

public readonly record struct Use(Node Node, int InputIndex);

public sealed class Value
{
    internal readonly List<Use> UseList = new();

    internal Value(Graph graph, string name) { Graph = graph; Name = name; }

    public Graph Graph { get; internal set; }
    public string Name { get; internal set; }
    public OnnxType? Type { get; set; }
    // Fields few values set, kept apart (a million-node graph saves two references per value).
    private RareFields? _rare;
    public string? DocString
    {
        get => _rare?.DocString;
        set => RareFields.Set(ref _rare, value, (r, v) => r.DocString = v);
    }
    /// <summary>metadata_props (allocated on first use: most nodes and values have none).</summary>
    public List<KeyValuePair<string, string>> MetadataProps => (_rare ??= new()).MetadataProps ??= new();
    /// <summary>metadata_props without allocating a list for the many that have none.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> MetadataPropsOrEmpty =>
        (IReadOnlyList<KeyValuePair<string, string>>?)_rare?.MetadataProps ?? [];
    public byte[]? UnknownFields
    {
        get => _rare?.UnknownFields;
        set => RareFields.Set(ref _rare, value, (r, v) => r.UnknownFields = v);
    }

    /// <summary>The node computing this value (null for graph inputs, initializers, outer-scope values).</summary>
    public Node? Producer { get; internal set; }
    public int ProducerOutputIndex { get; internal set; }
    /// <summary>Constant data when the value is an initializer.</summary>
    public Tensor? Initializer { get; internal set; }
    public SparseTensor? SparseInitializer { get; internal set; }

    public IReadOnlyList<Use> Uses => UseList;
    public bool IsGraphInput => Graph.IsInput(this);
    public bool IsGraphOutput => Graph.IsOutput(this);
    public bool IsInitializer => Initializer is not null || SparseInitializer is not null;

    public DataType ElementType => Type?.ElementType ?? Initializer?.ElementType ?? DataType.Undefined;

    /// <summary>The declared or inferred shape; for initializers, the tensor's dims.</summary>
    public Shape? Shape => Initializer is not null ? Shape.Of(Initializer.Dims) : Type?.Shape;

    public override string ToString() => Name;
}
