// A graph: inputs, outputs, initializers and nodes kept in a stable topological order. Each value
// name is defined once in a graph; subgraphs (If/Loop/Scan bodies) may read outer-scope values,
// whose use lists then name the subgraph's node.
//
// This class holds the primitive, use-list-preserving edits (add, set input, replace uses, remove). Building
// a graph (AddInput, AddInitializer, AddNode, AddOutput, AddValueInfo: importers, GraphBuilder, a scratch model)
// is public; every edit of a graph that exists goes through the Rewriter, which journals it for the rule driver:
// the editing primitives (SetInput, ReplaceUses, RemoveNode, RemoveInitializer(s), Rename, SetInitializerData,
// FreezeInput, SortTopologically) are internal to GraphIR. Its lists are read-only to everyone else; graph
// input/output membership and node names are indexed, so IsGraphInput, IsGraphOutput and FreshNodeName cost
// O(1) on large graphs.
//
// Node order is kept valid by construction, in time that does not grow with the graph:
//   - the nodes form a doubly linked list whose labels (Node.Order) increase along it, spaced 2^32 apart,
//     so inserting or erasing anywhere is O(1) and "a before b" is one comparison; an insertion that finds
//     no gap between two labels relabels the whole list (O(N), after at least 32 insertions at one place);
//   - SetInput(n, i, v), when v's producer p comes after n, moves n and every node that depends on n and
//     sits before p (the only nodes that can be out of order) to just after p, keeping their relative
//     order (the forward half of Pearce and Kelly's dynamic topological sort); reaching p is a cycle,
//     maybe one a later edit undoes, so the graph is marked for the sort, which names a cycle that stays;
//   - edges whose order this graph cannot repair locally (a reader inside a subgraph, a node that gains an
//     input through AppendInput) mark the graph for a full sort, which SortIfNeeded (Rewriter.Finish) runs.
// Nodes, the read-only list, is materialized on demand and cached until the next edit, so iterating it
// while editing sees the list as it was.
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
    private const long LabelGap = 1L << 32;
    private Node? _first, _last;
    private int _nodeCount;
    private Node[]? _nodeArray;
    private readonly List<Value> _initializers = new();
    private readonly List<Value> _sparseInitializers = new();
    private readonly List<Value> _valueInfos = new();
    private readonly HashSet<Value> _valueInfoSet = new();
    private bool _valueInfosStale;
    private readonly Dictionary<Value, int> _inputCount = new();
    private readonly Dictionary<Value, int> _outputCount = new();
    // Node names in use (name -> nodes carrying it), built on the first FreshNodeName: loading and reading a
    // large graph never needs it.
    private Dictionary<string, int>? _nodeNames;

    public IReadOnlyList<Value> Inputs => _inputs;
    public IReadOnlyList<Value> Outputs => _outputs;
    /// <summary>The nodes in topological order (a snapshot: editing the graph while iterating it is safe).</summary>
    public IReadOnlyList<Node> Nodes => _nodeArray ??= MaterializeNodes();
    public int NodeCount => _nodeCount;
    /// <summary>Whether an edit left an order this graph could not repair locally (see SortIfNeeded).</summary>
    public bool OrderMayBeBroken { get; private set; }
    /// <summary>Initializers in file order.</summary>
    public IReadOnlyList<Value> Initializers => _initializers;
    public IReadOnlyList<Value> SparseInitializers => _sparseInitializers;
    /// <summary>Values listed in value_info, in file order.</summary>
    public IReadOnlyList<Value> ValueInfos
    {
        get
        {
            if (_valueInfosStale) { _valueInfos.RemoveAll(v => !_valueInfoSet.Contains(v)); _valueInfosStale = false; }
            return _valueInfos;
        }
    }

    /// <summary>The node's position in the (topological) node order, -1 if it is not in this graph.</summary>
    public int PositionOf(Node n)
    {
        if (!n.InGraph || n.Graph != this) return -1;
        _ = Nodes;
        return n.Index;
    }

    /// <summary>Whether <paramref name="a"/> comes before <paramref name="b"/> (nodes of one graph), O(1).</summary>
    public static bool Precedes(Node a, Node b) => a.Order < b.Order;

    private Node[] MaterializeNodes()
    {
        var a = new Node[_nodeCount];
        int i = 0;
        for (var n = _first; n is not null; n = n.Next) { n.Index = i; a[i++] = n; }
        return a;
    }

    /// <summary>Links n between prev and next (either may be null: the ends) and labels it.</summary>
    private void Link(Node n, Node? prev, Node? next)
    {
        n.Prev = prev;
        n.Next = next;
        if (prev is null) _first = n; else prev.Next = n;
        if (next is null) _last = n; else next.Prev = n;
        _nodeCount++;
        _nodeArray = null;
        if (prev is null && next is null) n.Order = 0;
        else if (prev is null) n.Order = next!.Order - LabelGap;
        else if (next is null) n.Order = prev.Order + LabelGap;
        else if (next.Order - prev.Order >= 2) n.Order = prev.Order + (next.Order - prev.Order) / 2;
        else Relabel();
        if (n.Order is > long.MaxValue / 2 or < long.MinValue / 2) Relabel();
    }

    private void Unlink(Node n)
    {
        if (n.Prev is null) _first = n.Next; else n.Prev.Next = n.Next;
        if (n.Next is null) _last = n.Prev; else n.Next.Prev = n.Prev;
        n.Prev = n.Next = null;
        _nodeCount--;
        _nodeArray = null;
    }

    private void Relabel()
    {
        long k = 0;
        for (var n = _first; n is not null; n = n.Next, k += LabelGap) n.Order = k;
    }

    /// <summary>Puts the nodes in exactly this order (for the topological sort, and for tests that break the
    /// order on purpose).</summary>
    internal void SetNodeOrder(IReadOnlyList<Node> order)
    {
        if (order.Count != _nodeCount) throw new InvalidOperationException("a node order must list every node once");
        _first = _last = null;
        _nodeCount = 0;
        foreach (var n in order) Link(n, _last, null);
        Relabel();
        OrderMayBeBroken = false;
    }

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
    public void AddValueInfo(Value v)
    {
        _ = ValueInfos;
        _valueInfos.Add(v);
        _valueInfoSet.Add(v);
    }

    /// <summary>Drops every value_info entry (the values stay); returns how many there were.</summary>
    public int ClearValueInfos()
    {
        var n = ValueInfos.Count;
        _valueInfos.Clear();
        _valueInfoSet.Clear();
        return n;
    }

    private void ForgetValueInfo(Value v)
    {
        if (_valueInfoSet.Remove(v)) _valueInfosStale = true;
    }

    /// <summary>Appends a node built with NewDetachedNode (importers and the cloner).</summary>
    internal void AppendNode(Node n) => AddToOrder(n, null);

    /// <summary>Puts a new node into the order: just before <paramref name="before"/>, or at the end.</summary>
    private void AddToOrder(Node n, Node? before)
    {
        if (before is { InGraph: true } b && b.Graph == this) Link(n, b.Prev, b);
        else Link(n, _last, null);
        n.InGraph = true;
        NameIndex(n.Name, 1);
    }

    internal void NameIndex(string? name, int by)
    {
        if (name is null || _nodeNames is null) return;
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
        if (_nodeNames is null)
        {
            _nodeNames = new(StringComparer.Ordinal);
            for (var n = _first; n is not null; n = n.Next) NameIndex(n.Name, 1);
        }
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
    internal void SetInitializerData(Value v, Tensor data)
    {
        if (v.Initializer is null || v.Graph != this)
            throw new InvalidOperationException($"'{v.Name}' is not an initializer of graph '{Name}'");
        v.Initializer = data.Name == v.Name ? data : data.WithName(v.Name);
    }

    /// <summary>Turns a graph input into a constant (e.g. to freeze a shape input); the value keeps its name and uses.</summary>
    internal void FreezeInput(Value input, Tensor data)
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
        string domain = "", string? name = null) => AddNode(opType, inputs, outputNames, domain, name, null);

    /// <summary>Adds a node just before <paramref name="before"/> (null: at the end); the caller makes sure
    /// its inputs are produced earlier (the Rewriter's insertion point does).</summary>
    internal Node AddNode(string opType, IEnumerable<Value?> inputs, IEnumerable<string> outputNames,
        string domain, string? name, Node? before)
    {
        var n = new Node(this, opType, domain) { Name = name };
        foreach (var o in outputNames) n.AddOutputSlot(o.Length == 0 ? null : DefineOutput(n, o, n.OutputList.Length));
        foreach (var i in inputs)
        {
            n.AddInputSlot(i);
            AddUse(i, new Use(n, n.InputList.Length - 1));
        }
        AddToOrder(n, before);
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
        n.AddOutputSlot(name.Length == 0 ? null : DefineOutput(n, name, n.OutputList.Length));

    /// <summary>Records a use; a value's first use list holds one (most values have one reader; a List's
    /// default first growth to four costs 48 bytes per value on million-node graphs).</summary>
    private static void AddUse(Value? v, Use u)
    {
        if (v is null) return;
        if (v.UseList.Capacity == 0) v.UseList.Capacity = 1;
        v.UseList.Add(u);
    }

    /// <summary>Adds an input to a node. The order is not repaired here (importers add every edge before
    /// sorting): an edge against the order marks the graph for SortIfNeeded.</summary>
    internal void AppendInput(Node n, Value? v)
    {
        OwnNode(n);
        n.AddInputSlot(v);
        AddUse(v, new Use(n, n.InputList.Length - 1));
        if (v?.Producer is { InGraph: true } p && n.InGraph && (p.Graph != n.Graph || p.Order >= n.Order))
            p.Graph.OrderMayBeBroken = true;
    }

    /// <summary>Points input <paramref name="index"/> of n at v, restoring topological order if v is produced
    /// after n (see the header).</summary>
    internal void SetInput(Node n, int index, Value? v)
    {
        OwnNode(n);
        while (n.InputList.Length <= index) n.AddInputSlot(null);
        var old = n.InputList[index];
        old?.UseList.Remove(new Use(n, index));
        n.InputList[index] = v;
        AddUse(v, new Use(n, index));
        if (v?.Producer is { InGraph: true } p && n.InGraph) p.Graph.KeepBefore(p, n);
    }

    private void OwnNode(Node n)
    {
        if (n.Graph != this) throw new InvalidOperationException($"node {n} belongs to graph '{n.Graph.Name}'");
    }

    /// <summary>n reads an output of p: moves n and its dependents that sit before p to just after p.</summary>
    private void KeepBefore(Node p, Node n)
    {
        if (n.Graph != this) { OrderMayBeBroken = true; return; }
        if (p.Order < n.Order) return;
        if (p == n) throw new InvalidOperationException($"node {n} cannot read its own output");
        var moved = new List<Node>();
        var seen = new HashSet<Node> { n };
        var stack = new Stack<Node>();
        stack.Push(n);
        while (stack.TryPop(out var x))
        {
            moved.Add(x);
            foreach (var o in x.OutputList)
            {
                if (o is null) continue;
                foreach (var u in o.UseList)
                {
                    var y = u.Node;
                    if (y.Graph != this) { OrderMayBeBroken = true; continue; }
                    // A cycle, maybe a passing one (an edit that a later one undoes): leave it to the sort.
                    if (y == p) { OrderMayBeBroken = true; return; }
                    if (y.Order < p.Order && seen.Add(y)) stack.Push(y);
                }
            }
        }
        moved.Sort((a, b) => a.Order.CompareTo(b.Order));
        var after = p;
        foreach (var m in moved) Unlink(m);
        foreach (var m in moved) { Link(m, after, after.Next); after = m; }
    }

    /// <summary>Points every use of <paramref name="from"/> (also in subgraphs) at <paramref name="to"/>;
    /// graph outputs are not touched (the rewriter decides about those).</summary>
    internal static void ReplaceUses(Value from, Value to)
    {
        foreach (var u in from.UseList.ToArray()) u.Node.Graph.SetInput(u.Node, u.InputIndex, to);
    }

    /// <summary>Removes a node whose outputs are unused (detaching its inputs).</summary>
    internal void RemoveNode(Node n)
    {
        foreach (var o in n.OutputList)
        {
            if (o is null) continue;
            if (o.UseList.Count > 0 || o.IsGraphOutput)
                throw new InvalidOperationException($"cannot remove node {n}: output '{o.Name}' is still used");
        }
        for (int i = 0; i < n.InputList.Length; i++) n.InputList[i]?.UseList.Remove(new Use(n, i));
        foreach (var o in n.OutputList) if (o is not null) { _values.Remove(o.Name); ForgetValueInfo(o); }
        Unlink(n);
        NameIndex(n.Name, -1);
        n.InGraph = false;
        n.IsErased = true;
        foreach (var sg in n.Subgraphs()) sg.DetachAllUses();
    }

    private void DetachAllUses()
    {
        foreach (var n in Nodes)
        {
            for (int i = 0; i < n.InputList.Length; i++) n.InputList[i]?.UseList.Remove(new Use(n, i));
            foreach (var sg in n.Subgraphs()) sg.DetachAllUses();
        }
    }

    internal void RemoveInitializer(Value v)
    {
        if (v.UseList.Count > 0
            || v.IsGraphOutput) throw new InvalidOperationException($"initializer '{v.Name}' is still used");
        _initializers.Remove(v);
        _sparseInitializers.Remove(v);
        while (_inputs.Remove(v)) Count(_inputCount, v, -1);
        ForgetValueInfo(v);
        _values.Remove(v.Name);
    }

    /// <summary>Removes initializers that nothing reads and that are not graph outputs, in one pass over the
    /// lists (removing them one by one costs O(initializers) each); returns how many.</summary>
    internal int RemoveInitializers(IReadOnlyCollection<Value> dead)
    {
        var set = new HashSet<Value>(dead);
        foreach (var v in set)
            if (v.UseList.Count > 0 || v.IsGraphOutput || v.Graph != this || !v.IsInitializer)
                throw new InvalidOperationException($"initializer '{v.Name}' is still used");
        _initializers.RemoveAll(set.Contains);
        _sparseInitializers.RemoveAll(set.Contains);
        if (set.Any(_inputCount.ContainsKey))
            for (int i = _inputs.Count - 1; i >= 0; i--)
                if (set.Contains(_inputs[i])) { Count(_inputCount, _inputs[i], -1); _inputs.RemoveAt(i); }
        foreach (var v in set) { ForgetValueInfo(v); _values.Remove(v.Name); }
        return set.Count;
    }

    /// <summary>Renames a value that is not a graph input or output.</summary>
    internal void Rename(Value v, string newName)
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
    /// <summary>Sorts if an edit marked the order as possibly broken (see the header); O(1) otherwise.</summary>
    public void SortIfNeeded()
    {
        if (OrderMayBeBroken) SortTopologically();
    }

    internal void SortTopologically()
    {
        var Nodes = this.Nodes;
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
        SetNodeOrder(order);
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
