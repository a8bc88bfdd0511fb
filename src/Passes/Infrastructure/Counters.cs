// Every counter a pass reports, named once. A pass counts with a constant (ctx.Stats.Count(Counters.Prune
// .HeadsRemoved, n)) and a test reads the same constant (Counter(runs, Counters.Prune.HeadsRemoved)), so the
// prose a report prints can change in one place without a test pinning it. A counter's Text is what the
// summary, the JSON report and the HTML report print; counters with a part that varies (the op quantized,
// the reason a fold was refused) are functions of that part.
//   before: ctx.Stats.Count("heads removed", n);  Assert.Equal(4, Counter(runs, "heads removed"));
//   after:  ctx.Stats.Count(Counters.Prune.HeadsRemoved, n);
//           Assert.Equal(4, Counter(runs, Counters.Prune.HeadsRemoved));
namespace OnnxOpt.Passes;

public static class Counters
{
    public static class Canonicalize
    {
        public static readonly CounterKey NoOpsRemoved = new("no-ops removed");
        public static readonly CounterKey ConstantsToInitializers = new("constants to initializers");
        public static readonly CounterKey NodesFolded = new("nodes folded");
        public static readonly CounterKey ShapesResolved = new("shape computations resolved");
        public static readonly CounterKey DeadNodesRemoved = new("dead nodes removed");
        public static readonly CounterKey UnusedInitializersRemoved = new("unused initializers removed");
        public static readonly CounterKey Iterations = new("iterations");
        public static readonly CounterKey Converged = new("converged");
    }

    public static class Strip
    {
        public static readonly CounterKey DocStrings = new("doc strings");
        public static readonly CounterKey ValueInfos = new("value infos");
        public static readonly CounterKey InitializersMerged = new("initializers merged");
        public static readonly CounterKey ValuesRenamed = new("values renamed");
        public static readonly CounterKey NodeNamesRemoved = new("node names removed");
    }

    public static class FixDims
    {
        public static readonly CounterKey TypesSpecialized = new("types specialized");
        public static readonly CounterKey ReshapeDimsKeptAsZero = new("reshape dims kept as 0");
    }

    public static class FoldBatchNorm
    {
        public static readonly CounterKey IntoNextConv = new("folded into next Conv");
        public static readonly CounterKey StandaloneToMulAdd = new("standalone BN to Mul+Add");
        public static CounterKey Into(string op) => new($"folded into {op}");
        public static CounterKey Skipped(string why) => new("skipped: " + why);
    }

    public static class FoldAffine
    {
        public static CounterKey ScalesInto(string op) => new($"scales folded into {op}");
        public static CounterKey IntoNext(bool shift, string op) =>
            new($"{(shift ? "shifts" : "scales")} folded into the next {op}");
    }

    public static class FuseBias
    {
        public static CounterKey Into(string op) => new($"fused into {op}");
    }

    public static class Fuse
    {
        public static readonly CounterKey LayerNorms = new("layernorms fused");
        public static readonly CounterKey Gelus = new("gelus fused");
        public static readonly CounterKey HardSwishes = new("hard-swishes fused");
        public static readonly CounterKey SoftmaxGuards = new("masked Softmaxes guarded from denormals");
    }

    public static class Linearize
    {
        public static readonly CounterKey NotEligible = new("not eligible");
        public static readonly CounterKey Candidates = new("candidates");
        public static readonly CounterKey Linearized = new("linearized");
        public static readonly CounterKey Exactly = new("linearized exactly");
    }

    public static class FoldConv
    {
        public static readonly CounterKey ConvConvExact = new("conv-conv folded (exact)");
        public static readonly CounterKey ConvConvBiasMap = new("conv-conv folded (exact, border bias map)");
        public static readonly CounterKey ConvConvApproximate = new("conv-conv folded (approximate border)");
        public static readonly CounterKey FirstOfPayingChain = new("folded as first step of a paying chain");
        public static readonly CounterKey Residual = new("residual folded (Dirac)");
        public static readonly CounterKey GemmGemm = new("gemm-gemm folded");
        public static readonly CounterKey MatMulMatMul = new("matmul-matmul folded");
        public static readonly CounterKey DoesNotPay = new("refused: does not pay");
        /// <summary>A matrix fold of the given kind ("gemm-gemm", "matmul-matmul").</summary>
        public static CounterKey Folded(string kind) => new(kind + " folded");
        /// <summary>A fold refused for one of FoldConv.Refusals.</summary>
        public static CounterKey Refused(string reason) => new("refused: " + reason);
    }

    public static class Sparsify
    {
        public static readonly CounterKey WeightsZeroed = new("weights zeroed");
        public static readonly CounterKey Layers = new("layers");
        public static readonly CounterKey LayersCollapsed = new("layers collapsed");
    }

    public static class Prune
    {
        public static readonly CounterKey Groups = new("groups");
        public static readonly CounterKey GroupsNotPrunable = new("groups not prunable");
        public static readonly CounterKey GroupsPruned = new("groups pruned");
        public static readonly CounterKey ChannelsRemoved = new("channels removed");
        public static readonly CounterKey BiasesRepaired = new("biases repaired");
        public static readonly CounterKey LayersRefitted = new("layers refitted");
        public static readonly CounterKey Blocks = new("blocks");
        public static readonly CounterKey BlocksDropped = new("blocks dropped");
        public static readonly CounterKey AttentionBlocks = new("attention blocks");
        public static readonly CounterKey AttentionBlocksPruned = new("attention blocks pruned");
        public static readonly CounterKey HeadsRemoved = new("heads removed");
        public static readonly CounterKey NotFaster = new("refused: not faster");
    }

    public static class Equalize
    {
        public static readonly CounterKey PairsEqualized = new("pairs equalized");
        public static readonly CounterKey PairsRefused = new("pairs refused");
        public static readonly CounterKey Sweeps = new("sweeps");
        public static readonly CounterKey ChannelsAbsorbed = new("channels absorbed");
    }

    public static class Smooth
    {
        public static readonly CounterKey GroupsSmoothed = new("groups smoothed");
        public static readonly CounterKey GroupsLeft = new("groups left");
    }

    public static class BiasCorrect
    {
        public static readonly CounterKey BiasesCorrected = new("biases corrected");
        public static readonly CounterKey LayersLeft = new("layers left");
    }

    public static class Quantize
    {
        public static readonly CounterKey TensorsCalibrated = new("tensors calibrated");
        public static readonly CounterKey KeptInFloat = new("kept in float");
        public static readonly CounterKey AccuracyTrials = new("accuracy trials");
        public static readonly CounterKey BudgetNotMet = new("accuracy budget not met");
        public static readonly CounterKey EmbeddingTables = new("embedding tables quantized");
        public static readonly CounterKey Int8WeightsTrained = new("int8 weights trained");
        public static readonly CounterKey ActivationScalesTrained = new("activation scales trained");
        /// <summary>An op quantized to int8 (static QDQ or dynamic).</summary>
        public static CounterKey Quantized(string op) => new($"quantized {op}");
        /// <summary>An op whose weights are stored in <paramref name="bits"/> (weight-only).</summary>
        public static CounterKey WeightOnly(int bits, string op) => new($"int{bits} {op}");
        /// <summary>A QDQ group lowered to a QOperator op.</summary>
        public static CounterKey Lowered(string op, string to) => new($"lowered {op} to {to}");
        /// <summary>Layers whose weights were rounded by a learned method (adaround).</summary>
        public static CounterKey RoundedBy(string method) => new($"layers rounded by {method}");
    }

    public static class Cluster
    {
        public static readonly CounterKey WeightsClustered = new("weights clustered");
    }

    public static class RoundFp16
    {
        public static readonly CounterKey TensorsRounded = new("tensors rounded");
        public static readonly CounterKey ValuesChanged = new("values changed");
    }

    /// <summary>Training passes (distill, and the training steps of quantize, cluster, linearize).</summary>
    public static class Training
    {
        public static readonly CounterKey Steps = new("training steps");
        public static readonly CounterKey WeightsHeldAtZero = new("weights held at zero");
        public static readonly CounterKey FeaturesMatched = new("features matched");
        public static readonly CounterKey FeaturesOnKeptChannels = new("features on kept channels");
        public static readonly CounterKey BlocksReconstructed = new("blocks reconstructed");
    }

    public static class Opset
    {
        public static CounterKey AxisKept(string op) => new($"{op} axis kept");
        public static CounterKey Wrapped(string op) => new($"{op} wrapped in Flatten/Reshape");
        public static CounterKey Upgraded(string op, long version) => new($"{op} -> opset {version}");
    }
}
