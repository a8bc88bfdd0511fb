// Summary figures of a model for `onnxopt inspect` and the reports of later passes.
//  - MACs (multiply-accumulates) per sample: a symbolic batch dim (dim 0) counts as 1; a node whose
//    other dims are unknown is listed under UnknownMacNodes instead of being guessed. With one other symbol
//    (a sequence length S), the total is also given as a function of it, MACs(S) = a S^2 + b S + c: the
//    figures at S = 1, 2, 3, 4 fix a, b, c exactly (finite differences) and S = 8 and 16 must agree, else none
//    is claimed (an op whose MACs are not polynomial in S, such as a strided conv over it, or a model that does
//    not take those lengths).
//      Conv:          N * Cout * prod(out spatial) * (Cin/group) * prod(kernel)
//      ConvTranspose: N * Cin  * prod(in spatial)  * (Cout/group) * prod(kernel)
//      Gemm:          M * N * K          MatMul: prod(batch) * M * N * K
//  - Parameters: elements of all initializers and Constant-node tensors except int64 ones (shapes, axes,
//    indices).
//  - Non-linear depth: the most non-linear activations on any path from an input to an output
//    (Relu, LeakyRelu, PRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, Elu, Selu, Gelu, ...);
//    Softmax/LogSoftmax, pooling and element-wise arithmetic do not count.
namespace OnnxOpt.GraphIR;

public sealed record TensorSummary(string Name, string Type);

/// <summary>MACs per sample as a function of a symbolic dim: A S^2 + B S + C.</summary>
public sealed record MacsPolynomial(string Symbol, long A, long B, long C)
{
    public long At(long s) => A * s * s + B * s + C;

    public override string ToString()
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        var terms = new List<string>();
        if (A != 0) terms.Add(string.Create(c, $"{A:N0} {Symbol}^2"));
        if (B != 0) terms.Add(string.Create(c, $"{B:N0} {Symbol}"));
        if (C != 0 || terms.Count == 0) terms.Add(string.Create(c, $"{C:N0}"));
        return string.Join(" + ", terms).Replace("+ -", "- ", StringComparison.Ordinal);
    }
}

public sealed record ModelStats
{
    public required IReadOnlyList<OpsetImport> Opsets { get; init; }
    public required IReadOnlyList<TensorSummary> Inputs { get; init; }
    public required IReadOnlyList<TensorSummary> Outputs { get; init; }
    public required SortedDictionary<string, int> OpHistogram { get; init; }
    public int NodeCount { get; init; }
    public long ParameterCount { get; init; }
    /// <summary>Parameters that are exactly zero (what pruning leaves; sparsity = zero / all).</summary>
    public long ZeroParameterCount { get; init; }
    public long InitializerBytes { get; init; }
    public long? FileBytes { get; init; }
    public required SortedDictionary<string, long> MacsByOp { get; init; }
    public long TotalMacs { get; init; }
    public required IReadOnlyList<string> UnknownMacNodes { get; init; }
    /// <summary>Symbolic dims given values for these figures (inspect --dim).</summary>
    public IReadOnlyDictionary<string, long> Dims { get; init; } = new SortedDictionary<string, long>();
    /// <summary>Symbolic dims of the inputs, other than leading (batch) ones, left symbolic: they leave the MACs of
    /// the MatMuls they reach unknown until given with --dim (a leading batch dim counts as 1).</summary>
    public IReadOnlyList<string> SymbolicDims { get; init; } = [];
    /// <summary>The total MACs per sample as a function of the one symbolic dim left (null: none, or not a
    /// polynomial of degree 2 or less in it).</summary>
    public MacsPolynomial? MacsInSymbol { get; init; }
    public int NonLinearDepth { get; init; }
    /// <summary>Attention layers, heads, hidden size, sequence dims and embedding tables (null: no attention and no
    /// embedding table).</summary>
    public TransformerSummary? Transformer { get; init; }

    /// <summary>Ops counted by the non-linear depth (OpTraits: NonLinear).</summary>
    public static IEnumerable<string> NonLinearOps => OpTraits.With(OpTrait.NonLinear);

    /// <summary>Computes the figures (types that shape inference fills in are taken back afterwards: the model is
    /// not changed).</summary>
    /// <param name="countZeros">Count zero weights (reads every weight; inspect skips it for weights not
    /// loaded yet).</param>
    /// <param name="dims">Values of symbolic dims (e.g. S = 128): MACs are those of that specialization.</param>
    public static ModelStats Compute(Model model, long? fileBytes = null, bool countZeros = true,
        IReadOnlyDictionary<string, long>? dims = null)
    {
        // The symbols a user can give (inputs' symbolic dims), named before any is specialized.
        // A symbol that only ever leads a shape is a batch and counts as 1.
        var symbols = model.Graph.Inputs.Where(v => !v.IsInitializer).SelectMany(v => v.Shape?.Dims.Skip(1) ?? [])
            .Select(d => d.Param).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        var stats = ShapeInference.WhileInferred(model, () => ComputeTyped(model, fileBytes, countZeros), dims);
        var left = symbols.Where(d => dims?.ContainsKey(d) != true).ToList();
        return stats with
        {
            Dims = new SortedDictionary<string, long>(dims?.ToDictionary() ?? new Dictionary<string, long>(),
                StringComparer.Ordinal),
            SymbolicDims = left,
            MacsInSymbol = stats.UnknownMacNodes.Count > 0 && left.Count == 1 ? Polynomial(model, dims, left[0]) : null,
        };
    }

    /// <summary>MACs(S) = a S^2 + b S + c from the totals at S = 1..4 (every node's MACs known there), if S = 8
    /// and 16 agree.</summary>
    private static MacsPolynomial? Polynomial(Model model, IReadOnlyDictionary<string, long>? dims, string symbol)
    {
        long? At(long s)
        {
            var with = new Dictionary<string, long>(dims?.ToDictionary() ?? []) { [symbol] = s };
            try { return ShapeInference.WhileInferred(model, () => KnownTotalMacs(model), with); }
            catch (OnnxModelException) { return null; }   // a length the model does not take
        }
        if (At(1) is not long f1 || At(2) is not long f2 || At(3) is not long f3 || At(4) is not long f4) return null;
        long dd = f3 - 2 * f2 + f1;
        if (f4 - 2 * f3 + f2 != dd || dd % 2 != 0) return null;
        var p = new MacsPolynomial(symbol, dd / 2, f2 - f1 - 3 * (dd / 2), 0);
        p = p with { C = f1 - p.A - p.B };
        return At(8) == p.At(8) && At(16) == p.At(16) ? p : null;
    }

    /// <summary>The total MACs per sample, or null when a node's are unknown: what each of the polynomial's
    /// evaluations needs (no histogram, parameters, depth or attention view).</summary>
    private static long? KnownTotalMacs(Model m)
    {
        long total = 0;
        foreach (var sg in m.Graph.SelfAndSubgraphs())
            foreach (var n in sg.Nodes)
            {
                var mac = Macs(n, out var applies);
                if (!applies) continue;
                if (mac is not long v) return null;
                total += v;
            }
        return total;
    }

    private static ModelStats ComputeTyped(Model m, long? fileBytes, bool countZeros)
    {
        var g = m.Graph;
        var hist = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var macs = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var unknown = new List<string>();
        int count = 0;
        foreach (var sg in g.SelfAndSubgraphs())
            foreach (var n in sg.Nodes)
            {
                count++;
                var key = n.Domain.Length == 0 ? n.OpType : $"{n.Domain}.{n.OpType}";
                hist[key] = hist.GetValueOrDefault(key) + 1;
                var mac = Macs(n, out var applies);
                if (!applies) continue;
                if (mac is long v) macs[key] = macs.GetValueOrDefault(key) + v;
                else unknown.Add(n.ToString());
            }
        // Weights held in Constant nodes (older exporters) count like initializers.
        var inits = g.SelfAndSubgraphs().SelectMany(x => x.Initializers).Select(v => v.Initializer!)
            .Concat(g.SelfAndSubgraphs().SelectMany(x => x.Nodes)
                .Where(n => n is { OpType: "Constant", IsStandard: true }).Select(n => n.GetTensor("value"))
                .OfType<Tensor>()).ToList();
        return new ModelStats
        {
            Opsets = m.OpsetImports.ToList(),
            Inputs = g.Inputs.Where(v => !v.IsInitializer).Select(Summary).ToList(),
            Outputs = g.Outputs.Select(Summary).ToList(),
            OpHistogram = hist,
            NodeCount = count,
            ParameterCount = inits.Where(t => t.ElementType != DataType.Int64).Sum(t => t.ElementCount),
            ZeroParameterCount = countZeros ? inits.Where(t => t.ElementType != DataType.Int64).Sum(CountZeros) : 0,
            InitializerBytes = inits.Sum(t => t.ByteSize),
            FileBytes = fileBytes,
            MacsByOp = macs,
            TotalMacs = macs.Values.Sum(),
            UnknownMacNodes = unknown,
            NonLinearDepth = NonLinearDepthOf(g),
            Transformer = TransformerSummary.Of(g),
        };
    }

    private static TensorSummary Summary(Value v) => new(v.Name, TypeText(v.Type));

    private static long CountZeros(Tensor t)
    {
        if (t.Strings is not null) return 0;
        switch (t.ElementType)
        {
            case DataType.Float: { long z = 0; foreach (var v in t.Span<float>()) if (v == 0) z++; return z; }
            case DataType.Int8 or DataType.UInt8 or DataType.Bool: { long z = 0; foreach (var v in t.RawData.Span) if (v == 0) z++; return z; }
            default:
                try { return t.ToDoubleArray().LongCount(v => v == 0); }
                catch (NotSupportedException) { return 0; }
        }
    }

    public static string TypeText(OnnxType? t)
    {
        if (t is null) return "?";
        if (t.Kind != TypeKind.Tensor) return t.Kind.ToString().ToLowerInvariant();
        return t.ElementType.Name() + (t.Shape is null ? "[]" : t.Shape.ToString());
    }

    /// <summary>Multiply-accumulates per sample by the op's registry entry; <paramref name="applies"/> is false
    /// for ops that have no MAC count (element-wise, layout, ...).</summary>
    public static long? Macs(Node n, out bool applies)
    {
        var macs = OpRegistry.Find(n)?.Macs;
        applies = macs is not null;
        var count = macs?.Invoke(n);
        // A count past 2^44 (1.8e13 for one node) comes from declared dims no real tensor has (2^63 - 1 from a
        // malformed file); it is unknown, so that sums over a graph cannot overflow.
        return count is > MaxNodeMacs or < 0 ? null : count;
    }

    /// <summary>The largest MAC count of one node taken as real (see Macs).</summary>
    public const long MaxNodeMacs = 1L << 44;

    /// <summary>Longest path counting non-linear activations, over a topologically ordered graph.</summary>
    public static int NonLinearDepthOf(Graph g)
    {
        var depth = new Dictionary<Value, int>();
        int best = 0;
        foreach (var n in g.Nodes)
        {
            var d = n.Inputs.Where(i => i is not null).Select(i => depth.GetValueOrDefault(i!)).DefaultIfEmpty(0).Max();
            if (OpTraits.Has(n, OpTrait.NonLinear)) d++;
            foreach (var o in n.Outputs) if (o is not null) depth[o] = d;
        }
        foreach (var o in g.Outputs) best = Math.Max(best, depth.GetValueOrDefault(o));
        return best;
    }
}
