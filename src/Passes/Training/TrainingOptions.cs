// The training options, declared once for every pass that trains (distill; linearize mode=train and
// cluster train-steps take theirs from here with their own defaults), and their reading into TrainSettings.
using OnnxOpt.Training;

namespace OnnxOpt.Passes;

internal static class TrainingOptions
{
    public static PassOption[] Declare(long steps, double lr, string prefix = "", double mixup = 0) =>
    [
        PassOption.Int(prefix + "steps", steps, "training steps (minibatches)"),
        PassOption.Int("batch", 64, "samples per step"),
        PassOption.Double(prefix + "lr", lr, "peak learning rate"),
        PassOption.Enum("optimizer", "adam", ["adam", "adamw", "sgd"],
            "Adam, AdamW (decoupled decay) or SGD with momentum"),
        PassOption.Double("momentum", 0.9, "SGD momentum, or Adam's beta1"),
        PassOption.Double("weight-decay", 0, "weight decay of the weights (not biases, slopes or codebooks)"),
        PassOption.Enum("schedule", "cosine", ["cosine", "step", "constant"],
            "learning-rate schedule after warm-up: cosine to 0, x0.1 at 40% and 80%, or constant"),
        PassOption.Int("warmup", 0, "linear learning-rate warm-up steps"),
        PassOption.Double("clip-norm", 0, "clip the global gradient norm to this (0: off)"),
        PassOption.Enum("loss", "kl", ["kl", "mse", "ce", "none"],
            "kl: T^2 KL on the first output (logits); mse: every output; ce: labels only; none: features only"),
        PassOption.Double("temperature", 4, "distillation temperature T (loss=kl)"),
        PassOption.Double("label-weight", 0,
            "add this times the cross-entropy with the data's labels (0: labels unused)"),
        PassOption.String("features", "",
            "intermediate values also matched by MSE (';'-separated, or auto: the input of "
            + "the last global pool)"),
        PassOption.Double("feature-weight", 1, "weight of each feature MSE"),
        PassOption.String("params", "all", "what trains: all, biases, codebooks, or initializer names (';'-separated)"),
        PassOption.Bool("flip", false, "augment image inputs by random horizontal flips"),
        PassOption.Int("shift", 0, "augment image inputs by random shifts of up to this many pixels"),
        PassOption.Double("mixup", mixup, "mix each sample with another of its batch, lam ~ Beta(mixup, mixup); the "
            + "teacher answers the mix (0: off)"),
        PassOption.Int("eval-every", 100, "with --eval: score the student every this many steps and keep the best "
            + "(0: train to the end, no selection)"),
        PassOption.Int("patience", 0, "with --eval: stop after this many scores without improvement (0: never)"),
        PassOption.Int("seed", 1, "seed of the batch order and augmentations"),
    ];

    public static TrainSettings Settings(PassOptions o, IReadOnlyList<string> features, string prefix = "") => new()
    {
        Steps = checked((int)o.Int(prefix + "steps")),
        Batch = checked((int)o.Int("batch")),
        LearningRate = o.Double(prefix + "lr"),
        Optimizer = o.Enum("optimizer") switch
        {
            "adamw" => OptimizerKind.AdamW,
            "sgd" => OptimizerKind.Sgd,
            _ =>
            OptimizerKind.Adam
        },
        Momentum = o.Double("momentum"),
        WeightDecay = o.Double("weight-decay"),
        Schedule = o.Enum("schedule") switch
        {
            "step" => ScheduleKind.Step,
            "constant" => ScheduleKind.Constant,
            _ =>
            ScheduleKind.Cosine
        },
        WarmupSteps = checked((int)o.Int("warmup")),
        ClipNorm = o.Double("clip-norm"),
        Loss = o.Enum("loss") switch
        {
            "mse" => LossKind.Mse,
            "ce" => LossKind.CrossEntropy,
            "none" => LossKind.None,
            _ => LossKind.Kl
        },
        Temperature = o.Double("temperature"),
        LabelWeight = o.Double("label-weight"),
        Features = features,
        FeatureWeight = o.Double("feature-weight"),
        Flip = o.Bool("flip"),
        Shift = checked((int)o.Int("shift")),
        Mixup = o.Double("mixup"),
        EvalEvery = checked((int)o.Int("eval-every")),
        Patience = checked((int)o.Int("patience")),
        Seed = (ulong)o.Int("seed"),
    };
}
