// What one training run does: how long, on what batches, toward what, with which optimizer. The distill pass,
// Layer Folding's train mode and cluster's trained centroids all fill one of these from their pass options.
namespace OnnxOpt.Training;

public enum LossKind
{
    /// <summary>Cosine for a [batch, sequence, hidden] first output of a model with an attention mask input, else
    /// Kl (the Trainer decides).</summary>
    Auto,
    /// <summary>T^2 * KL(softmax(t/T) || softmax(s/T)) on the first output (logits), Hinton's distillation.</summary>
    Kl,
    /// <summary>Mean squared error against the teacher on every graph output (regression, detection maps).</summary>
    Mse,
    /// <summary>Cross-entropy with the data's labels on the first output (no teacher term).</summary>
    CrossEntropy,
    /// <summary>1 - cosine of the first output's mean over the tokens (a [batch, sequence, hidden] encoder output,
    /// masked by the attention mask input when the model has one), per sample: a sentence embedding's loss.</summary>
    Cosine,
    /// <summary>Only the feature terms (MSE on named intermediate values).</summary>
    None,
}

public enum OptimizerKind { Adam, AdamW, Sgd, Lamb }

public enum ScheduleKind { Constant, Cosine, Step }

public sealed record TrainSettings
{
    public int Steps { get; init; } = 1000;
    /// <summary>Stop at this time (UTC) with the best weights so far, whatever Steps says (compress --time-budget).
    /// </summary>
    public DateTime? Deadline { get; init; }
    /// <summary>Samples per step; 0: <see cref="Trainer.AutoBatch"/> (64, or about 2,048 tokens of a token model).
    /// </summary>
    public int Batch { get; init; }
    public double LearningRate { get; init; } = 1e-3;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    /// <summary>SGD momentum, or Adam's beta1.</summary>
    public double Momentum { get; init; } = 0.9;
    public double WeightDecay { get; init; }
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;
    /// <summary>Linear warm-up from 0 over this many steps.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Schedule=step: the learning rate is multiplied by StepGamma at each of these fractions of
    /// Steps.</summary>
    public IReadOnlyList<double> StepAt { get; init; } = [0.4, 0.8];
    public double StepGamma { get; init; } = 0.1;
    /// <summary>Clip the global gradient norm to this (0: no clipping).</summary>
    public double ClipNorm { get; init; }
    public LossKind Loss { get; init; } = LossKind.Kl;
    public double Temperature { get; init; } = 4;
    /// <summary>Weight of the cross-entropy term added to Kl/Mse when labels exist (0: labels unused).</summary>
    public double LabelWeight { get; init; }
    /// <summary>Intermediate values whose MSE against the teacher's values of the same name is added.</summary>
    public IReadOnlyList<string> Features { get; init; } = [];
    public double FeatureWeight { get; init; } = 1;
    /// <summary>Features of a pruned student: the teacher's value keeps only these channels on Axis (indices into
    /// the teacher's channels) before the MSE. A feature not named here is compared whole.</summary>
    public IReadOnlyDictionary<string, (int Axis, int[] Kept)> FeatureChannels { get; init; } =
        new Dictionary<string, (int Axis, int[] Kept)>();
    /// <summary>Each feature's MSE divided by the mean square of the teacher's value on the batch, so features of
    /// different scales weigh alike (a relative error).</summary>
    public bool NormalizeFeatures { get; init; }
    /// <summary>Random horizontal flips of image inputs ([N,C,H,W]).</summary>
    public bool Flip { get; init; }
    /// <summary>Random shifts of image inputs by up to this many pixels (zero fill); AutoShift: 1/14 of each image
    /// input's smaller side (at least 1).</summary>
    public int Shift { get; init; }
    /// <summary>Shift's "auto".</summary>
    public const int AutoShift = -1;
    /// <summary>Mixup of float inputs with another sample of the batch, lam ~ Beta(Mixup, Mixup) (0: off).</summary>
    public double Mixup { get; init; }
    /// <summary>Token models: each token (mask 1, not the first) is replaced, with this probability, by a token drawn
    /// from the batch's (0: off); the teacher answers the changed sentence.</summary>
    public double TokenSwap { get; init; }
    /// <summary>Evaluate on the held-out set every this many steps (0: only at the end).</summary>
    public int EvalEvery { get; init; } = 100;
    /// <summary>Stop after this many evaluations without improvement (0: never stop early).</summary>
    public int Patience { get; init; }
    public ulong Seed { get; init; } = 1;
    /// <summary>Teacher outputs are cached for the training set when they take at most this many bytes.</summary>
    public long CacheBytes { get; init; } = 1L << 30;

    public void Check()
    {
        if (Steps < 0) throw new OnnxOpt.GraphIR.OnnxModelException($"steps = {Steps}: give 0 or more");
        if (Batch < 0) throw new OnnxOpt.GraphIR.OnnxModelException($"batch = {Batch}: give 1 or more (0: auto)");
        if (!(LearningRate > 0)) throw new OnnxOpt.GraphIR.OnnxModelException($"lr = {LearningRate}: give a positive "
            + $"learning rate");
        if (Temperature <= 0) throw new OnnxOpt.GraphIR.OnnxModelException($"temperature = {Temperature}: give a "
            + $"positive value");
        if (Shift < AutoShift) throw new OnnxOpt.GraphIR.OnnxModelException($"shift = {Shift}: give 0 or more pixels");
        if (!(Mixup >= 0)) throw new OnnxOpt.GraphIR.OnnxModelException($"mixup = {Mixup}: give 0 (off) or a "
            + "positive Beta parameter");
    }
}
