// distill: recovery training by knowledge distillation after an approximate pass (prune, cluster,
// linearize, ...): the model as the pipeline received it is the teacher, the calibration samples (no
// labels needed) the training set, and the chosen parameters move to make the student answer as the
// teacher does:
//   loss = T^2 KL(softmax(t/T) || softmax(s/T)) on the logits (loss=kl), or MSE on every output (mse), or for a
//          sentence encoder 1 - cos(mean-pooled s, mean-pooled t) over the attention mask (cosine; auto picks it for
//          a [batch, sequence, hidden] output of a model with a mask input, kl otherwise),
//          + feature-weight * MSE on named intermediate values (features=a;b, or auto: the input of the last
//          global pool, MiR's choice), + label-weight * cross-entropy when the data has labels (loss=ce: only it)
//   params = all float weights and biases, biases only, codebooks (a clustered model's shared values, the
//          assignments fixed), or initializer names
//   before: prune{macs=0.5}           -> 97.0% on held-out data
//   after:  prune{macs=0.5},distill   -> 99.4% (the pruned structure, retrained weights)
// With --eval, the student is scored every eval-every steps and the best weights are kept (the starting
// ones included); patience stops a run that no longer improves. BatchNorm should be folded first
// (canonicalize,fold-bn), so the folded convs train. keep-zeros (auto: weights at least 5% zero, as sparsify
// leaves them) holds every exactly-zero weight at zero after each step, so sparsify -> distill stays sparse (Deep
// Compression's and the lottery ticket's masked retraining). After quantize (a QDQ model) it is quantization-aware
// training: QuantizationAwareTraining trains through the quantizers and writes the int8 model back.
// Approximate: validated as optimize validates.
using OnnxOpt.GraphIR;
using OnnxOpt.Training;

namespace OnnxOpt.Passes;

public sealed record DistillOptions
{
    // Shifted views of the images by default: on the Fashion-MNIST nets pruned to half the MACs, 200 calibration
    // images, the test split gained 0.3-0.5 points (VGG 90.6 -> 90.9%, ResNet 90.1 -> 90.5% with flips as well).
    [OptionGroup]
    public TrainingOptions Training { get; init; } = new() { Shift = "auto" };
}

public sealed class Distill : Pass<DistillOptions>
{
    public override string Name => "distill";
    public override string Summary =>
        "recovery training toward the pipeline's input model (knowledge distillation on calibration data, our "
            + "autodiff)";
    public override bool IsExact(DistillOptions options) => false;
    public override DataNeeds Needs(DistillOptions options) => DataNeeds.Calibration;
    public override bool NeedsTeacher(DistillOptions options) => true;

    public override void Run(PassContext ctx, DistillOptions o)
    {
        var t = o.Training;
        var teacher = Recovery.TeacherModel(ctx);
        var settings = t.Settings(Features(ctx, teacher, t.Features));
        if (QuantizationAwareTraining.Applies(ctx.Model))
        {
            // After quantize: train through the quantizers and write the QDQ model back (QAT).
            if (t.Params != "all")
                throw new OnnxModelException($"distill: params={t.Params} on a quantized (QDQ) model; it trains "
                    + "params=all (weights on their int8 grid, scales, biases)");
            QuantizationAwareTraining.Run(ctx, Name, settings, null, teacher, keepZeros: t.KeepZeros);
            return;
        }
        var parameters = ParameterSelection.Select(ctx.Model, t.Params, keepZeros: t.KeepZeros);
        if (parameters.Count == 0)
            throw new OnnxModelException($"distill: params={t.Params} selects no float initializer of the model");
        Recovery.ReportHeldZeros(ctx, parameters);
        Recovery.Train(ctx, Name, parameters, settings, teacher);
    }

    /// <summary>The feature names: ';'-separated, or auto = the input of the last global pool (when the teacher
    /// has the same value and shape; the teacher, the pipeline's input, is read, never changed).</summary>
    internal static IReadOnlyList<string> Features(PassContext ctx, Model teacher, string spec)
    {
        if (spec != "auto") return spec.Split(';',
            StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var pool = ctx.Model.Graph.Nodes.LastOrDefault(n => n.OpType is "GlobalAveragePool" or "GlobalMaxPool"
            || n.OpType == "ReduceMean" && n.Input(0)?.Shape?.Rank == 4);
        var name = pool?.Input(0)?.Name;
        if (name is null || teacher.Graph.Find(name) is null)
        {
            ctx.Stats.Notes.Add("features=auto: no global pool input shared with the teacher; logits only");
            return [];
        }
        ShapeInference.Run(ctx.Model);
        var inferred = teacher.Clone();
        ShapeInference.Run(inferred);
        var (ss, ts) = (ctx.Model.Graph.Find(name)!.Shape, inferred.Graph.Find(name)!.Shape);
        if (ss is null || ts is null || ss.Rank != ts.Rank
            || ss.Dims.Skip(1).Zip(ts.Dims.Skip(1)).Any(p => p.First != p.Second))
        {
            ctx.Stats.Notes.Add($"features=auto: '{name}' has another shape than the teacher's (pruned?); logits only");
            return [];
        }
        return [name];
    }
}
