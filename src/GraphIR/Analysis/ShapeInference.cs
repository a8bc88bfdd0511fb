// Infers element types and shapes for the operators onnxopt's passes touch, in topological order,
// with symbolic dims carried through (a batch "N" stays "N"). Small int64 tensors that are known
// constants (initializers, Constant, Shape of a static shape, and Gather/Unsqueeze/Squeeze/Concat/
// Slice/Cast on those) are tracked so that Reshape/Slice/Pad/Squeeze targets resolve as exported by
// PyTorch. Ops it does not know keep whatever type the model declared; declared types are never
// overwritten, only missing ones filled in.
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

    /// <summary>Inferred output types for one node (null where unknown); used by tests and passes.</summary>
    public static OnnxType?[] InferNode(Node n, long opset) => new Inferrer(opset).Node(n);

    private sealed class Inferrer(long opset, List<(Value Value, OnnxType? Old)>? journal = null)
    {
        // Known small integer vectors; elements may be symbols (from Shape of a symbolic shape).
        private readonly Dictionary<Value, Dim[]> _consts = new();

        public void Graph(Graph g)
        {
            foreach (var n in g.Nodes)
            {
                OnnxType?[] outs;
                try { outs = Node(n); }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException or OverflowException)
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
                foreach (var sg in n.Subgraphs()) Graph(sg);
            }
        }

        // An unknown element type (an input nothing could type) leaves the output untyped rather than
        // typed "undefined", which no runtime would load.
        private static OnnxType? T(DataType t, Shape? s) => t == DataType.Undefined ? null : OnnxType.Tensor(t, s);
        private static OnnxType? TD(DataType t, IEnumerable<Dim> dims) => T(t, new Shape(dims));

        private static Shape? ShapeOf(Value? v) => v?.Shape;
        private static DataType TypeOf(Value? v) => v?.ElementType ?? DataType.Undefined;

        private long[]? Const(Value? v)
        {
            var d = SymConst(v);
            return d is not null && d.All(x => x.IsKnown) ? d.Select(x => x.Value!.Value).ToArray() : null;
        }

        private Dim[]? SymConst(Value? v)
        {
            if (v is null) return null;
            if (_consts.TryGetValue(v, out var c)) return c;
            if (v.Initializer is { } t && t.ElementType is DataType.Int64 or DataType.Int32 && t.ElementCount <= 1024)
                return _consts[v] = t.ToInt64Array().Select(Dim.Of).ToArray();
            return null;
        }

        private void SetConst(Value? v,
            IEnumerable<long> values)
        { if (v is not null) _consts[v] = values.Select(Dim.Of).ToArray(); }
        private void SetConst(Value? v, Dim[]? values) { if (v is not null && values is not null) _consts[v] = values; }

        /// <summary>Integer Add/Sub/Mul/Div (truncating, as ONNX) of two known vectors; one may be a scalar.</summary>
        private static long[]? IntArithmetic(string op, long[]? a, long[]? b)
        {
            if (a is null || b is null || (a.Length != b.Length && a.Length != 1 && b.Length != 1)) return null;
            var n = Math.Max(a.Length, b.Length);
            var r = new long[n];
            for (int i = 0; i < n; i++)
            {
                long x = a[a.Length == 1 ? 0 : i], y = b[b.Length == 1 ? 0 : i];
                if (op == "Div" && y == 0) return null;
                r[i] = op switch { "Add" => x + y, "Sub" => x - y, "Mul" => x * y, _ => x / y };
            }
            return r;
        }

        public OnnxType?[] Node(Node n)
        {
            if (!n.IsStandard) return new OnnxType?[n.Outputs.Count];
            var x = n.Input(0);
            var xs = ShapeOf(x);
            var xt = TypeOf(x);
            switch (n.OpType)
            {
                case "Identity":
                case "Relu":
                case "LeakyRelu":
                case "PRelu":
                case "Clip":
                case "Sigmoid":
                case "HardSigmoid":
                case "HardSwish":
                case "Softmax":
                case "LogSoftmax":
                case "Tanh":
                case "Exp":
                case "Log":
                case "Sqrt":
                case "Neg":
                case "Abs":
                case "Erf":
                case "Elu":
                case "Selu":
                case "Softplus":
                case "Gelu":
                case "Mish":
                case "Reciprocal":
                case "Floor":
                case "Ceil":
                case "Round":
                case "Sign":
                case "Celu":
                case "ThresholdedRelu":
                case "LRN":
                    if (n.OpType == "Identity") SetConst(n.Output(), SymConst(x));
                    return [T(xt, xs)];
                case "Dropout":
                    return n.Outputs.Count > 1 ? [T(xt, xs), T(DataType.Bool, xs)] : [T(xt, xs)];
                case "BatchNormalization":
                {
                    // Training mode (opset 14+) also outputs running mean and variance, shaped like scale.
                    var stat = T(TypeOf(n.Input(3)), ShapeOf(n.Input(1)));
                    return [T(xt, xs), .. Enumerable.Repeat<OnnxType?>(stat, n.Outputs.Count - 1)];
                }
                case "Cast":
                {
                    var to = (DataType)n.GetInt("to", 0);
                    SetConst(n.Output(), SymConst(x));
                    return [T(to, xs)];
                }
                case "Add":
                case "Sub":
                case "Mul":
                case "Div":
                    // Shape arithmetic as exported (channels // groups): known integer vectors stay known.
                    if (IntArithmetic(n.OpType, Const(n.Input(0)), Const(n.Input(1))) is { } folded)
                        SetConst(n.Output(), folded);
                    return [T(xt, Broadcast(n.Inputs.Select(ShapeOf)))];
                case "Pow":
                case "Max":
                case "Min":
                case "Sum":
                case "Mean":
                    return [T(xt, Broadcast(n.Inputs.Select(ShapeOf)))];
                case "Equal":
                case "Less":
                case "Greater":
                case "LessOrEqual":
                case "GreaterOrEqual":
                case "And":
                case "Or":
                case "Xor":
                    return [T(DataType.Bool, Broadcast(n.Inputs.Select(ShapeOf)))];
                case "Where":
                    return [T(FirstType([n.Input(1), n.Input(2)]), Broadcast(n.Inputs.Select(ShapeOf)))];
                case "Not":
                    return [T(DataType.Bool, xs)];
                case "Expand":
                    return [Expand(n, xs, xt)];
                case "Tile":
                    return [Tile(n, xs, xt)];
                case "Range":
                    return [Range(n)];
                case "LayerNormalization":
                {
                    // Y, then (training outputs) Mean and InvStdDev: the reduced axes kept as 1, in stash_type.
                    if (n.Outputs.Count == 1) return [T(xt, xs)];
                    var axis = (int)n.GetInt("axis", -1);
                    var stats = xs is null ? null : new Shape(xs.Dims.Select((d, i) =>
                        i < (axis < 0 ? axis + xs.Rank : axis) ? d : Dim.Of(1)));
                    var stash = (DataType)n.GetInt("stash_type", (long)DataType.Float);
                    return [T(xt, xs), .. Enumerable.Repeat(T(stash, stats), n.Outputs.Count - 1)];
                }
                case "InstanceNormalization":
                case "GroupNormalization":
                    return [T(xt, xs)];
                case "ArgMax":
                case "ArgMin":
                {
                    if (xs is null) return [T(DataType.Int64, null)];
                    var axis = (int)n.GetInt("axis", 0);
                    if (axis < 0) axis += xs.Rank;
                    var keep = n.GetInt("keepdims", 1) != 0;
                    return [TD(DataType.Int64, xs.Dims.Select((d, i) => (d, i)).Where(p => keep || p.i != axis)
                        .Select(p => p.i == axis ? Dim.Of(1) : p.d))];
                }
                case "If":
                    return IfOutputs(n);
                case "Conv":
                case "ConvInteger":
                case "QLinearConv":
                    return [Conv(n)];
                case "ConvTranspose":
                    return [ConvTranspose(n)];
                case "MaxPool":
                case "AveragePool":
                case "LpPool":
                {
                    var r = Pool(n, xs, xt);
                    return n.Outputs.Count > 1 ? [r, r is null ? null : T(DataType.Int64, r.Shape)] : [r];
                }
                case "GlobalAveragePool":
                case "GlobalMaxPool":
                case "GlobalLpPool":
                    return [xs is null ? T(xt, null) : TD(xt, xs.Dims.Select((d, i) => i < 2 ? d : Dim.Of(1)))];
                case "Gemm": return [Gemm(n)];
                case "MatMul": case "MatMulInteger": return [MatMul(n)];
                case "Flatten":
                {
                    if (xs is null) return [T(xt, null)];
                    var axis = (int)n.GetInt("axis", 1);
                    if (axis < 0) axis += xs.Rank;
                    return [TD(xt, [Product(xs.Dims.Take(axis)), Product(xs.Dims.Skip(axis))])];
                }
                case "Reshape": return [Reshape(n, xs, xt)];
                case "Transpose":
                {
                    if (xs is null) return [T(xt, null)];
                    var perm = n.GetInts("perm") ?? Enumerable.Range(0, xs.Rank).Reverse().Select(i => (long)i).ToArray();
                    if (SymConst(n.Input(0)) is { } cx && Known(xs) is { } inDims)
                        SetConst(n.Output(), Remap(cx, inDims, perm.Select(p => inDims[p]).ToArray(),
                            (o, i) => { for (int a = 0; a < perm.Length; a++) i[perm[a]] = o[a]; }));
                    return [TD(xt, perm.Select(p => xs[(int)p]))];
                }
                case "Concat": return [Concat(n, FirstType(n.Inputs))];
                case "Split": return Split(n, xs, xt);
                case "Slice": return [Slice(n, xs, xt)];
                case "Squeeze": return [Squeeze(n, xs, xt)];
                case "Unsqueeze": return [Unsqueeze(n, xs, xt)];
                case "Pad": return [Pad(n, xs, xt)];
                case "Constant": return [ConstantNode(n)];
                case "ConstantOfShape":
                {
                    var value = n.GetTensor("value");
                    var type = value?.ElementType ?? DataType.Float;
                    if (Const(n.Input(0)) is not { } shape) return [T(type, null)];
                    var count = shape.Aggregate(1L, (a, b) => a * b);
                    if (type is DataType.Int64 or DataType.Int32 && count <= 1024)
                        SetConst(n.Output(), Enumerable.Repeat(value!.ToInt64Array()[0], (int)count));
                    return [T(type, Shape.Of(shape))];
                }
                case "Shape":
                {
                    if (xs is null) return [T(DataType.Int64, new Shape([Dim.Unknown]))];
                    var start = (int)n.GetInt("start", 0); var end = (int)n.GetInt("end", xs.Rank);
                    if (start < 0) start += xs.Rank; if (end < 0) end += xs.Rank;
                    start = Math.Clamp(start, 0, xs.Rank); end = Math.Clamp(end, start, xs.Rank);
                    var dims = xs.Dims.Skip(start).Take(end - start).ToArray();
                    SetConst(n.Output(), dims);
                    return [T(DataType.Int64, Shape.Of(dims.Length))];
                }
                case "Size": return [T(DataType.Int64, Shape.Scalar)];
                case "Gather": return [Gather(n, xs, xt)];
                case "QuantizeLinear":
                {
                    var zp = n.Input(2);
                    var ot = zp is not null ? TypeOf(zp) : n.Attr("output_dtype") is { } od && od.I != 0 ? (DataType)od.I : DataType.UInt8;
                    return [T(ot, xs)];
                }
                case "DequantizeLinear":
                    return [T(n.Attr("output_dtype") is { } dd && dd.I != 0 ? (DataType)dd.I : TypeOf(n.Input(1)) is var st && st != DataType.Undefined ? st : DataType.Float, xs)];
                case "ReduceMean":
                case "ReduceSum":
                case "ReduceMax":
                case "ReduceMin":
                case "ReduceProd":
                case "ReduceL2":
                case "ReduceL1":
                    return [Reduce(n, xs, xt)];
                case "Resize":
                case "Upsample":
                    return [T(xt, Resize(n, xs))];
                default:
                    return new OnnxType?[n.Outputs.Count];
            }
        }

        /// <summary>All dims of a shape, when every one is known.</summary>
        private static long[]? Known(Shape? s) =>
            s is not null && s.Dims.All(d => d.IsKnown) ? s.Dims.Select(d => d.Value!.Value).ToArray() : null;

        /// <summary>A small constant rearranged: output element o reads input element map(o) (row-major).</summary>
        private static Dim[]? Remap(Dim[] values, long[] inDims, long[] outDims, Action<long[], long[]> map)
        {
            var total = outDims.Aggregate(1L, (a, b) => a * b);
            if (total > 1024 || values.Length != inDims.Aggregate(1L, (a, b) => a * b)) return null;
            var result = new Dim[total];
            var o = new long[outDims.Length];
            var i = new long[inDims.Length];
            for (long k = 0; k < total; k++)
            {
                for (int a = outDims.Length - 1, rest = (int)k; a >= 0; a--)
                {
                    o[a] = rest % outDims[a];
                    rest /= (int)outDims[a];
                }
                map(o, i);
                long flat = 0;
                for (int a = 0; a < inDims.Length; a++) flat = flat * inDims[a] + i[a];
                result[k] = values[flat];
            }
            return result;
        }

        /// <summary>A float constant: an initializer or a Constant node's tensor.</summary>
        private static double[]? FloatConst(Value? v) =>
            (v?.Initializer ?? (v?.Producer is { OpType: "Constant" } c ? c.GetTensor("value") : null)) is
            { ElementType: DataType.Float or DataType.Double } t ? t.ToDoubleArray() : null;

        /// <summary>Resize/Upsample: the 'sizes' input when constant, else floor(dim * scale) from constant scales.</summary>
        private Shape? Resize(Node n, Shape? xs)
        {
            if (xs is null) return null;
            var sizesInput = n.OpType == "Resize" ? n.Input(3) : null;
            if (Const(sizesInput) is { } sizes && sizes.Length == xs.Rank) return Shape.Of(sizes);
            var scalesInput = n.OpType == "Upsample" ? n.Input(1) : n.Input(n.Inputs.Count == 2 ? 1 : 2);
            var scales = n.OpType == "Upsample" && n.GetFloats("scales") is { } attr
                ? attr.Select(f => (double)f).ToArray() : FloatConst(scalesInput);
            if (scales is not null && scales.Length == xs.Rank)
            {
                return new Shape(xs.Dims.Select((d, i) => d.Value is long v ? Dim.Of((long)Math.Floor(v * scales[i]))
                    : scales[i] == 1 ? d : Dim.Unknown));
            }
            return new Shape(xs.Dims.Select(_ => Dim.Unknown));
        }

        private static Dim Product(IEnumerable<Dim> dims)
        {
            var list = dims.ToList();
            if (list.Count == 1) return list[0];
            long p = 1;
            foreach (var d in list)
            {
                if (d.Value is not long v) return Dim.Unknown;
                p *= v;
            }
            return Dim.Of(p);
        }

        /// <summary>Numpy-style multidirectional broadcasting; null if any rank is unknown.</summary>
        public static Shape? Broadcast(IEnumerable<Shape?> shapes)
        {
            var list = shapes.ToList();
            if (list.Any(s => s is null)) return null;
            var rank = list.Max(s => s!.Rank);
            var dims = new Dim[rank];
            for (int i = 0; i < rank; i++)
            {
                Dim result = Dim.Of(1);
                foreach (var s in list)
                {
                    var j = i - (rank - s!.Rank);
                    if (j < 0) continue;
                    var d = s[j];
                    if (d.Value == 1) continue;
                    if (result.Value == 1) result = d;
                    else if (d.Value is long a && result.Value is long b && a != b)
                        throw new ArgumentException($"shapes {string.Join(" and ", list)} do not broadcast");
                    else if (!result.IsKnown && d.IsKnown) result = d;
                }
                dims[i] = result;
            }
            return new Shape(dims);
        }

        private static (long[] k, long[] s, long[] d, long[] p) ConvParams(Node n, int spatial,
            long[]? kernelFromWeight)
        {
            var k = n.GetInts("kernel_shape") ?? kernelFromWeight ?? throw new ArgumentException("kernel_shape unknown");
            var s = n.GetInts("strides") ?? Enumerable.Repeat(1L, spatial).ToArray();
            var d = n.GetInts("dilations") ?? Enumerable.Repeat(1L, spatial).ToArray();
            var p = n.GetInts("pads") ?? new long[2 * spatial];
            return (k, s, d, p);
        }

        private static Dim SpatialOut(Dim input, long k, long s, long d, long pb, long pe, string autoPad, bool ceil)
        {
            if (input.Value is not long i) return Dim.Unknown;
            if (s <= 0 || k <= 0 || d <= 0) return Dim.Unknown; // invalid attributes: the verifier's business
            var ek = d * (k - 1) + 1;
            switch (autoPad)
            {
                case "SAME_UPPER": case "SAME_LOWER": return Dim.Of((i + s - 1) / s);
                case "VALID": return Dim.Of((i - ek) / s + 1);
            }
            var num = i + pb + pe - ek;
            var o = ceil ? (num + s - 1) / s + 1 : num / s + 1;
            // ceil mode: the last window must start inside the input or left padding
            if (ceil && (o - 1) * s >= i + pb) o--;
            return Dim.Of(o);
        }

        private static OnnxType? Conv(Node n)
        {
            var xs = ShapeOf(n.Input(0));
            var ws = ShapeOf(n.Input(n.OpType == "QLinearConv" ? 3 : 1));
            var outType = n.OpType switch { "ConvInteger" => DataType.Int32, "QLinearConv" => TypeOf(n.Input(7)), _ => TypeOf(n.Input(0)) };
            if (xs is null || ws is null) return T(outType, null);
            var spatial = xs.Rank - 2;
            var (k, s, d, p) = ConvParams(n, spatial, ws.IsFullyKnown ? ws.ToArray()[2..] : null);
            var autoPad = n.GetString("auto_pad") ?? "NOTSET";
            var dims = new List<Dim> { xs[0], ws[0] };
            for (int i = 0; i < spatial; i++) dims.Add(SpatialOut(xs[i + 2], k[i], s[i], d[i], p[i], p[i + spatial],
                autoPad, false));
            return TD(outType, dims);
        }

        private static OnnxType? ConvTranspose(Node n)
        {
            var xs = ShapeOf(n.Input(0));
            var ws = ShapeOf(n.Input(1));
            var t = TypeOf(n.Input(0));
            if (xs is null || ws is null) return T(t, null);
            var spatial = xs.Rank - 2;
            var group = n.GetInt("group", 1);
            var (k, s, d, p) = ConvParams(n, spatial, ws.IsFullyKnown ? ws.ToArray()[2..] : null);
            var op = n.GetInts("output_padding") ?? new long[spatial];
            var outShape = n.GetInts("output_shape");
            var cout = ws[1].Value is long c ? Dim.Of(c * group) : Dim.Unknown;
            var dims = new List<Dim> { xs[0], cout };
            var autoPad = n.GetString("auto_pad") ?? "NOTSET";
            for (int i = 0; i < spatial; i++)
            {
                if (outShape is not null) { dims.Add(Dim.Of(outShape[outShape.Length - spatial + i])); continue; }
                if (xs[i + 2].Value is not long iv) { dims.Add(Dim.Unknown); continue; }
                if (autoPad is "SAME_UPPER" or "SAME_LOWER") { dims.Add(Dim.Of(iv * s[i])); continue; }
                dims.Add(Dim.Of(s[i] * (iv - 1) + op[i] + ((k[i] - 1) * d[i] + 1) - p[i] - p[i + spatial]));
            }
            return TD(t, dims);
        }

        private static OnnxType? Pool(Node n, Shape? xs, DataType xt)
        {
            if (xs is null) return T(xt, null);
            var spatial = xs.Rank - 2;
            var (k, s, d, p) = ConvParams(n, spatial, null);
            var autoPad = n.GetString("auto_pad") ?? "NOTSET";
            var ceil = n.GetInt("ceil_mode", 0) != 0;
            var dims = new List<Dim> { xs[0], xs[1] };
            for (int i = 0; i < spatial; i++) dims.Add(SpatialOut(xs[i + 2], k[i], s[i], d[i], p[i], p[i + spatial],
                autoPad, ceil));
            return TD(xt, dims);
        }

        private static OnnxType? Gemm(Node n)
        {
            var a = ShapeOf(n.Input(0)); var b = ShapeOf(n.Input(1));
            var t = TypeOf(n.Input(0));
            if (a is null || b is null) return T(t, null);
            var m = n.GetInt("transA", 0) != 0 ? a[1] : a[0];
            var nn = n.GetInt("transB", 0) != 0 ? b[0] : b[1];
            return TD(t, [m, nn]);
        }

        private static OnnxType? MatMul(Node n)
        {
            var a = ShapeOf(n.Input(0)); var b = ShapeOf(n.Input(1));
            var t = n.OpType == "MatMulInteger" ? DataType.Int32 : TypeOf(n.Input(0));
            if (a is null || b is null) return T(t, null);
            if (a.Rank == 0 || b.Rank == 0) throw new ArgumentException("MatMul of a scalar");
            var a2 = a.Rank == 1 ? new Shape([Dim.Of(1), a[0]]) : a;
            var b2 = b.Rank == 1 ? new Shape([b[0], Dim.Of(1)]) : b;
            var batch = Broadcast([new Shape(a2.Dims.Take(a2.Rank - 2)), new Shape(b2.Dims.Take(b2.Rank - 2))])!;
            var dims = batch.Dims.ToList();
            if (a.Rank > 1) dims.Add(a2[a2.Rank - 2]);
            if (b.Rank > 1) dims.Add(b2[b2.Rank - 1]);
            return TD(t, dims);
        }

        private OnnxType? Reshape(Node n, Shape? xs, DataType xt)
        {
            var target = n.GetInts("shape")?.Select(Dim.Of).ToArray() ?? SymConst(n.Input(1));
            if (target is null)
                return T(xt, ShapeOf(n.Input(1)) is { Rank: 1 } ss
                    && ss[0].Value is long r ? new Shape(Enumerable.Repeat(Dim.Unknown, (int)r)) : null);
            var allowZero = n.GetInt("allowzero", 0) != 0;
            var dims = new Dim[target.Length];
            int inferIdx = -1;
            for (int i = 0; i < target.Length; i++)
            {
                if (target[i].Value == 0 && !allowZero) dims[i] = xs is not null && i < xs.Rank ? xs[i] : Dim.Unknown;
                else if (target[i].Value == -1) { inferIdx = i; dims[i] = Dim.Unknown; }
                else dims[i] = target[i];
            }
            if (inferIdx >= 0 && xs?.ElementCount() is long total)
            {
                long known = 1;
                var ok = true;
                for (int i = 0; i < dims.Length; i++)
                    if (i != inferIdx) { if (dims[i].Value is long v) known *= v; else ok = false; }
                if (ok && known != 0) dims[inferIdx] = Dim.Of(total / known);
            }
            else if (inferIdx >= 0 && xs is not null)
            {
                // Symbolic: the symbols of the input must reappear in the target (e.g. N -> N); then
                // -1 is the ratio of the static products: [N,3,2,4] -> [N,6,-1] gives 4.
                var symbols = xs.Dims.Where(d => !d.IsKnown).ToList();
                long inStatic = 1, outStatic = 1;
                var ok = symbols.All(d => d.Param is not null);
                foreach (var d in xs.Dims) if (d.Value is long v) inStatic *= v;
                for (int i = 0; i < dims.Length && ok; i++)
                {
                    if (i == inferIdx) continue;
                    if (dims[i].Value is long v) outStatic *= v;
                    else
                    {
                        var match = symbols.FindIndex(d => d.Param is not null && d.Param == dims[i].Param);
                        if (match < 0) ok = false; else symbols.RemoveAt(match);
                    }
                }
                if (ok && symbols.Count == 0 && outStatic != 0
                    && inStatic % outStatic == 0) dims[inferIdx] = Dim.Of(inStatic / outStatic);
            }
            var r2 = new Shape(dims);
            SetConst(n.Output(), SymConst(n.Input(0)));
            return T(xt, r2);
        }

        private OnnxType? Concat(Node n, DataType xt)
        {
            var shapes = n.Inputs.Select(ShapeOf).ToList();
            var consts = n.Inputs.Select(SymConst).ToList();
            if (consts.All(c => c is not null)) SetConst(n.Output(), consts.SelectMany(c => c!).ToArray());
            if (shapes.Any(s => s is null)) return T(xt, null);
            var axis = (int)n.GetInt("axis", 0);
            var rank = shapes[0]!.Rank;
            if (shapes.Any(s => s!.Rank != rank)) return T(xt, null); // invalid: ORT names it; no guess here
            if (axis < 0) axis += rank;
            var dims = shapes[0]!.Dims.ToArray();
            dims[axis] = shapes.Aggregate((Dim?)Dim.Of(0), (acc, s) => acc?.Value is long a
                && s![axis].Value is long b ? Dim.Of(a + b) : Dim.Unknown)!.Value;
            for (int i = 0; i < rank; i++)
                if (i != axis && !dims[i].IsKnown)
                    foreach (var s in shapes) if (s![i].IsKnown) { dims[i] = s[i]; break; }
            return TD(xt, dims);
        }

        /// <summary>The element type of the first input whose type is known (Concat, Where: every operand has
        /// it).</summary>
        private static DataType FirstType(IEnumerable<Value?> inputs)
        {
            foreach (var v in inputs) if (TypeOf(v) is var t && t != DataType.Undefined) return t;
            return DataType.Undefined;
        }

        /// <summary>Expand: the input broadcast with the constant target shape.</summary>
        private OnnxType? Expand(Node n, Shape? xs, DataType xt)
        {
            if (SymConst(n.Input(1)) is not { } target) return T(xt, null);
            var ts = new Shape(target.Select(d => d.Value == 1 ? Dim.Of(1) : d));
            if (xs is null) return T(xt, null);
            // A target dim of 1 keeps the input's dim (broadcasting); Broadcast already does exactly that.
            return T(xt, Broadcast([xs, ts]));
        }

        /// <summary>Tile: each dim times its constant repeat.</summary>
        private OnnxType? Tile(Node n, Shape? xs, DataType xt)
        {
            if (xs is null) return T(xt, null);
            if (Const(n.Input(1)) is not { } reps || reps.Length != xs.Rank)
                return T(xt, new Shape(xs.Dims.Select(_ => Dim.Unknown)));
            return TD(xt, xs.Dims.Select((d, i) => reps[i] == 1 ? d : d.Value is long v ? Dim.Of(v * reps[i])
                : Dim.Unknown));
        }

        /// <summary>Range: 1-D, max(ceil((limit - start) / delta), 0) elements when all three are constant.</summary>
        private OnnxType? Range(Node n)
        {
            var t = TypeOf(n.Input(0));
            var a = Const(n.Input(0)); var b = Const(n.Input(1)); var d = Const(n.Input(2));
            if (a is [var start] && b is [var limit] && d is [var delta] && delta != 0)
            {
                var count = Math.Max((long)Math.Ceiling((limit - start) / (double)delta), 0);
                if (count <= 1024) SetConst(n.Output(), Enumerable.Range(0, (int)count).Select(i => start + i * delta));
                return T(t, Shape.Of(count));
            }
            // range(0, n) with n a symbolic dim (position ids) has n elements.
            if (a is [0] && SymConst(n.Input(1)) is [var sym] && d is [1]) return TD(t, [sym]);
            return T(t, new Shape([Dim.Unknown]));
        }

        /// <summary>If: each output typed as the branches declare it (dims they disagree on unknown).</summary>
        private static OnnxType?[] IfOutputs(Node n)
        {
            var outs = new OnnxType?[n.Outputs.Count];
            var branches = new[] { n.Attr("then_branch")?.G, n.Attr("else_branch")?.G };
            for (int i = 0; i < outs.Length; i++)
            {
                foreach (var g in branches)
                {
                    if (g is null || i >= g.Outputs.Count || g.Outputs[i].Type is not { IsTensor: true } bt) continue;
                    if (outs[i] is null) outs[i] = bt;
                    else if (outs[i]!.Shape is { } s1 && bt.Shape is { } s2 && !s1.Equals(s2))
                        outs[i] = OnnxType.Tensor(outs[i]!.ElementType, s1.Rank == s2.Rank
                            ? new Shape(s1.Dims.Zip(s2.Dims, (a, b) => a == b ? a : Dim.Unknown)) : null);
                }
            }
            return outs;
        }

        private OnnxType?[] Split(Node n, Shape? xs, DataType xt)
        {
            var outs = new OnnxType?[n.Outputs.Count];
            if (xs is null) { Array.Fill(outs, T(xt, null)); return outs; }
            var axis = (int)n.GetInt("axis", 0);
            if (axis < 0) axis += xs.Rank;
            var split = n.GetInts("split") ?? Const(n.Input(1));
            // Equal parts only when no split is given at all (a split input that is not constant is unknown).
            if (split is null && n.GetInts("split") is null && n.Input(1) is null && xs[axis].Value is long len)
            {
                var k = n.Outputs.Count;
                var chunk = (len + k - 1) / k;
                split = Enumerable.Range(0, k).Select(i => Math.Min(chunk, Math.Max(0, len - i * chunk))).ToArray();
            }
            for (int i = 0; i < outs.Length; i++)
            {
                var dims = xs.Dims.ToArray();
                dims[axis] = split is null ? Dim.Unknown : Dim.Of(split[i]);
                outs[i] = TD(xt, dims);
            }
            return outs;
        }

        private OnnxType? Slice(Node n, Shape? xs, DataType xt)
        {
            long[]? starts, ends, axes, steps = null;
            if (opset < 10) { starts = n.GetInts("starts"); ends = n.GetInts("ends"); axes = n.GetInts("axes"); }
            else { starts = Const(n.Input(1)); ends = Const(n.Input(2)); axes = n.Input(3) is null ? null : Const(n.Input(3)); steps = n.Input(4) is null ? null : Const(n.Input(4)); if (n.Input(3) is not null && axes is null) starts = null; if (n.Input(4) is not null && steps is null) starts = null; }
            if (xs is null) return T(xt, null);
            if (starts is null || ends is null) return T(xt, new Shape(Enumerable.Repeat(Dim.Unknown, xs.Rank)));
            axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
            var dims = xs.Dims.ToArray();
            var cx = SymConst(n.Input(0));
            var first = new long[xs.Rank];
            var stride = Enumerable.Repeat(1L, xs.Rank).ToArray();
            for (int i = 0; i < axes.Length; i++)
            {
                var a = (int)(axes[i] < 0 ? axes[i] + xs.Rank : axes[i]);
                if (dims[a].Value is not long len) { dims[a] = Dim.Unknown; continue; }
                var (s, e, st) = (starts[i], ends[i], steps[i]);
                if (s < 0) s += len; if (e < 0) e += len;
                long count;
                if (st > 0)
                {
                    s = Math.Clamp(s, 0, len); e = Math.Clamp(e, 0, len); count = Math.Max(0,
                    (e - s + st - 1) / st);
                }
                else
                {
                    s = Math.Clamp(s, 0, len - 1); e = Math.Clamp(e, -1, len - 1); count = Math.Max(0,
                    (s - e + (-st) - 1) / (-st));
                }
                dims[a] = Dim.Of(count);
                first[a] = s;
                stride[a] = st;
            }
            if (cx is not null && Known(xs) is { } inDims && Known(new Shape(dims)) is { } outDims)
                SetConst(n.Output(), Remap(cx, inDims, outDims,
                    (o, i) => { for (int a = 0; a < o.Length; a++) i[a] = first[a] + o[a] * stride[a]; }));
            return TD(xt, dims);
        }

        private long[]? Axes(Node n) =>
            opset >= 13 ? (n.Input(1) is null ? null : Const(n.Input(1)) ?? [long.MinValue]) : n.GetInts("axes");

        private OnnxType? Squeeze(Node n, Shape? xs, DataType xt)
        {
            if (xs is null) return T(xt, null);
            var axes = Axes(n);
            if (axes is [long.MinValue]) return T(xt, null);
            var set = axes?.Select(a => a < 0 ? a + xs.Rank : a).ToHashSet();
            var dims = xs.Dims.Where((d, i) => set is null ? d.Value != 1 : !set.Contains(i)).ToArray();
            SetConst(n.Output(), SymConst(n.Input(0)));
            return TD(xt, dims);
        }

        private OnnxType? Unsqueeze(Node n, Shape? xs, DataType xt)
        {
            var axes = Axes(n);
            if (xs is null || axes is null || axes is [long.MinValue]) return T(xt, null);
            var rank = xs.Rank + axes.Length;
            var set = axes.Select(a => a < 0 ? a + rank : a).ToHashSet();
            var dims = new List<Dim>();
            var j = 0;
            for (int i = 0; i < rank; i++) dims.Add(set.Contains(i) ? Dim.Of(1) : xs[j++]);
            SetConst(n.Output(), SymConst(n.Input(0)));
            return TD(xt, dims);
        }

        private OnnxType? Pad(Node n, Shape? xs, DataType xt)
        {
            if (xs is null) return T(xt, null);
            var pads = opset < 11 ? n.GetInts("pads") : Const(n.Input(1));
            if (pads is null) return T(xt, new Shape(Enumerable.Repeat(Dim.Unknown, xs.Rank)));
            var axes = n.Input(3) is { } av ? Const(av) : null;
            if (n.Input(3) is not null && axes is null) return T(xt, new Shape(Enumerable.Repeat(Dim.Unknown,
                xs.Rank)));
            axes ??= Enumerable.Range(0, xs.Rank).Select(i => (long)i).ToArray();
            var dims = xs.Dims.ToArray();
            for (int i = 0; i < axes.Length; i++)
            {
                var a = (int)(axes[i] < 0 ? axes[i] + xs.Rank : axes[i]);
                var grow = pads[i] + pads[i + axes.Length];
                dims[a] = grow == 0 ? dims[a] : dims[a].Value is long v ? Dim.Of(v + grow) : Dim.Unknown;
            }
            return TD(xt, dims);
        }

        private OnnxType? ConstantNode(Node n)
        {
            if (n.GetTensor("value") is { } t)
            {
                if (t.ElementType is DataType.Int64 or DataType.Int32 && t.ElementCount <= 1024) SetConst(n.Output(),
                    t.ToInt64Array());
                return T(t.ElementType, Shape.Of(t.Dims));
            }
            if (n.Attr("value_int") is { } vi) { SetConst(n.Output(), [vi.I]); return T(DataType.Int64, Shape.Scalar); }
            if (n.Attr("value_ints") is { } vis) { SetConst(n.Output(), vis.Ints!); return T(DataType.Int64, Shape.Of(vis.Ints!.Length)); }
            if (n.Attr("value_float") is not null) return T(DataType.Float, Shape.Scalar);
            if (n.Attr("value_floats") is { } vfs) return T(DataType.Float, Shape.Of(vfs.Floats!.Length));
            return null;
        }

        private OnnxType? Gather(Node n, Shape? xs, DataType xt)
        {
            var idx = ShapeOf(n.Input(1));
            if (xs is null || idx is null) return T(xt, null);
            var axis = (int)n.GetInt("axis", 0);
            if (axis < 0) axis += xs.Rank;
            if (SymConst(n.Input(0)) is { } data && Const(n.Input(1)) is { } ind && xs.Rank == 1)
                SetConst(n.Output(), ind.Select(i => data[(int)(i < 0 ? i + data.Length : i)]).ToArray());
            return TD(xt, xs.Dims.Take(axis).Concat(idx.Dims).Concat(xs.Dims.Skip(axis + 1)));
        }

        private OnnxType? Reduce(Node n, Shape? xs, DataType xt)
        {
            if (xs is null) return T(xt, null);
            var keep = n.GetInt("keepdims", 1) != 0;
            var useInput = n.OpType == "ReduceSum" ? opset >= 13 : opset >= 18;
            var axes = useInput ? (n.Input(1) is null ? null : Const(n.Input(1))) : n.GetInts("axes");
            if (useInput && n.Input(1) is not null && axes is null) return T(xt, null);
            if ((axes is null || axes.Length == 0) && n.GetInt("noop_with_empty_axes", 0) != 0) return T(xt, xs);
            var set = axes is null || axes.Length == 0 ? Enumerable.Range(0,
                xs.Rank).ToHashSet() : axes.Select(a => (int)(a < 0 ? a + xs.Rank : a)).ToHashSet();
            var dims = new List<Dim>();
            for (int i = 0; i < xs.Rank; i++)
                if (!set.Contains(i)) dims.Add(xs[i]);
                else if (keep) dims.Add(Dim.Of(1));
            return TD(xt, dims);
        }
    }
}
