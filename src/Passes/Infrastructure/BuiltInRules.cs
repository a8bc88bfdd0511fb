// onnxopt's own rewrite rules, by the pass that runs them, for the core's RuleRegistry. fold-conv's rules are
// made per run (they carry its options and cost-model session); they are listed here as made with the defaults.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class BuiltInRules
{
    public static RuleEntry[] All =>
    [
        .. NoOpRule.All.Select(r => new RuleEntry(r, "canonicalize")),
        new(new ConstantToInitializerRule(), "canonicalize"),
        new(new StaticShapeRule(), "canonicalize"),
        new(new StaticShapeElementsRule(), "canonicalize"),
        new(new ReshapeTargetRule(), "canonicalize"),
        new(new FoldBatchNormRule(), "fold-bn"),
        new(new FuseBiasRule(), "fuse-bias"),
        new(new ScaleIntoLinearRule(), "fold-affine"),
        new(new AffineIntoNextLinearRule(), "fold-affine"),
        new(new LayerNormFusion(), "fuse"),
        new(new GeluFusion(), "fuse"),
        new(new HardSwishFusion(), "fuse"),
        new(new SoftmaxGuard(), "fuse"),
        .. FoldConv.Rules(new PassContext(new Model()), new FoldConvOptions())
            .Select(r => new RuleEntry(r, "fold-conv")),
        new(new QOperatorLoweringRule(), "quantize"),
        .. UpgradeOpset.Adapters.Select(r => new RuleEntry(r, "upgrade-opset")),
    ];
}
