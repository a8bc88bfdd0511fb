// The only writer of ONNX protobuf: IR -> ModelProto -> bytes. Numeric tensors are written as
// raw_data; strings as string_data. With an external-data threshold, initializers at least that
// large go to one data file beside the model (offsets aligned to 4096 bytes, in initializer order),
// which also makes models over protobuf's 2 GB limit writable. Output bytes are deterministic.
using System.Globalization;
using Google.Protobuf;
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.GraphIR;

public sealed record ExportOptions
{
    /// <summary>Initializers of at least this many bytes go to external data (null: all inline).</summary>
    public long? ExternalDataThreshold { get; init; }
    /// <summary>File name of the external data, relative to the model (default: model file name + ".data").</summary>
    public string? ExternalDataFile { get; init; }
    /// <summary>Protobuf's hard limit; a model whose inline size would pass it is written with external data.</summary>
    public long ProtobufLimit { get; init; } = int.MaxValue;
}

public static class OnnxExporter
{
    private const int Alignment = 4096;
    private const int WriteBuffer = 1 << 20;

    /// <summary>Serializes a model whose tensors are all inline.</summary>
    public static byte[] ToBytes(Model m)
    {
        var parts = Parts.Of(new Exporter(null), m);
        var bytes = new byte[parts.Size];        // exactly the message's size: no growing buffer, no copy
        using (var s = new MemoryStream(bytes)) parts.WriteTo(s);
        return bytes;
    }

    /// <summary>Serializes the model with the main graph's initializers that <paramref name="omit"/> selects
    /// written as external-data references to <paramref name="location"/> holding no data (offset 0, their
    /// length): for a runtime that is handed those values separately (ONNX Runtime's shared initializers), so
    /// that no serialized copy of the large weights is made.</summary>
    public static byte[] ToBytesWithout(Model m, Func<Tensor, bool> omit, string location) =>
        new Exporter(new Placeholders(omit, location)).Model(m).ToByteArray();

    /// <summary>The model as one protobuf tree serialized at once: what ToBytes writes field by field (tests
    /// compare the two).</summary>
    internal static byte[] ToBytesAsOneMessage(Model m) => new Exporter(null).Model(m).ToByteArray();

    /// <summary>The serialized size of the model, without serializing it (data is not copied).</summary>
    public static long SizeOf(Model m) => new Exporter(null).Model(m).CalculateSize();

    /// <summary>Serializes one tensor as a TensorProto (the ONNX backend test .pb format).</summary>
    public static byte[] TensorToBytes(Tensor t) => new Exporter(null).TensorProtoOf(t).ToByteArray();

    /// <summary>Writes the model (and its external data file, if any) atomically: temporary files
    /// in the target folder, then renamed over the destination.</summary>
    public static void Save(Model m, string path, ExportOptions? options = null)
    {
        options ??= new ExportOptions();
        var target = AtomicFile.Resolve(path);
        var full = target.Path;
        var dir = Path.GetDirectoryName(Path.GetFullPath(full))!;
        var threshold = options.ExternalDataThreshold;
        if (threshold is null && InlineSize(m) >= options.ProtobufLimit)
            threshold = 1024; // too large for one protobuf message: move large tensors out
        if (target.Direct)
        {
            if (threshold is not null)
                throw new OnnxModelException(
                    $"{path}: a model with external data cannot be written to a device or FIFO");
            AtomicFile.Write(path, s => Write(new Exporter(null), m, s));
            return;
        }
        ExternalWriter? ext = null;
        string? dataName = null, dataTemp = null;
        if (threshold is long th)
        {
            dataName = options.ExternalDataFile ?? Path.GetFileName(full) + ".data";
            if (Path.IsPathRooted(dataName) || dataName.Contains(".."))
                throw new OnnxModelException($"external data file name '{dataName}' must be a plain relative name");
            var dataTarget = AtomicFile.Resolve(Path.Combine(dir, dataName));
            if (dataTarget.Direct)
                throw new OnnxModelException($"{dataTarget.Path}: the external data file is a device or FIFO");
            dataTemp = TempFiles.Create(dir, Path.GetFileName(dataName));
            ext = new ExternalWriter(dataTemp, dataName, th);
        }
        var temp = TempFiles.Create(dir, Path.GetFileName(full));
        try
        {
            using (ext)
            using (var fs = new DurableFileStream(temp))
            {
                Write(new Exporter(ext), m, fs);
                fs.Commit();
            }
            if (ext is not null && ext.Written > 0) File.Move(dataTemp!, Path.Combine(dir, dataName!), overwrite: true);
            else if (dataTemp is not null) File.Delete(dataTemp);
            File.Move(temp, full, overwrite: true);
            TempFiles.Release(temp);
            if (dataTemp is not null) TempFiles.Release(dataTemp);
        }
        catch
        {
            TempFiles.Discard(temp);
            if (dataTemp is not null) TempFiles.Discard(dataTemp);
            throw;
        }
    }

    /// <summary>Writes the model's message without ever holding the main graph's nodes as one protobuf tree
    /// (a million-node graph's NodeProtos would outweigh its IR): a message is the concatenation of its fields in
    /// field order, so the model is written as its fields before the graph (1-6), the graph field, then the rest
    /// (8 on, unknown fields last), and the graph's nodes (its field 1, first) are serialized one at a time into
    /// a buffer ahead of its other fields. The bytes equal the whole message's serialization (tested).</summary>
    private static void Write(Exporter ex, Model m, Stream fs) => Parts.Of(ex, m).WriteTo(fs);

    /// <summary>The model's message in the parts Write concatenates: fields 1-6, the main graph's nodes already
    /// serialized, the graph's other fields, and fields 8 on.</summary>
    private sealed class Parts(ModelProto head, MemoryStream nodes, GraphProto graph, ModelProto tail)
    {
        private readonly int _graphLength = GraphLength(nodes.Length + graph.CalculateSize());

        /// <summary>The serialized size of the whole message.</summary>
        public long Size => head.CalculateSize() + CodedOutputStream.ComputeTagSize(7)
            + CodedOutputStream.ComputeLengthSize(_graphLength) + _graphLength + tail.CalculateSize();

        public static Parts Of(Exporter ex, Model m)
        {
            var (head, graph, tail) = ex.ModelParts(m);
            var nodes = new MemoryStream();
            using (var c = new CodedOutputStream(nodes, WriteBuffer, leaveOpen: true))
            {
                foreach (var n in m.Graph.Nodes)
                {
                    c.WriteTag(1, WireFormat.WireType.LengthDelimited);
                    c.WriteMessage(ex.Node(n));
                }
            }
            return new Parts(head, nodes, graph, tail);
        }

        private static int GraphLength(long length) => length <= int.MaxValue ? (int)length
            : throw new OnnxModelException("the graph is over 2 GB, more than one protobuf message holds: write it "
                + "with its weights as external data");

        public void WriteTo(Stream fs)
        {
            // Protobuf's own buffer is 4 KB, which made 135,000 write calls of a 528 MB model.
            using var coded = new CodedOutputStream(fs, WriteBuffer, leaveOpen: true);
            head.WriteTo(coded);
            coded.WriteTag(7, WireFormat.WireType.LengthDelimited);
            coded.WriteLength(_graphLength);
            coded.Flush();
            nodes.Position = 0;
            nodes.CopyTo(fs);
            graph.WriteTo(coded);
            tail.WriteTo(coded);
            coded.Flush();
        }
    }

    private static long InlineSize(Model m) =>
        m.Graph.SelfAndSubgraphs().SelectMany(g => g.Initializers).Sum(v => v.Initializer!.ByteSize);

    /// <summary>Where initializers that leave the message go, and the external_data entries that say so.</summary>
    private interface IExternalSink
    {
        bool Wants(Tensor t);
        StringStringEntryProto[] Write(Tensor t);
    }

    private sealed class Placeholders(Func<Tensor, bool> omit, string location) : IExternalSink
    {
        public bool Wants(Tensor t) => t.ElementType != DataType.String && omit(t);

        public StringStringEntryProto[] Write(Tensor t) =>
        [
            Entry("location", location),
            Entry("offset", "0"),
            Entry("length", t.ByteSize.ToString(CultureInfo.InvariantCulture)),
        ];
    }

    private sealed class ExternalWriter(string tempPath, string location, long threshold) : IExternalSink, IDisposable
    {
        private DurableFileStream? _fs;
        public long Written { get; private set; }

        public bool Wants(Tensor t) => t.ElementType != DataType.String && t.ByteSize >= threshold;

        public StringStringEntryProto[] Write(Tensor t)
        {
            _fs ??= new DurableFileStream(tempPath);
            var pad = (Alignment - Written % Alignment) % Alignment;
            if (Written > 0 && pad > 0) { _fs.Write(new byte[pad]); Written += pad; }
            var offset = Written;
            var data = t.RawData;
            _fs.Write(data.Span);
            Written += data.Length;
            return
            [
                Entry("location", location),
                Entry("offset", offset.ToString(CultureInfo.InvariantCulture)),
                Entry("length", data.Length.ToString(CultureInfo.InvariantCulture)),
            ];
        }

        public void Dispose()
        {
            if (_fs is null) return;
            _fs.Commit();
            _fs.Dispose();
            _fs = null;
        }
    }

    private static StringStringEntryProto Entry(string k, string v) => new() { Key = k, Value = v };

    private static IEnumerable<StringStringEntryProto> Props(IEnumerable<KeyValuePair<string, string>> ps) =>
        ps.Select(p => Entry(p.Key, p.Value));

    private sealed class Exporter(IExternalSink? ext)
    {
        /// <summary>The model in three parts whose serializations, concatenated with the main graph's nodes
        /// ahead of <paramref name="m"/>'s graph, make the model's message: fields 1-6, the graph without its
        /// nodes, and fields 8 on with the unknown fields.</summary>
        public (ModelProto Head, GraphProto Graph, ModelProto Tail) ModelParts(Model m)
        {
            var whole = Model(m, mainNodes: false);
            var head = new ModelProto { IrVersion = whole.IrVersion };
            if (whole.HasProducerName) head.ProducerName = whole.ProducerName;
            if (whole.HasProducerVersion) head.ProducerVersion = whole.ProducerVersion;
            if (whole.HasDomain) head.Domain = whole.Domain;
            if (whole.HasModelVersion) head.ModelVersion = whole.ModelVersion;
            if (whole.HasDocString) head.DocString = whole.DocString;
            var graph = whole.Graph;
            whole.Graph = null;
            whole.ClearIrVersion();
            whole.ClearProducerName();
            whole.ClearProducerVersion();
            whole.ClearDomain();
            whole.ClearModelVersion();
            whole.ClearDocString();
            return (head, graph, whole);
        }

        public ModelProto Model(Model m) => Model(m, mainNodes: true);

        private ModelProto Model(Model m, bool mainNodes)
        {
            var mp = new ModelProto { IrVersion = m.IrVersion };
            if (m.ProducerName is not null) mp.ProducerName = m.ProducerName;
            if (m.ProducerVersion is not null) mp.ProducerVersion = m.ProducerVersion;
            if (m.Domain is not null) mp.Domain = m.Domain;
            if (m.ModelVersion is long mv) mp.ModelVersion = mv;
            if (m.DocString is not null) mp.DocString = m.DocString;
            foreach (var o in m.OpsetImports) mp.OpsetImport.Add(new OperatorSetIdProto
            {
                Domain = o.Domain,
                Version = o.Version
            });
            mp.MetadataProps.Add(Props(m.MetadataProps));
            mp.Graph = Graph(m.Graph, topLevel: true, nodes: mainNodes);
            foreach (var t in m.TrainingInfo) mp.TrainingInfo.Add(TrainingInfoProto.Parser.ParseFrom(t));
            foreach (var c in m.Configuration) mp.Configuration.Add(DeviceConfigurationProto.Parser.ParseFrom(c));
            foreach (var f in m.Functions) mp.Functions.Add(Function(f));
            UnknownFieldBytes.Put(mp, m.UnknownFields);
            return mp;
        }

        private GraphProto Graph(Graph g, bool topLevel, bool nodes = true)
        {
            var gp = new GraphProto();
            if (g.HasName) gp.Name = g.Name;
            if (g.DocString is not null) gp.DocString = g.DocString;
            foreach (var v in g.Initializers) gp.Initializer.Add(Tensor(v.Initializer!, topLevel));
            foreach (var v in g.SparseInitializers) gp.SparseInitializer.Add(Sparse(v.SparseInitializer!));
            foreach (var v in g.Inputs) gp.Input.Add(Info(v));
            if (nodes)
                foreach (var n in g.Nodes) gp.Node.Add(Node(n));
            foreach (var v in g.Outputs) gp.Output.Add(Info(v));
            foreach (var v in g.ValueInfos) gp.ValueInfo.Add(Info(v));
            foreach (var qa in g.QuantizationAnnotations)
            {
                var ta = new TensorAnnotation { TensorName = qa.TensorName };
                ta.QuantParameterTensorNames.Add(Props(qa.Parameters));
                gp.QuantizationAnnotation.Add(ta);
            }
            gp.MetadataProps.Add(Props(g.MetadataProps));
            UnknownFieldBytes.Put(gp, g.UnknownFields);
            return gp;
        }

        private FunctionProto Function(Function f)
        {
            var fp = new FunctionProto { Name = f.Name };
            if (f.Domain is not null) fp.Domain = f.Domain;
            if (f.Overload is not null) fp.Overload = f.Overload;
            if (f.DocString is not null) fp.DocString = f.DocString;
            fp.Input.Add(f.Body.Inputs.Select(v => v.Name));
            fp.Output.Add(f.Body.Outputs.Select(v => v.Name));
            fp.Attribute.Add(f.AttributeNames);
            foreach (var a in f.AttributeDefaults) fp.AttributeProto.Add(OnnxAttribute(a));
            foreach (var n in f.Body.Nodes) fp.Node.Add(Node(n));
            foreach (var o in f.OpsetImports) fp.OpsetImport.Add(new OperatorSetIdProto
            {
                Domain = o.Domain,
                Version = o.Version
            });
            foreach (var v in f.Body.ValueInfos) fp.ValueInfo.Add(Info(v));
            fp.MetadataProps.Add(Props(f.MetadataProps));
            UnknownFieldBytes.Put(fp, f.UnknownFields);
            return fp;
        }

        public NodeProto Node(Node n)
        {
            var np = new NodeProto { OpType = n.OpType };
            if (n.Name is not null) np.Name = n.Name;
            if (n.Domain.Length > 0 || n.HasDomainField) np.Domain = n.Domain;
            if (n.Overload is not null) np.Overload = n.Overload;
            if (n.DocString is not null) np.DocString = n.DocString;
            np.Input.Add(n.Inputs.Select(v => v?.Name ?? ""));
            np.Output.Add(n.Outputs.Select(v => v?.Name ?? ""));
            foreach (var a in n.AttributesOrEmpty) np.Attribute.Add(OnnxAttribute(a));
            np.MetadataProps.Add(Props(n.MetadataPropsOrEmpty));
            UnknownFieldBytes.Put(np, n.UnknownFields);
            return np;
        }

        private AttributeProto OnnxAttribute(OnnxAttribute a)
        {
            var ap = new AttributeProto { Name = a.Name };
            if (!a.KindImplicit) ap.Type = (AttributeProto.Types.AttributeType)(int)a.Kind;
            if (a.RefAttrName is not null) ap.RefAttrName = a.RefAttrName;
            if (a.DocString is not null) ap.DocString = a.DocString;
            switch (a.Kind)
            {
                case AttributeKind.Float: if (a.RefAttrName is null) ap.F = a.F; break;
                case AttributeKind.Int: if (a.RefAttrName is null) ap.I = a.I; break;
                case AttributeKind.String: if (a.S is not null) ap.S = ByteString.CopyFrom(a.S); break;
            }
            if (a.T is not null) ap.T = Tensor(a.T, false);
            if (a.G is not null) ap.G = Graph(a.G, false);
            if (a.Sparse is not null) ap.SparseTensor = Sparse(a.Sparse);
            if (a.Tp is not null) ap.Tp = Type(a.Tp);
            if (a.Floats is not null) ap.Floats.Add(a.Floats);
            if (a.Ints is not null) ap.Ints.Add(a.Ints);
            if (a.Strings is not null) ap.Strings.Add(a.Strings.Select(ByteString.CopyFrom));
            if (a.Tensors is not null) ap.Tensors.Add(a.Tensors.Select(t => Tensor(t, false)));
            if (a.Graphs is not null) ap.Graphs.Add(a.Graphs.Select(x => Graph(x, false)));
            if (a.SparseTensors is not null) ap.SparseTensors.Add(a.SparseTensors.Select(Sparse));
            if (a.Tps is not null) ap.TypeProtos.Add(a.Tps.Select(Type));
            UnknownFieldBytes.Put(ap, a.UnknownFields);
            return ap;
        }

        private static ValueInfoProto Info(Value v)
        {
            var vi = new ValueInfoProto { Name = v.Name };
            if (v.Type is not null) vi.Type = Type(v.Type);
            if (v.DocString is not null) vi.DocString = v.DocString;
            vi.MetadataProps.Add(Props(v.MetadataPropsOrEmpty));
            UnknownFieldBytes.Put(vi, v.UnknownFields);
            return vi;
        }

        private static TypeProto Type(OnnxType t)
        {
            var tp = new TypeProto();
            if (t.Denotation is not null) tp.Denotation = t.Denotation;
            switch (t.Kind)
            {
                case TypeKind.Tensor:
                    tp.TensorType = new TypeProto.Types.Tensor { Shape = Shape(t.Shape) };
                    if (t.HasElementType) tp.TensorType.ElemType = (int)t.ElementType;
                    break;
                case TypeKind.SparseTensor:
                    tp.SparseTensorType = new TypeProto.Types.SparseTensor { Shape = Shape(t.Shape) };
                    if (t.HasElementType) tp.SparseTensorType.ElemType = (int)t.ElementType;
                    break;
                case TypeKind.Sequence:
                    tp.SequenceType = new TypeProto.Types.Sequence { ElemType = t.Inner is null ? null : Type(t.Inner) };
                    break;
                case TypeKind.Optional:
                    tp.OptionalType = new TypeProto.Types.Optional { ElemType = t.Inner is null ? null : Type(t.Inner) };
                    break;
                case TypeKind.Map:
                    tp.MapType = new TypeProto.Types.Map
                    {
                        KeyType = (int)t.ElementType,
                        ValueType = t.Inner is null ? null : Type(t.Inner)
                    };
                    break;
                case TypeKind.Opaque:
                    tp.OpaqueType = new TypeProto.Types.Opaque();
                    if (t.OpaqueDomain is not null) tp.OpaqueType.Domain = t.OpaqueDomain;
                    if (t.OpaqueName is not null) tp.OpaqueType.Name = t.OpaqueName;
                    break;
            }
            return tp;
        }

        private static TensorShapeProto? Shape(Shape? s)
        {
            if (s is null) return null;
            var sp = new TensorShapeProto();
            foreach (var d in s.Dims)
            {
                var dp = new TensorShapeProto.Types.Dimension();
                if (d.Value is long v) dp.DimValue = v;
                else if (d.Param is not null) dp.DimParam = d.Param;
                if (d.Denotation is not null) dp.Denotation = d.Denotation;
                sp.Dim.Add(dp);
            }
            return sp;
        }

        private SparseTensorProto Sparse(SparseTensor s)
        {
            var sp = new SparseTensorProto { Values = Tensor(s.Values, false) };
            if (s.Indices is not null) sp.Indices = Tensor(s.Indices, false);
            sp.Dims.Add(s.Dims);
            UnknownFieldBytes.Put(sp, s.UnknownFields);
            return sp;
        }

        public TensorProto TensorProtoOf(Tensor t) => Tensor(t, false);

        private TensorProto Tensor(Tensor t, bool mayGoExternal)
        {
            var tp = new TensorProto { DataType = (int)t.ElementType };
            tp.Dims.Add(t.Dims);
            if (t.Name.Length > 0) tp.Name = t.Name;
            if (t.DocString is not null) tp.DocString = t.DocString;
            if (t.Segment is { } seg) tp.Segment = new TensorProto.Types.Segment { Begin = seg.Begin, End = seg.End };
            if (t.Strings is not null) tp.StringData.Add(t.Strings.Select(ByteString.CopyFrom));
            else if (mayGoExternal && ext is not null && ext.Wants(t))
            {
                tp.DataLocation = TensorProto.Types.DataLocation.External;
                tp.ExternalData.Add(ext.Write(t));
            }
            else tp.RawData = UnsafeByteOperations.UnsafeWrap(t.RawData);
            tp.MetadataProps.Add(Props(t.MetadataProps));
            UnknownFieldBytes.Put(tp, t.UnknownFields);
            return tp;
        }
    }
}
