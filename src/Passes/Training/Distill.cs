// distill: recovery training by knowledge distillation after an approximate pass (prune, cluster,
// linearize, ...): the model as the pipeline received it is the teacher, the calibration samples (no
// labels needed) the training set, and the chosen parameters move to make the student answer as the
// teacher does:
//   loss = T^2 KL(softmax(t/T) || softmax(s/T)) on the logits (loss=kl), or MSE on every output (mse), or for a
//          sentence encoder 1 - cos(mean-pooled s, mean-pooled t) over the attention mask (cosine; auto picks it for
//          a [batch, sequence, hidden] output of a model with a mask input, kl otherwise),
//          + feature-weight * MSE on named intermediate values (features=a;b, or auto: the input of the last
//          global pool, MiR's choice; blocks: the input of every linear layer, each MSE divided by the teacher value's
//          mean square, on the channels a pruned student kept: ChannelLineage), + label-weight * cross-entropy when
//          the data has labels (loss=ce: only it)
//   block-steps=k first reconstructs block by block (BRECQ, Li et al. ICLR 2021; Cross Distillation, Bai et al. AAAI
//          2020): for each block value f_b in graph order, only the ops computing f_b and no earlier one train, k steps
//          on ||f_b(student) - f_b(teacher)[kept]||^2 / ||f_b(teacher)||^2 with the student's own block input
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
    [Option("block-steps", "block-wise reconstruction first (BRECQ, Cross Distillation): the layers between two "
        + "consecutive features=blocks values train alone this many steps to match the teacher's value at their end, "
        + "block by block in order, before the end-to-end run (0: off)", Min = 0)]
    public long BlockSteps { get; init; }
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
        var settings = Settings(ctx, teacher, t);
        if (QuantizationAwareTraining.Applies(ctx.Model))
        {
            // After quantize: train through the quantizers and write the QDQ model back (QAT).
            if (t.Params != "all")
                throw new OnnxModelException($"distill: params={t.Params} on a quantized (QDQ) model; it trains "
                    + "params=all (weights on their int8 grid, scales, biases)");
            QuantizationAwareTraining.Run(ctx, Name, settings, null, teacher, keepZeros: t.KeepZeros);
            return;
        }
        if (o.BlockSteps > 0) ReconstructBlocks(ctx, teacher, o, t.Features == "blocks" ? settings
            : Blocks(ctx, teacher, t));
        var parameters = ParameterSelection.Select(ctx.Model, t.Params, keepZeros: t.KeepZeros);
        if (parameters.Count == 0)
            throw new OnnxModelException($"distill: params={t.Params} selects no float initializer of the model");
        Recovery.ReportHeldZeros(ctx, parameters);
        Recovery.Train(ctx, Name, parameters, settings, teacher);
    }

    /// <summary>Block-wise reconstruction: for each feature in graph order, the trainable initializers of the ops
    /// that compute it and no earlier feature train alone (loss = the feature's relative MSE on its kept channels,
    /// the student's own input to the block: what the earlier blocks now give).</summary>
    private void ReconstructBlocks(PassContext ctx, Model teacher, DistillOptions o, TrainSettings blocks)
    {
        var g = ctx.Model.Graph;
        var earlier = new HashSet<Node>();
        int trained = 0;
        foreach (var feature in blocks.Features)
        {
            var mine = Ancestors(g.Find(feature)!).Where(n => !earlier.Contains(n)).ToHashSet();
            var inBlock = mine.SelectMany(n => n.Inputs).Where(v => v?.Initializer is not null)
                .Select(v => v!.Name).ToHashSet(StringComparer.Ordinal);
            earlier.UnionWith(mine);
            var outside = g.Initializers.Select(v => v.Name).Where(n => !inBlock.Contains(n))
                .ToHashSet(StringComparer.Ordinal);
            var parameters = ParameterSelection.Select(ctx.Model, o.Training.Params, outside,
                keepZeros: o.Training.KeepZeros);
            if (parameters.Count == 0) continue;
            var s = blocks with
            {
                Steps = checked((int)o.BlockSteps),
                Loss = LossKind.None,
                Features = [feature],
                EvalEvery = 0,
            };
            Recovery.Train(ctx, $"{Name} block '{feature}'", parameters, s, teacher);
            trained++;
        }
        ctx.Stats.Count(Counters.Training.BlocksReconstructed, trained);
    }

    private static HashSet<Node> Ancestors(Value v)
    {
        var seen = new HashSet<Node>();
        var stack = new Stack<Value>();
        stack.Push(v);
        while (stack.Count > 0)
            if (stack.Pop().Producer is { } p && seen.Add(p))
                foreach (var x in p.Inputs) if (x is not null) stack.Push(x);
        return seen;
    }

    /// <summary>features=blocks: what every linear layer reads (the input of each Conv, Gemm and MatMul whose input
    /// is a feature map, and of every global pool), matched on the channels the student kept (the pruning
    /// lineage), each MSE relative to the teacher value's mean square; values the teacher lacks or whose shapes do not
    /// line up are left out (counted).</summary>
    internal static TrainSettings Blocks(PassContext ctx, Model teacher, TrainingOptions options)
    {
        ShapeInference.Run(ctx.Model);
        var inferred = teacher.Clone();
        ShapeInference.Run(inferred);
        var g = ctx.Model.Graph;
        var candidates = g.Nodes.Where(n => n.OpType is "Conv" or "ConvTranspose" or "Gemm" or "MatMul"
                or "GlobalAveragePool" or "GlobalMaxPool")
            .Select(n => n.Input(0)).Where(v => v is not null && !v.IsInitializer && v.Producer is not null
                && v.ElementType.IsFloatingPoint())
            .Select(v => v!.Name).Distinct().ToList();
        var features = new List<string>();
        var maps = new Dictionary<string, (int Axis, int[] Kept)>(StringComparer.Ordinal);
        int skipped = 0;
        foreach (var name in candidates)
        {
            var (ss, ts) = (g.Find(name)!.Shape, inferred.Graph.Find(name)?.Shape);
            if (ss is null || ts is null || ss.Rank != ts.Rank || ss.Rank < 2) { skipped++; continue; }
            var dims = ts.Dims.ToArray();
            var kept = ctx.Lineage.Of(name);
            if (kept is not null) dims[kept.Axis] = Dim.Of(kept.Kept.Length);
            if (ss.Dims.Skip(1).Zip(dims.Skip(1)).Any(p => p.First != p.Second)) { skipped++; continue; }
            features.Add(name);
            if (kept is not null) maps[name] = (kept.Axis, kept.Kept);
        }
        ctx.Stats.Count(Counters.Training.FeaturesMatched, features.Count);
        ctx.Stats.Count(Counters.Training.FeaturesOnKeptChannels, maps.Count);
        if (skipped > 0) ctx.Stats.Notes.Add($"features=blocks: {skipped} layer inputs left out (not in the teacher, "
            + "or shapes the lineage does not explain)");
        if (features.Count == 0)
            throw new OnnxModelException("distill: features=blocks finds no layer input shared with the teacher");
        return options.Settings(features) with { FeatureChannels = maps, NormalizeFeatures = true };
    }

    /// <summary>The trainer's settings with the features resolved: blocks (the values the lineage explains), auto,
    /// or names.</summary>
    internal static TrainSettings Settings(PassContext ctx, Model teacher, TrainingOptions t) =>
        t.Features == "blocks" ? Blocks(ctx, teacher, t) : t.Settings(Features(ctx, teacher, t.Features));

    /// <summary>The feature names: ';'-separated, or auto = the input of the last global pool (when the teacher
    /// has the same value and shape; the teacher, the pipeline's input, is read, never changed).</summary>
    private static string[] Features(PassContext ctx, Model teacher, string spec)
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
