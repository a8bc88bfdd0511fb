// Quantization-aware training (QAT) of a QDQ model, as quantize{train-steps=N} and distill after quantize run it:
// the int8 model trains by distillation toward the float model with every quantizer in the loop (the straight-
// through estimator), its weights, weight scales, activation scales (LSQ) and biases learned, and is written back
// as the same QDQ graph with new integers and scales.
//   QDQ model:      x -> Q(s_x) -> DQ -> Conv(DQ(W_int8, s_w), DQ(b_int32, s_x s_w)) -> Q(s_y) -> DQ -> ...
//   training form:  x -> Q(s_x) -> DQ -> Conv(W, b) -> Q(s_y) -> DQ -> ...     (a copy; the evaluator's Q/DQ
//                   kernels pass gradients straight through and train s_x, s_y)
//                   W = s_w clamp(round(w / s_w), -Q, Q)  (FakeQuantParameter: w starts at the float weight the
//                   integers were rounded from when the quantize pass passes it, else at the dequantized weight)
//                   b  float, trained
//   written back:   W_int8 = clamp(round(w / s_w), -Q, Q), s_w; b_int32 = round(b / (s_x s_w)) at the trained
//                   scales; s_x, s_y; the float parameters of ops left in float (biases, weights) as they trained.
// Q is the weight grid's bound: 127, 63 under reduce-range, 7 for 4-bit weights (weight-bits=4); after a quantize
// pass in the same pipeline it is known, otherwise the smallest of 7, 63, 127 holding the tensor's integers.
// Zero points stay. keep-zeros: a weight's exact zeros (a sparsified model's mask) stay zero, so its integers stay 0.
// Only initializers the QDQ emitter's layout has are trained: a weight DQ read only by the
// weight input of Conv/ConvTranspose/Gemm/MatMul with its own scale; a bias DQ (int32) read by a bias input;
// activation scales shared by a Q and its DQs. Anything else (quantized constants of Add/Mul, foreign layouts)
// stays as it is.
using OnnxOpt.GraphIR;
using OnnxOpt.Training;

namespace OnnxOpt.Passes;

public static class QuantizationAwareTraining
{
    private sealed record WeightSlot(string Integers, string Scale, FakeQuantParameter Parameter);

    private sealed record BiasSlot(string Integers, string Scale, string InputScale, string WeightScale,
        DirectParameter Parameter);

    /// <summary>The training form of a QDQ model and how its parameters map back onto the model.</summary>
    private sealed record Form(Model Model, List<WeightSlot> Weights, List<BiasSlot> Biases,
        List<ScaleParameter> Scales, List<Parameter> Rest)
    {
        public List<Parameter> Parameters => Weights.Select(w => (Parameter)w.Parameter)
            .Concat(Biases.Select(b => b.Parameter)).Concat(Scales).Concat(Rest).ToList();
    }

    /// <summary>Whether the model has int8 weights behind DequantizeLinear that QAT can train.</summary>
    public static bool Applies(Model m) => m.Graph.Nodes.Any(n => WeightReader(n) is not null);

    /// <summary>Trains the QDQ model ctx.Model toward the teacher (the pipeline's input) and writes the trained
    /// integers and scales back into it.</summary>
    /// <param name="weightMax">The weight grid's bound Q, or null to read it from each tensor.</param>
    /// <param name="latent">The float weights the int8 ones were rounded from, by int8 initializer name (training
    /// starts from them, so a weight's position between two grid points is kept); others start on the grid.</param>
    /// <param name="keepZeros">Held zeros (the sparse mask survives QAT): auto/true/false on the float weights
    /// training starts from; a weight that starts on its grid holds its zero integers only with true (rounding
    /// makes zeros too, so auto does not read them as a mask).</param>
    public static TrainResult Run(PassContext ctx, string stage, TrainSettings settings, int? weightMax,
        Model? teacher = null, IReadOnlyDictionary<string, float[]>? latent = null, string keepZeros = "auto")
    {
        var form = Build(ctx.Model, weightMax, latent, keepZeros);
        if (form.Weights.Count == 0 && form.Scales.Count == 0)
            throw new OnnxModelException($"{stage}: the model has no QDQ weights or activation scales to train");
        ctx.Stats.Count(Counters.Quantize.Int8WeightsTrained, form.Weights.Count);
        ctx.Stats.Count(Counters.Quantize.ActivationScalesTrained, form.Scales.Count);
        var grids = form.Weights.Select(w => w.Parameter.QMax).Distinct().Order().ToList();
        ctx.Stats.Notes.Add($"{stage}: quantization-aware training of {form.Weights.Count} weights (grid "
            + $"+-{string.Join("/", grids)}), {form.Biases.Count} biases, {form.Scales.Count} activation scales and "
            + $"{form.Rest.Count} float parameters (straight-through estimator, learned step sizes)");
        Recovery.ReportHeldZeros(ctx, form.Parameters);
        var r = Recovery.Train(ctx, stage, form.Parameters, settings, teacher, writeBack: false, student: form.Model);
        WriteBack(ctx, form);
        return r;
    }

    /// <summary>The weight DQ's reader (Conv/ConvTranspose/Gemm input 1, MatMul input 1) when it has the emitter's
    /// layout: int8 initializer, float scale of its own, zero point zero.</summary>
    private static Node? WeightReader(Node dq)
    {
        if (dq.OpType != "DequantizeLinear" || !dq.IsStandard || dq.GetInt("block_size", 0) != 0) return null;
        if (Initializer(dq.Input(0)) is not { ElementType: DataType.Int8 } q) return null;
        if (Initializer(dq.Input(1)) is not { ElementType: DataType.Float } || dq.Input(1)!.Uses.Count != 1)
            return null;
        if (dq.Input(2) is { } z && (Initializer(z) is not { } zt || zt.ToInt64Array().Any(v => v != 0))) return null;
        var uses = dq.Output().Uses;
        if (uses.Count != 1 || dq.Output().IsGraphOutput || uses[0].InputIndex != 1) return null;
        var reader = uses[0].Node;
        return reader.IsStandard && reader.OpType is "Conv" or "ConvTranspose" or "Gemm" or "MatMul"
            && q.Dims.Length >= 2 ? reader : null;
    }

    private static Tensor? Initializer(Value? v) => v is { Initializer: { } t, IsGraphInput: false } ? t : null;

    /// <summary>The float weights of the layers a QDQ emission may quantize, by layer (taken before Emit).</summary>
    public static Dictionary<Node, float[]> FloatWeights(Model m) => m.Graph.Nodes
        .Where(n => n.IsStandard && n.OpType is "Conv" or "ConvTranspose" or "Gemm" or "MatMul"
            && (n.OpType != "Gemm" || n.GetFloat("alpha", 1f) == 1f)
            && Rewriter.ConstantOf(n.Input(1)) is { ElementType: DataType.Float })
        .ToDictionary(n => n, n => Rewriter.ConstantOf(n.Input(1))!.ToFloatArray());

    /// <summary>After Emit: the float weights by the int8 initializer each layer's weight became (Run's latent).
    /// </summary>
    public static Dictionary<string, float[]> ByInteger(Dictionary<Node, float[]> floats)
    {
        var r = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (n, w) in floats)
            if (n.Input(1)?.Producer is { OpType: "DequantizeLinear" } dq && Initializer(dq.Input(0)) is { } q
                && q.ElementCount == w.Length) r[dq.Input(0)!.Name] = w;
        return r;
    }

    private static Form Build(Model model, int? weightMax, IReadOnlyDictionary<string, float[]>? latent,
        string keepZeros)
    {
        var m = model.Clone();
        var g = m.Graph;
        var rw = new Rewriter(m);
        var weights = new List<WeightSlot>();
        var biases = new List<BiasSlot>();
        var trainedNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var dq in g.Nodes.ToList())
        {
            if (WeightReader(dq) is not { } reader) continue;
            var q = Initializer(dq.Input(0))!;
            var scales = Initializer(dq.Input(1))!.ToFloatArray();
            var ints = q.ToInt64Array();
            int axis = scales.Length == 1 ? -1 : (int)dq.GetInt("axis", 1);
            if (scales.Length > 1 && axis < 0) axis += q.Dims.Length;
            int bound = weightMax ?? Bound(ints);
            long inner = axis < 0 ? ints.Length : q.Dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
            var (intName, scaleName) = (dq.Input(0)!.Name, dq.Input(1)!.Name);
            var w = new float[ints.Length];
            for (int i = 0; i < w.Length; i++)
                w[i] = ints[i] * scales[axis < 0 ? 0 : (int)(i / inner % scales.Length)];
            float[]? start = null;
            bool fromFloat = latent?.TryGetValue(intName, out start) == true;
            if (fromFloat) w = start!.ToArray();
            var weight = rw.Constant(g, reader.Input(1)!.Name.Replace("_dequantized", ""),
                Tensor.FromFloats("", q.Dims, w));
            var mask = ParameterSelection.ZeroMask(weight, fromFloat || keepZeros == "true" ? keepZeros : "false");
            var p = new FakeQuantParameter(weight, scales, axis, bound, mask);
            weights.Add(new WeightSlot(intName, scaleName, p));
            trainedNames.Add(weight.Name);
            rw.Replace(dq.Output(), weight);
            rw.Erase(dq);
            if (reader.OpType != "MatMul" && Bias(reader) is { } bias)
            {
                var (bdq, inputScale) = bias;
                var bq = Initializer(bdq.Input(0))!.ToInt64Array();
                var bs = Initializer(bdq.Input(1))!.ToFloatArray();
                var b = bq.Select((v, c) => (float)(v * (double)bs[bs.Length == 1 ? 0 : c])).ToArray();
                var bv = rw.Constant(g, reader.Input(2)!.Name.Replace("_dequantized", ""),
                    Tensor.FromFloats("", [b.Length], b));
                biases.Add(new BiasSlot(bdq.Input(0)!.Name, bdq.Input(1)!.Name, inputScale, scaleName,
                    new DirectParameter(bv)));
                trainedNames.Add(bv.Name);
                rw.Replace(bdq.Output(), bv);
                rw.Erase(bdq);
            }
        }
        // Activation scales: a float scale initializer that a Q of a computed value reads and only Q/DQ nodes read.
        var scalesTrained = new List<ScaleParameter>();
        foreach (var n in g.Nodes)
        {
            if (n.OpType != "QuantizeLinear" || !n.IsStandard || Rewriter.ConstantOf(n.Input(0)) is not null) continue;
            var s = n.Input(1);
            if (Initializer(s) is not { ElementType: DataType.Float } || !trainedNames.Add(s!.Name)) continue;
            if (!s.Uses.All(u => u.InputIndex == 1 && u.Node.OpType is "QuantizeLinear" or "DequantizeLinear"))
                continue;
            scalesTrained.Add(new ScaleParameter(s));
        }
        rw.RemoveUnusedInitializers(g);
        rw.Finish();
        var rest = ParameterSelection.Select(m, "all", trainedNames);
        return new Form(m, weights, biases, scalesTrained, rest);
    }

    /// <summary>The smallest of 7, 63, 127 that holds every |q| (the weight grids the quantize pass writes).
    /// </summary>
    private static int Bound(long[] q)
    {
        long max = q.Length == 0 ? 0 : q.Max(v => Math.Abs(v));
        return max <= 7 ? 7 : max <= 63 ? 63 : 127;
    }

    /// <summary>The reader's int32 bias DQ (the emitter's: its own scale, zero point zero) and the scale of the
    /// reader's quantized input, or null.</summary>
    private static (Node Dq, string InputScale)? Bias(Node reader)
    {
        if (reader.Input(2)?.Producer is not { OpType: "DequantizeLinear", IsStandard: true } bdq) return null;
        if (Initializer(bdq.Input(0)) is not { ElementType: DataType.Int32 }) return null;
        if (Initializer(bdq.Input(1)) is not { ElementType: DataType.Float } || bdq.Input(1)!.Uses.Count != 1
            || bdq.Output().Uses.Count != 1) return null;
        if (reader.Input(0)?.Producer is not { OpType: "DequantizeLinear", IsStandard: true } xdq
            || Initializer(xdq.Input(1)) is not { ElementType: DataType.Float }) return null;
        return (bdq, xdq.Input(1)!.Name);
    }

    /// <summary>The trained integers and scales into the QDQ model (every slot names initializers of both).</summary>
    private static void WriteBack(PassContext ctx, Form form)
    {
        var g = ctx.Model.Graph;
        var rw = ctx.Rewriter;
        void Set(string name, Tensor t) => rw.SetInitializer(g.Find(name)!, t.WithName(name));
        var scaleOf = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var s in form.Scales)
        {
            var v = g.Find(s.Name)!;
            scaleOf[s.Name] = s.Scales();
            Set(s.Name, Tensor.FromFloats("", v.Initializer!.Dims, scaleOf[s.Name]));
        }
        foreach (var w in form.Weights)
        {
            var old = g.Find(w.Integers)!.Initializer!;
            Set(w.Integers, Tensor.FromValues("", DataType.Int8, old.Dims, w.Parameter.Integers().AsSpan()));
            scaleOf[w.Scale] = w.Parameter.Scales();
            Set(w.Scale, Tensor.FromFloats("", g.Find(w.Scale)!.Initializer!.Dims, scaleOf[w.Scale]));
        }
        foreach (var b in form.Biases)
        {
            var sx = scaleOf.TryGetValue(b.InputScale, out var tx) ? tx[0]
                : g.Find(b.InputScale)!.Initializer!.ToFloatArray()[0];
            var sw = scaleOf[b.WeightScale];
            var old = g.Find(b.Scale)!.Initializer!;
            var values = b.Parameter.Values;
            var bs = new float[old.ElementCount];
            for (int c = 0; c < bs.Length; c++) bs[c] = sx * sw[sw.Length == 1 ? 0 : c];
            var bq = values.Select((v, c) => (int)Math.Clamp(Math.Round(v / (double)bs[bs.Length == 1 ? 0 : c],
                MidpointRounding.ToEven), int.MinValue, int.MaxValue)).ToArray();
            Set(b.Integers, Tensor.FromValues("", DataType.Int32, [bq.Length], bq.AsSpan()));
            Set(b.Scale, Tensor.FromFloats("", old.Dims, bs));
        }
        Trainer.WriteBack(ctx.Model, form.Rest, rw.SetInitializer);
    }
}
