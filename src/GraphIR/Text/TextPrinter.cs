// Prints a model in the ONNX textual syntax, as onnx.printer writes it:
//   <
//      ir_version: 8,
//      opset_import: ["" : 13]
//   >
//   main (float[N,3] X) => (float[N,2] Y)
//      <float[2,3] W = {1,2,3,4,5,6}, float[N,2] T>
//   {
//      [gemm0] Y = Gemm <transB: int = 1> (X, W)
//   }
// Initializers with more than MaxInlineElements elements are summarized as
//   float[64,3,3,3] w = <sha256:0123456789abcdef, 6912 bytes>
// so that dumps of real models stay readable and still change when any weight changes.
// Sub-byte tensors (int4, uint4, float4e2m1, int2, uint2) print one code per element.
using System.Globalization;
using System.Text;

namespace OnnxOpt.GraphIR;

public sealed record TextOptions
{
    /// <summary>Tensors with more elements are summarized by hash; int.MaxValue prints everything.</summary>
    public int MaxInlineElements { get; init; } = 16;
    public static readonly TextOptions Full = new() { MaxInlineElements = int.MaxValue };
}

public sealed class TextPrinter
{
    private readonly StringBuilder _sb = new();
    private readonly TextOptions _opts;
    private readonly TextWriter? _to;
    private int _indent = 3;

    private TextPrinter(TextOptions opts, TextWriter? to = null) { _opts = opts; _to = to; }

    /// <summary>Writes the text to <paramref name="to"/> as it goes: a million-node graph's text is never held
    /// whole (the same text Print returns).</summary>
    public static void Print(Model m, TextWriter to, TextOptions? options = null)
    {
        var p = new TextPrinter(options ?? new TextOptions(), to);
        p.Model(m);
        p.Spill(0);
    }

    /// <summary>Hands what is printed so far to the writer once it is large (the text is only ever appended).
    /// </summary>
    private void Spill(int atLeast)
    {
        if (_to is null || _sb.Length < atLeast) return;
        foreach (var chunk in _sb.GetChunks()) _to.Write(chunk.Span);
        _sb.Clear();
    }

    public static string Print(Model m, TextOptions? options = null)
    {
        var p = new TextPrinter(options ?? new TextOptions());
        p.Model(m);
        return p._sb.ToString();
    }

    public static string Print(Graph g, TextOptions? options = null)
    {
        var p = new TextPrinter(options ?? new TextOptions());
        p.Graph(g);
        return p._sb.ToString();
    }

    private void Model(Model m)
    {
        _sb.Append("<\n");
        _sb.Append("   ir_version: ").Append(Num(m.IrVersion));
        KeyValue("opset_import", () => Opsets(m.OpsetImports, ", "));
        if (m.ProducerName is not null) KeyValue("producer_name", () => Quoted(m.ProducerName));
        if (m.ProducerVersion is not null) KeyValue("producer_version", () => Quoted(m.ProducerVersion));
        if (m.Domain is not null) KeyValue("domain", () => Quoted(m.Domain));
        if (m.ModelVersion is long mv) KeyValue("model_version", () => _sb.Append(Num(mv)));
        if (m.DocString is not null) KeyValue("doc_string", () => Quoted(m.DocString));
        if (m.MetadataProps.Count > 0) KeyValue("metadata_props", () => Props(m.MetadataProps));
        _sb.Append("\n>\n");
        Graph(m.Graph);
        foreach (var f in m.Functions)
        {
            _sb.Append('\n');
            Function(f);
        }
        _sb.Append('\n');
    }

    private void KeyValue(string key, Action value)
    {
        _sb.Append(",\n").Append(' ', _indent).Append(key).Append(": ");
        value();
    }

    private void Opsets(IEnumerable<OpsetImport> opsets, string sep)
    {
        _sb.Append('[');
        var first = true;
        foreach (var o in opsets)
        {
            if (!first) _sb.Append(sep);
            first = false;
            Quoted(o.Domain);
            _sb.Append(" : ").Append(Num(o.Version));
        }
        _sb.Append(']');
    }

    private void Props(IEnumerable<KeyValuePair<string, string>> props)
    {
        _sb.Append('[');
        var first = true;
        foreach (var (k, v) in props)
        {
            if (!first) _sb.Append(", ");
            first = false;
            Quoted(k);
            _sb.Append(": ");
            Quoted(v);
        }
        _sb.Append(']');
    }

    private void Graph(Graph g)
    {
        Id(g.Name);
        _sb.Append(' ');
        ValueList(g.Inputs);
        _sb.Append(" => ");
        ValueList(g.Outputs);
        _sb.Append(' ');
        if (g.Initializers.Count > 0 || g.SparseInitializers.Count > 0 || g.ValueInfos.Count > 0)
        {
            _sb.Append('\n').Append(' ', _indent).Append('<');
            var sep = "";
            foreach (var v in g.Initializers)
            {
                _sb.Append(sep);
                Tensor(v.Initializer!, initializer: true);
                sep = ", ";
            }
            foreach (var v in g.SparseInitializers)
            {
                _sb.Append(sep);
                SparseTensor(v.SparseInitializer!, v.Name);
                sep = ", ";
            }
            foreach (var v in g.ValueInfos)
            {
                _sb.Append(sep);
                ValueInfo(v);
                sep = ", ";
            }
            _sb.Append(">\n");
        }
        Nodes(g.Nodes);
    }

    private void Nodes(IEnumerable<Node> nodes)
    {
        _sb.Append("{\n");
        foreach (var n in nodes)
        {
            Node(n);
            Spill(1 << 16);
        }
        if (_indent > 3) _sb.Append(' ', _indent - 3);
        _sb.Append('}');
    }

    private void ValueList(IEnumerable<Value> vs)
    {
        _sb.Append('(');
        var sep = "";
        foreach (var v in vs)
        {
            _sb.Append(sep);
            ValueInfo(v);
            sep = ", ";
        }
        _sb.Append(')');
    }

    private void ValueInfo(Value v)
    {
        if (v.Type is not null) Type(v.Type);
        _sb.Append(' ');
        Id(v.Name);
    }

    private void Type(OnnxType t)
    {
        switch (t.Kind)
        {
            case TypeKind.Tensor:
                _sb.Append(t.ElementType.Name());
                if (t.Shape is null) _sb.Append("[]");
                else if (t.Shape.Rank > 0) ShapeText(t.Shape);
                break;
            case TypeKind.SparseTensor:
                _sb.Append("sparse_tensor(").Append(t.ElementType.Name());
                if (t.Shape is null) _sb.Append("[]");
                else if (t.Shape.Rank > 0) ShapeText(t.Shape);
                _sb.Append(')');
                break;
            case TypeKind.Sequence:
                _sb.Append("seq(");
                if (t.Inner is not null) Type(t.Inner);
                _sb.Append(')');
                break;
            case TypeKind.Optional:
                _sb.Append("optional(");
                if (t.Inner is not null) Type(t.Inner);
                _sb.Append(')');
                break;
            case TypeKind.Map:
                _sb.Append("map(").Append(t.ElementType.Name()).Append(", ");
                if (t.Inner is not null) Type(t.Inner);
                _sb.Append(')');
                break;
            case TypeKind.Opaque:
                _sb.Append("opaque(");
                if (!string.IsNullOrEmpty(t.OpaqueDomain)) _sb.Append(t.OpaqueDomain).Append(',');
                if (!string.IsNullOrEmpty(t.OpaqueName)) _sb.Append(t.OpaqueName);
                _sb.Append(')');
                break;
        }
    }

    private void ShapeText(Shape s)
    {
        _sb.Append('[');
        for (int i = 0; i < s.Rank; i++)
        {
            if (i > 0) _sb.Append(',');
            var d = s[i];
            if (d.Value is long v) _sb.Append(Num(v));
            else if (d.Param is not null) Id(d.Param);
            else _sb.Append('?');
        }
        _sb.Append(']');
    }

    private void Tensor(Tensor t, bool initializer)
    {
        _sb.Append(t.ElementType.Name());
        if (t.Dims.Length > 0) _sb.Append('[').Append(string.Join(",", t.Dims.Select(Num))).Append(']');
        if (t.Name.Length > 0)
        {
            _sb.Append(' ');
            Id(t.Name);
        }
        if (initializer) _sb.Append(" = ");
        if (t.ElementCount > _opts.MaxInlineElements)
        {
            _sb.Append(initializer ? "" : " ").Append("<sha256:").Append(t.ContentHash()[..16]).Append(", ").Append(Num(t.ByteSize)).Append(" bytes>");
            return;
        }
        _sb.Append(initializer ? "" : " ");
        TensorData(t);
    }

    private void TensorData(Tensor t)
    {
        if (t.Strings is not null)
        {
            _sb.Append('{');
            for (int i = 0; i < t.Strings.Count; i++)
            {
                if (i > 0) _sb.Append(", ");
                Quoted(Encoding.UTF8.GetString(t.Strings[i]));
            }
            _sb.Append('}');
            return;
        }
        _sb.Append('{');
        var n = t.ElementCount;
        var s = t.RawData.Span;
        for (int i = 0; i < n; i++)
        {
            if (i > 0) _sb.Append(',');
            _sb.Append(ElementText(t.ElementType, s, i));
        }
        _sb.Append('}');
    }

    /// <summary>Element i as text: integers as integers, float/double shortest round trip,
    /// 16-bit and 8-bit floats as their unsigned bit patterns (as onnx.printer does).</summary>
    internal static string ElementText(DataType type, ReadOnlySpan<byte> s, int i) => type switch
    {
        DataType.Float => Flt(BitConverter.ToSingle(s.Slice(i * 4, 4))),
        DataType.Double => Dbl(BitConverter.ToDouble(s.Slice(i * 8, 8))),
        DataType.Int8 => Num((sbyte)s[i]),
        DataType.UInt8 or DataType.Bool or DataType.Float8E4M3FN or DataType.Float8E4M3FNUZ or DataType.Float8E5M2
            or DataType.Float8E5M2FNUZ or DataType.Float8E8M0 => Num(s[i]),
        DataType.Int16 => Num(BitConverter.ToInt16(s.Slice(i * 2, 2))),
        DataType.UInt16 or DataType.Float16 or DataType.BFloat16 => Num(BitConverter.ToUInt16(s.Slice(i * 2, 2))),
        DataType.Int32 => Num(BitConverter.ToInt32(s.Slice(i * 4, 4))),
        DataType.UInt32 => Num(BitConverter.ToUInt32(s.Slice(i * 4, 4))),
        DataType.Int64 => Num(BitConverter.ToInt64(s.Slice(i * 8, 8))),
        DataType.UInt64 => BitConverter.ToUInt64(s.Slice(i * 8, 8)).ToString(CultureInfo.InvariantCulture),
        DataType.Complex64 => Flt(BitConverter.ToSingle(s.Slice(i * 8,
            4))) + "," + Flt(BitConverter.ToSingle(s.Slice(i * 8 + 4, 4))),
        DataType.Complex128 => Dbl(BitConverter.ToDouble(s.Slice(i * 16,
            8))) + "," + Dbl(BitConverter.ToDouble(s.Slice(i * 16 + 8, 8))),
        DataType.Int4 => Num((sbyte)(((s[i / 2] >> (4 * (i % 2))) & 0xF) << 4) >> 4),
        DataType.UInt4 or DataType.Float4E2M1 => Num((s[i / 2] >> (4 * (i % 2))) & 0xF),
        DataType.Int2 => Num((sbyte)(((s[i / 4] >> (2 * (i % 4))) & 0x3) << 6) >> 6),
        DataType.UInt2 => Num((s[i / 4] >> (2 * (i % 4))) & 0x3),
        _ => throw new NotSupportedException($"cannot print elements of type {type.Name()}"),
    };

    private void SparseTensor(SparseTensor st, string name)
    {
        _sb.Append("sparse_tensor(").Append(st.Values.ElementType.Name());
        _sb.Append('[').Append(string.Join(",", st.Dims.Select(Num))).Append("]) ");
        Id(name);
        _sb.Append(" = <values: ");
        Tensor(st.Values.WithName(""), false);
        if (st.Indices is not null)
        {
            _sb.Append(", indices: ");
            Tensor(st.Indices.WithName(""), false);
        }
        _sb.Append('>');
    }

    private void Node(Node n)
    {
        _sb.Append(' ', _indent);
        if (n.Name is not null)
        {
            _sb.Append('[');
            Id(n.Name);
            _sb.Append("] ");
        }
        IdList(n.Outputs.Select(o => o?.Name ?? ""), "", "");
        _sb.Append(" = ");
        if (n.Domain.Length > 0) _sb.Append(n.Domain).Append('.');
        _sb.Append(n.OpType);
        if (n.Overload is not null) _sb.Append(':').Append(n.Overload);
        var hasSubgraph = n.AttributesOrEmpty.Any(a => a.G is not null || a.Graphs is { Length: > 0 });
        if (!hasSubgraph && n.AttributesOrEmpty.Count > 0) Attributes(n.Attributes);
        IdList(n.Inputs.Select(i => i?.Name ?? ""), " (", ")");
        if (hasSubgraph) Attributes(n.Attributes);
        _sb.Append('\n');
    }

    private void Attributes(IEnumerable<OnnxAttribute> attrs)
    {
        _sb.Append(" <");
        var sep = "";
        foreach (var a in attrs)
        {
            _sb.Append(sep);
            OnnxAttribute(a);
            sep = ", ";
        }
        _sb.Append('>');
    }

    private void OnnxAttribute(OnnxAttribute a)
    {
        _sb.Append(a.Name).Append(": ").Append(GraphIR.OnnxAttribute.KindName(a.Kind)).Append(" = ");
        if (a.RefAttrName is not null)
        {
            _sb.Append('@').Append(a.RefAttrName);
            return;
        }
        switch (a.Kind)
        {
            case AttributeKind.Int: _sb.Append(Num(a.I)); break;
            case AttributeKind.Float: _sb.Append(Flt(a.F)); break;
            case AttributeKind.String: Quoted(a.StringValue); break;
            case AttributeKind.Ints: _sb.Append('[').Append(string.Join(", ", a.Ints!.Select(Num))).Append(']'); break;
            case AttributeKind.Floats: _sb.Append('[').Append(string.Join(", ", a.Floats!.Select(Flt))).Append(']'); break;
            case AttributeKind.Strings:
                _sb.Append('[');
                for (int i = 0; i < a.Strings!.Length; i++)
                {
                    if (i > 0) _sb.Append(", ");
                    Quoted(Encoding.UTF8.GetString(a.Strings[i]));
                }
                _sb.Append(']');
                break;
            case AttributeKind.Tensor: Tensor(a.T!, false); break;
            case AttributeKind.Tensors:
                _sb.Append('[');
                for (int i = 0; i < a.Tensors!.Length; i++)
                {
                    if (i > 0) _sb.Append(", ");
                    Tensor(a.Tensors[i], false);
                }
                _sb.Append(']');
                break;
            case AttributeKind.Graph:
                _indent += 3;
                Graph(a.G!);
                _indent -= 3;
                break;
            case AttributeKind.Graphs:
                _indent += 3;
                _sb.Append('[');
                for (int i = 0; i < a.Graphs!.Length; i++)
                {
                    if (i > 0) _sb.Append(", ");
                    Graph(a.Graphs[i]);
                }
                _sb.Append(']');
                _indent -= 3;
                break;
            case AttributeKind.TypeProto: Type(a.Tp!); break;
            case AttributeKind.TypeProtos:
                _sb.Append('[');
                for (int i = 0; i < a.Tps!.Length; i++)
                {
                    if (i > 0) _sb.Append(", ");
                    Type(a.Tps[i]);
                }
                _sb.Append(']');
                break;
            case AttributeKind.SparseTensor: SparseTensor(a.Sparse!, ""); break;
            case AttributeKind.SparseTensors:
                _sb.Append('[');
                for (int i = 0; i < a.SparseTensors!.Length; i++)
                {
                    if (i > 0) _sb.Append(", ");
                    SparseTensor(a.SparseTensors[i], "");
                }
                _sb.Append(']');
                break;
        }
    }

    private void Function(Function f)
    {
        _sb.Append("<\n  domain: ");
        Quoted(f.Domain ?? "");
        _sb.Append(",\n");
        if (f.Overload is not null)
        {
            _sb.Append("  overload: ");
            Quoted(f.Overload);
            _sb.Append(",\n");
        }
        _sb.Append("  opset_import: ");
        Opsets(f.OpsetImports, ",");
        _sb.Append("\n>\n");
        Id(f.Name);
        _sb.Append(' ');
        if (f.AttributeNames.Count > 0 || f.AttributeDefaults.Count > 0)
        {
            _sb.Append('<');
            var sep = "";
            foreach (var a in f.AttributeNames) { _sb.Append(sep); Id(a); sep = ","; }
            foreach (var a in f.AttributeDefaults) { _sb.Append(sep); OnnxAttribute(a); sep = ","; }
            _sb.Append('>');
        }
        IdList(f.Body.Inputs.Select(v => v.Name), "(", ")");
        _sb.Append(" => ");
        IdList(f.Body.Outputs.Select(v => v.Name), "(", ")");
        _sb.Append('\n');
        if (f.Body.ValueInfos.Count > 0)
        {
            _sb.Append(' ', _indent).Append('<');
            var sep = "";
            foreach (var v in f.Body.ValueInfos) { _sb.Append(sep); ValueInfo(v); sep = ", "; }
            _sb.Append(">\n");
        }
        Nodes(f.Body.Nodes);
    }

    private void IdList(IEnumerable<string> ids, string open, string close)
    {
        _sb.Append(open);
        var sep = "";
        foreach (var id in ids)
        {
            _sb.Append(sep);
            Id(id);
            sep = ", ";
        }
        _sb.Append(close);
    }

    private void Id(string s)
    {
        if (IsIdentifier(s)) _sb.Append(s);
        else Quoted(s);
    }

    private void Quoted(string s)
    {
        _sb.Append('"');
        foreach (var ch in s)
        {
            if (ch is '\\' or '"') _sb.Append('\\');
            _sb.Append(ch);
        }
        _sb.Append('"');
    }

    internal static bool IsIdentifier(string s)
    {
        if (s.Length == 0 || !(char.IsAsciiLetter(s[0]) || s[0] == '_')) return false;
        foreach (var c in s) if (!(char.IsAsciiLetterOrDigit(c) || c == '_')) return false;
        return true;
    }

    internal static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);

    internal static string Flt(float f) =>
        float.IsNaN(f) ? (float.IsNegative(f) ? "-nan" : "nan") : float.IsInfinity(f) ? (f > 0 ? "inf" : "-inf")
        : f.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e");

    internal static string Dbl(double f) =>
        double.IsNaN(f) ? (double.IsNegative(f) ? "-nan" : "nan") : double.IsInfinity(f) ? (f > 0 ? "inf" : "-inf")
        : f.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e");
}
