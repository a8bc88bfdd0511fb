// A graph: inputs, outputs, initializers and nodes kept in a stable topological order. Each value
// name is defined once in a graph; subgraphs (If/Loop/Scan bodies) may read outer-scope values,
// whose use lists then name the subgraph's node.
//
// This class holds the primitive, use-list-preserving edits (add, set input, replace uses, remove);
// passes make their changes through the Rewriter built on top of them. Its lists are read-only to
// everyone else; graph input/output membership and node names are indexed, so IsGraphInput,
// IsGraphOutput and FreshNodeName cost O(1) on large graphs.
namespace OnnxOpt.GraphIR;

public sealed record QuantAnnotation(string TensorName, IReadOnlyList<KeyValuePair<string, string>> Parameters);

public sealed class Graph
{
    private readonly Dictionary<string, Value> _values = new(StringComparer.Ordinal);

    public Graph(string name = "") { Name = name; }

    public string Name { get; set; }
    public bool HasName { get; set; } = true;
    public string? DocString { get; set; }
    public List<KeyValuePair<string, string>> MetadataProps { get; } = new();
    public List<QuantAnnotation> QuantizationAnnotations { get; } = new();
    public byte[]? UnknownFields { get; set; }
    /// <summary>The graph whose values this one may read (null for the main graph).</summary>
    public Graph? Parent { get; internal set; }

    private readonly List<Value> _inputs = new();
    private readonly List<Value> _outputs = new();
    private readonly List<Node> _nodes = new();
    private readonly List<Value> _initializers = new();
    private readonly List<Value> _sparseInitializers = new();
    private readonly List<Value> _valueInfos = new();
    private readonly Dictionary<Value, int> _inputCount = new();
    private readonly Dictionary<Value, int> _outputCount = new();
    private readonly Dictionary<string, int> _nodeNames = new(StringComparer.Ordinal);

    public IReadOnlyList<Value> Inputs => _inputs;
    public IReadOnlyList<Value> Outputs => _outputs;
    public IReadOnlyList<Node> Nodes => _nodes;
    /// <summary>The mutable node list, for tests that corrupt a graph on purpose (the verifier's tests).</summary>
    internal List<Node> NodeList => _nodes;
    /// <summary>Initializers in file order.</summary>
    public IReadOnlyList<Value> Initializers => _initializers;
    public IReadOnlyList<Value> SparseInitializers => _sparseInitializers;
    /// <summary>Values listed in value_info, in file order.</summary>
    public IReadOnlyList<Value> ValueInfos => _valueInfos;

    /// <summary>The node's position in the (topological) node order, -1 if it is not in this graph.</summary>
    public int PositionOf(Node n) => _nodes.IndexOf(n);

    public bool IsInput(Value v) => _inputCount.ContainsKey(v);
    public bool IsOutput(Value v) => _outputCount.ContainsKey(v);

    private static void Count(Dictionary<Value, int> d, Value v, int by)
    {
        var n = d.GetValueOrDefault(v) + by;
        if (n <= 0) d.Remove(v); else d[v] = n;
    }

    /// <summary>Appends a graph output (a value may be listed more than once, as ONNX allows).</summary>
    public void AddOutput(Value v)
    {
        _outputs.Add(v);
        Count(_outputCount, v, 1);
    }

    /// <summary>Replaces graph output <paramref name="index"/> (the rewriter keeps its name).</summary>
    public void SetOutput(int index, Value v)
    {
        Count(_outputCount, _outputs[index], -1);
        _outputs[index] = v;
        Count(_outputCount, v, 1);
    }

    public void ClearOutputs()
    {
        _outputs.Clear();
        _outputCount.Clear();
    }

    /// <summary>Lists an existing value (an initializer with a default, in old models) as a graph input.</summary>
    public void AddInputValue(Value v)
    {
        if (v.Graph != this) throw new InvalidOperationException($"'{v.Name}' belongs to graph '{v.Graph.Name}'");
        _inputs.Add(v);
        Count(_inputCount, v, 1);
    }

    /// <summary>Adds a value_info entry (a value of this graph, or a detached one kept for export).</summary>
    public void AddValueInfo(Value v) => _valueInfos.Add(v);

    /// <summary>Drops every value_info entry (the values stay); returns how many there were.</summary>
    public int ClearValueInfos()
    {
        var n = _valueInfos.Count;
        _valueInfos.Clear();
        return n;
    }

    /// <summary>Appends a node built with NewDetachedNode (importers and the cloner).</summary>
    internal void AppendNode(Node n)
    {
        _nodes.Add(n);
        n.InGraph = true;
        NameIndex(n.Name, 1);
    }

    internal void NameIndex(string? name, int by)
    {
        if (name is null) return;
        var k = _nodeNames.GetValueOrDefault(name) + by;
        if (k <= 0) _nodeNames.Remove(name); else _nodeNames[name] = k;
    }

    public IEnumerable<Value> Values => _values.Values;
    public bool Defines(string name) => _values.ContainsKey(name);

    /// <summary>The value of that name here or in an enclosing graph.</summary>
    public Value? Lookup(string name)
    {
        for (var g = this; g is not null; g = g.Parent)
            if (g._values.TryGetValue(name, out var v)) return v;
        return null;
    }

    public Value? Find(string name) => _values.GetValueOrDefault(name);

    /// <summary>A node name not used by any node of this graph: base, base_1, ...</summary>
    public string FreshNodeName(string baseName)
    {
        if (!_nodeNames.ContainsKey(baseName)) return baseName;
        for (int i = 1; ; i++) if (!_nodeNames.ContainsKey($"{baseName}_{i}")) return $"{baseName}_{i}";
    }

    internal Value Define(string name)
    {
        if (_values.ContainsKey(name))
            throw new OnnxModelException($"value '{name}' is defined more than once in graph '{Name}'");
        var v = new Value(this, name);
        _values.Add(name, v);
        return v;
    }

    /// <summary>A name not used in this graph or any enclosing one: base, base_1, base_2, ...</summary>
    public string FreshName(string baseName)
    {
        if (!NameTaken(baseName)) return baseName;
        for (int i = 1; ; i++)
        {
            var n = $"{baseName}_{i}";
            if (!NameTaken(n)) return n;
        }
    }

    private bool NameTaken(string n)
    {
        for (var g = this; g is not null; g = g.Parent)
            if (g._values.ContainsKey(n)) return true;
        return false;
    }

    public Value AddInput(string name, OnnxType? type)
    {
        var v = Define(name);
        v.Type = type;
        _inputs.Add(v);
        Count(_inputCount, v, 1);
        return v;
    }

    public Value AddInitializer(Tensor t)
    {
        var v = Define(t.Name);
        v.Initializer = t;
        _initializers.Add(v);
        return v;
    }

    /// <summary>Replaces an initializer's data (same name, same uses); dims may change.</summary>
    public void SetInitializerData(Value v, Tensor data)
    {
        if (v.Initializer is null || v.Graph != this)
            throw new InvalidOperationException($"'{v.Name}' is not an initializer of graph '{Name}'");
        v.Initializer = data.Name == v.Name ? data : data.WithName(v.Name);
    }

    /// <summary>Turns a graph input into a constant (e.g. to freeze a shape input); the value keeps its name and uses.</summary>
    public void FreezeInput(Value input, Tensor data)
    {
        if (!_inputs.Remove(input)) throw new InvalidOperationException($"'{input.Name}' is not a graph input");
        Count(_inputCount, input, -1);
        if (data.Name != input.Name) data = data.WithName(input.Name);
        input.Initializer = data;
        _initializers.Add(input);
    }

    internal Value AddSparseInitializer(SparseTensor t)
    {
        var v = Define(t.Values.Name);
        v.SparseInitializer = t;
        _sparseInitializers.Add(v);
        return v;
    }

    /// <summary>Appends a node; output names "" are omitted optional outputs.</summary>
    public Node AddNode(string opType, IEnumerable<Value?> inputs, IEnumerable<string> outputNames,
        string domain = "", string? name = null)
    {
        var n = new Node(this, opType, domain) { Name = name };
        foreach (var o in outputNames) n.OutputList.Add(o.Length == 0 ? null : DefineOutput(n, o, n.OutputList.Count));
        foreach (var i in inputs) AppendInput(n, i);
        AppendNode(n);
        return n;
    }

    private Value DefineOutput(Node n, string name, int index)
    {
        var v = Define(name);
        v.Producer = n;
        v.ProducerOutputIndex = index;
        return v;
    }

    internal Node NewDetachedNode(string opType, string domain) => new(this, opType, domain);

    internal void AddOutputTo(Node n, string name) =>
        n.OutputList.Add(name.Length == 0 ? null : DefineOutput(n, name, n.OutputList.Count));

    public void AppendInput(Node n, Value? v)
    {
        n.InputList.Add(v);
        v?.UseList.Add(new Use(n, n.InputList.Count - 1));
    }

    public void SetInput(Node n, int index, Value? v)
    {
        while (n.InputList.Count <= index) n.InputList.Add(null);
        var old = n.InputList[index];
        old?.UseList.Remove(new Use(n, index));
        n.InputList[index] = v;
        v?.UseList.Add(new Use(n, index));
    }

    /// <summary>Points every use of <paramref name="from"/> (also in subgraphs) at <paramref name="to"/>;
    /// graph outputs are not touched (the rewriter decides about those).</summary>
    public static void ReplaceUses(Value from, Value to)
    {
        foreach (var u in from.UseList.ToArray()) u.Node.Graph.SetInput(u.Node, u.InputIndex, to);
    }

    /// <summary>Removes a node whose outputs are unused (detaching its inputs).</summary>
    public void RemoveNode(Node n)
    {
        foreach (var o in n.OutputList)
        {
            if (o is null) continue;
            if (o.UseList.Count > 0 || o.IsGraphOutput)
                throw new InvalidOperationException($"cannot remove node {n}: output '{o.Name}' is still used");
        }
        for (int i = 0; i < n.InputList.Count; i++) n.InputList[i]?.UseList.Remove(new Use(n, i));
        foreach (var o in n.OutputList) if (o is not null) { _values.Remove(o.Name); _valueInfos.Remove(o); }
        _nodes.Remove(n);
        NameIndex(n.Name, -1);
        n.InGraph = false;
        n.IsErased = true;
        foreach (var sg in n.Subgraphs()) sg.DetachAllUses();
    }

    private void DetachAllUses()
    {
        foreach (var n in Nodes)
        {
            for (int i = 0; i < n.InputList.Count; i++) n.InputList[i]?.UseList.Remove(new Use(n, i));
            foreach (var sg in n.Subgraphs()) sg.DetachAllUses();
        }
    }

    public void RemoveInitializer(Value v)
    {
        if (v.UseList.Count > 0
            || v.IsGraphOutput) throw new InvalidOperationException($"initializer '{v.Name}' is still used");
        _initializers.Remove(v);
        _sparseInitializers.Remove(v);
        while (_inputs.Remove(v)) Count(_inputCount, v, -1);
        _valueInfos.Remove(v);
        _values.Remove(v.Name);
    }

    /// <summary>Renames a value that is not a graph input or output.</summary>
    public void Rename(Value v, string newName)
    {
        if (v.Name == newName) return;
        if (_values.ContainsKey(newName)) throw new InvalidOperationException($"name '{newName}' already exists");
        _values.Remove(v.Name);
        v.Name = newName;
        if (v.Initializer is not null) v.Initializer.Name = newName;
        _values.Add(newName, v);
    }

    /// <summary>Reorders nodes topologically, keeping the current order wherever it is already valid
    /// (Kahn's algorithm taking the earliest ready node). Throws naming a node on a cycle.</summary>
    public void SortTopologically()
    {
        var index = new Dictionary<Node, int>();
        for (int i = 0; i < Nodes.Count; i++) index[Nodes[i]] = i;
        var pending = new int[Nodes.Count];
        var consumers = new List<int>[Nodes.Count];
        for (int i = 0; i < Nodes.Count; i++) consumers[i] = new List<int>();
        for (int i = 0; i < Nodes.Count; i++)
        {
            foreach (var dep in Dependencies(Nodes[i]).Distinct())
            {
                if (!index.TryGetValue(dep, out var j)) continue;
                pending[i]++;
                if (j != i) consumers[j].Add(i);
            }
        }
        var ready = new PriorityQueue<int, int>();
        for (int i = 0; i < Nodes.Count; i++) if (pending[i] == 0) ready.Enqueue(i, i);
        var order = new List<Node>(Nodes.Count);
        while (ready.TryDequeue(out var i, out _))
        {
            order.Add(Nodes[i]);
            foreach (var c in consumers[i]) if (--pending[c] == 0) ready.Enqueue(c, c);
        }
        if (order.Count != Nodes.Count)
        {
            var stuck = Nodes.Where((n, i) => pending[i] > 0).First();
            throw new OnnxModelException($"graph '{Name}' has a cycle through node {stuck}");
        }
        _nodes.Clear();
        _nodes.AddRange(order);
    }

    /// <summary>Nodes of this graph that <paramref name="n"/> reads, directly or from within its subgraphs.</summary>
    internal IEnumerable<Node> Dependencies(Node n)
    {
        foreach (var v in n.InputList)
            if (v?.Producer is { } p && p.Graph == this) yield return p;
        foreach (var sg in n.Subgraphs())
            foreach (var p in sg.OuterReads(this)) yield return p;
    }

    private IEnumerable<Node> OuterReads(Graph ancestor)
    {
        foreach (var n in Nodes)
        {
            foreach (var v in n.InputList)
                if (v?.Producer is { } p && p.Graph == ancestor) yield return p;
            foreach (var sg in n.Subgraphs())
                foreach (var p in sg.OuterReads(ancestor)) yield return p;
        }
    }

    /// <summary>This graph and every nested subgraph, depth first.</summary>
    public IEnumerable<Graph> SelfAndSubgraphs()
    {
        yield return this;
        foreach (var n in Nodes)
            foreach (var sg in n.Subgraphs())
                foreach (var g in sg.SelfAndSubgraphs()) yield return g;
    }
}

public sealed class OnnxModelException(string message) : Exception(message);
