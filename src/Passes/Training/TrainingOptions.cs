// The training options, declared once for every pass that trains (distill, linearize mode=train): an option
// group ([OptionGroup] on the pass's options record) whose defaults the pass's initializer may change, and its
// reading into the trainer's TrainSettings. cluster's centroid training takes only train-steps and train-lr.
using OnnxOpt.Training;

namespace OnnxOpt.Passes;

public sealed record TrainingOptions
{
    [Option("steps", "training steps (minibatches)", Min = 0)]
    public long Steps { get; init; } = 1000;
    [Option("batch", "samples per step; 0: auto, 64 samples, or for a token model as many sentences as make about "
        + "2,048 tokens (8 to 64: 64 at sequence 32, 16 at 128)", Min = 0)]
    public long Batch { get; init; }
    [Option("lr", "peak learning rate", Min = 0)]
    public double Lr { get; init; } = 1e-3;
    [Option("optimizer", "Adam, AdamW (decoupled decay), SGD with momentum, or LAMB (AdamW's step scaled per tensor "
        + "to lr x the tensor's norm: for nets whose folded weights differ by orders of magnitude in scale)",
        Choices = ["adam", "adamw", "sgd", "lamb"])]
    public string Optimizer { get; init; } = "adam";
    [Option("momentum", "SGD momentum, or Adam's beta1", Min = 0, Max = 1)]
    public double Momentum { get; init; } = 0.9;
    [Option("weight-decay", "weight decay of the weights (not biases, slopes or codebooks)", Min = 0)]
    public double WeightDecay { get; init; }
    [Option("schedule", "learning-rate schedule after warm-up: cosine to 0, x0.1 at 40% and 80%, or constant",
        Choices = ["cosine", "step", "constant"])]
    public string Schedule { get; init; } = "cosine";
    [Option("warmup", "linear learning-rate warm-up steps", Min = 0)]
    public long Warmup { get; init; }
    [Option("clip-norm", "clip the global gradient norm to this (0: off)", Min = 0)]
    public double ClipNorm { get; init; }
    [Option("loss", "kl: T^2 KL on the first output (logits); mse: every output; cosine: 1 - cosine of the first "
        + "output's mean over the attention mask (sentence encoders); ce: labels only; none: features only; auto: "
        + "cosine for a [batch, sequence, hidden] output of a model with an attention mask input, else kl",
        Choices = ["auto", "kl", "mse", "cosine", "ce", "none"])]
    public string Loss { get; init; } = "auto";
    [Option("temperature", "distillation temperature T (loss=kl)", Min = 0)]
    public double Temperature { get; init; } = 4;
    [Option("label-weight", "add this times the cross-entropy with the data's labels (0: labels unused)", Min = 0)]
    public double LabelWeight { get; init; }
    [Option("features", "intermediate values also matched by MSE (';'-separated, or auto: the input of the last "
        + "global pool; blocks: the input of every linear layer and global pool, on the channels a pruned student "
        + "kept, each MSE relative to the teacher value's mean square)")]
    public string Features { get; init; } = "";
    [Option("feature-weight", "weight of each feature MSE", Min = 0)]
    public double FeatureWeight { get; init; } = 1;
    [Option("params", "what trains: all, biases, codebooks, or initializer names (';'-separated)")]
    public string Params { get; init; } = "all";
    [Option("keep-zeros", "weights that are exactly zero stay zero (the mask survives training); auto: in each weight "
        + "tensor at least 5% zero, as a sparsified model's", Choices = ["auto", "true", "false"])]
    public string KeepZeros { get; init; } = "auto";
    [Option("flip", "augment image inputs by random horizontal flips")]
    public bool Flip { get; init; }
    [Option("shift", "augment image inputs by random shifts of up to this many pixels (auto: 1/14 of the image's "
        + "smaller side, 2 pixels at 28x28; distill's default)")]
    public string Shift { get; init; } = "0";
    [Option("mixup", "mix each sample with another of its batch, lam ~ Beta(mixup, mixup); the teacher answers the "
        + "mix (0: off)", Min = 0)]
    public double Mixup { get; init; } = 0.4;
    [Option("token-swap", "token models: replace each token (attention mask 1, not the first) with this "
        + "probability by another token of the batch; the teacher answers the changed sentence (0: off; models "
        + "without a token-id input are not affected)", Min = 0, Max = 1)]
    public double TokenSwap { get; init; } = 0.15;
    [Option("eval-every", "with --eval: score the student every this many steps and keep the best (0: train to "
        + "the end, no selection)", Min = 0)]
    public long EvalEvery { get; init; } = 100;
    [Option("patience", "with --eval: stop after this many scores without improvement (0: never)", Min = 0)]
    public long Patience { get; init; }
    [Option("seed", "seed of the batch order and augmentations")]
    public long Seed { get; init; } = 1;

    /// <summary>The trainer's settings, with the feature values resolved by the caller.</summary>
    public TrainSettings Settings(IReadOnlyList<string> features) => new()
    {
        Steps = checked((int)Steps),
        Batch = checked((int)Batch),
        LearningRate = Lr,
        Optimizer = Optimizer switch
        {
            "adamw" => OptimizerKind.AdamW,
            "lamb" => OptimizerKind.Lamb,
            "sgd" => OptimizerKind.Sgd,
            _ => OptimizerKind.Adam,
        },
        Momentum = Momentum,
        WeightDecay = WeightDecay,
        Schedule = Schedule switch
        {
            "step" => ScheduleKind.Step,
            "constant" => ScheduleKind.Constant,
            _ => ScheduleKind.Cosine,
        },
        WarmupSteps = checked((int)Warmup),
        ClipNorm = ClipNorm,
        Loss = Loss switch
        {
            "mse" => LossKind.Mse,
            "cosine" => LossKind.Cosine,
            "ce" => LossKind.CrossEntropy,
            "none" => LossKind.None,
            "kl" => LossKind.Kl,
            _ => LossKind.Auto,
        },
        Temperature = Temperature,
        LabelWeight = LabelWeight,
        Features = features,
        FeatureWeight = FeatureWeight,
        Flip = Flip,
        Shift = Shift == "auto" ? TrainSettings.AutoShift : int.TryParse(Shift, System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out var px) ? px
            : throw new OnnxOpt.GraphIR.OnnxModelException($"shift={Shift}: give a number of pixels (0 or more) or "
                + "auto"),
        Mixup = Mixup,
        TokenSwap = TokenSwap,
        EvalEvery = checked((int)EvalEvery),
        Patience = checked((int)Patience),
        Seed = (ulong)Seed,
    };
}
