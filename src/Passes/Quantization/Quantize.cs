// quantize: post-training int8 quantization from calibration data (main graph only; subgraphs stay float);
// mode=dynamic: DynamicQuantize (no calibration, activations quantized at run time); mode=auto with max-drop on a
// transformer measures dynamic int8 first and keeps it when within the budget (DynamicWithinBudget).
//   0. a model with attention blocks (transformer=auto): int8 MatMul/Gemm only, MatMul outputs float, and
//      SmoothQuant first (smooth=auto, SmoothQuant.cs);
//   1. calibrate every activation a quantization may touch, in one streaming pass (Calibration:
//      minmax | percentile | entropy | mse);
//   2. emit QDQ (QdqEmitter), or lower it to QOperator ops (format=qoperator, QOperatorLowering);
//   3. with max-drop >= 0 (accuracy-aware, needs --eval): measure the int8 model on the evaluation data
//      (accuracy with labels, else top-1 agreement with fp32, else output cosine); when the drop exceeds
//      max-drop, try bias correction and cross-layer equalization (bias-correct, equalize: auto), then fall
//      back to float the quantized op whose own output is worst (lowest SQNR of its int8 activation against
//      fp32), one at a time, keeping the best model seen (AccuracyAwareSearch);
//   4. with train-steps: quantization-aware training of the QDQ model (QuantizationAwareTraining), before any
//      QOperator lowering. weight-bits=4 puts the weights on [-7, 7] (W4A8) in the same int8 graph.
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record QuantizePassOptions
{

    [Option("format", "QuantizeLinear/DequantizeLinear pairs ORT fuses, or QLinearConv/QLinearMatMul/... ops",
        Choices = ["qdq", "qoperator"])]
    public string Format { get; init; } = "qdq";
    [Option("calibrate", "how activation ranges are chosen", Choices = ["minmax", "percentile", "entropy", "mse"])]
    public string Calibrate { get; init; } = "minmax";
    [Option("percentile", "percentile kept by calibrate=percentile", Min = 0, Max = 100)]
    public double Percentile { get; init; } = 99.999;
    [Option("moving-average",
        "calibrate=minmax: moving average (0.01) of batch extremes instead of the global min/max")]
    public bool MovingAverage { get; init; }
    [Option("per-channel", "int8 weights with one scale per output channel (opset 13+), else one per tensor")]
    public bool PerChannel { get; init; } = true;
    [Option("activation-type", "activations uint8 asymmetric or int8 symmetric", Choices = ["uint8", "int8"])]
    public string ActivationType { get; init; } = "uint8";
    [Option("include", "only these nodes (names, output names or op types; ';'-separated); empty: all supported")]
    public string Include { get; init; } = "";
    [Option("exclude", "keep these nodes in float (names, output names or op types; ';'-separated)")]
    public string Exclude { get; init; } = "";
    [Option("reduce-range", "7-bit weights ([-63, 63]) so ORT's uint8 x int8 kernels cannot saturate; auto: on "
        + "x86 CPUs without VNNI", Choices = ["auto", "true", "false"])]
    public string ReduceRange { get; init; } = "auto";
    [Option("max-drop",
        "accuracy-aware: largest accuracy drop in points on --eval data (agreement without labels; -1: off)")]
    public double MaxDrop { get; init; } = -1;
    [Option("confidence", "accuracy-aware: judge each trial by the upper bound of its drop at this confidence "
        + "(binomial for accuracy, bootstrap otherwise; 0: the measured drop)", Min = 0, Max = 0.999)]
    public double Confidence { get; init; } = 0.9;
    [Option("max-trials", "accuracy-aware: most fallback trials", Min = 0)]
    public long MaxTrials { get; init; } = 24;
    [Option("tune-calibration",
        "accuracy-aware: try the other calibration methods, for all tensors and for the worst ops' outputs")]
    public bool TuneCalibration { get; init; } = true;
    [Option("search", "accuracy-aware: try whole op classes in float first (fastest within the budget), or one "
        + "op at a time", Choices = ["class", "op"])]
    public string Search { get; init; } = "class";
    [Option("mode", "static: calibrated QDQ/QOperator; dynamic: int8 MatMul/Gemm weights, activations quantized at "
        + "run time (no calibration data); weight-only: MatMul/Gemm weights in 4 or 8 bits per block (MatMulNBits), "
        + "activations float; auto: static with calibration data, without it dynamic for a transformer (a model "
        + "with attention blocks) and a refusal for other models; with max-drop a transformer gets dynamic int8 "
        + "when it measures within the budget",
        Choices = ["auto", "static", "dynamic", "weight-only"])]
    public string Mode { get; init; } = "auto";
    [Option("bias-correct", "remove the mean output error of the int8 weights from each Conv/Gemm bias (auto: tried "
        + "by the accuracy-aware search before ops are kept in float, kept when it lowers the drop; off without "
        + "max-drop)", Choices = ["auto", "true", "false"])]
    public string BiasCorrect { get; init; } = "auto";
    [Option("equalize", "cross-layer equalization of the float model first (auto: tried by the accuracy-aware "
        + "search, kept when it lowers the drop; off without max-drop)", Choices = ["auto", "true", "false"])]
    public string Equalize { get; init; } = "auto";
    [Option("rounding", "weights rounded to nearest (rtn), each up or down as the layer's output on the calibration "
        + "data needs (adaround), or column by column with the error spread onto the rest (gptq)",
        Choices = ["nearest", "rtn", "adaround", "gptq"])]
    public string Rounding { get; init; } = "nearest";
    [Option("bits", "mode=weight-only: bits per weight", Choices = ["4", "8"])]
    public string BitsText { get; init; } = "4";
    public long Bits => BitsText == "8" ? 8 : 4;
    [Option("block", "mode=weight-only: weights per scale along K (a power of 2, 16 to 256)", Min = 16, Max = 256)]
    public long Block { get; init; } = 32;
    [Option("symmetric", "mode=weight-only: no zero points (each block centred on 2^(bits-1))")]
    public bool Symmetric { get; init; }
    [Option("accuracy-level", "mode=weight-only: MatMulNBits accuracy_level (0: float compute; 4: A quantized to "
        + "int8 per block, the fast path on x86)", Min = 0, Max = 4)]
    public long AccuracyLevel { get; init; } = 4;
    [Option("adaround-iterations", "rounding=adaround: optimizer steps per layer", Min = 1, Max = 100000)]
    public long AdaRoundIterations { get; init; } = 500;
    [Option("adaround-rows", "rounding=adaround: input rows (conv patches) sampled per layer", Min = 16,
        Max = 1 << 24)]
    public long AdaRoundRows { get; init; } = 4096;
    [Option("weight-bits", "static: weights on a grid of this many bits, symmetric per channel (4: [-7, 7] held in "
        + "int8, W4A8; ORT runs the same int8 kernels)", Choices = ["8", "4"])]
    public string WeightBitsText { get; init; } = "8";
    [Option("train-steps", "static: quantization-aware training for this many distillation steps toward the float "
        + "model on the calibration data (weights, scales and biases learned through the quantizers; 0: off)",
        Min = 0)]
    public long TrainSteps { get; init; }
    // 3e-4: on the Fashion-MNIST VGG/ResNet with 4-bit weights, 500 steps, test-split drops 0.18/0.18 at 3e-4 and
    // 0.15/0.52 at 1e-3 (starting on the grid instead of the float weights: 0.63/0.99 at 1e-4, 0.29/0.31 at 3e-4).
    [Option("train-lr", "train-steps: peak learning rate (Adam; scales move in units of their starting value)",
        Min = 0)]
    public double TrainLr { get; init; } = 3e-4;
    [Option("transformer", "static int8 of a model with attention blocks (when include is empty): auto quantizes "
        + "MatMul/Gemm only (mask arithmetic, Softmax, LayerNorm, GELU and the residual Adds stay float) and leaves "
        + "MatMul outputs float (no requantization); false: the CNN defaults", Choices = ["auto", "false"])]
    public string Transformer { get; init; } = "auto";
    [Option("smooth", "SmoothQuant before calibrating (static int8): auto (on for transformers, alpha searched per "
        + "group of MatMuls), on (any model: on a CNN per group of Convs reading an activation, 1/s only where the "
        + "producer takes it, so no op is added), off, or an alpha in [0, 1] for every group")]
    public string Smooth { get; init; } = "auto";
    [Option("embedding-bits", "embeddings=true: bits per embedding value", Choices = ["8", "4"])]
    public string EmbeddingBits { get; init; } = "8";
    [Option("embeddings", "also store embedding tables (Gather of a float [rows, width] constant) as 8-bit blocks "
        + "(GatherBlockQuantized)")]
    public bool Embeddings { get; init; }

    /// <summary>What the emitter and the accuracy search read.</summary>
    public QuantizeOptions ToEmitter() => new()
    {
        PerChannel = PerChannel,
        ActivationType = ActivationType == "int8" ? DataType.Int8 : DataType.UInt8,
        Include = Split(Include),
        Exclude = Split(Exclude),
        WeightMax = WeightBitsText == "4" ? 7 : ReducesRange ? 63 : 127,
    };

    /// <summary>reduce-range resolved: auto follows this CPU (Int8Hardware.U8S8Saturates).</summary>
    public bool ReducesRange => ReduceRange switch
    {
        "true" => true,
        "false" => false,
        _ => Int8Hardware.U8S8Saturates,
    };

    private static HashSet<string> Split(string s) => s.Split(';', StringSplitOptions.RemoveEmptyEntries
        | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
}

public sealed class Quantize : Pass<QuantizePassOptions>
{
    public override string Name => "quantize";
    public override string Summary =>
        "post-training int8 quantization (QDQ or QOperator) from calibration data, with an optional accuracy "
        + "budget that keeps the worst ops in float";
    public override bool IsExact(QuantizePassOptions options) => false;
    public override string BudgetOption => "max-drop";
    public override DataNeeds Needs(QuantizePassOptions options) =>
        // auto decides on the model: without calibration data a transformer goes dynamic, anything else is refused
        // when the pass runs (Resolve).
        (options.Mode is "dynamic" or "auto" || options.Mode == "weight-only" && options.Rounding != "gptq"
            ? DataNeeds.None : DataNeeds.Calibration)
        | (options.MaxDrop >= 0 ? DataNeeds.Evaluation : DataNeeds.None);
    public override bool NeedsTeacher(QuantizePassOptions options) => options.TrainSteps > 0;
    public override string? WithoutCalibration(QuantizePassOptions options) => options.Mode is "static" or "auto"
        ? "or --mode dynamic (int8 MatMul/Gemm, activations quantized at run time: no calibration data)" : null;

    /// <summary>mode=auto: static with calibration data; without it dynamic when the model has attention blocks and
    /// nothing static-only was asked for (a note says so), else the missing-data refusal.</summary>
    private QuantizePassOptions Resolve(PassContext ctx, QuantizePassOptions o)
    {
        if (o.Mode != "auto") return o;
        if (ctx.Calibration is not null) return o with { Mode = "static" };
        int attention = o.Transformer == "auto" && o.Include.Length == 0 ? AttentionView.All(ctx.Model.Graph).Count : 0;
        if (attention > 0 && o.MaxDrop < 0 && o.Format == "qdq" && o.TrainSteps == 0 && o.WeightBitsText == "8")
        {
            ctx.Stats.Notes.Add($"no calibration data: dynamic int8 for this transformer ({attention} attention "
                + "blocks; give --calib for static int8, or --mode to choose)");
            return o with { Mode = "dynamic" };
        }
        throw new OnnxModelException($"pass '{Name}' needs calibration data: give --calib DIR or --calib-random N; "
            + WithoutCalibration(o));
    }

    public override void Run(PassContext ctx, QuantizePassOptions o)
    {
        var auto = o.Mode == "auto";
        o = Resolve(ctx, o);
        if (auto && o.Mode == "static" && DynamicWithinBudget(ctx, o))
        {
            if (o.Embeddings) EmbeddingQuantize.Run(ctx, o);
            return;
        }
        if (o.Mode != "static" && (o.TrainSteps > 0 || o.WeightBitsText != "8"))
            throw new OnnxModelException($"quantize{{mode={o.Mode}}}: train-steps and weight-bits apply to static "
                + "int8 only (weight-only has bits and rounding)");
        if (o.Mode is "dynamic" or "weight-only")
        {
            if (o.MaxDrop >= 0 || o.Format != "qdq")
                throw new OnnxModelException($"quantize{{mode={o.Mode}}}: max-drop and format apply to static int8 "
                    + $"only (a {o.Mode} model is validated by optimize --eval)");
            if (o.Mode == "weight-only" && (o.Block & (o.Block - 1)) != 0)
                throw new OnnxModelException($"quantize: block {o.Block} is not a power of 2 (16 to 256)");
            if (o.Mode == "dynamic") DynamicQuantize.Run(ctx, o);
            else WeightOnlyQuantize.Run(ctx, o);
        }
        else RunStatic(ctx, o);
        if (o.Embeddings) EmbeddingQuantize.Run(ctx, o);
    }

    /// <summary>mode=auto with a budget on a transformer (attention blocks, the transformer defaults asked for):
    /// dynamic int8, the faster form on every transformer measured (the Fashion ViT 1.65x against static's 1.43x,
    /// arctic-embed-xs 2.25-2.46x against 1.92-2.09x), is measured first and kept when its drop's upper bound is
    /// within max-drop (a trial and a note say so); otherwise static int8 and its search run as before.</summary>
    private static bool DynamicWithinBudget(PassContext ctx, QuantizePassOptions o)
    {
        if (o.MaxDrop < 0 || ctx.Evaluation is not { } eval || o.Format != "qdq" || o.TrainSteps > 0
            || o.WeightBitsText != "8" || o.Rounding is not ("nearest" or "rtn") || o.Transformer != "auto"
            || o.Include.Length > 0 || AttentionView.All(ctx.Model.Graph).Count == 0) return false;
        var dynamic = o with { Mode = "dynamic", MaxDrop = -1 };
        var candidate = ctx.Model.Clone();
        DynamicQuantize.Run(PassContexts.Create(candidate, null, null, null, ctx.Metric), dynamic);
        var deployed = eval.With(new Runtime.SessionSettings
        {
            Optimization = Runtime.GraphOptimization.All,
            IntraOpThreads = Environment.ProcessorCount,
        });
        var reference = Reference.Capture(deployed, ctx.Model, ctx.Metric);
        var f = reference.Measure(deployed, candidate);
        AccuracyAwareSearch.Trial(ctx, reference, 0, "dynamic", f, [], null, o.Confidence);
        var upper = reference.UpperDrop(f, o.Confidence);
        var measured = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"drop {reference.Drop(f):F2}, upper bound {upper:F2} at {o.Confidence:P0} confidence");
        if (upper > o.MaxDrop)
        {
            ctx.Stats.Notes.Add($"mode=auto: dynamic int8 tried first is over the budget ({measured}); static int8");
            return false;
        }
        DynamicQuantize.Run(ctx, dynamic);
        ctx.Stats.Notes.Add($"mode=auto: dynamic int8 is within the budget ({measured}) and kept: the faster int8 form "
            + "on transformers (mode=static for static int8 and its search)");
        return true;
    }

    /// <summary>A transformer's defaults (attention blocks, no include=): int8 MatMul/Gemm only, MatMul outputs float
    /// in QDQ; SmoothQuant first when asked or by default on a transformer.</summary>
    private static QuantizeOptions TransformerDefaults(PassContext ctx, QuantizePassOptions o, QuantizeOptions qo)
    {
        var model = ctx.Model;
        int blocks = AttentionView.All(model.Graph).Count;
        int attention = o.Transformer == "auto" && o.Include.Length == 0 ? blocks : 0;
        if (attention > 0)
        {
            qo = qo with
            {
                Include = new HashSet<string>(["MatMul", "Gemm"], StringComparer.Ordinal),
                // QOperator has no float-output int8 MatMul among its ops: QLinearMatMul requantizes.
                FloatOutputs = o.Format == "qdq" ? new HashSet<string>(["MatMul"], StringComparer.Ordinal)
                    : new HashSet<string>(),
            };
            ctx.Stats.Notes.Add($"transformer ({attention} attention blocks): int8 MatMul/Gemm only"
                + (o.Format == "qdq" ? ", MatMul outputs float" : "")
                + "; mask arithmetic, Softmax, LayerNorm, GELU and residual Adds stay float (include= quantizes "
                + "others, transformer=false gives the CNN defaults)");
        }
        if (o.Smooth != "off" && (o.Smooth != "auto" || attention > 0))
        {
            var smooth = new Smooth();
            // A transformer's groups may take an inserted Mul (a post-norm LayerNorm also feeds the residual); a CNN's
            // may not: on the PP-OCRv4 detector the inserted Muls cost more speed than their int8 error was worth.
            var so = new SmoothOptions
            {
                Alpha = o.Smooth == "on" ? "auto" : o.Smooth,
                WeightMax = qo.WeightMax,
                Insert = blocks > 0,
            };
            if (smooth.WhyNoChange(model, so) is null) smooth.Run(ctx, so);
            ShapeInference.Run(model);
        }
        return qo;
    }

    /// <summary>Static int8: calibration, the optional accuracy-aware search (equalization, bias correction, ops
    /// given back to float), emission, QAT, QOperator lowering, the report.</summary>
    private void RunStatic(PassContext ctx, QuantizePassOptions o)
    {
        var calib = ctx.RequireCalibration(Name);
        var model = ctx.Model;
        // The float model QAT distils toward: the pipeline's input (or this model before it is quantized).
        var teacher = o.TrainSteps > 0 ? Recovery.TeacherModel(ctx) : null;
        // Cheap preconditions before the (possibly long) calibration.
        UpgradeOpset.Require(ctx, Name, 13, "per-channel int8 weights");
        ShapeInference.Run(model);
        var qo = TransformerDefaults(ctx, o, o.ToEmitter());
        var factory = RangeCalibrator.Factory(o.Calibrate, o.Percentile, o.MovingAverage);
        // Accuracy-aware: every method in the same pass, so the search can choose one per tensor.
        if (o.MaxDrop >= 0 && o.TuneCalibration)
            factory = () => new EveryMethodCalibrator(o.Calibrate, o.Percentile, o.MovingAverage);
        var equalizer = new Equalize();
        // Per-channel weights: balance the activations between the layers (their weight ranges no longer matter).
        var eqOptions = new EqualizeOptions { Ranges = o.PerChannel ? "activations" : "weights" };
        bool canEqualize = equalizer.WhyNoChange(model, eqOptions) is null;
        if (o.Equalize == "true" && canEqualize) equalizer.Run(ctx, eqOptions);
        if (o.Rounding is "adaround" or "gptq") qo = WithLearnedRounding(ctx, o, qo, calib, canEqualize);
        var tensors = QdqEmitter.CalibrationTensors(model);
        var ranges = ActivationRanges.Collect(calib, model, tensors, factory, "quantize: calibration");
        ctx.Stats.Count(Counters.Quantize.TensorsCalibrated, ranges.Count);
        bool qoperator = o.Format == "qoperator";
        var fallback = new HashSet<string>(StringComparer.Ordinal);
        Dictionary<string, float[]>? corrections = null;
        Dictionary<string, float[]> Measure(Model m) => BiasCorrection.Measure(m, calib, qo).Corrections;
        if (o.MaxDrop >= 0)
        {
            if (o.Confidence is > 0 and < 0.5)
                throw new OnnxModelException("quantize{confidence}: 0 (judge the measured drop) or in [0.5, 1)");
            var eval = ctx.RequireEvaluation("quantize{max-drop=...}");
            var prep = new AccuracyAwareSearch.Preparations
            {
                MeasureCorrections = o.BiasCorrect == "false" ? null : Measure,
                AlwaysCorrect = o.BiasCorrect == "true",
                Equalized = o.Equalize != "auto" || !canEqualize || o.Rounding is "adaround" or "gptq" ? null
                    : () => EqualizedCopy(model, calib, equalizer, eqOptions, factory),
            };
            var found = AccuracyAwareSearch.Run(ctx, model, ranges, qo, qoperator, eval,
                o.MaxDrop, (int)Math.Min(o.MaxTrials, int.MaxValue), prep, o.Search == "class", o.Confidence);
            (fallback, ranges, corrections) = (found.Fallback, found.Ranges, found.Corrections);
            if (found.Equalized) equalizer.Run(ctx, eqOptions);
        }
        else if (o.BiasCorrect == "true") corrections = Measure(model);
        if (corrections is not null)
        {
            var done = BiasCorrection.Apply(model, ctx.Rewriter, corrections,
                n => QdqEmitter.Selected(n, qo, fallback));
            foreach (var d in done) ctx.Stats.Decide(d);
            ctx.Stats.Count(Counters.BiasCorrect.BiasesCorrected, done.Count);
        }
        // QAT starts from the float weights (a learned rounding starts from its own integers).
        var floats = o.TrainSteps > 0 && qo.Rounded.Count == 0 ? QuantizationAwareTraining.FloatWeights(model) : null;
        var floatWeights = FloatWeightsByKey(model);
        var result = QdqEmitter.Emit(model, ctx.Rewriter, ranges, qo, fallback);
        if (o.TrainSteps > 0)
        {
            var settings = new TrainingOptions { Shift = "auto", Steps = o.TrainSteps, Lr = o.TrainLr }.Settings([]);
            QuantizationAwareTraining.Run(ctx, "quantize: training", settings, qo.WeightMax, teacher,
                floats is null ? null : QuantizationAwareTraining.ByInteger(floats));
        }
        var weightSqnr = WeightSqnr(model, floatWeights);
        if (qoperator) QOperatorLowering.Run(ctx);
        Report(ctx, result, ranges, qo, weightSqnr);
    }

    /// <summary>The emitter options with weights rounded by a learned method (adaround, gptq) on the calibration
    /// data; equalize=auto is then not tried (says so).</summary>
    private static QuantizeOptions WithLearnedRounding(PassContext ctx, QuantizePassOptions o, QuantizeOptions qo,
        CalibrationSource calib, bool canEqualize)
    {
        var rounded = qo with
        {
            Rounded = LearnedRounding.Run(ctx.Model, calib, qo, o.Rounding, new AdaRoundSettings
            {
                Iterations = (int)o.AdaRoundIterations,
            }, (int)o.AdaRoundRows, ctx.Stats),
        };
        if (o.Equalize == "auto" && canEqualize && o.MaxDrop >= 0)
            ctx.Stats.Notes.Add($"equalize=auto is not tried with rounding={o.Rounding} (the rounding is learned "
                + "for these weights; give equalize=true to equalize first)");
        return rounded;
    }

    /// <summary>The search's equalized candidate: an equalized copy of the model and its calibrated ranges.
    /// </summary>
    private static (Model, Dictionary<string, RangeCalibrator>) EqualizedCopy(Model model, CalibrationSource calib,
        Equalize equalizer, EqualizeOptions eqOptions, Func<RangeCalibrator> factory)
    {
        var m = OnnxImporter.Parse(OnnxExporter.ToBytes(model));
        equalizer.Run(PassContexts.Create(m, calib), eqOptions);
        ShapeInference.Run(m);
        return (m, ActivationRanges.Collect(calib, m, QdqEmitter.CalibrationTensors(m), factory,
            "quantize: calibration (equalized)"));
    }

    /// <summary>Each quantizable op's float weight by the emitter's key (the weight SQNR of the report).</summary>
    private static Dictionary<string, float[]> FloatWeightsByKey(Model model) =>
        model.Graph.Nodes.Where(n => n.IsStandard && QdqEmitter.ComputeOps.Contains(n.OpType)
                && n.Outputs.Count > 0 && Rewriter.ConstantOf(n.Input(1)) is { ElementType: DataType.Float })
            .GroupBy(QdqEmitter.Key)
            .ToDictionary(x => x.Key, x => Rewriter.ConstantOf(x.First().Input(1))!.ToFloatArray());

    /// <summary>Per quantized op (by key): the SQNR of its int8 weight (behind a DequantizeLinear) against the float
    /// weight it had before emission.</summary>
    private static Dictionary<string, double> WeightSqnr(Model model, Dictionary<string, float[]> floats)
    {
        var r = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var n in model.Graph.Nodes)
        {
            if (n.Outputs.Count == 0 || !floats.TryGetValue(QdqEmitter.Key(n), out var w)
                || n.Input(1)?.Producer is not { OpType: "DequantizeLinear" } dq
                || Rewriter.ConstantOf(dq.Input(0)) is not { } q || Rewriter.ConstantOf(dq.Input(1)) is not { } s
                || q.ElementCount != w.Length) continue;
            var ints = q.ToInt64Array();
            var scales = s.ToFloatArray();
            int axis = scales.Length == 1 ? -1 : (int)dq.GetInt("axis", 1);
            if (axis < 0 && scales.Length > 1) axis += q.Dims.Length;
            long inner = axis < 0 ? ints.Length : q.Dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
            r[QdqEmitter.Key(n)] = QuantizedOp.SqnrDb(w, i =>
                ints[i] * (double)scales[axis < 0 ? 0 : (int)(i / inner % scales.Length)]);
        }
        return r;
    }

    private static void Report(PassContext ctx, QdqResult r, Dictionary<string, RangeCalibrator> ranges,
        QuantizeOptions o, Dictionary<string, double> weightSqnr)
    {
        var kind = o.ActivationType == DataType.Int8 ? RangeKind.Symmetric : RangeKind.Asymmetric;
        foreach (var (key, op, absorbed) in r.Quantized)
        {
            ctx.Stats.Count(Counters.Quantize.Quantized(op));
            var d = new QuantizedOp(key, op, "int8") { Absorbed = absorbed };
            // Layer weights sit on the symmetric weight grid; other constants (an Add's or Mul's) on uint8/int8.
            if (weightSqnr.TryGetValue(key, out var sq))
                d = d with
                {
                    Bits = op is "Conv" or "ConvTranspose" or "Gemm" or "MatMul" ? QuantizedOp.BitsOf(o.WeightMax) : 8,
                    WeightSqnrDb = sq,
                };
            if (r.Outputs.TryGetValue(key, out var t) && ranges.TryGetValue(t.Reference, out var cal))
            {
                var (lo, hi) = cal.Range(kind);
                d = d with { RangeMin = lo, RangeMax = hi };
            }
            ctx.Stats.Decide(d);
        }
        foreach (var (key, op, reason) in r.Skipped)
        {
            ctx.Stats.Count(Counters.Quantize.KeptInFloat);
            ctx.Stats.Decide(new QuantizedOp(key, op, "float") { Reason = reason });
        }
        if (!r.PerChannel
            && o.PerChannel) ctx.Stats.Notes.Add("per-channel weights need opset 13; used per-tensor scales");
        if (o.WeightMax < 127)
            ctx.Stats.Notes.Add($"7-bit weights in [-{o.WeightMax}, {o.WeightMax}] (reduce-range; this CPU: {Int8Hardware.Description})");
    }
}
