// The "linearized" network SynFlow scores (Tanaka et al. 2020, algorithms.md section 2), built from a
// copy of the model and evaluated by our own reverse-mode autodiff (OnnxOpt.Autodiff):
//   1. BatchNormalization folded into the convs (fold-bn);
//   2. non-homogeneous activations made linear: Clip/ReLU6, HardSwish, Tanh, LeakyRelu, PRelu -> identity,
//      Sigmoid/HardSigmoid -> 1 (an SE gate x * sigmoid(.) counts as 1); ReLU stays (with all-positive
//      signals it is the identity anyway);
//   3. every float parameter replaced by |p|; the prunable weights also multiplied by their mask;
//   4. input all ones, batch 1; R = sum of all outputs, a trailing Softmax/LogSoftmax cut (sum(softmax)
//      is constant, its gradient 0). A token model has no float input: its integer inputs become constants (ids
//      0, masks 1, batch 1 and other symbolic dims 16 unless --input-shape gives them) and every embedding lookup
//      (a Gather of a float [rows, width] table) becomes a float input, so the all-ones signal starts at the
//      embeddings; the tables themselves are not scored.
// One round: forward, then backward with seed 1 on each output, and score(w) = |dR/dw * w|.
// Deep nets: R is a sum over input-output paths of products of |w|, so it grows (or shrinks) geometrically with
// depth and leaves float64 past about 40 layers (a 60-layer chain of mean row sum 1e6 gives R = 1e360).
// Rescale() then multiplies each scored layer's |W| (and its bias) by c_l = rows / sum|W| (unit mean row sum).
// R is multilinear in the layers' weights, so in a bias-free chain every score is multiplied by the same
// prod_l c_l and the ranking is unchanged; a bias's paths start at its layer and miss the factors of the layers
// before it, and a residual branch misses those of the layers it skips, so there the rescaled scores weigh
// biases and skip paths differently (only when the unscaled score could not be computed at all).
using System.Numerics;
using OnnxOpt.Autodiff;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

internal sealed class SynFlowNetwork
{
    public required Model Model { get; init; }
    /// <summary>Original weight name -> name of the same (BN-folded) weight in <see cref="Model"/>.</summary>
    public required IReadOnlyDictionary<string, string> WeightNames { get; init; }
    /// <summary>Values whose sum is R.</summary>
    public required IReadOnlyList<string> Outputs { get; init; }
    public required IReadOnlyDictionary<string, int[]> InputShapes { get; init; }

    private static readonly HashSet<string> ToIdentity = new(StringComparer.Ordinal) { "Clip", "HardSwish", "Tanh", "LeakyRelu", "PRelu" };
    private static readonly HashSet<string> ToOne = new(StringComparer.Ordinal) { "Sigmoid", "HardSigmoid" };

    /// <summary>Integer inputs frozen to constants, embedding lookups turned into float inputs (see the header).
    /// </summary>
    private static List<string> EmbeddingsAsInputs(Model m, Rewriter rw, IReadOnlyDictionary<string, int[]> shapes)
    {
        var g = m.Graph;
        var tokens = g.Inputs.Where(i => !i.IsInitializer && !i.ElementType.IsFloatingPoint()
            && i.ElementType is not DataType.Undefined).ToList();
        if (tokens.Count == 0) return [];
        var ranges = Data.InputRanges.Of(g);
        foreach (var t in tokens)
        {
            var dims = shapes.TryGetValue(t.Name, out var given) ? given.Select(v => (long)v).ToArray()
                : (t.Shape?.Dims ?? []).Select((d, k) => d.Value ?? (k == 0 ? 1 : 16)).ToArray();
            var n = dims.Aggregate(1L, (a, b) => a * b);
            long value = ranges.TryGetValue(t.Name, out var r) && r.IsMask ? 1 : 0;
            var data = t.ElementType == DataType.Int32
                ? Tensor.FromValues(t.Name, DataType.Int32, dims, Enumerable.Repeat((int)value, (int)n).ToArray())
                : Tensor.FromInt64s(t.Name, dims, Enumerable.Repeat(value, (int)n).ToArray());
            rw.FreezeInput(t, data);
        }
        ShapeInference.Refresh(m);   // the symbolic types inferred before are now static
        int lookups = 0;
        foreach (var gather in g.Nodes.Where(x => x is { OpType: "Gather", IsStandard: true }).ToList())
        {
            if (gather.Input(0) is not { Initializer: { Dims.Length: 2 } table } || !table.ElementType.IsFloatingPoint()
                || gather.Output() is not { Shape: { IsFullyKnown: true } shape } y) continue;
            var input = g.AddInput(g.FreshName(y.Name + "_embedding"), OnnxType.Tensor(table.ElementType, shape));
            rw.Replace(y, input);
            rw.Erase(gather);
            lookups++;
        }
        if (lookups == 0)
            throw new OnnxModelException($"input '{tokens[0].Name}' is {tokens[0].ElementType.Name()} and no embedding "
                + "lookup follows it: SynFlow feeds all-ones float inputs; score it with method=magnitude (score "
                + "--method magnitude, sparsify{method=magnitude})");
        rw.RemoveDeadNodes(g);
        rw.Finish();
        return tokens.Select(t => t.Name).ToList();
    }

    public static SynFlowNetwork Build(Model original, IReadOnlyList<PrunableWeight> prunables,
        IReadOnlyDictionary<string, int[]> shapes)
    {
        var clone = original.Clone();
        var byIndex = prunables.ToDictionary(p => clone.Graph.Nodes[original.Graph.PositionOf(p.Node)], p => p);
        PipelineRunner.Run(clone, Pipeline.Parse("fold-bn"), new PassContext(clone));
        var g = clone.Graph;
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (node, p) in byIndex)
        {
            if (!g.Nodes.Contains(node)) throw new OnnxModelException($"layer {p.Layer} disappeared while folding BatchNormalization");
            names[p.Weight.Name] = node.Input(p.InputIndex)!.Name;
        }

        var rw = new Rewriter(clone);
        foreach (var n in g.Nodes.ToList())
        {
            if (!n.IsStandard || n.Input(0) is not { } x) continue;
            Value? replacement = null;
            if (ToIdentity.Contains(n.OpType)) replacement = rw.Insert(g,
                "Identity", [x], n.Output().Name + "_linear").Output();
            else if (ToOne.Contains(n.OpType))
            {
                var zero = rw.Constant(g, n.Output().Name + "_zero", Tensor.FromFloats("", [], [0f]));
                var one = rw.Constant(g, n.Output().Name + "_one", Tensor.FromFloats("", [], [1f]));
                var zeroed = rw.Insert(g, "Mul", [x, zero], n.Output().Name + "_zeroed").Output();
                replacement = rw.Insert(g, "Add", [zeroed, one], n.Output().Name + "_one").Output();
            }
            if (replacement is null) continue;
            rw.Replace(n.Output(), replacement);
            rw.Erase(n);
        }
        rw.Finish();

        var frozen = EmbeddingsAsInputs(clone, rw, shapes);
        var outputs = g.Outputs.Select(o => o.Producer is { OpType: "Softmax" or "LogSoftmax", IsStandard: true } sm ? sm.Input(0)!.Name : o.Name).ToList();
        var inputShapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var i in g.Inputs.Where(i => !i.IsInitializer))
        {
            if (shapes.TryGetValue(i.Name, out var given)) { inputShapes[i.Name] = given; continue; }
            if (i.ElementType is not (DataType.Float or DataType.Double or DataType.Float16))
                throw new OnnxModelException($"input '{i.Name}' is {i.ElementType.Name()}"
                    + (i.Uses.Any(u => u.Node.OpType == "Gather" && u.InputIndex == 1)
                        ? " (token ids into an embedding)" : "")
                    + ": SynFlow feeds all-ones float inputs, which a token model has none of; score it with "
                    + "method=magnitude (score --method magnitude, sparsify{method=magnitude})");
            var s = i.Shape ?? throw new OnnxModelException($"input '{i.Name}' has no shape: give it (--input-shape {i.Name}=1x...)");
            inputShapes[i.Name] = s.Dims.Select((d, k) => d.Value is long v ? (int)v : k == 0 ? 1
                : throw new OnnxModelException($"input '{i.Name}' has symbolic dimension '{d}' at axis {k}: give its shape (--input-shape {i.Name}=1x...)")).ToArray();
        }
        foreach (var name in shapes.Keys.Except(frozen))
            if (!inputShapes.ContainsKey(name)) throw new OnnxModelException($"--input-shape names '{name}', which is not an input of the model");
        return new SynFlowNetwork { Model = clone, WeightNames = names, Outputs = outputs, InputShapes = inputShapes };
    }
}

/// <summary>SynFlow rounds in some precision, with the per-layer rescaling deep nets need.</summary>
internal interface ISynFlowRunner
{
    (double R, Dictionary<string, double[]> Scores) Round(IReadOnlyDictionary<string, bool[]> masks);

    /// <summary>Scales each scored layer's |W| and bias by rows / sum|W| (see the header).</summary>
    void Rescale();
}

/// <summary>SynFlow rounds on a <see cref="SynFlowNetwork"/> in precision T.</summary>
internal sealed class SynFlowRunner<T> : ISynFlowRunner where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly SynFlowNetwork _net;
    private readonly Evaluator<T> _ev;
    private readonly Dictionary<string, NdArray<T>> _abs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NdArray<T>> _ones;

    public SynFlowRunner(SynFlowNetwork net)
    {
        _net = net;
        _ev = new Evaluator<T>(net.Model);
        foreach (var v in net.Model.Graph.Initializers)
        {
            var a = _ev.Initializer(v);
            if (a.IsInt) continue;
            _abs[v.Name] = new NdArray<T>(a.Shape, a.R.Select(T.Abs).ToArray());
        }
        _ones = net.InputShapes.ToDictionary(kv => kv.Key, kv => NdArray<T>.Full(kv.Value, T.One));
    }

    public void Rescale()
    {
        foreach (var clone in _net.WeightNames.Values)
        {
            var w = _abs[clone];
            var node = _net.Model.Graph.Find(clone)!.Uses[0].Node;
            var dims = w.Shape;
            long rows = node.OpType switch
            {
                "Conv" => dims[0],
                "ConvTranspose" => dims[1] * node.GetInt("group", 1),
                "Gemm" => node.GetInt("transB", 0) != 0 ? dims[0] : dims[1],
                _ => dims[^1],
            };
            double sum = 0;
            foreach (var x in w.R) sum += double.CreateChecked(x);
            if (!(sum > 0) || rows <= 0) continue;
            var c = T.CreateChecked(rows / sum);
            _abs[clone] = new NdArray<T>(w.Shape, w.R.Select(x => x * c).ToArray());
            if (node.OpType is "Conv" or "ConvTranspose" or "Gemm" && node.Input(2) is { IsInitializer: true } b
                && _abs.TryGetValue(b.Name, out var bias) && b.Uses.Count == 1)
                _abs[b.Name] = new NdArray<T>(bias.Shape, bias.R.Select(x => x * c).ToArray());
        }
    }

    /// <summary>R and the scores |dR/dw * w| of each prunable weight (by original name) under the masks.</summary>
    public (double R, Dictionary<string, double[]> Scores) Round(IReadOnlyDictionary<string, bool[]> masks)
    {
        var over = new Dictionary<string, NdArray<T>>(_abs, StringComparer.Ordinal);
        foreach (var (orig, clone) in _net.WeightNames)
        {
            var w = _abs[clone];
            if (!masks.TryGetValue(orig, out var m)) continue;
            var d = (T[])w.R.Clone();
            for (int i = 0; i < d.Length; i++) if (!m[i]) d[i] = T.Zero;
            over[clone] = new NdArray<T>(w.Shape, d);
        }
        var trace = _ev.Forward(_ones, over);
        double r = 0;
        var seeds = new Dictionary<string, NdArray<T>>(StringComparer.Ordinal);
        foreach (var o in _net.Outputs)
        {
            var v = trace[o];
            foreach (var x in v.R) r += double.CreateChecked(x);
            seeds[o] = NdArray<T>.Full(v.Shape, T.One);
        }
        var grads = _ev.Backward(trace, seeds, _net.WeightNames.Values);
        var scores = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var (orig, clone) in _net.WeightNames)
        {
            var g = grads[clone].R; var w = over[clone].R;
            var s = new double[g.Length];
            for (int i = 0; i < s.Length; i++) s[i] = Math.Abs(double.CreateChecked(g[i]) * double.CreateChecked(w[i]));
            scores[orig] = s;
        }
        return (r, scores);
    }
}
