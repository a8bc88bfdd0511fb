// Checks the IR's invariants: every value has exactly one definition, every node input is defined
// (here or in an enclosing graph) before the node reads it (so the graph is acyclic and in
// topological order), names are unique, graph outputs are produced, and use lists match inputs.
// Run after every pass in tests and with --verify-each in the CLI.
namespace OnnxOpt.GraphIR;

public static class Verifier
{
    /// <summary>All problems found, each one line naming the node or value.</summary>
    public static List<string> Check(Model m)
    {
        var errors = new List<string>();
        if (m.Graph.Outputs.Count == 0)
            errors.Add($"graph '{m.Graph.Name}' has no outputs: the model computes nothing");
        CheckGraph(m.Graph, errors, null);
        foreach (var f in m.Functions) CheckGraph(f.Body, errors, null);
        return errors;
    }

    /// <summary>Declared types that disagree with inference: every node output's type is inferred afresh on
    /// a copy and compared with what the model declares (element type, rank, static dims; symbols and
    /// unknowns agree with anything). One line per value.</summary>
    public static List<string> CheckShapes(Model m)
    {
        var errors = new List<string>();
        var copy = m.Clone();
        var declared = new List<(Value Value, OnnxType Type, Node Node)>();
        foreach (var n in copy.Graph.SelfAndSubgraphs().SelectMany(g => g.Nodes))
            foreach (var o in n.Outputs)
                if (o?.Type is { IsTensor: true } t) { declared.Add((o, t, n)); o.Type = null; }
        try { ShapeInference.Run(copy); }
        catch (OnnxModelException e) { errors.Add(e.Message); return errors; }
        foreach (var (v, want, n) in declared)
        {
            var got = v.Type;
            v.Type = want;
            if (got is not { IsTensor: true }) continue;
            bool typeDiffers = want.ElementType != DataType.Undefined && got.ElementType != DataType.Undefined
                && want.ElementType != got.ElementType;
            bool shapeDiffers = want.Shape is { } ws && got.Shape is { } gs && (ws.Rank != gs.Rank
                || ws.Dims.Zip(gs.Dims).Any(p => p.First.Value is long a && p.Second.Value is long b && a != b));
            if (typeDiffers || shapeDiffers)
                errors.Add($"value '{v.Name}' (output of node {n}) is declared {ModelStats.TypeText(want)} "
                    + $"but infers as {ModelStats.TypeText(got)}");
        }
        return errors;
    }

    /// <summary>Throws OnnxModelException with the first problem.</summary>
    public static void Verify(Model m)
    {
        var errors = Check(m);
        if (errors.Count > 0) throw new OnnxModelException(errors[0]);
    }

    /// <summary>The names defined so far in each enclosing graph, innermost first (shared, never copied: a
    /// graph of N nodes with subgraphs is checked in O(N), not O(N) per subgraph-holding node).</summary>
    private sealed record Scope(HashSet<string> Names, Scope? Outer)
    {
        public bool Contains(string name)
        {
            for (var s = this; s is not null; s = s.Outer) if (s.Names.Contains(name)) return true;
            return false;
        }
    }

    private static void CheckGraph(Graph g, List<string> errors, Scope? outer)
    {
        var where = g.Parent is null ? "" : $" (subgraph '{g.Name}')";
        var available = new HashSet<Value>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        void Define(Value v, string what)
        {
            if (!names.Add(v.Name)) errors.Add($"value '{v.Name}' is defined more than once{where}");
            else if (outer?.Contains(v.Name) == true)
                errors.Add($"value '{v.Name}'{where} shadows a value of an enclosing graph");
            if (!ReferenceEquals(g.Find(v.Name),
                v)) errors.Add($"{what} '{v.Name}'{where} is not registered in its graph");
            available.Add(v);
        }
        foreach (var v in g.Initializers)
        {
            if (v.Initializer is null) errors.Add($"initializer '{v.Name}'{where} has no data");
            else if (v.Initializer.Name != v.Name) errors.Add($"initializer '{v.Name}'{where} holds a tensor named '{v.Initializer.Name}'");
            if (v.Producer is not null) errors.Add($"initializer '{v.Name}'{where} is also produced by node {v.Producer}");
            Define(v, "initializer");
        }
        foreach (var v in g.SparseInitializers) Define(v, "sparse initializer");
        foreach (var v in g.Inputs)
        {
            if (v.IsInitializer) continue;
            if (v.Producer is not null) errors.Add($"graph input '{v.Name}'{where} is also produced by node {v.Producer}");
            Define(v, "graph input");
        }

        // Labels increase strictly along the node list, so no node is in it twice (no set of a million nodes).
        long lastLabel = long.MinValue;
        foreach (var n in g.Nodes)
        {
            if (n.OrderLabel <= lastLabel)
                errors.Add($"node {n}{where} is out of its graph's order (labels must increase)");
            lastLabel = n.OrderLabel;
            if (n.Graph != g) errors.Add($"node {n}{where} belongs to another graph");
            for (int i = 0; i < n.Inputs.Count; i++)
            {
                var v = n.Inputs[i];
                if (v is null) continue;
                if (!v.Uses.Contains(new Use(n,
                    i))) errors.Add($"node {n}{where}: input {i} '{v.Name}' does not list the node among its uses");
                if (available.Contains(v)) continue;
                if (v.Graph != g && IsVisibleOuter(g, v)) continue;
                if (v.Producer is { } p && p.Graph == g && g.Nodes.Contains(p))
                    errors.Add($"node {n}{where} reads '{v.Name}' before node {p} produces it (cycle or order broken)");
                else errors.Add($"node {n}{where} reads '{v.Name}', which is not defined (dangling input)");
            }
            foreach (var sg in n.Subgraphs())
            {
                if (sg.Parent != g) errors.Add($"subgraph '{sg.Name}' of node {n}{where} does not point at its enclosing graph");
                CheckGraph(sg, errors, new Scope(names, outer));
            }
            for (int i = 0; i < n.Outputs.Count; i++)
            {
                var o = n.Outputs[i];
                if (o is null) continue;
                if (o.Producer != n || o.ProducerOutputIndex != i)
                    errors.Add($"value '{o.Name}'{where} does not name node {n} as its producer");
                Define(o, "value");
            }
        }
        foreach (var v in g.Values)
            foreach (var u in v.Uses)
                if (u.InputIndex >= u.Node.Inputs.Count || u.Node.Inputs[u.InputIndex] != v)
                    errors.Add($"value '{v.Name}'{where} lists a use by node {u.Node} that does not read it");
        foreach (var o in g.Outputs)
            if (!available.Contains(o) && !(o.Graph != g && IsVisibleOuter(g, o)))
                errors.Add($"graph output '{o.Name}'{where} is not produced in the graph");
    }

    private static bool IsVisibleOuter(Graph g, Value v)
    {
        for (var p = g.Parent; p is not null; p = p.Parent)
            if (ReferenceEquals(p.Find(v.Name), v)) return true;
        return false;
    }
}
