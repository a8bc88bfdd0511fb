// onnxopt's own passes, in the order `onnxopt passes` lists them. The core's PassRegistry (OnnxOpt.Rewrite,
// which does not reference this library) starts from this list when this library is deployed beside it.
namespace OnnxOpt.Passes;

public static class BuiltInPasses
{
    public static Pass[] All =>
    [
        new Canonicalize(),
        new FixDims(),
        new Fuse(),
        new FoldBatchNorm(),
        new FuseBias(),
        new FoldAffine(),
        new Strip(),
        new Linearize(),
        new FoldConv(),
        new Sparsify(),
        new Equalize(),
        new Smooth(),
        new BiasCorrect(),
        new Quantize(),
        new Prune(),
        new Cluster(),
        new RoundFp16(),
        new Distill(),
        new UpgradeOpset(),
    ];
}
