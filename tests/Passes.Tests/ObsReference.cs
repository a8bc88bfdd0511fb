// The brute-force side of the layer-wise OBS tests (GPTQ, SparseGPT-style sparsity): the inverse of H restricted to
// the columns from a given one on, solved directly, which the sweeps under test get from one Cholesky factor.
using OnnxOpt.Passes;

namespace OnnxOpt.Tests;

internal static class ObsReference
{
    /// <summary>(H[F, F])^-1 for F = columns from..k-1 (k x k row-major H), row-major.</summary>
    public static double[] RestrictedInverse(double[] h, int k, int from)
    {
        int f = k - from;
        var sub = new double[f * f];
        for (int a = 0; a < f; a++) for (int b = 0; b < f; b++) sub[a * f + b] = h[(from + a) * k + from + b];
        var inv = new double[f * f];
        for (int a = 0; a < f; a++) inv[a * f + a] = 1;
        Assert.True(DenseKernels.CholeskySolve(sub, inv, f, f));
        return inv;
    }
}
