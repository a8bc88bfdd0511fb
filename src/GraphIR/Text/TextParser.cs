// Parses the ONNX textual syntax (everything TextPrinter emits with initializers inline) back
// into the IR, so tests can write models as text. Summarized initializers ("<sha256:...>") cannot
// be parsed back and are refused with their name. Errors give line and column.
//
//   model   := '<' key ':' value {',' key ':' value} '>' graph {function}
//   graph   := id '(' [vinfo {',' vinfo}] ')' '=>' '(' ... ')' ['<' (init | vinfo) {',' ...} '>'] '{' {node} '}'
//   node    := ['[' id ']'] [id {',' id}] '=' [domain '.'] op [':' overload] [attrs] '(' [id {',' id}] ')' [attrs]
//   attr    := id [':' kind] '=' (value | '@' id)
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace OnnxOpt.GraphIR;

public static class TextParser
{
    public static Model ParseModel(string text) => new Parser(text).Model();

    /// <summary>Parses a lone graph (no model header); opset defaults to ai.onnx 13.</summary>
    public static Model ParseGraphAsModel(string text, long opset = 13)
    {
        var p = new Parser(text);
        var m = new Model { IrVersion = 8 };
        m.OpsetImports.Add(new OpsetImport("", opset));
        m.Graph = p.TopGraph();
        return m;
    }

    private enum Tok { Id, Str, Num, Punct, End }

    private sealed class GraphSyn
    {
        public string Name = "";
        public List<(OnnxType? Type, string Name)> Inputs = new(), Outputs = new(), Infos = new();
        public List<Tensor> Inits = new();
        public List<NodeSyn> Nodes = new();
        public int Line;
    }

    private sealed class NodeSyn
    {
        public string? Name;
        public List<string> Outputs = new(), Inputs = new();
        public string Domain = "", Op = "";
        public string? Overload;
        public List<AttrSyn> Attrs = new();
        public int Line;
    }

    private sealed record AttrSyn(OnnxAttribute Attr, GraphSyn? G, GraphSyn[]? Gs);

    private sealed class Parser(string text)
    {
        private int _pos, _line = 1, _col = 1;
        private Tok _kind;
        private string _tok = "";
        private int _tokLine, _tokCol;
        private bool _peeked;

        private OnnxModelException Error(string what) =>
            new($"line {_tokLine}, column {_tokCol}: {what} (found {(_kind == Tok.End ? "end of text" : $"'{_tok}'")})");

        private void SkipSpace()
        {
            while (_pos < text.Length)
            {
                var c = text[_pos];
                if (c == '#') { while (_pos < text.Length && text[_pos] != '\n') Adv(); continue; }
                if (!char.IsWhiteSpace(c)) break;
                Adv();
            }
        }

        private void Adv()
        {
            if (text[_pos] == '\n') { _line++; _col = 1; } else _col++;
            _pos++;
        }

        private void Peek()
        {
            if (_peeked) return;
            _peeked = true;
            SkipSpace();
            _tokLine = _line; _tokCol = _col;
            if (_pos >= text.Length) { _kind = Tok.End; _tok = ""; return; }
            var c = text[_pos];
            var start = _pos;
            if (char.IsAsciiLetter(c) || c == '_')
            {
                while (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] is '_' or '.')) Adv();
                _kind = Tok.Id; _tok = text[start.._pos];
                // "nan"/"inf" are numbers where numbers are expected; callers check.
                return;
            }
            char next = _pos + 1 < text.Length ? text[_pos + 1] : '\0';
            if (char.IsAsciiDigit(c)
                || (c is '-' or '+' && (char.IsAsciiDigit(next) || next is '.' or 'i' or 'n'))
                || (c == '.' && char.IsAsciiDigit(next)))
            {
                Adv();
                while (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] is '.' ||
                       (text[_pos] is '-' or '+' && (text[_pos - 1] is 'e' or 'E')))) Adv();
                _kind = Tok.Num; _tok = text[start.._pos];
                return;
            }
            if (c == '"')
            {
                Adv();
                var sb = new StringBuilder();
                while (true)
                {
                    if (_pos >= text.Length) { _kind = Tok.End; throw Error("unterminated string"); }
                    var ch = text[_pos];
                    if (ch == '"') { Adv(); break; }
                    if (ch == '\\' && _pos + 1 < text.Length) { Adv(); ch = text[_pos]; }
                    sb.Append(ch);
                    Adv();
                }
                _kind = Tok.Str; _tok = sb.ToString();
                return;
            }
            if (c == '=' && _pos + 1 < text.Length && text[_pos + 1] == '>') { Adv(); Adv(); _kind = Tok.Punct; _tok = "=>"; return; }
            Adv();
            _kind = Tok.Punct; _tok = c.ToString();
        }

        private string Next()
        {
            Peek();
            _peeked = false;
            return _tok;
        }

        private bool IsPunct(string p) { Peek(); return _kind == Tok.Punct && _tok == p; }

        private bool Accept(string p)
        {
            if (!IsPunct(p)) return false;
            Next();
            return true;
        }

        private void Expect(string p)
        {
            if (!Accept(p)) throw Error($"expected '{p}'");
        }

        /// <summary>An identifier or a quoted name.</summary>
        private string Name()
        {
            Peek();
            if (_kind is not (Tok.Id or Tok.Str)) throw Error("expected a name");
            return Next();
        }

        private string Str()
        {
            Peek();
            if (_kind != Tok.Str) throw Error("expected a quoted string");
            return Next();
        }

        private long Int()
        {
            Peek();
            if (_kind != Tok.Num || !long.TryParse(_tok, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture,
                out var v))
                throw Error("expected an integer");
            Next();
            return v;
        }

        private double Real()
        {
            Peek();
            var t = _tok.ToLowerInvariant();
            double v;
            if (t is "nan" or "-nan" or "+nan") v = double.NaN;
            else if (t is "inf" or "+inf") v = double.PositiveInfinity;
            else if (t == "-inf") v = double.NegativeInfinity;
            else if (_kind != Tok.Num || !double.TryParse(_tok, NumberStyles.Float, CultureInfo.InvariantCulture,
                out v))
                throw Error("expected a number");
            Next();
            return v;
        }

        public Model Model()
        {
            var m = new Model();
            Expect("<");
            if (!IsPunct(">"))
            {
                do
                {
                    var key = Name();
                    Expect(":");
                    switch (key)
                    {
                        case "ir_version": m.IrVersion = Int(); break;
                        case "opset_import": m.OpsetImports.AddRange(Opsets()); break;
                        case "producer_name": m.ProducerName = Str(); break;
                        case "producer_version": m.ProducerVersion = Str(); break;
                        case "domain": m.Domain = Str(); break;
                        case "model_version": m.ModelVersion = Int(); break;
                        case "doc_string": m.DocString = Str(); break;
                        case "metadata_props": m.MetadataProps.AddRange(Props()); break;
                        default: throw Error($"unknown model key '{key}'");
                    }
                } while (Accept(","));
            }
            Expect(">");
            m.Graph = TopGraph();
            Peek();
            while (_kind != Tok.End)
            {
                m.Functions.Add(Function());
                Peek();
            }
            return m;
        }

        public Graph TopGraph()
        {
            var syn = GraphSyntax();
            return Build(syn, null);
        }

        private List<OpsetImport> Opsets()
        {
            var r = new List<OpsetImport>();
            Expect("[");
            if (!IsPunct("]"))
                do
                {
                    var d = Str();
                    Expect(":");
                    r.Add(new OpsetImport(d, Int()));
                } while (Accept(","));
            Expect("]");
            return r;
        }

        private List<KeyValuePair<string, string>> Props()
        {
            var r = new List<KeyValuePair<string, string>>();
            Expect("[");
            if (!IsPunct("]"))
                do
                {
                    var k = Str();
                    Expect(":");
                    r.Add(new(k, Str()));
                } while (Accept(","));
            Expect("]");
            return r;
        }

        private GraphSyn GraphSyntax()
        {
            Peek();
            var g = new GraphSyn { Line = _tokLine, Name = Name() };
            g.Inputs = ValueInfos();
            Expect("=>");
            g.Outputs = ValueInfos();
            if (Accept("<"))
            {
                if (!IsPunct(">"))
                    do
                    {
                        var type = Type();
                        var name = Name();
                        if (Accept("=")) g.Inits.Add(TensorValue(type, name));
                        else g.Infos.Add((type, name));
                    } while (Accept(","));
                Expect(">");
            }
            g.Nodes = NodeList();
            return g;
        }

        private List<NodeSyn> NodeList()
        {
            var nodes = new List<NodeSyn>();
            Expect("{");
            while (!Accept("}")) nodes.Add(NodeSyntax());
            return nodes;
        }

        private List<(OnnxType?, string)> ValueInfos()
        {
            var r = new List<(OnnxType?, string)>();
            Expect("(");
            if (!IsPunct(")"))
                do
                {
                    Peek();
                    if (_kind == Tok.Id && IsTypeKeyword(_tok))
                    {
                        var t = Type();
                        r.Add((t, Name()));
                    }
                    else r.Add((null, Name()));
                } while (Accept(","));
            Expect(")");
            return r;
        }

        private static bool IsTypeKeyword(string s) =>
            DataTypes.TryParse(s, out _) || s is "seq" or "optional" or "map" or "sparse_tensor" or "opaque";

        private OnnxType Type()
        {
            var kw = Name();
            switch (kw)
            {
                case "seq": { Expect("("); var inner = IsPunct(")") ? null : Type(); Expect(")"); return new OnnxType { Kind = TypeKind.Sequence, Inner = inner }; }
                case "optional": { Expect("("); var inner = IsPunct(")") ? null : Type(); Expect(")"); return new OnnxType { Kind = TypeKind.Optional, Inner = inner }; }
                case "map":
                {
                    Expect("(");
                    var key = ElemType(Name());
                    Expect(",");
                    var val = Type();
                    Expect(")");
                    return new OnnxType { Kind = TypeKind.Map, ElementType = key, Inner = val };
                }
                case "sparse_tensor":
                {
                    Expect("(");
                    var et = ElemType(Name());
                    var shape = ShapeOpt();
                    Expect(")");
                    return new OnnxType { Kind = TypeKind.SparseTensor, ElementType = et, Shape = shape };
                }
                case "opaque":
                {
                    Expect("(");
                    string? a = null, b = null;
                    if (!IsPunct(")")) { a = Name(); if (Accept(",")) b = Name(); }
                    Expect(")");
                    return new OnnxType
                    {
                        Kind = TypeKind.Opaque,
                        OpaqueDomain = b is null ? null : a,
                        OpaqueName = b ?? a
                    };
                }
                default:
                    return OnnxType.Tensor(ElemType(kw), ShapeOpt());
            }
        }

        private DataType ElemType(string s) => DataTypes.TryParse(s,
            out var t) ? t : throw Error($"unknown element type '{s}'");

        /// <summary>No brackets: scalar; "[]": rank unknown; "[N,3,?]": dims.</summary>
        private Shape? ShapeOpt()
        {
            if (!Accept("[")) return Shape.Scalar;
            if (Accept("]")) return null;
            var dims = new List<Dim>();
            do
            {
                Peek();
                if (_kind == Tok.Num) dims.Add(Dim.Of(Int()));
                else if (Accept("?")) dims.Add(Dim.Unknown);
                else dims.Add(Dim.Symbol(Name()));
            } while (Accept(","));
            Expect("]");
            return new Shape(dims);
        }

        private Tensor TensorValue(OnnxType type, string name)
        {
            if (type.Kind != TypeKind.Tensor || type.Shape is null || !type.Shape.IsFullyKnown)
                throw Error($"initializer '{name}' needs a tensor type with static dims");
            var dims = type.Shape.ToArray();
            if (IsPunct("<"))
                throw Error($"initializer '{name}' is summarized (hash only); dump with --full to get parseable text");
            return TensorData(type.ElementType, dims, name);
        }

        private Tensor TensorData(DataType et, long[] dims, string name)
        {
            Expect("{");
            var count = dims.Aggregate(1L, (a, b) => a * b);
            if (et == DataType.String)
            {
                var strs = new List<byte[]>();
                if (!IsPunct("}")) do strs.Add(Encoding.UTF8.GetBytes(Str())); while (Accept(","));
                Expect("}");
                if (strs.Count != count) throw Error($"tensor '{name}' has {strs.Count} strings, its shape needs {count}");
                return new Tensor(name, dims, strs);
            }
            var perElem = et is DataType.Complex64 or DataType.Complex128 ? 2 : 1;
            var vals = new List<double>();
            var ints = new List<long>();
            var isFloat = et is DataType.Float or DataType.Double or DataType.Complex64 or DataType.Complex128;
            if (!IsPunct("}"))
                do
                {
                    if (isFloat) vals.Add(Real());
                    else if (et == DataType.UInt64)
                    {
                        Peek(); ints.Add((long)ulong.Parse(Next(),
                        CultureInfo.InvariantCulture));
                    }
                    else ints.Add(Int());
                } while (Accept(","));
            Expect("}");
            var n = isFloat ? vals.Count : ints.Count;
            if (n != count * perElem) throw Error($"tensor '{name}' has {n} values, its shape needs {count * perElem}");
            var bytes = new byte[et.ByteCount(count)];
            for (int i = 0; i < n; i++)
            {
                switch (et)
                {
                    case DataType.Float:
                    case DataType.Complex64:
                        BitConverter.TryWriteBytes(bytes.AsSpan(i * 4),
                        (float)vals[i]); break;
                    case DataType.Double:
                    case DataType.Complex128:
                        BitConverter.TryWriteBytes(bytes.AsSpan(i * 8),
                        vals[i]); break;
                    case DataType.Int64:
                    case DataType.UInt64:
                        BitConverter.TryWriteBytes(bytes.AsSpan(i * 8),
                        ints[i]); break;
                    case DataType.Int32:
                    case DataType.UInt32:
                        BitConverter.TryWriteBytes(bytes.AsSpan(i * 4),
                        (int)ints[i]); break;
                    case DataType.Int16:
                    case DataType.UInt16:
                    case DataType.Float16:
                    case DataType.BFloat16:
                        BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), (ushort)ints[i]); break;
                    case DataType.Int4:
                    case DataType.UInt4:
                    case DataType.Float4E2M1:
                        bytes[i / 2] |= (byte)((ints[i] & 0xF) << (4 * (i % 2))); break;
                    case DataType.Int2:
                    case DataType.UInt2:
                        bytes[i / 4] |= (byte)((ints[i] & 0x3) << (2 * (i % 4))); break;
                    default: bytes[i] = (byte)ints[i]; break;
                }
            }
            return new Tensor(name, et, dims, bytes);
        }

        private NodeSyn NodeSyntax()
        {
            Peek();
            var n = new NodeSyn { Line = _tokLine };
            if (Accept("["))
            {
                n.Name = Name();
                Expect("]");
            }
            if (!IsPunct("="))
                do n.Outputs.Add(Name()); while (Accept(","));
            Expect("=");
            var op = Name();
            var dot = op.LastIndexOf('.');
            if (dot >= 0) { n.Domain = op[..dot]; n.Op = op[(dot + 1)..]; }
            else n.Op = op;
            if (Accept(":")) n.Overload = Name();
            if (IsPunct("<")) n.Attrs.AddRange(Attributes());
            Expect("(");
            if (!IsPunct(")"))
                do n.Inputs.Add(Name()); while (Accept(","));
            Expect(")");
            if (IsPunct("<")) n.Attrs.AddRange(Attributes());
            return n;
        }

        private List<AttrSyn> Attributes()
        {
            var r = new List<AttrSyn>();
            Expect("<");
            do r.Add(AttributeSyntax()); while (Accept(","));
            Expect(">");
            return r;
        }

        private AttrSyn AttributeSyntax()
        {
            var name = Name();
            AttributeKind? kind = null;
            if (Accept(":"))
            {
                var k = Name();
                if (!GraphIR.OnnxAttribute.TryParseKind(k, out var kk)) throw Error($"unknown attribute type '{k}'");
                kind = kk;
            }
            Expect("=");
            if (Accept("@"))
                return new(new OnnxAttribute
                {
                    Name = name,
                    Kind = kind ?? AttributeKind.Undefined,
                    RefAttrName = Name()
                }, null, null);
            kind ??= GuessKind();
            switch (kind)
            {
                case AttributeKind.Int: return new(GraphIR.OnnxAttribute.Int(name, Int()), null, null);
                case AttributeKind.Float: return new(GraphIR.OnnxAttribute.Float(name, (float)Real()), null, null);
                case AttributeKind.String: return new(GraphIR.OnnxAttribute.String(name, Str()), null, null);
                case AttributeKind.Ints:
                    return new(GraphIR.OnnxAttribute.IntList(name, List(Int).ToArray()), null,
                    null);
                case AttributeKind.Floats:
                    return new(GraphIR.OnnxAttribute.FloatList(name,
                    List(() => (float)Real()).ToArray()), null, null);
                case AttributeKind.Strings:
                    return new(new OnnxAttribute
                    {
                        Name = name,
                        Kind = AttributeKind.Strings,
                        Strings = List(() => Encoding.UTF8.GetBytes(Str())).ToArray()
                    }, null, null);
                case AttributeKind.Tensor:
                    return new(GraphIR.OnnxAttribute.FromTensor(name, InlineTensor()), null,
                    null);
                case AttributeKind.Tensors:
                    return new(new OnnxAttribute
                    {
                        Name = name,
                        Kind = AttributeKind.Tensors,
                        Tensors = List(InlineTensor).ToArray()
                    }, null, null);
                case AttributeKind.Graph:
                    return new(new OnnxAttribute { Name = name, Kind = AttributeKind.Graph },
                    GraphSyntax(), null);
                case AttributeKind.Graphs:
                    return new(new OnnxAttribute { Name = name, Kind = AttributeKind.Graphs },
                    null, List(GraphSyntax).ToArray());
                case AttributeKind.TypeProto:
                    return new(new OnnxAttribute
                    {
                        Name = name,
                        Kind = AttributeKind.TypeProto,
                        Tp = Type()
                    }, null, null);
                case AttributeKind.TypeProtos:
                    return new(new OnnxAttribute
                    {
                        Name = name,
                        Kind = AttributeKind.TypeProtos,
                        Tps = List(Type).ToArray()
                    }, null, null);
                default: throw Error($"attribute '{name}' of type {GraphIR.OnnxAttribute.KindName(kind!.Value)} cannot be written in text");
            }
        }

        /// <summary>Kind of an untyped attribute value, from its first token.</summary>
        private AttributeKind GuessKind()
        {
            Peek();
            if (_kind == Tok.Str) return AttributeKind.String;
            if (_kind == Tok.Num) return _tok.IndexOfAny(['.', 'e', 'E', 'n', 'i']) >= 0 ? AttributeKind.Float : AttributeKind.Int;
            if (_kind == Tok.Id && IsTypeKeyword(_tok)) return AttributeKind.Tensor;
            if (IsPunct("["))
            {
                var save = (_pos, _line, _col, _peeked, _kind, _tok, _tokLine, _tokCol);
                Next();
                Peek();
                var k = _kind == Tok.Str ? AttributeKind.Strings
                    : _kind == Tok.Num
                        && _tok.IndexOfAny(['.', 'e', 'E']) >= 0 ? AttributeKind.Floats : AttributeKind.Ints;
                (_pos, _line, _col, _peeked, _kind, _tok, _tokLine, _tokCol) = save;
                return k;
            }
            throw Error("cannot tell the attribute's type; write it as name: type = value");
        }

        private List<T> List<T>(Func<T> item)
        {
            var r = new List<T>();
            Expect("[");
            if (!IsPunct("]")) do r.Add(item()); while (Accept(","));
            Expect("]");
            return r;
        }

        private Tensor InlineTensor()
        {
            var t = Type();
            if (t.Kind != TypeKind.Tensor || t.Shape is null
                || !t.Shape.IsFullyKnown) throw Error("a tensor value needs static dims");
            Peek();
            var name = _kind is Tok.Id or Tok.Str ? Next() : "";
            if (IsPunct("<")) throw Error($"tensor '{name}' is summarized (hash only); dump with --full to get parseable text");
            return TensorData(t.ElementType, t.Shape.ToArray(), name);
        }

        private Function Function()
        {
            Expect("<");
            string? domain = null, overload = null;
            var opsets = new List<OpsetImport>();
            do
            {
                var key = Name();
                Expect(":");
                switch (key)
                {
                    case "domain": domain = Str(); break;
                    case "overload": overload = Str(); break;
                    case "opset_import": opsets = Opsets(); break;
                    default: throw Error($"unknown function key '{key}'");
                }
            } while (Accept(","));
            Expect(">");
            var name = Name();
            var attrNames = new List<string>();
            var attrDefaults = new List<AttrSyn>();
            if (Accept("<"))
            {
                do
                {
                    Peek();
                    var save = (_pos, _line, _col, _peeked, _kind, _tok, _tokLine, _tokCol);
                    var an = Name();
                    if (IsPunct(":") || IsPunct("="))
                    {
                        (_pos, _line, _col, _peeked, _kind, _tok, _tokLine, _tokCol) = save;
                        attrDefaults.Add(AttributeSyntax());
                    }
                    else attrNames.Add(an);
                } while (Accept(","));
                Expect(">");
            }
            var syn = new GraphSyn { Name = name };
            Expect("(");
            if (!IsPunct(")")) do syn.Inputs.Add((null, Name())); while (Accept(","));
            Expect(")");
            Expect("=>");
            Expect("(");
            if (!IsPunct(")")) do syn.Outputs.Add((null, Name())); while (Accept(","));
            Expect(")");
            if (Accept("<"))
            {
                do { var t = Type(); syn.Infos.Add((t, Name())); } while (Accept(","));
                Expect(">");
            }
            syn.Nodes = NodeList();
            var body = Build(syn, null);
            body.HasName = false;
            var f = new Function { Name = name, Domain = domain, Overload = overload, Body = body };
            f.AttributeNames.AddRange(attrNames);
            f.AttributeDefaults.AddRange(attrDefaults.Select(a => a.Attr));
            f.OpsetImports.AddRange(opsets);
            return f;
        }

        /// <summary>Builds IR from syntax in two phases (define every output, then connect inputs),
        /// as the protobuf importer does, so node order in the text need not be topological.</summary>
        private static Graph Build(GraphSyn syn, Graph? parent)
        {
            var g = new Graph(syn.Name) { Parent = parent };
            try
            {
                foreach (var t in syn.Inits) g.AddInitializer(t);
                foreach (var (type, name) in syn.Inputs)
                {
                    var v = g.Find(name);
                    if (v is { IsInitializer: true }) g.AddInputValue(v);
                    else v = g.AddInput(name, type);
                    if (type is not null) v.Type = type;
                }
                var nodes = new List<(Node, NodeSyn)>();
                foreach (var ns in syn.Nodes)
                {
                    var n = g.NewDetachedNode(ns.Op, ns.Domain);
                    n.Name = ns.Name;
                    n.Overload = ns.Overload;
                    foreach (var o in ns.Outputs)
                    {
                        if (o.Length > 0 && g.Defines(o))
                            throw new OnnxModelException($"line {ns.Line}: value '{o}' has more than one producer");
                        g.AddOutputTo(n, o);
                    }
                    g.AppendNode(n);
                    nodes.Add((n, ns));
                }
                foreach (var (n, ns) in nodes)
                    foreach (var a in ns.Attrs)
                    {
                        var attr = a.Attr;
                        if (a.G is not null) attr = new OnnxAttribute
                        {
                            Name = attr.Name,
                            Kind = AttributeKind.Graph,
                            G = Build(a.G, g)
                        };
                        else if (a.Gs is not null) attr = new OnnxAttribute
                        {
                            Name = attr.Name,
                            Kind = AttributeKind.Graphs,
                            Graphs = a.Gs.Select(x => Build(x, g)).ToArray()
                        };
                        n.Attributes.Add(attr);
                    }
                foreach (var (n, ns) in nodes)
                    foreach (var i in ns.Inputs)
                    {
                        if (i.Length == 0) { g.AppendInput(n, null); continue; }
                        var v = g.Lookup(i) ?? throw new OnnxModelException($"line {ns.Line}: node {n} reads '{i}', which is not defined (dangling input)");
                        g.AppendInput(n, v);
                    }
                foreach (var (type, name) in syn.Infos)
                {
                    var v = g.Find(name) ?? throw new OnnxModelException($"line {syn.Line}: value_info '{name}' names no value of graph '{syn.Name}'");
                    v.Type = type;
                    g.AddValueInfo(v);
                }
                foreach (var (type, name) in syn.Outputs)
                {
                    var v = g.Lookup(name) ?? throw new OnnxModelException($"line {syn.Line}: graph output '{name}' is not produced by any node, input or initializer");
                    if (type is not null) v.Type = type;
                    g.AddOutput(v);
                }
                // Usually in order already: no sort then (AppendInput noted any edge against it).
                g.SortIfNeeded();
            }
            catch (OnnxModelException) { throw; }
            return g;
        }
    }
}
