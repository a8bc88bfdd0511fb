// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh, ICLR 2023, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers"), the layer-wise Optimal Brain Surgeon (Hassibi & Stork 1993; OBC, Frantar & Alistarh
// 2022) applied to quantization: each row w of a layer's weight is quantized one input column at a time, and the
// error of each column is spread onto the columns not yet quantized so that the layer's output moves least.
//   objective  min ||W X - Q X||^2 = sum over rows of (w - q)^T H (w - q),  H = X X^T (+ damping) (LayerHessian)
//   OBS step   quantizing column i of a row changes it by e_i = w_i - q_i; the change of the others that keeps the
//              output error smallest is  delta = -(e_i / [H^-1]_ii) [H^-1]_(i, :)  over the remaining columns F,
//              with H^-1 the inverse restricted to F (which shrinks one column per step)
//   Cholesky   with U the upper Cholesky factor of H^-1 (H^-1 = U^T U), the row i of U restricted to columns >= i is
//              that restricted inverse's row i divided by sqrt([H_F^-1]_ii): so  err = (w_i - q_i) / U_ii  and
//              w_(j > i) -= err * U_ij  gives every step from one factorization (GPTQ, section 3 "Step 3")
//   blocks     columns in blocks of 128: inside a block updates are applied at once per column, the rest of the
//              matrix gets the block's errors in one product (lazy batch updates); the result is the same
// Damping: H + 0.01 * mean(diag H) * I; an input never seen (H_ii = 0) has its weights quantized with H_ii = 1.
// The grid (IQuantGrid) is chosen by the caller: one fixed scale per row (static int8, per output channel), a
// scale and zero point per block of the row computed from the row's current (already updated) values when the
// block starts (weight-only int4/int8, as GPTQ's groupsize), or a mask (SparseGrid: SparseGPT, Frantar & Alistarh,
// ICML 2023: the same sweep with "quantize" meaning "set to 0 when pruned", the mask chosen per group of columns by
// the OBS cost w_j^2 / [H_F^-1]_jj).
namespace OnnxOpt.Passes;

/// <summary>Where a weight value lands: Begin is called before each column of a row with the row's current values
/// from there on and the matching [H_F^-1]_jj = U_jj^2 (what an OBS removal of weight j costs: w_j^2 / U_jj^2);
/// Quantize returns the new value (dequantized, or 0 when pruned) and remembers it.</summary>
public interface IQuantGrid
{
    void Begin(int row, int k, ReadOnlySpan<double> rest, ReadOnlySpan<double> inverseDiagonal);
    double Quantize(int row, int k, double w);
}

public static class Gptq
{
    /// <summary>Quantizes <paramref name="w"/> (rows [rows][k], row-major) in place to its dequantized values,
    /// rows sharing one <paramref name="h"/> (k x k). False when H + damping is not positive definite.</summary>
    public static bool Run(double[] w, int rows, int firstRow, int k, double[] h, IQuantGrid grid, double damp = 0.01,
        int block = 128)
    {
        var hd = (double[])h.Clone();
        double mean = 0;
        for (int i = 0; i < k; i++) mean += hd[i * k + i];
        mean = Math.Max(mean / k, 1e-12);
        for (int i = 0; i < k; i++) hd[i * k + i] = hd[i * k + i] <= 0 ? 1 : hd[i * k + i] + damp * mean;
        var u = UpperCholeskyOfInverse(hd, k);
        if (u is null) return false;
        var diag = Enumerable.Range(0, k).Select(i => u[i * k + i] * u[i * k + i]).ToArray();
        Parallel.For(0, rows, r => Row(w.AsSpan(r * k, k), firstRow + r, k, u, diag, grid, block));
        return true;
    }

    private static void Row(Span<double> w, int row, int k, double[] u, double[] diag, IQuantGrid grid, int block)
    {
        var err = new double[Math.Min(block, k)];
        for (int b0 = 0; b0 < k; b0 += block)
        {
            int b1 = Math.Min(b0 + block, k);
            for (int i = b0; i < b1; i++)
            {
                grid.Begin(row, i, w[i..], diag.AsSpan(i));
                var q = grid.Quantize(row, i, w[i]);
                var e = (w[i] - q) / u[i * k + i];
                w[i] = q;
                err[i - b0] = e;
                for (int j = i + 1; j < b1; j++) w[j] -= e * u[i * k + j];
            }
            // The block's errors onto the columns after it, at once.
            for (int i = b0; i < b1; i++)
            {
                var e = err[i - b0];
                if (e != 0) DenseKernels.Axpy(-e, u.AsSpan(i * k + b1, k - b1), w[b1..]);
            }
        }
    }

    /// <summary>U with H^-1 = U^T U (upper triangular, row-major), or null when H is not positive definite.</summary>
    internal static double[]? UpperCholeskyOfInverse(double[] h, int k)
    {
        var a = (double[])h.Clone();
        var inv = new double[k * k];
        for (int i = 0; i < k; i++) inv[i * k + i] = 1;
        if (!DenseKernels.CholeskySolve(a, inv, k, k)) return null;
        // inv = H^-1 (symmetric); its lower Cholesky factor L gives U = L^T.
        for (int i = 0; i < k; i++) for (int j = i + 1; j < k; j++) inv[i * k + j] = inv[j * k + i];
        if (!DenseKernels.CholeskySolve(inv, [], k, 0)) return null;
        var u = new double[k * k];
        for (int i = 0; i < k; i++) for (int j = 0; j <= i; j++) u[j * k + i] = inv[i * k + j];
        return u;
    }
}

/// <summary>Symmetric integers in [-qmax, qmax] with one fixed scale per row (static int8 weights).</summary>
public sealed class RowScaleGrid(IReadOnlyList<float> scales, int qmax, int k) : IQuantGrid
{
    public int[] Values { get; } = new int[scales.Count * k];

    public void Begin(int row, int k0, ReadOnlySpan<double> rest, ReadOnlySpan<double> inverseDiagonal) { }

    public double Quantize(int row, int col, double w)
    {
        double s = scales[row];
        var q = (int)Math.Clamp(Math.Round(w / s, MidpointRounding.ToEven), -qmax, qmax);
        Values[row * k + col] = q;
        return q * s;
    }
}

/// <summary>Unsigned codes in [0, 2^bits - 1] with a scale and zero point per block of a row (MatMulNBits): the
/// block's min and max (widened to include 0) when it starts; symmetric: zero point 2^(bits-1) and the largest |w|
/// at 2^(bits-1) - 1 steps.</summary>
public sealed class BlockGrid(int rows, int k, int bits, int block, bool symmetric) : IQuantGrid
{
    public int Blocks { get; } = (k + block - 1) / block;
    public byte[] Codes { get; } = new byte[rows * k];
    public float[] Scales { get; } = new float[rows * ((k + block - 1) / block)];
    public byte[] Zeros { get; } = new byte[rows * ((k + block - 1) / block)];
    private int Max => (1 << bits) - 1;

    public void Begin(int row, int col, ReadOnlySpan<double> rest, ReadOnlySpan<double> inverseDiagonal = default)
    {
        if (col % block != 0) return;
        var values = rest[..Math.Min(block, rest.Length)];
        double lo = 0, hi = 0;
        foreach (var v in values) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
        int at = row * Blocks + col / block;
        if (symmetric)
        {
            int half = 1 << (bits - 1);
            var amax = Math.Max(-lo, hi);
            Scales[at] = amax > 0 ? (float)(amax / (half - 1)) : 1f;
            Zeros[at] = (byte)half;
            return;
        }
        var s = hi > lo ? (hi - lo) / Max : 1.0;
        Scales[at] = (float)s;
        Zeros[at] = (byte)Math.Clamp(Math.Round(-lo / s, MidpointRounding.ToEven), 0, Max);
    }

    public double Quantize(int row, int col, double w)
    {
        int at = row * Blocks + col / block;
        double s = Scales[at];
        int z = Zeros[at];
        var q = (int)Math.Clamp(Math.Round(w / s, MidpointRounding.ToEven) + z, 0, Max);
        Codes[row * k + col] = (byte)q;
        return (q - z) * s;
    }
}
