// Emits a QDQ model: QuantizeLinear/DequantizeLinear pairs around every quantized op, which ONNX
// Runtime fuses into int8 kernels (QLinearConv, QLinearMatMul, QGemm, QLinearAdd, ...).
//
//   before:  x -> Conv(W, b) -> Relu -> y
//   after:   x -> Q -> DQ -> Conv(DQ(W_int8, per-channel), DQ(b_int32)) -> y -> Q -> DQ -> ...
//            (the Relu is absorbed: y's uint8 range starts at 0, so quantizing clamps exactly like it)
//
// Ops with their own output scale: Conv, ConvTranspose, Gemm, MatMul, Add, Mul, Concat, AveragePool,
// GlobalAveragePool. Ops that only move or select values share their input's scale (no requantizing):
// MaxPool, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Split, Slice, Resize; they are quantized
// when a neighbouring tensor is. Relu / Clip(0, max) after a quantized op with no other reader are
// absorbed into its output range (uint8 only: int8 symmetric ranges cannot clamp at 0). Everything else
// stays float, reading dequantized values and feeding QuantizeLinear where a quantized op follows.
// Each activation tensor gets one Q/DQ pair; all its readers use the DQ output. Weights are int8
// symmetric (per output channel at opset 13+), biases int32 at input_scale * weight_scale, other
// constants quantized like activations from their own min/max. Gemm's alpha and beta are folded into
// B and C first.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record QuantizeOptions
{
    public bool PerChannel { get; init; } = true;
    public DataType ActivationType { get; init; } = DataType.UInt8;
    /// <summary>Node names, output names or op types to quantize (empty: every supported op).</summary>
    public IReadOnlySet<string> Include { get; init; } = new HashSet<string>();
    /// <summary>Node names, output names or op types to keep in float.</summary>
    public IReadOnlySet<string> Exclude { get; init; } = new HashSet<string>();
    /// <summary>Op types whose outputs stay float unless a quantized op reads them (their int8 inputs are
    /// dequantized into the op: ORT runs MatMul so as MatMulIntegerToFloat, with no output requantization).</summary>
    public IReadOnlySet<string> FloatOutputs { get; init; } = new HashSet<string>();
    /// <summary>Largest |q| of int8 weights: 127, or 63 where ORT's u8s8 kernels saturate (Int8Hardware).</summary>
    public int WeightMax { get; init; } = 127;
    /// <summary>int8 weights chosen by another rounding (AdaRound), by layer key, in the weight's layout; layers
    /// not here round to nearest.</summary>
    public IReadOnlyDictionary<string, sbyte[]> Rounded { get; init; } = new Dictionary<string, sbyte[]>();

    /// <summary>The int8 weight of a layer: its learned rounding when there is one, else round-to-nearest.</summary>
    public QuantizedWeight Weight(Node layer, float[] w, long[] dims, int axis)
    {
        var q = QuantizedWeight.Of(w, dims, axis, WeightMax);
        if (!Rounded.TryGetValue(QdqEmitter.Key(layer), out var r) || r.Length != w.Length) return q;
        // Learned for these very weights: every integer is the floor or the ceiling of w / s.
        long inner = axis < 0 ? w.Length : dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
        for (long i = 0; i < w.Length; i++)
        {
            var x = w[i] / (double)q.Scales[axis < 0 ? 0 : (int)(i / inner % q.Scales.Length)];
            if (r[i] < Math.Floor(x) - 1e-6 || r[i] > Math.Ceiling(x) + 1e-6) return q;
        }
        return q with { Values = r };
    }
}

/// <summary>What one emission did: quantized nodes (by key), skipped candidates with the reason,
/// and for each quantized op the (float reference value, dequantized value) names, to measure its error.</summary>
public sealed record QdqResult(List<(string Key, string Op, string? Absorbed)> Quantized, List<(string Key, string Op,
    string Reason)> Skipped,
    Dictionary<string, (string Reference, string Dequantized)> Outputs, bool PerChannel);

public static class QdqEmitter
{
    /// <summary>Ops that run as int8 kernels (their OpRegistry entry's QuantClass).</summary>
    public static readonly HashSet<string> ComputeOps = OpRegistry.All
        .Where(o => o.Domain.Length == 0 && o.Quant != QuantClass.None).Select(o => o.OpType)
        .ToHashSet(StringComparer.Ordinal);
    /// <summary>Ops that take their input's scale (OpTraits: SharesScale).</summary>
    public static readonly HashSet<string> SharedOps = OpTraits.With(OpTrait.SharesScale).ToHashSet(StringComparer.Ordinal);

    /// <summary>The key a node is known by in reports and fallback lists: its first output's name.</summary>
    public static string Key(Node n) => n.Outputs.FirstOrDefault(o => o is not null)?.Name ?? n.Name ?? n.OpType;

    /// <summary>Whether the options and the fallback list leave a node to quantize (eligibility aside).</summary>
    public static bool Selected(Node n, QuantizeOptions o, IReadOnlySet<string> fallback)
    {
        bool Named(IReadOnlySet<string> s) => s.Contains(n.OpType) || s.Contains(Key(n)) || (n.Name is { } nm
            && s.Contains(nm));
        return !fallback.Contains(Key(n)) && !Named(o.Exclude) && (o.Include.Count == 0 || Named(o.Include));
    }

    private static bool Act(Value? v) => v is not null && v.ElementType == DataType.Float
        && Rewriter.ConstantOf(v) is null;
    private static bool Const(Value? v) => Rewriter.ConstantOf(v) is { ElementType: DataType.Float };

    /// <summary>Why a compute op cannot be quantized, or null.</summary>
    private static string? Ineligible(Node n)
    {
        if (!n.IsStandard || !ComputeOps.Contains(n.OpType)) return "not a quantizable op";
        if (n.Outputs.Count != 1 || n.Output().ElementType is not (DataType.Float or DataType.Undefined))
            return "output is not a single float tensor";
        switch (n.OpType)
        {
            case "Conv" or "ConvTranspose":
                if (!Act(n.Input(0))
                    || !Const(n.Input(1))) return "input is not a float activation or weight is not constant";
                if (n.Input(2) is { } b && !Const(b)) return "bias is not constant";
                return null;
            case "Gemm":
                if (!Act(n.Input(0)) || !Const(n.Input(1))) return "A is not a float activation or B is not constant";
                if (n.GetInt("transA", 0) != 0) return "transA";
                if (n.Input(2) is { } c && (!Const(c)
                    || Rewriter.ConstantOf(c)!.Dims.Count(d => d != 1) > 1)) return "C is not a constant vector";
                return null;
            case "MatMul" or "Add" or "Mul":
                if (n.Inputs.Count != 2 || !n.Inputs.All(i => Act(i) || Const(i))
                    || !n.Inputs.Any(Act)) return "inputs are not float";
                return null;
            case "Concat":
                if (!n.Inputs.All(i => Act(i) || Const(i)) || !n.Inputs.Any(Act)) return "inputs are not float";
                return null;
            default:
                return Act(n.Input(0)) ? null : "input is not a float activation";
        }
    }

    /// <summary>Every float activation a quantization of this model may need a range for (calibrate these once).</summary>
    public static List<string> CalibrationTensors(Model m)
    {
        var r = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var n in m.Graph.Nodes)
        {
            if (!n.IsStandard || !(ComputeOps.Contains(n.OpType) || SharedOps.Contains(n.OpType)
                || n.OpType is "Relu" or "Clip")) continue;
            foreach (var v in n.Inputs.Concat(n.Outputs)) if (Act(v)) r.Add(v!.Name);
        }
        return r.ToList();
    }

    public static QdqResult Emit(Model m, Rewriter rw, IReadOnlyDictionary<string, RangeCalibrator> ranges,
        QuantizeOptions o, IReadOnlySet<string> fallback)
    {
        var g = m.Graph;
        ShapeInference.Run(m);
        var opset = m.OpsetVersion("") ?? 1;
        if (opset < 10) throw new OnnxModelException($"quantize needs opset 10 or later (QuantizeLinear); the model imports opset {opset}");
        bool perChannel = o.PerChannel && opset >= 13;
        var kind = o.ActivationType == DataType.Int8 ? RangeKind.Symmetric : RangeKind.Asymmetric;
        var result = new QdqResult(new(), new(), new(), perChannel);

        // 1. Which compute ops (keys taken now: emitting may rename a graph output's producer).
        var keys = g.Nodes.ToDictionary(n => n, Key);
        var compute = SelectCompute(g, o, fallback, result);
        // 2. Absorb Relu / Clip(0, max) into the producer's range (uint8 only).
        var (rangeName, absorbed) = AbsorbActivations(rw, compute, o, fallback, opset);
        // 3. Tensors to quantize: around compute ops, then spread through value-moving ops.
        var (q, inherit, shared) = TensorsToQuantize(g, compute, o, fallback);

        // 4. Parameters, in topological order so that inherited ones exist.
        var qp = new Dictionary<Value, (QParams P, Value Scale, Value Zero)>();
        (QParams, Value, Value) ParamsOf(Value t)
        {
            if (qp.TryGetValue(t, out var have)) return have;
            (QParams, Value, Value) made;
            if (inherit.TryGetValue(t, out var src)) made = ParamsOf(src);
            else
            {
                var name = rangeName.GetValueOrDefault(t, t.Name);
                if (!ranges.TryGetValue(name,
                    out var cal)) throw new InvalidOperationException($"no calibration range for '{name}'");
                var (lo, hi) = cal.Range(kind);
                var p = QParams.Activation(lo, hi, o.ActivationType);
                made = (p, rw.Constant(g, t.Name + "_scale", p.ScaleTensor("")),
                    rw.Constant(g, t.Name + "_zero_point", p.ZeroPointTensor("")));
            }
            qp[t] = made;
            return made;
        }
        foreach (var t in g.Inputs.Where(q.Contains)) ParamsOf(t);
        foreach (var n in g.Nodes.ToList())
            foreach (var v in n.Outputs) if (v is not null && q.Contains(v)) ParamsOf(v);

        // 5. Weights, biases and other constants of the compute ops.
        foreach (var c in compute) QuantizeConstants(m, rw, c, o, perChannel, t => ParamsOf(t).Item1);

        // 6. One Q/DQ pair per activation tensor.
        foreach (var t in q.OrderBy(v => v.Producer is null ? -1 : g.PositionOf(v.Producer)).ThenBy(v => v.Name,
            StringComparer.Ordinal).ToList())
        {
            var (p, scale, zero) = ParamsOf(t);
            var uses = t.Uses.ToList();
            var qn = rw.Insert(g, "QuantizeLinear", [t, scale, zero], t.Name + "_quantized");
            rw.SetType(qn.Output(), OnnxType.Tensor(p.Type, t.Shape));
            var dq = rw.Insert(g, "DequantizeLinear", [qn.Output(), scale, zero], t.Name + "_dequantized");
            rw.SetType(dq.Output(), OnnxType.Tensor(DataType.Float, t.Shape));
            if (t.IsGraphOutput)
            {
                rw.Replace(t, dq.Output());
                rw.SetInput(qn, 0, t);
            }
            else foreach (var u in uses) rw.SetInput(u.Node, u.InputIndex, dq.Output());
        }
        foreach (var c in compute)
        {
            var y = c.Output();
            result.Quantized.Add((keys[c], c.OpType, absorbed.GetValueOrDefault(c)));
            var dequantized = y.Uses.Select(u => u.Node).FirstOrDefault(n => n.OpType == "QuantizeLinear")?.Output().Uses.Select(u => u.Node).FirstOrDefault(n => n.OpType == "DequantizeLinear")?.Output().Name;
            if (dequantized is not null) result.Outputs[keys[c]] = (rangeName[y], dequantized);
        }
        foreach (var s in shared) result.Quantized.Add((keys[s], s.OpType, null));
        rw.RemoveUnusedInitializers(g);
        rw.Finish();
        return result;
    }

    /// <summary>The compute ops to quantize; the others recorded as skipped with the reason.</summary>
    private static List<Node> SelectCompute(Graph g, QuantizeOptions o, IReadOnlySet<string> fallback,
        QdqResult result)
    {
        var compute = new List<Node>();
        foreach (var n in g.Nodes.ToList())
        {
            if (!n.IsStandard || !ComputeOps.Contains(n.OpType)) continue;
            if (!Selected(n, o, fallback))
            {
                result.Skipped.Add((Key(n), n.OpType,
                fallback.Contains(Key(n)) ? "kept in float (accuracy)" : "excluded")); continue;
            }
            if (Ineligible(n) is { } why) { result.Skipped.Add((Key(n), n.OpType, why)); continue; }
            compute.Add(n);
        }
        return compute;
    }

    /// <summary>A Relu or Clip(0, max) alone after a compute op (uint8 activations) is erased: the op's output is
    /// quantized on the activation's calibrated range instead. Returns each compute output's range name and what
    /// was absorbed.</summary>
    private static (Dictionary<Value, string> RangeName, Dictionary<Node, string> Absorbed) AbsorbActivations(
        Rewriter rw, List<Node> compute, QuantizeOptions o, IReadOnlySet<string> fallback, long opset)
    {
        var rangeName = new Dictionary<Value, string>();
        var absorbed = new Dictionary<Node, string>();
        foreach (var c in compute)
        {
            var y = c.Output();
            rangeName[y] = y.Name;
            if (o.ActivationType != DataType.UInt8 || y.IsGraphOutput || y.Uses.Count != 1) continue;
            var a = y.Uses[0].Node;
            if (!a.IsStandard || a.OpType is not ("Relu" or "Clip") || a.Output().IsGraphOutput
                || !Selected(a, o, fallback)) continue;
            if (a.OpType == "Clip" && !ClipFromZero(a, opset)) continue;
            rangeName[y] = a.Output().Name;
            absorbed[c] = a.OpType;
            rw.Replace(a.Output(), y);
            rw.Erase(a);
        }
        return (rangeName, absorbed);
    }

    /// <summary>The activation tensors to quantize: the compute ops' float inputs and (unless kept float) outputs,
    /// spread through value-moving ops (SharedOps) whose outputs then share their input's parameters (inherit).
    /// </summary>
    private static (HashSet<Value> Q, Dictionary<Value, Value> Inherit, List<Node> Shared) TensorsToQuantize(Graph g,
        List<Node> compute, QuantizeOptions o, IReadOnlySet<string> fallback)
    {
        var q = new HashSet<Value>();
        foreach (var c in compute)
        {
            foreach (var i in c.Inputs) if (Act(i)) q.Add(i!);
            if (!o.FloatOutputs.Contains(c.OpType)) q.Add(c.Output());
        }
        var inherit = new Dictionary<Value, Value>();
        var shared = new List<Node>();
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (var s in g.Nodes)
            {
                if (shared.Contains(s) || !s.IsStandard || !SharedOps.Contains(s.OpType) || !Act(s.Input(0))
                    || !Selected(s, o, fallback)) continue;
                if (s.OpType == "MaxPool" && s.Outputs.Count > 1 && s.Outputs[1] is not null) continue;
                var outs = s.Outputs.Where(v => v is not null).Select(v => v!).ToList();
                if (!outs.All(v => v.ElementType is DataType.Float or DataType.Undefined)) continue;
                if (!q.Contains(s.Input(0)!) && !outs.Any(q.Contains)) continue;
                shared.Add(s);
                q.Add(s.Input(0)!);
                foreach (var v in outs) { q.Add(v); inherit[v] = s.Input(0)!; }
                changed = true;
            }
        }
        return (q, inherit, shared);
    }

    /// <summary>The axis of a layer's int8 weight scales: its output channels (Conv 0, Gemm 0 with transB else 1,
    /// 2-D MatMul 1, ConvTranspose 1 when not grouped), -1 for one scale (per-tensor, or a grouped
    /// ConvTranspose whose output channels are not one axis).</summary>
    public static int WeightAxis(Node c, bool perChannel) => !perChannel ? -1 : c.OpType switch
    {
        "Conv" => 0,
        "ConvTranspose" => c.GetInt("group", 1) == 1 ? 1 : -1,
        "Gemm" => c.GetInt("transB", 0) != 0 ? 0 : 1,
        _ => 1,
    };

    private static bool ClipFromZero(Node clip, long opset)
    {
        double? lo = opset < 11 ? (clip.Attr("min") is { } a ? a.F : null) : Rewriter.ConstantOf(clip.Input(1)) is { } t ? t.ToDoubleArray()[0] : null;
        bool maxKnown = opset < 11 || clip.Input(2) is null || Rewriter.ConstantOf(clip.Input(2)) is not null;
        return lo == 0 && maxKnown;
    }

    private static Value Dq(Rewriter rw, Graph g, string baseName, Tensor q, float[] scales, Tensor zero, int axis)
    {
        var qv = rw.Constant(g, baseName + "_quantized", q);
        var sv = rw.Constant(g, baseName + "_scale", Tensor.FromFloats("", scales.Length == 1 ? [] : [scales.Length],
            scales));
        var zv = rw.Constant(g, baseName + "_zero_point", zero);
        var attrs = scales.Length > 1 ? new[] { OnnxAttribute.Int("axis", axis) } : [];
        var dq = rw.Insert(g, "DequantizeLinear", [qv, sv, zv], baseName + "_dequantized", 1, attrs);
        rw.SetType(dq.Output(), OnnxType.Tensor(DataType.Float, Shape.Of(q.Dims)));
        return dq.Output();
    }

    private static void QuantizeConstants(Model m, Rewriter rw, Node c, QuantizeOptions o, bool perChannel,
        Func<Value, QParams> paramsOf)
    {
        var g = m.Graph;
        switch (c.OpType)
        {
            case "Conv" or "ConvTranspose" or "Gemm":
            {
                var wt = Rewriter.ConstantOf(c.Input(1))!;
                var w = wt.ToFloatArray();
                float[]? b = c.Input(2) is { } bv ? Rewriter.ConstantOf(bv)!.ToFloatArray() : null;
                int axis;
                if (c.OpType == "Gemm")
                {
                    var alpha = c.GetFloat("alpha", 1f); var beta = c.GetFloat("beta", 1f);
                    if (alpha != 1f)
                    {
                        for (int i = 0; i < w.Length; i++) w[i] *= alpha; rw.SetAttr(c,
                        OnnxAttribute.Float("alpha", 1f));
                    }
                    if (b is not null && beta != 1f) { for (int i = 0; i < b.Length; i++) b[i] *= beta; }
                    rw.SetAttr(c, OnnxAttribute.Float("beta", 1f));
                }
                axis = WeightAxis(c, perChannel);
                var qw = o.Weight(c, w, wt.Dims, axis);
                var wName = c.Input(1)!.Name;
                var zeros = Tensor.FromValues("", DataType.Int8, qw.Scales.Length == 1 ? [] : [qw.Scales.Length], new sbyte[qw.Scales.Length].AsSpan());
                rw.SetInput(c, 1, Dq(rw, g, wName,
                    Tensor.FromValues("", DataType.Int8, wt.Dims, qw.Values.AsSpan()), qw.Scales, zeros, axis));
                if (b is not null)
                {
                    var (bq, bs) = qw.Bias(b, paramsOf(c.Input(0)!).Scale);
                    var n = b.Length;
                    if (qw.Scales.Length == 1) bs = [bs[0]];
                    var bName = c.Input(2)!.Name;
                    var bz = Tensor.FromValues("", DataType.Int32, bs.Length == 1 ? [] : [n], new int[bs.Length].AsSpan());
                    rw.SetInput(c, 2, Dq(rw, g, bName,
                        Tensor.FromValues("", DataType.Int32, [n], bq.AsSpan()), bs, bz, 0));
                }
                break;
            }
            default:
            {
                for (int i = 0; i < c.Inputs.Count; i++)
                {
                    if (Rewriter.ConstantOf(c.Input(i)) is not { ElementType: DataType.Float } t) continue;
                    var data = t.ToFloatArray();
                    var name = c.Input(i)!.Name;
                    if (c.OpType == "MatMul" && i == 1 && t.Dims.Length == 2)
                    {
                        var qw = o.Weight(c, data, t.Dims, WeightAxis(c, perChannel));
                        var zeros = Tensor.FromValues("", DataType.Int8, qw.Scales.Length == 1 ? [] : [qw.Scales.Length], new sbyte[qw.Scales.Length].AsSpan());
                        rw.SetInput(c, i, Dq(rw, g, name,
                            Tensor.FromValues("", DataType.Int8, t.Dims, qw.Values.AsSpan()), qw.Scales, zeros, 1));
                        continue;
                    }
                    var p = QParams.Activation(data.DefaultIfEmpty(0).Min(), data.DefaultIfEmpty(0).Max(),
                        o.ActivationType);
                    rw.SetInput(c, i, Dq(rw, g, name,
                        p.Quantize("", t.Dims, data), [p.Scale], p.ZeroPointTensor(""), 0));
                }
                break;
            }
        }
    }
}
