// Infers element types and shapes in topological order, with symbolic dims carried through (a batch "N"
// stays "N"), by each op's shape function in the OpRegistry (src/GraphIR/Ops, one file per op family). Small
// int64 tensors that are known constants (initializers, Constant, Shape of a shape, and Gather/Unsqueeze/
// Squeeze/Concat/Slice/Cast/arithmetic on those) are tracked in the ShapeContext so that Reshape/Slice/Pad/
// Squeeze targets resolve as exported by PyTorch. Ops it does not know keep whatever type the model declared;
// declared types are never overwritten, only missing ones filled in.
namespace OnnxOpt.GraphIR;

public static class ShapeInference
{
    public static void Run(Model m)
    {
        var opset = m.OpsetVersion("") ?? 13;
        new Inferrer(opset).Graph(m.Graph);
    }

    /// <summary>Infers as Run does, runs <paramref name="body"/> on the typed model, then puts every type it
    /// filled in back as it was: statistics over inferred shapes without copying the model.</summary>
    /// <remarks>With <paramref name="dims"/>, symbolic dims of those names are first given their values in every
    /// declared type (taken back too), so shape arithmetic over them (Shape -> Gather -> Mul -> Concat -> Reshape)
    /// folds to sizes and the statistics are those of that specialization.</remarks>
    public static T WhileInferred<T>(Model m, Func<T> body, IReadOnlyDictionary<string, long>? dims = null)
    {
        var journal = new List<(Value Value, OnnxType? Old)>();
        try
        {
            if (dims is { Count: > 0 })
                foreach (var g in m.Graph.SelfAndSubgraphs())
                    foreach (var v in g.Values)
                        if (Specialize(v.Type, dims) is { } fixedType) { journal.Add((v, v.Type)); v.Type = fixedType; }
            new Inferrer(m.OpsetVersion("") ?? 13, journal).Graph(m.Graph);
            return body();
        }
        finally
        {
            for (int i = journal.Count - 1; i >= 0; i--) journal[i].Value.Type = journal[i].Old;
        }
    }

    /// <summary>The type with the named symbolic dims given their values, or null when it names none of them.</summary>
    public static OnnxType? Specialize(OnnxType? t, IReadOnlyDictionary<string, long> dims)
    {
        if (t is not { IsTensor: true, Shape: { } s } || !s.Dims.Any(d => d.Param is { } p && dims.ContainsKey(p)))
            return null;
        return OnnxType.Tensor(t.ElementType, new Shape(s.Dims.Select(d =>
            d.Param is { } p && dims.TryGetValue(p, out var v) ? Dim.Of(v) : d)));
    }

    /// <summary>After rewrites that change shapes (pruned channels, folded kernels): forgets the types of
    /// every node output that is not a graph output (main graph and subgraphs) and infers them again.
    /// Graph outputs keep their declared types (the model's interface).</summary>
    public static void Refresh(Model m)
    {
        foreach (var g in m.Graph.SelfAndSubgraphs())
            foreach (var n in g.Nodes)
                foreach (var o in n.Outputs)
                    if (o is not null && !o.IsGraphOutput) o.Type = null;
        Run(m);
    }

    /// <summary>Fills in missing types of the given nodes' outputs, in topological order (what a rewrite
    /// inserted: inference per affected region instead of the whole model). Constants tracked by shape
    /// arithmetic are those of initializers and of the nodes given.</summary>
    public static void InferNodes(Model m, IEnumerable<Node> nodes)
    {
        var inferrer = new Inferrer(m.OpsetVersion("") ?? 13);
        foreach (var n in nodes.Where(n => n.InGraph).Distinct().OrderBy(n => n.OrderLabel))
            inferrer.Fill(n);
    }

    /// <summary>Inferred output types for one node (null where unknown); used by tests and passes.</summary>
    public static OnnxType?[] InferNode(Node n, long opset) => new Inferrer(opset).Node(n);

    private sealed class Inferrer(long opset, List<(Value Value, OnnxType? Old)>? journal = null)
    {
        private readonly ShapeContext _context = new(opset);

        public void Graph(Graph g)
        {
            foreach (var n in g.Nodes)
            {
                Fill(n);
                foreach (var sg in n.Subgraphs()) Graph(sg);
            }
        }

        /// <summary>Infers one node and fills in its outputs' missing types.</summary>
        public void Fill(Node n)
        {
            OnnxType?[] outs;
            try { outs = Node(n); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException
                                          or OverflowException)
            {
                throw new OnnxModelException($"shape inference failed at node {n}: {e.Message}");
            }
            for (int i = 0; i < outs.Length && i < n.Outputs.Count; i++)
            {
                var o = n.Outputs[i];
                if (o is null || outs[i] is null) continue;
                if (o.Type is null || (o.Type.IsTensor && o.Type.Shape is null && outs[i]!.Shape is not null)
                    || (o.Type.IsTensor && o.Type.ElementType == DataType.Undefined))
                {
                    journal?.Add((o, o.Type));
                    o.Type = outs[i];
                }
            }
        }

        /// <summary>The op's shape function from the registry (unknown ops: every output unknown).</summary>
        public OnnxType?[] Node(Node n)
        {
            var info = OpRegistry.Find(n, n.IsStandard ? opset : long.MaxValue);
            return info?.Infer?.Invoke(n, _context) ?? new OnnxType?[n.Outputs.Count];
        }
    }
}
