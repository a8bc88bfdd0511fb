// An operator application: op type in a domain, ordered inputs (null = omitted optional input),
// ordered outputs, attributes in file order, and the metadata ONNX allows on nodes.
namespace OnnxOpt.GraphIR;

public sealed class Node
{
    // Exact-size arrays, not lists: a million-node graph saves a list object and its slack per node. An edit
    // that adds a slot replaces the array (inputs are few), so read Inputs again after one.
    internal Value?[] InputList = [];
    internal Value?[] OutputList = [];

    internal void AddInputSlot(Value? v) => InputList = [.. InputList, v];
    internal void AddOutputSlot(Value? v) => OutputList = [.. OutputList, v];

    internal Node(Graph graph, string opType, string domain) { Graph = graph; OpType = opType; Domain = domain; }

    private string? _name;

    public Graph Graph { get; internal set; }
    /// <summary>Optional, not necessarily unique (ONNX does not require it); indexed by its graph.</summary>
    public string? Name
    {
        get => _name;
        set
        {
            if (InGraph) { Graph.NameIndex(_name, -1); Graph.NameIndex(value, 1); }
            _name = value;
        }
    }

    /// <summary>Whether the node is in its graph's node list (false once erased).</summary>
    public bool InGraph { get; internal set; }
    // The graph's node order: a doubly linked list with increasing labels (Graph keeps them).
    internal Node? Prev, Next;
    internal long Order;
    /// <summary>The node's label in its graph's order: increasing along the node list (compare, never store).</summary>
    public long OrderLabel => Order;
    /// <summary>Position in the graph's last materialized node list (valid while that list is current).</summary>
    internal int Index;
    /// <summary>Changed through Rewriter.SetOpType.</summary>
    public string OpType { get; internal set; }
    /// <summary>"" for the default ai.onnx domain.</summary>
    public string Domain { get; internal set; }
    // Fields few nodes set, kept apart (a million-node graph saves three references per node).
    private RareFields? _rare;
    public string? Overload
    {
        get => _rare?.Overload;
        set => RareFields.Set(ref _rare, value, (r, v) => r.Overload = v);
    }
    public string? DocString
    {
        get => _rare?.DocString;
        set => RareFields.Set(ref _rare, value, (r, v) => r.DocString = v);
    }
    private List<OnnxAttribute>? _attributes;
    /// <summary>The attributes in file order (allocated on first use: most nodes of a large graph have none).
    /// </summary>
    public List<OnnxAttribute> Attributes => _attributes ??= new();
    /// <summary>The attributes without allocating a list for a node that has none.</summary>
    public IReadOnlyList<OnnxAttribute> AttributesOrEmpty => (IReadOnlyList<OnnxAttribute>?)_attributes ?? [];
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
    /// <summary>Whether the domain field was present in the file (kept for lossless export).</summary>
    public bool HasDomainField { get; set; }

    /// <summary>True once the node was removed from its graph.</summary>
    public bool IsErased { get; internal set; }

    public IReadOnlyList<Value?> Inputs => InputList;
    public IReadOnlyList<Value?> Outputs => OutputList;

    public Value? Input(int i) => i < InputList.Length ? InputList[i] : null;
    public Value Output(int i = 0) =>
        OutputList[i] ?? throw new InvalidOperationException($"node {this}: output {i} is omitted");

    public bool IsStandard => Domain is "" or "ai.onnx";

    public OnnxAttribute? Attr(string name) => _attributes?.Find(a => a.Name == name);
    public long GetInt(string name, long dflt) => Attr(name) is { Kind: AttributeKind.Int } a ? a.I : dflt;
    public float GetFloat(string name, float dflt) => Attr(name) is { Kind: AttributeKind.Float } a ? a.F : dflt;
    public long[]? GetInts(string name) => Attr(name) is { Kind: AttributeKind.Ints } a ? a.Ints : null;
    public float[]? GetFloats(string name) => Attr(name) is { Kind: AttributeKind.Floats } a ? a.Floats : null;
    public string? GetString(string name) => Attr(name) is { Kind: AttributeKind.String } a ? a.StringValue : null;
    public Tensor? GetTensor(string name) => Attr(name) is { Kind: AttributeKind.Tensor } a ? a.T : null;

    public void SetAttr(OnnxAttribute a)
    {
        var i = Attributes.FindIndex(x => x.Name == a.Name);
        if (i >= 0) Attributes[i] = a; else Attributes.Add(a);
    }

    public IEnumerable<Graph> Subgraphs() => AttributesOrEmpty.SelectMany(a => a.Subgraphs());

    /// <summary>A label for diagnostics: the node's name, else its op type and first output.</summary>
    public override string ToString() =>
        !string.IsNullOrEmpty(Name) ? $"'{Name}' ({OpType})" : $"{OpType} -> '{OutputList.FirstOrDefault()?.Name}'";
}
