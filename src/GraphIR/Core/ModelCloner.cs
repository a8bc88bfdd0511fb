// Model.Clone(): a deep copy of the IR without serializing it. Every graph (subgraphs and function
// bodies too), value, node and attribute is new; tensor data is shared (it is read-only memory) and
// external data stays lazy. Values map one to one, so a subgraph's reads of outer-scope values point at
// the copy's outer values. The copy exports to the same bytes as the original (tested over every
// backend test model).
namespace OnnxOpt.GraphIR;

internal static class ModelCloner
{
    public static Model Clone(Model m)
    {
        var c = new Model
        {
            IrVersion = m.IrVersion,
            ProducerName = m.ProducerName,
            ProducerVersion = m.ProducerVersion,
            Domain = m.Domain,
            ModelVersion = m.ModelVersion,
            DocString = m.DocString,
            UnknownFields = m.UnknownFields?.ToArray(),
        };
        c.OpsetImports.AddRange(m.OpsetImports);
        c.MetadataProps.AddRange(m.MetadataProps);
        c.Graph = Graph(m.Graph, null, new Dictionary<Value, Value>());
        foreach (var f in m.Functions)
        {
            var cf = new Function
            {
                Name = f.Name,
                Domain = f.Domain,
                Overload = f.Overload,
                DocString = f.DocString,
                Body = Graph(f.Body, null, new Dictionary<Value, Value>()),
                UnknownFields = f.UnknownFields?.ToArray(),
            };
            cf.AttributeNames.AddRange(f.AttributeNames);
            cf.AttributeDefaults.AddRange(f.AttributeDefaults.Select(a => Attribute(a, cf.Body, new Dictionary<Value,
                Value>())));
            cf.OpsetImports.AddRange(f.OpsetImports);
            cf.MetadataProps.AddRange(f.MetadataProps);
            c.Functions.Add(cf);
        }
        c.TrainingInfo.AddRange(m.TrainingInfo.Select(b => b.ToArray()));
        c.Configuration.AddRange(m.Configuration.Select(b => b.ToArray()));
        return c;
    }

    private static Graph Graph(Graph g, Graph? parent, Dictionary<Value, Value> map)
    {
        var ng = new Graph(g.Name)
        {
            HasName = g.HasName,
            DocString = g.DocString,
            UnknownFields = g.UnknownFields?.ToArray()
        };
        ng.Parent = parent;
        ng.MetadataProps.AddRange(g.MetadataProps);
        ng.QuantizationAnnotations.AddRange(g.QuantizationAnnotations);
        foreach (var v in g.Initializers) map[v] = Info(v, ng.AddInitializer(Tensor(v.Initializer!)));
        foreach (var v in g.SparseInitializers) map[v] = Info(v, ng.AddSparseInitializer(Sparse(v.SparseInitializer!)));
        foreach (var v in g.Inputs)
        {
            if (map.TryGetValue(v, out var known) && known.Graph == ng) ng.AddInputValue(known);
            else map[v] = Info(v, ng.AddInput(v.Name, v.Type));
        }
        var nodes = new List<(Node Old, Node New)>(g.Nodes.Count);
        foreach (var n in g.Nodes)
        {
            var nn = ng.NewDetachedNode(n.OpType, n.Domain);
            nn.Name = n.Name;
            nn.HasDomainField = n.HasDomainField;
            nn.Overload = n.Overload;
            nn.DocString = n.DocString;
            nn.UnknownFields = n.UnknownFields?.ToArray();
            if (n.MetadataPropsOrEmpty.Count > 0) nn.MetadataProps.AddRange(n.MetadataPropsOrEmpty);
            foreach (var o in n.Outputs)
            {
                ng.AddOutputTo(nn, o?.Name ?? "");
                if (o is not null) map[o] = Info(o, nn.Outputs[^1]!);
            }
            ng.AppendNode(nn);
            nodes.Add((n, nn));
        }
        // Attributes after every value of this graph exists: subgraphs may read any of them.
        foreach (var (n, nn) in nodes) nn.Attributes.AddRange(n.AttributesOrEmpty.Select(a => Attribute(a, ng, map)));
        foreach (var (n, nn) in nodes)
            foreach (var i in n.Inputs) ng.AppendInput(nn, i is null ? null : map[i]);
        foreach (var v in g.ValueInfos)
        {
            // value_info of a value this graph defines, else a detached entry kept for lossless export.
            var nv = g.Find(v.Name) == v && map.TryGetValue(v, out var mapped) ? mapped : Info(v, new Value(ng,
                v.Name));
            ng.AddValueInfo(nv);
        }
        foreach (var v in g.Outputs) ng.AddOutput(map[v]);
        return ng;
    }

    private static Value Info(Value from, Value to)
    {
        to.Type = from.Type;
        to.DocString = from.DocString;
        if (from.MetadataPropsOrEmpty.Count > 0) to.MetadataProps.AddRange(from.MetadataPropsOrEmpty);
        to.UnknownFields = from.UnknownFields?.ToArray();
        return to;
    }

    private static Tensor? TensorOrNull(Tensor? t) => t is null ? null : Tensor(t);

    private static Tensor Tensor(Tensor t) => t.Copy();

    private static SparseTensor Sparse(SparseTensor s) =>
        new()
        {
            Values = s.Values.Copy(),
            Indices = s.Indices?.Copy(),
            Dims = s.Dims.ToArray(),
            UnknownFields = s.UnknownFields?.ToArray()
        };

    private static OnnxAttribute Attribute(OnnxAttribute a, Graph owner, Dictionary<Value, Value> map) => new()
    {
        Name = a.Name,
        Kind = a.Kind,
        F = a.F,
        I = a.I,
        S = a.S?.ToArray(),
        T = TensorOrNull(a.T),
        G = a.G is null ? null : Graph(a.G, owner, map),
        Sparse = a.Sparse is null ? null : Sparse(a.Sparse),
        Tp = a.Tp,
        Floats = a.Floats?.ToArray(),
        Ints = a.Ints?.ToArray(),
        Strings = a.Strings?.Select(s => s.ToArray()).ToArray(),
        Tensors = a.Tensors?.Select(Tensor).ToArray(),
        Graphs = a.Graphs?.Select(sg => Graph(sg, owner, map)).ToArray(),
        SparseTensors = a.SparseTensors?.Select(Sparse).ToArray(),
        Tps = a.Tps?.ToArray(),
        RefAttrName = a.RefAttrName,
        DocString = a.DocString,
        UnknownFields = a.UnknownFields?.ToArray(),
        KindImplicit = a.KindImplicit,
    };
}
