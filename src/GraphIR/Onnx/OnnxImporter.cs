// The only reader of ONNX protobuf: ModelProto -> IR. Everything the file carries is kept (unknown
// fields as bytes, training info verbatim). Typed data fields (float_data, int32_data, ...) are
// converted to the packed raw layout; raw_data is viewed without copying. External data is read
// lazily from files beside the model, refusing absolute paths and paths that leave its folder.
using System.Runtime.InteropServices;
using System.Text;
using Google.Protobuf;
using OnnxOpt.GraphIR.Protobuf;
using P = OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.GraphIR;

public static class OnnxImporter
{
    /// <summary>Highest ai.onnx opset this build knows; newer ones are refused as unknown.</summary>
    public const long MaxKnownDefaultOpset = 25;

    public static Model Load(string path)
    {
        FileKinds.RequireRegular(path, "model file");
        if (new FileInfo(path).Length >= LazyModelReader.Threshold) return LoadLazily(path);
        var bytes = FileKinds.ReadAllBytes(path, "model file");
        var dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        return Parse(bytes, dir, path);
    }

    /// <summary>A large model: its main graph's initializers read their data from the file on first use.</summary>
    private static Model LoadLazily(string path)
    {
        byte[] stripped;
        List<LazyModelReader.RawSpan> spans;
        try { (stripped, spans) = LazyModelReader.Strip(path); }
        catch (InvalidDataException e)
        {
            throw new OnnxModelException($"{path}: not a valid ONNX model (protobuf parse failed: {e.Message})");
        }
        catch (IOException e) { throw new OnnxModelException($"{path}: cannot read: {e.Message}"); }
        var full = Path.GetFullPath(path);
        var m = Parse(stripped, Path.GetDirectoryName(full) ?? ".", path);
        var inits = m.Graph.Initializers.ToList();
        foreach (var (index, offset, length) in spans)
        {
            if (index >= inits.Count) throw new OnnxModelException($"{path}: initializer {index} is missing");
            var v = inits[index];
            var t = v.Initializer!;
            var expected = t.ElementType.ByteCount(t.ElementCount);
            if (t.ElementType.BitWidth() > 0 && length != expected)
                throw new OnnxModelException($"{path}: initializer '{t.Name}' holds {length} bytes but its type "
                    + $"{t.ElementType.Name()}[{string.Join(",", t.Dims)}] needs {expected}");
            var data = new Lazy<ReadOnlyMemory<byte>>(() =>
            {
                using var fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
                return ReadRange(fs, offset, length);
            });
            var lazy = new Tensor(t.Name, t.ElementType, t.Dims, () => data.Value)
            {
                DocString = t.DocString,
                Segment = t.Segment,
                UnknownFields = t.UnknownFields,
            };
            lazy.MetadataProps.AddRange(t.MetadataProps);
            m.Graph.SetInitializerData(v, lazy);
        }
        return m;
    }

    /// <summary>Parses model bytes; <paramref name="baseDirectory"/> resolves external data (without one, bytes
    /// that come from no folder, such as an archive's, a tensor stored in external data is refused rather than
    /// looked for wherever the process runs).</summary>
    public static Model Parse(ReadOnlyMemory<byte> bytes, string? baseDirectory = null, string source = "model")
    {
        ModelProto mp;
        var array = MemoryMarshal.TryGetArray(bytes, out var seg) && seg.Offset == 0 && seg.Count == seg.Array!.Length
            ? seg.Array : bytes.ToArray();
        // The main graph's nodes are parsed one by one as they are imported (MainGraphNodes).
        var split = MainGraphNodes.Split(array);
        try
        {
            mp = new ModelProto();
            mp.MergeFrom(new CodedInputStream(split?.Message ?? array));
        }
        catch (InvalidProtocolBufferException e) { throw NotValid(source, e); }
        if (!mp.HasIrVersion && mp.Graph is null)
            throw new OnnxModelException($"{source}: not an ONNX model (no ir_version and no graph)");
        if (mp.Graph is null) throw new OnnxModelException($"{source}: model has no graph");
        var nodes = split is var (_, spans) ? (MainGraphNodes.Parse(array, spans), spans.Count) : default;
        Model model;
        try { model = new Importer(baseDirectory, source).Model(mp, nodes.Item1, nodes.Item2); }
        catch (InvalidProtocolBufferException e) { throw NotValid(source, e); }
        // A huge graph's import leaves its file bytes and every parsed node as garbage, much of it in the large
        // object heap that only a full collection frees: free it now, before the work on the model allocates
        // beside it (a 1M-node chain: 0.3 s).
        if (nodes.Item2 >= 250_000) GC.Collect();
        return model;
    }

    private static OnnxModelException NotValid(string source, InvalidProtocolBufferException e) =>
        new($"{source}: not a valid ONNX model (protobuf parse failed: {e.Message.TrimEnd('.')})");

    /// <summary>Reads a serialized TensorProto (the ONNX backend test .pb format).</summary>
    public static Tensor ParseTensor(byte[] bytes, string source = "tensor")
    {
        TensorProto tp;
        try { tp = TensorProto.Parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxModelException($"{source}: not a valid TensorProto (protobuf parse failed: {e.Message.TrimEnd('.')})");
        }
        return new Importer(null, source).Tensor(tp, $"tensor '{tp.Name}'");
    }

    private sealed class Importer(string? baseDir, string source)
    {
        // One string per op type and domain (protobuf allocates one per node).
        private readonly Dictionary<string, string> _shared = new(StringComparer.Ordinal);

        private string Shared(string s) =>
            _shared.TryGetValue(s, out var one) ? one : _shared[s] = s;

        /// <summary>The model; <paramref name="mainNodes"/>, when given, are the main graph's nodes (the parsed
        /// graph then has none).</summary>
        public Model Model(ModelProto mp, IEnumerable<NodeProto>? mainNodes = null, int mainNodeCount = 0)
        {
            var m = new Model
            {
                IrVersion = mp.IrVersion,
                ProducerName = mp.HasProducerName ? mp.ProducerName : null,
                ProducerVersion = mp.HasProducerVersion ? mp.ProducerVersion : null,
                Domain = mp.HasDomain ? mp.Domain : null,
                ModelVersion = mp.HasModelVersion ? mp.ModelVersion : null,
                DocString = mp.HasDocString ? mp.DocString : null,
                UnknownFields = UnknownFieldBytes.Get(mp),
            };
            foreach (var o in mp.OpsetImport) m.OpsetImports.Add(new OpsetImport(o.Domain, o.Version));
            CheckOpsets(m);
            m.MetadataProps.AddRange(Props(mp.MetadataProps));
            foreach (var t in mp.TrainingInfo) m.TrainingInfo.Add(t.ToByteArray());
            foreach (var c in mp.Configuration) m.Configuration.Add(c.ToByteArray());
            m.Graph = Graph(mp.Graph, null, mainNodes, mainNodeCount);
            foreach (var f in mp.Functions) m.Functions.Add(Function(f));
            CheckNodeDomains(m);
            return m;
        }

        private void CheckOpsets(Model m)
        {
            foreach (var o in m.OpsetImports)
            {
                if (GraphIR.Model.IsDefaultDomain(o.Domain) && (o.Version < 1 || o.Version > MaxKnownDefaultOpset))
                    throw new OnnxModelException($"{source}: unknown opset: ai.onnx version {o.Version} (this build knows 1..{MaxKnownDefaultOpset})");
            }
        }

        private void CheckNodeDomains(Model m)
        {
            var domains = m.OpsetImports.Select(o => GraphIR.Model.IsDefaultDomain(o.Domain) ? "" : o.Domain).ToHashSet();
            var functions = m.Functions.Select(f => (f.Domain ?? "", f.Name)).ToHashSet();
            foreach (var g in m.Graph.SelfAndSubgraphs())
                foreach (var n in g.Nodes)
                {
                    var d = GraphIR.Model.IsDefaultDomain(n.Domain) ? "" : n.Domain;
                    if (!domains.Contains(d) && !functions.Contains((n.Domain, n.OpType)))
                        throw new OnnxModelException($"{source}: node {n} uses domain '{(d.Length == 0 ? "ai.onnx" : d)}' that the model does not import (no opset_import for it)");
                }
        }

        private static IEnumerable<KeyValuePair<string, string>> Props(IEnumerable<StringStringEntryProto> ps) =>
            ps.Select(p => new KeyValuePair<string, string>(p.Key, p.Value));

        public Graph Graph(GraphProto gp, Graph? parent, IEnumerable<NodeProto>? nodeSource = null, int nodeCount = 0)
        {
            var g = new Graph(gp.Name)
            {
                HasName = gp.HasName,
                DocString = gp.HasDocString ? gp.DocString : null,
                UnknownFields = UnknownFieldBytes.Get(gp),
            };
            g.Parent = parent;
            g.MetadataProps.AddRange(Props(gp.MetadataProps));
            foreach (var qa in gp.QuantizationAnnotation)
                g.QuantizationAnnotations.Add(new QuantAnnotation(qa.TensorName,
                    Props(qa.QuantParameterTensorNames).ToArray()));

            foreach (var tp in gp.Initializer) g.AddInitializer(Tensor(tp, $"initializer '{tp.Name}'"));
            foreach (var sp in gp.SparseInitializer) g.AddSparseInitializer(Sparse(sp));
            foreach (var vi in gp.Input)
            {
                var v = g.Find(vi.Name);
                if (v is not null && v.IsInitializer && !v.IsGraphInput) g.AddInputValue(v);
                else if (v is not null) throw new OnnxModelException($"{source}: graph input '{vi.Name}' is declared twice in graph '{g.Name}'");
                else v = g.AddInput(vi.Name, null);
                ApplyInfo(v, vi);
            }

            // Per node only its input names outlive its NodeProto (and the proto itself when an attribute holds a
            // subgraph, whose body may read values defined later): attributes after every node is defined, then
            // inputs, in file order, as the whole message would be imported.
            var count = nodeSource is null ? gp.Node.Count : nodeCount;
            var nodes = new List<(Node Node, string[] Inputs, NodeProto? Subgraphs)>(count);
            foreach (var np in nodeSource ?? gp.Node)
            {
                var n = g.NewDetachedNode(Shared(np.OpType), Shared(np.Domain));
                n.Name = np.HasName ? np.Name : null;
                n.HasDomainField = np.HasDomain;
                n.Overload = np.HasOverload ? np.Overload : null;
                n.DocString = np.HasDocString ? np.DocString : null;
                if (np.MetadataProps.Count > 0) n.MetadataProps.AddRange(Props(np.MetadataProps));
                n.UnknownFields = UnknownFieldBytes.Get(np);
                if (np.DeviceConfigurations.Count > 0)
                {
                    // Keep device configurations verbatim with the other fields we do not interpret.
                    var extra = new NodeProto();
                    extra.DeviceConfigurations.Add(np.DeviceConfigurations);
                    n.UnknownFields = Concat(n.UnknownFields, extra.ToByteArray());
                }
                foreach (var o in np.Output)
                {
                    if (o.Length > 0 && g.Defines(o))
                    {
                        var prev = g.Find(o)!;
                        var what = prev.Producer is { } p ? $"node {p}" : prev.IsInitializer ? "an initializer" : "a graph input";
                        throw new OnnxModelException($"{source}: value '{o}' has more than one producer: node {Label(np)} and {what}");
                    }
                    g.AddOutputTo(n, o);
                }
                g.AppendNode(n);
                var subgraphs = np.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0);
                if (!subgraphs)
                    foreach (var ap in np.Attribute) n.Attributes.Add(OnnxAttribute(ap, g, n));
                nodes.Add((n, [.. np.Input], subgraphs ? np : null));
            }
            foreach (var (n, _, np) in nodes)
                if (np is not null)
                    foreach (var ap in np.Attribute) n.Attributes.Add(OnnxAttribute(ap, g, n));
            foreach (var (n, inputs, _) in nodes)
                foreach (var i in inputs)
                {
                    if (i.Length == 0) { g.AppendInput(n, null); continue; }
                    var v = g.Lookup(i) ?? throw new OnnxModelException(
                        $"{source}: node {n} reads '{i}', which no graph input, initializer or node output defines (dangling input)");
                    g.AppendInput(n, v);
                }
            foreach (var vi in gp.ValueInfo)
            {
                var v = g.Find(vi.Name);
                if (v is null || g.ValueInfos.Contains(v))
                {
                    // value_info for a name this graph does not define (or a repeat): kept, detached.
                    v = new Value(g, vi.Name);
                }
                ApplyInfo(v, vi);
                g.AddValueInfo(v);
            }
            foreach (var vi in gp.Output)
            {
                var v = g.Lookup(vi.Name) ?? throw new OnnxModelException(
                    $"{source}: graph output '{vi.Name}' of graph '{g.Name}' is not produced by any node, input or initializer");
                g.AddOutput(v);
                ApplyInfo(v, vi);
            }
            // Files are usually in order already: no sort then (AppendInput noted any edge against it).
            g.SortIfNeeded();
            return g;
        }

        private static byte[] Concat(byte[]? a, byte[] b) => a is null ? b : [.. a, .. b];

        private static string Label(NodeProto np) =>
            np.Name.Length > 0 ? $"'{np.Name}' ({np.OpType})" : $"{np.OpType} -> '{np.Output.FirstOrDefault()}'";

        private static void ApplyInfo(Value v, ValueInfoProto vi)
        {
            if (vi.Type is not null) v.Type = Type(vi.Type);
            if (vi.HasDocString) v.DocString = vi.DocString;
            if (vi.MetadataProps.Count > 0) v.MetadataProps.AddRange(Props(vi.MetadataProps));
            v.UnknownFields = UnknownFieldBytes.Get(vi);
        }

        private Function Function(FunctionProto fp)
        {
            // A function body is a graph with untyped formal inputs/outputs: reuse the graph importer.
            var gp = new GraphProto { Name = fp.Name };
            gp.Input.AddRange(fp.Input.Select(i => new ValueInfoProto { Name = i }));
            gp.Output.AddRange(fp.Output.Select(o => new ValueInfoProto { Name = o }));
            gp.Node.AddRange(fp.Node);
            gp.ValueInfo.AddRange(fp.ValueInfo);
            var body = Graph(gp, null);
            body.HasName = false;
            var f = new Function
            {
                Name = fp.Name,
                Domain = fp.HasDomain ? fp.Domain : null,
                Overload = fp.HasOverload ? fp.Overload : null,
                DocString = fp.HasDocString ? fp.DocString : null,
                UnknownFields = UnknownFieldBytes.Get(fp),
                Body = body,
            };
            f.AttributeNames.AddRange(fp.Attribute);
            foreach (var ap in fp.AttributeProto) f.AttributeDefaults.Add(OnnxAttribute(ap, body, null));
            f.OpsetImports.AddRange(fp.OpsetImport.Select(o => new OpsetImport(o.Domain, o.Version)));
            f.MetadataProps.AddRange(Props(fp.MetadataProps));
            return f;
        }

        private OnnxAttribute OnnxAttribute(AttributeProto ap, Graph owner, Node? node)
        {
            var kind = (AttributeKind)(int)ap.Type;
            var implicitKind = !ap.HasType;
            if (implicitKind) kind = InferKind(ap);
            string where = node is null ? $"attribute '{ap.Name}'" : $"attribute '{ap.Name}' of node {node}";
            if (!Enum.IsDefined(kind))
                throw new OnnxModelException($"{source}: {where} has an unknown attribute type {(int)kind}");
            // A reference to a function's attribute carries no value of its own.
            if (!ap.HasRefAttrName && (kind == AttributeKind.Tensor && ap.T is null || kind == AttributeKind.Graph
                && ap.G is null || kind == AttributeKind.SparseTensor && ap.SparseTensor is null
                || kind == AttributeKind.TypeProto && ap.Tp is null))
                throw new OnnxModelException($"{source}: {where} is typed {kind} but holds no value");
            return new OnnxAttribute
            {
                Name = ap.Name,
                Kind = kind,
                KindImplicit = implicitKind,
                F = ap.F,
                I = ap.I,
                S = ap.HasS ? ap.S.ToByteArray() : null,
                T = ap.T is null ? null : Tensor(ap.T, where),
                G = ap.G is null ? null : Graph(ap.G, owner),
                Sparse = ap.SparseTensor is null ? null : Sparse(ap.SparseTensor),
                Tp = ap.Tp is null ? null : Type(ap.Tp),
                Floats = kind == AttributeKind.Floats || ap.Floats.Count > 0 ? ap.Floats.ToArray() : null,
                Ints = kind == AttributeKind.Ints || ap.Ints.Count > 0 ? ap.Ints.ToArray() : null,
                Strings = kind == AttributeKind.Strings
                    || ap.Strings.Count > 0 ? ap.Strings.Select(s => s.ToByteArray()).ToArray() : null,
                Tensors = kind == AttributeKind.Tensors || ap.Tensors.Count > 0 ? ap.Tensors.Select(t => Tensor(t,
                    where)).ToArray() : null,
                Graphs = kind == AttributeKind.Graphs || ap.Graphs.Count > 0 ? ap.Graphs.Select(x => Graph(x,
                    owner)).ToArray() : null,
                SparseTensors = kind == AttributeKind.SparseTensors
                    || ap.SparseTensors.Count > 0 ? ap.SparseTensors.Select(Sparse).ToArray() : null,
                Tps = kind == AttributeKind.TypeProtos
                    || ap.TypeProtos.Count > 0 ? ap.TypeProtos.Select(Type).ToArray() : null,
                RefAttrName = ap.HasRefAttrName ? ap.RefAttrName : null,
                DocString = ap.HasDocString ? ap.DocString : null,
                UnknownFields = UnknownFieldBytes.Get(ap),
            };
        }

        private static AttributeKind InferKind(AttributeProto ap) =>
            ap.HasF ? AttributeKind.Float : ap.HasI ? AttributeKind.Int : ap.HasS ? AttributeKind.String :
            ap.T is not null ? AttributeKind.Tensor : ap.G is not null ? AttributeKind.Graph :
            ap.Floats.Count > 0 ? AttributeKind.Floats : ap.Ints.Count > 0 ? AttributeKind.Ints :
            ap.Strings.Count > 0 ? AttributeKind.Strings : ap.Tensors.Count > 0 ? AttributeKind.Tensors :
            ap.Graphs.Count > 0 ? AttributeKind.Graphs : AttributeKind.Undefined;

        public static OnnxType Type(TypeProto tp)
        {
            var den = tp.HasDenotation ? tp.Denotation : null;
            switch (tp.ValueCase)
            {
                case TypeProto.ValueOneofCase.TensorType:
                    return new OnnxType
                    {
                        Kind = TypeKind.Tensor,
                        ElementType = (DataType)tp.TensorType.ElemType,
                        HasElementType = tp.TensorType.HasElemType,
                        Shape = Shape(tp.TensorType.Shape),
                        Denotation = den,
                    };
                case TypeProto.ValueOneofCase.SparseTensorType:
                    return new OnnxType
                    {
                        Kind = TypeKind.SparseTensor,
                        ElementType = (DataType)tp.SparseTensorType.ElemType,
                        HasElementType = tp.SparseTensorType.HasElemType,
                        Shape = Shape(tp.SparseTensorType.Shape),
                        Denotation = den,
                    };
                case TypeProto.ValueOneofCase.SequenceType:
                    return new OnnxType
                    {
                        Kind = TypeKind.Sequence,
                        Inner = Opt(tp.SequenceType.ElemType),
                        Denotation = den
                    };
                case TypeProto.ValueOneofCase.OptionalType:
                    return new OnnxType
                    {
                        Kind = TypeKind.Optional,
                        Inner = Opt(tp.OptionalType.ElemType),
                        Denotation = den
                    };
                case TypeProto.ValueOneofCase.MapType:
                    return new OnnxType
                    {
                        Kind = TypeKind.Map,
                        ElementType = (DataType)tp.MapType.KeyType,
                        Inner = Opt(tp.MapType.ValueType),
                        Denotation = den
                    };
                case TypeProto.ValueOneofCase.OpaqueType:
                    return new OnnxType
                    {
                        Kind = TypeKind.Opaque,
                        Denotation = den,
                        OpaqueDomain = tp.OpaqueType.HasDomain ? tp.OpaqueType.Domain : null,
                        OpaqueName = tp.OpaqueType.HasName ? tp.OpaqueType.Name : null,
                    };
                default:
                    return new OnnxType { Kind = TypeKind.None, Denotation = den };
            }
        }

        private static OnnxType? Opt(TypeProto? tp) => tp is null ? null : Type(tp);

        // A negative dim_value (some converters write -1 for "unknown") is read as an unknown dim.
        private static Shape? Shape(TensorShapeProto? sp) => sp is null ? null : new Shape(sp.Dim.Select(d => new Dim(
            d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue >= 0
                ? d.DimValue : null,
            d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam ? d.DimParam : null,
            d.HasDenotation ? d.Denotation : null)));

        private SparseTensor Sparse(SparseTensorProto sp) => new()
        {
            Values = Tensor(sp.Values ?? new TensorProto(), "sparse tensor values"),
            Indices = sp.Indices is null ? null : Tensor(sp.Indices, "sparse tensor indices"),
            Dims = sp.Dims.ToArray(),
            UnknownFields = UnknownFieldBytes.Get(sp),
        };

        public Tensor Tensor(TensorProto tp, string where)
        {
            var type = (DataType)tp.DataType;
            var dims = tp.Dims.ToArray();
            if (dims.Any(d => d < 0)) throw new OnnxModelException($"{source}: {where} has a negative dimension [{string.Join(",", dims)}]");
            Tensor t;
            if (tp.HasDataLocation && tp.DataLocation == TensorProto.Types.DataLocation.External)
                t = ExternalTensor(tp, type, dims, where);
            else if (type == DataType.String)
                t = new Tensor(tp.Name, dims, tp.StringData.Select(s => s.ToByteArray()).ToArray());
            else
            {
                var raw = tp.HasRawData ? tp.RawData.Memory : TypedData(tp, type);
                var expected = ExpectedBytes(type, dims, where, source);
                if (type.BitWidth() > 0 && raw.Length != expected && !(raw.Length == 0 && !tp.HasRawData
                    && NoTypedData(tp)))
                    throw new OnnxModelException($"{source}: {where} holds {raw.Length} bytes but its type {type.Name()}[{string.Join(",", dims)}] needs {expected}");
                t = new Tensor(tp.Name, type, dims, raw);
            }
            t.DocString = tp.HasDocString ? tp.DocString : null;
            t.MetadataProps.AddRange(Props(tp.MetadataProps));
            if (tp.Segment is not null) t.Segment = (tp.Segment.Begin, tp.Segment.End);
            t.UnknownFields = UnknownFieldBytes.Get(tp);
            return t;
        }

        private static bool NoTypedData(TensorProto tp) => tp.FloatData.Count == 0 && tp.Int32Data.Count == 0 &&
            tp.Int64Data.Count == 0 && tp.DoubleData.Count == 0 && tp.Uint64Data.Count == 0;

        private static ReadOnlyMemory<byte> TypedData(TensorProto tp, DataType type)
        {
            switch (type)
            {
                case DataType.Float:
                case DataType.Complex64:
                    return MemoryMarshal.AsBytes(tp.FloatData.ToArray().AsSpan()).ToArray();
                case DataType.Double:
                case DataType.Complex128:
                    return MemoryMarshal.AsBytes(tp.DoubleData.ToArray().AsSpan()).ToArray();
                case DataType.Int64:
                    return MemoryMarshal.AsBytes(tp.Int64Data.ToArray().AsSpan()).ToArray();
                case DataType.UInt32:
                    return MemoryMarshal.AsBytes(tp.Uint64Data.Select(v => (uint)v).ToArray().AsSpan()).ToArray();
                case DataType.UInt64:
                    return MemoryMarshal.AsBytes(tp.Uint64Data.ToArray().AsSpan()).ToArray();
                case DataType.Int32:
                    return MemoryMarshal.AsBytes(tp.Int32Data.ToArray().AsSpan()).ToArray();
                case DataType.Int16:
                case DataType.UInt16:
                case DataType.Float16:
                case DataType.BFloat16:
                    return MemoryMarshal.AsBytes(tp.Int32Data.Select(v => (ushort)v).ToArray().AsSpan()).ToArray();
                default:
                    // 8-bit types: one element per int32; sub-byte types: one packed byte per int32.
                    return tp.Int32Data.Select(v => (byte)v).ToArray();
            }
        }

        private Tensor ExternalTensor(TensorProto tp, DataType type, long[] dims, string where)
        {
            var entries = Props(tp.ExternalData).ToArray();
            string? location = null; long offset = 0; long? length = null;
            foreach (var (k, v) in entries)
            {
                switch (k)
                {
                    case "location": location = v; break;
                    case "offset": offset = ExternalNumber(k, v, where, source); break;
                    case "length": length = ExternalNumber(k, v, where, source); break;
                }
            }
            if (string.IsNullOrEmpty(location)) throw new OnnxModelException($"{source}: {where} is external but has no location");
            if (baseDir is null)
                throw new OnnxModelException($"{source}: {where} is stored in external data ('{location}'), which "
                    + "bytes read from no folder cannot have");
            var full = ResolveExternalPath(baseDir, location, where, source);
            var ext = new ExternalDataRef
            {
                Location = location,
                Offset = offset,
                Length = length,
                Entries = entries,
                BaseDirectory = baseDir
            };
            var expected = type == DataType.String ? (long?)null : ExpectedBytes(type, dims, where, source);
            if (length is long l && expected is long e && l != e)
                throw new OnnxModelException($"{source}: {where} declares external length {l} but its type needs {e} bytes");
            var src = source;
            // Read once, and shared by every copy of the tensor (a model and its clones).
            var data = new Lazy<ReadOnlyMemory<byte>>(() =>
            {
                using var fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read);
                var n = length ?? expected ?? fs.Length - offset;
                if (offset > fs.Length - n)
                    throw new OnnxModelException($"{src}: {where}: external file '{location}' is too short (needs "
                        + $"{n} bytes at offset {offset}, has {fs.Length})");
                return ReadRange(fs, offset, n);
            });
            return new Tensor(tp.Name, type, dims, ext, () => data.Value);
        }
    }

    /// <summary>An external-data offset or length: a non-negative integer, else refused naming the tensor.</summary>
    private static long ExternalNumber(string key, string value, string where, string source)
    {
        if (long.TryParse(value, System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out var v)) return v;
        var shown = value.Length > 40 ? value[..40] + "..." : value;
        throw new OnnxModelException($"{source}: {where}: external data {key} '{shown}' is not a non-negative integer");
    }

    /// <summary>The bytes a tensor of <paramref name="dims"/> needs; refuses dims whose size overflows.</summary>
    private static long ExpectedBytes(DataType type, long[] dims, string where, string source)
    {
        try
        {
            var n = dims.Aggregate(1L, (a, b) => checked(a * b));
            return checked((n * Math.Max(type.BitWidth(), 0) + 7) / 8);
        }
        catch (OverflowException)
        {
            throw new OnnxModelException(
                $"{source}: {where} declares dims [{string.Join(",", dims)}] whose size overflows 64 bits");
        }
    }

    /// <summary>Bytes [offset, offset + n) of a file (external data, a lazily loaded model's weights), read
    /// into a buffer that is not zeroed first.</summary>
    private static byte[] ReadRange(FileStream fs, long offset, long n)
    {
        if (n > Array.MaxLength)
            throw new OnnxModelException($"{fs.Name}: a tensor of {n} bytes is larger than one array can hold");
        var buf = GC.AllocateUninitializedArray<byte>((int)n);
        fs.Seek(offset, SeekOrigin.Begin);
        fs.ReadExactly(buf);
        return buf;
    }

    /// <summary>Resolves an external-data location against the model folder; refuses absolute paths
    /// and paths that escape the folder (".." or links), as the ONNX specification requires.</summary>
    public static string ResolveExternalPath(string baseDir, string location, string where, string source)
    {
        if (Path.IsPathRooted(location) || location.Contains('\\') && location.Contains(':'))
            throw new OnnxModelException($"{source}: {where}: external data location '{location}' is absolute; it must be relative to the model's folder");
        // Every component resolved (a folder inside the model's folder may be a link to /etc), then contained.
        var root = FileKinds.RealPath(baseDir);
        var rootWithSep = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        var lexical = Path.GetFullPath(Path.Combine(root, location));
        if (!lexical.StartsWith(rootWithSep, StringComparison.Ordinal))
            throw new OnnxModelException($"{source}: {where}: external data location '{location}' escapes the model's folder");
        var full = FileKinds.RealPath(lexical);
        if (!full.StartsWith(rootWithSep, StringComparison.Ordinal))
            throw new OnnxModelException(
                $"{source}: {where}: external data location '{location}' is a link that escapes the model's folder");
        var kind = FileKinds.Of(full);
        if (kind == FileKind.Missing)
            throw new OnnxModelException($"{source}: {where}: external data file '{location}' not found beside the model");
        if (kind != FileKind.Regular)
            throw new OnnxModelException($"{source}: {where}: external data file '{location}' is "
                + $"{FileKinds.Describe(kind)}; only regular files are read");
        return full;
    }
}
