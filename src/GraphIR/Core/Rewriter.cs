// The one place passes mutate a model through. It keeps use lists consistent, makes fresh names
// deterministically (base, base_1, ...), and never renames or drops a graph input or output: when a
// graph output is replaced by another value, that value takes the output's name. It also keeps a
// journal of the nodes each mutation touched (inserted, rewired, re-typed, or reading a replaced
// value), which the greedy rule driver turns into its worklist.
// Topological order holds after every call, without re-sorting (Graph's header says how): a node is
// inserted just before the insertion point (the root the driver is rewriting, as in MLIR) when all its
// inputs are produced before it, else at the end; moving a use to a later-produced value moves the reader.


namespace OnnxOpt.GraphIR;

public sealed class Rewriter(Model model)
{
    private readonly List<Node> _touched = new();

    public Model Model { get; } = model;
    /// <summary>Where Insert puts new nodes: just before this node when their inputs allow (the greedy driver
    /// sets it to the root it rewrites); null, or when they do not: at the end of the graph.</summary>
    public Node? InsertionPoint { get; set; }
    /// <summary>Mutations made so far (the pipeline runner uses it to detect a fixed point).</summary>
    public long Changes { get; private set; }

    /// <summary>The nodes touched since the last call, in the order touched (a node may repeat).</summary>
    public List<Node> TakeTouched()
    {
        var t = _touched.ToList();
        _touched.Clear();
        return t;
    }

    private void TouchUsers(Value v)
    {
        foreach (var u in v.Uses) _touched.Add(u.Node);
    }

    public Value Constant(Graph g, string baseName, Tensor t)
    {
        Changes++;
        return g.AddInitializer(t.WithName(g.FreshName(baseName)));
    }

    /// <summary>Adds a node (placed by Finish's topological sort) with fresh output names.</summary>
    public Node Insert(Graph g, string opType, IReadOnlyList<Value?> inputs, string baseName, int outputs = 1,
        params OnnxAttribute[] attrs) =>
        Insert(g, "", opType, inputs, baseName, outputs, attrs);

    /// <summary>Adds a node of another domain (e.g. "com.microsoft").</summary>
    public Node Insert(Graph g, string domain, string opType, IReadOnlyList<Value?> inputs, string baseName,
        int outputs = 1, params OnnxAttribute[] attrs)
    {
        Changes++;
        var names = Enumerable.Range(0,
            outputs).Select(i => g.FreshName(outputs == 1 ? baseName : $"{baseName}_{i}")).ToList();
        var node = g.AddNode(opType, inputs, names, domain, g.FreshNodeName(baseName), PlaceBefore(g, inputs, attrs));
        node.Attributes.AddRange(attrs);
        _touched.Add(node);
        return node;
    }

    private Node? PlaceBefore(Graph g, IReadOnlyList<Value?> inputs, OnnxAttribute[] attrs)
    {
        if (InsertionPoint is not { InGraph: true } ip || ip.Graph != g || attrs.Any(a => a.Subgraphs().Any()))
            return null;
        foreach (var v in inputs)
            if (v?.Producer is { InGraph: true } p && p.Graph == g && !Graph.Precedes(p, ip)) return null;
        return ip;
    }

    /// <summary>Changes a node's op type in place (e.g. MatMul + bias -> Gemm); inputs and outputs stay.</summary>
    public void SetOpType(Node n, string opType)
    {
        Changes++;
        n.OpType = opType;
        _touched.Add(n);
    }

    /// <summary>Sets (or clears) a value's type, e.g. the declared type of a value a rewrite created; its
    /// readers are journaled (a rule may match on types).</summary>
    public void SetType(Value v, OnnxType? type)
    {
        if (Equals(v.Type, type)) return;
        Changes++;
        v.Type = type;
        TouchUsers(v);
    }

    /// <summary>Renames a value that is not a graph input or output (a fresh name when taken).</summary>
    public string Rename(Value v, string newName)
    {
        if (v.IsGraphInput || v.IsGraphOutput)
            throw new InvalidOperationException($"'{v.Name}' is part of the model's interface and keeps its name");
        var name = v.Name == newName ? newName : v.Graph.FreshName(newName);
        if (name == v.Name) return name;
        Changes++;
        v.Graph.Rename(v, name);
        return name;
    }

    /// <summary>Renames a node (null: no name).</summary>
    public void RenameNode(Node n, string? name)
    {
        if (n.Name == name) return;
        Changes++;
        n.Name = name;
    }

    /// <summary>Drops a graph's value_info entries; returns how many there were.</summary>
    public int ClearValueInfos(Graph g)
    {
        var n = g.ClearValueInfos();
        Changes += n;
        return n;
    }

    /// <summary>Removes every doc string of the model (itself, functions, graphs, nodes, values, tensors);
    /// returns how many there were.</summary>
    public int ClearDocStrings(Model m)
    {
        int n = 0;
        string? Clear(string? doc)
        {
            if (doc is not null) n++;
            return null;
        }
        m.DocString = Clear(m.DocString);
        foreach (var f in m.Functions)
        {
            f.DocString = Clear(f.DocString);
            foreach (var g in f.Body.SelfAndSubgraphs()) ClearGraph(g);
        }
        foreach (var g in m.Graph.SelfAndSubgraphs()) ClearGraph(g);
        Changes += n;
        return n;

        void ClearGraph(Graph g)
        {
            g.DocString = Clear(g.DocString);
            foreach (var node in g.Nodes) node.DocString = Clear(node.DocString);
            foreach (var v in g.Values)
            {
                v.DocString = Clear(v.DocString);
                if (v.Initializer is { } t) t.DocString = Clear(t.DocString);
            }
        }
    }

    /// <summary>Sets (adds or replaces) an attribute of a node.</summary>
    public void SetAttr(Node n, OnnxAttribute a)
    {
        Changes++;
        n.SetAttr(a);
        _touched.Add(n);
    }

    /// <summary>Removes an attribute of a node, if present.</summary>
    public void RemoveAttr(Node n, string name)
    {
        if (n.Attributes.RemoveAll(a => a.Name == name) == 0) return;
        Changes++;
        _touched.Add(n);
    }

    /// <summary>Raises the model's IR version (an opset upgrade needs the IR version that defines it).</summary>
    public void SetIrVersion(long version)
    {
        if (Model.IrVersion == version) return;
        Changes++;
        Model.IrVersion = version;
    }

    /// <summary>Puts <paramref name="graph"/> (a snapshot of this model's main graph, e.g. from a clone taken
    /// before a pass that then declined its result) back as the main graph; every node of the replaced one is
    /// gone.</summary>
    public void ReplaceGraph(Graph graph)
    {
        if (graph.Parent is not null) throw new InvalidOperationException("a subgraph cannot become the main graph");
        Changes++;
        _touched.Clear();
        Model.Graph = graph;
    }

    /// <summary>Sets the opset a domain is imported at ("" and "ai.onnx" are the same), adding the import
    /// when missing.</summary>
    public void SetOpset(string domain, long version)
    {
        var imports = Model.OpsetImports;
        var i = imports.FindIndex(o => o.Domain == domain || (Model.IsDefaultDomain(o.Domain)
            && Model.IsDefaultDomain(domain)));
        if (i >= 0 && imports[i].Version == version) return;
        Changes++;
        if (i >= 0) imports[i] = imports[i] with { Version = version };
        else imports.Add(new OpsetImport(domain, version));
    }

    /// <summary>Whether uses of <paramref name="old"/> can move to <paramref name="replacement"/>
    /// (a graph output can only be taken over by a plain node output of the same graph).</summary>
    public static bool CanReplace(Value old, Value replacement) =>
        !old.IsGraphOutput || (replacement.Producer is not null && replacement.Graph == old.Graph
            && !replacement.IsGraphOutput && !replacement.IsGraphInput && !replacement.IsInitializer);

    /// <summary>Moves every use of <paramref name="old"/> to <paramref name="replacement"/>; if old is a
    /// graph output, the replacement becomes that output under the same name and declared type.</summary>
    public void Replace(Value old, Value replacement)
    {
        if (!CanReplace(old, replacement))
            throw new InvalidOperationException($"cannot replace graph output '{old.Name}' by '{replacement.Name}'");
        Changes++;
        Graph.ReplaceUses(old, replacement);
        TouchUsers(replacement);
        if (replacement.Producer is { } p) _touched.Add(p);
        // The old producer may be dead now: the driver's clean-up looks there.
        if (old.Producer is { IsErased: false } op) _touched.Add(op);
        if (!old.IsGraphOutput) return;
        var g = old.Graph;
        var name = old.Name;
        g.Rename(old, g.FreshName(name + "_old"));
        g.Rename(replacement, name);
        replacement.Type = old.Type ?? replacement.Type;
        replacement.DocString = old.DocString;
        for (int i = 0; i < g.Outputs.Count; i++) if (g.Outputs[i] == old) g.SetOutput(i, replacement);
    }

    public void SetInput(Node n, int index, Value? v)
    {
        Changes++;
        n.Graph.SetInput(n, index, v);
        _touched.Add(n);
    }

    /// <summary>Turns a graph input into a constant holding <paramref name="data"/> (its name and uses stay).
    /// </summary>
    public void FreezeInput(Value input, Tensor data)
    {
        Changes++;
        input.Graph.FreezeInput(input, data);
        TouchUsers(input);
    }

    public void SetInitializer(Value v, Tensor data)
    {
        Changes++;
        v.Graph.SetInitializerData(v, data);
        TouchUsers(v);
    }

    public void Erase(Node n)
    {
        Changes++;
        n.Graph.RemoveNode(n);
        foreach (var i in n.Inputs)
            if (i?.Producer is { IsErased: false } p) _touched.Add(p);
    }

    /// <summary>Removes nodes none of whose outputs is used or a graph output, repeatedly.</summary>
    public int RemoveDeadNodes(Graph g)
    {
        int removed = 0;
        var nodes = g.Nodes;
        for (int i = nodes.Count - 1; i >= 0; i--)
        {
            var n = nodes[i];
            if (n.IsErased || !IsDead(n)) continue;
            Erase(n);
            removed++;
        }
        return removed;
    }

    /// <summary>Whether none of the node's outputs is read or a graph output.</summary>
    public static bool IsDead(Node n) => !n.Outputs.Any(o => o is not null && (o.Uses.Count > 0 || o.IsGraphOutput));

    /// <summary>Erases <paramref name="candidates"/> that are dead, then the producers they leave dead, and so
    /// on: dead-code removal limited to the region a rewrite touched. Returns how many were erased.</summary>
    public int EraseIfDead(IEnumerable<Node> candidates)
    {
        int removed = 0;
        var stack = new Stack<Node>(candidates);
        while (stack.TryPop(out var n))
        {
            if (n.IsErased || !n.InGraph || !IsDead(n)) continue;
            Erase(n);
            removed++;
            foreach (var i in n.Inputs) if (i?.Producer is { IsErased: false } p) stack.Push(p);
        }
        return removed;
    }

    /// <summary>Removes initializers nothing reads (initializers that are also graph inputs stay:
    /// they are part of the model's interface).</summary>
    public int RemoveUnusedInitializers(Graph g)
    {
        var dead = g.Initializers.Concat(g.SparseInitializers).Where(v => v.Uses.Count == 0 && !v.IsGraphOutput
            && !v.IsGraphInput).ToList();
        if (dead.Count == 0) return 0;
        Changes += dead.Count;
        return g.RemoveInitializers(dead);
    }

    /// <summary>onnx-graphsurgeon's cleanup().toposort() in one call: dead nodes and unused initializers
    /// removed from every graph, then topological order restored. Returns (nodes, initializers) removed.</summary>
    public (int Nodes, int Initializers) Cleanup()
    {
        int nodes = 0, inits = 0;
        foreach (var g in Model.Graph.SelfAndSubgraphs().ToList())
        {
            nodes += RemoveDeadNodes(g);
            inits += RemoveUnusedInitializers(g);
        }
        Finish();
        return (nodes, inits);
    }

    /// <summary>Sorts the graphs whose order an edit could not repair locally (an outer value newly read from a
    /// subgraph, an input appended against the order); the others are in order already.</summary>
    public void Finish()
    {
        foreach (var g in Model.Graph.SelfAndSubgraphs().ToList()) g.SortIfNeeded();
    }

    /// <summary>The constant data a value holds (an initializer, or a Constant node's tensor), or null.</summary>
    public static Tensor? ConstantOf(Value? v)
    {
        if (v is null) return null;
        if (v.Initializer is { } t && !v.IsGraphInput) return t;
        if (v.Producer is { OpType: "Constant", Domain: "" } c && c.GetTensor("value") is { } ct) return ct;
        return null;
    }
}
