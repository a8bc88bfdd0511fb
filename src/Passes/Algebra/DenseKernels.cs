// Dense float64 kernels for the least-squares refit: vectorized dot/axpy (Vector<double>), Gram updates
//   C[i, j] += s * <P_i, P_j>     (j <= i; rows P_i of length len, contiguous)
//   C[i, o] += <P_i, Q_o>
// parallel over the output rows (disjoint writes, each entry summed in a fixed order: deterministic), and a
// blocked Cholesky solve of A X = B for symmetric positive definite A:
//   right-looking, column blocks of 64: factor the diagonal block, solve the panel below it, subtract the
//   panel's Gram from the trailing matrix; then X by forward and backward substitution on column blocks
//   of B (each block small enough to stay in cache while L streams past once).
// Cost n^3/3 + 2 n^2 m flops, as the textbook loops, but vectorized, cache-blocked and on every core.
using System.Numerics;
using System.Runtime.InteropServices;

namespace OnnxOpt.Passes;

public static class DenseKernels
{
    public static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        int n = x.Length, i = 0, w = Vector<double>.Count;
        double s = 0;
        if (n >= 2 * w)
        {
            var vx = MemoryMarshal.Cast<double, Vector<double>>(x);
            var vy = MemoryMarshal.Cast<double, Vector<double>>(y[..n]);
            var acc0 = Vector<double>.Zero;
            var acc1 = Vector<double>.Zero;
            int v = 0;
            for (; v + 1 < vx.Length; v += 2)
            {
                acc0 += vx[v] * vy[v];
                acc1 += vx[v + 1] * vy[v + 1];
            }
            if (v < vx.Length) acc0 += vx[v] * vy[v];
            s = Vector.Sum(acc0 + acc1);
            i = vx.Length * w;
        }
        for (; i < n; i++) s += x[i] * y[i];
        return s;
    }

    /// <summary>y += a * x.</summary>
    public static void Axpy(double a, ReadOnlySpan<double> x, Span<double> y)
    {
        int n = x.Length, i = 0, w = Vector<double>.Count;
        if (n >= w)
        {
            var vx = MemoryMarshal.Cast<double, Vector<double>>(x);
            var vy = MemoryMarshal.Cast<double, Vector<double>>(y[..n]);
            var va = new Vector<double>(a);
            for (int v = 0; v < vx.Length; v++) vy[v] += va * vx[v];
            i = vx.Length * w;
        }
        for (; i < n; i++) y[i] += a * x[i];
    }

    /// <summary>c[(c0 + i) * ldc + c0 + j] += scale * dot(p row i, p row j) for 0 &lt;= j &lt;= i &lt; count.</summary>
    public static void AddGram(double[] c, int ldc, int c0, int count, double[] p, int len, double scale)
    {
        Parallel.For(0, count, i =>
        {
            var pi = p.AsSpan(i * len, len);
            var row = (c0 + i) * ldc + c0;
            for (int j = 0; j <= i; j++) c[row + j] += scale * Dot(pi, p.AsSpan(j * len, len));
        });
    }

    /// <summary>c[i * ldc + o] += dot(p row i, q row o) for i &lt; pRows, o &lt; qRows.</summary>
    public static void AddCross(double[] c, int ldc, double[] p, int pRows, double[] q, int qRows, int len)
    {
        Parallel.For(0, pRows, i =>
        {
            var pi = p.AsSpan(i * len, len);
            for (int o = 0; o < qRows; o++) c[i * ldc + o] += Dot(pi, q.AsSpan(o * len, len));
        });
    }

    private const int Block = 64;

    /// <summary>Solves A X = B in place for symmetric positive definite A (n x n, the lower triangle is read);
    /// B (n x m, row-major) becomes X. False when A is not positive definite.</summary>
    public static bool CholeskySolve(double[] a, double[] b, int n, int m)
    {
        for (int kb = 0; kb < n; kb += Block)
        {
            int e = Math.Min(kb + Block, n), width = e - kb;
            // Diagonal block (its entries already carry the updates of the blocks before).
            for (int j = kb; j < e; j++)
            {
                var lj = a.AsSpan(j * n + kb, j - kb);
                double d = a[j * n + j] - Dot(lj, lj);
                if (d <= 0 || double.IsNaN(d)) return false;
                var l = Math.Sqrt(d);
                a[j * n + j] = l;
                for (int i = j + 1; i < e; i++)
                    a[i * n + j] = (a[i * n + j] - Dot(a.AsSpan(i * n + kb, j - kb), lj)) / l;
            }
            if (e == n) break;
            // Panel below it, then the trailing matrix loses the panel's Gram.
            int rows = n - e;
            var panel = new double[rows * width];
            Parallel.For(0, rows, r =>
            {
                var i = e + r;
                for (int j = kb; j < e; j++)
                    a[i * n + j] = (a[i * n + j] - Dot(a.AsSpan(i * n + kb, j - kb), a.AsSpan(j * n + kb, j - kb)))
                        / a[j * n + j];
                a.AsSpan(i * n + kb, width).CopyTo(panel.AsSpan(r * width, width));
            });
            AddGram(a, n, e, rows, panel, width, -1);
        }
        // X by substitution, on blocks of columns of B (transposed so that each block's rows are contiguous).
        int blocks = (m + Block - 1) / Block;
        Parallel.For(0, blocks, cb =>
        {
            int c0 = cb * Block, cw = Math.Min(Block, m - c0);
            var y = new double[n * cw];
            for (int i = 0; i < n; i++) for (int c = 0; c < cw; c++) y[i * cw + c] = b[i * m + c0 + c];
            for (int i = 0; i < n; i++)
            {
                var yi = y.AsSpan(i * cw, cw);
                for (int k = 0; k < i; k++)
                {
                    var lik = a[i * n + k];
                    if (lik != 0) Axpy(-lik, y.AsSpan(k * cw, cw), yi);
                }
                var inv = 1 / a[i * n + i];
                for (int c = 0; c < cw; c++) yi[c] *= inv;
            }
            for (int i = n - 1; i >= 0; i--)
            {
                var yi = y.AsSpan(i * cw, cw);
                var inv = 1 / a[i * n + i];
                for (int c = 0; c < cw; c++) yi[c] *= inv;
                for (int k = 0; k < i; k++)
                {
                    var lik = a[i * n + k];
                    if (lik != 0) Axpy(-lik, yi, y.AsSpan(k * cw, cw));
                }
            }
            for (int i = 0; i < n; i++) for (int c = 0; c < cw; c++) b[i * m + c0 + c] = y[i * cw + c];
        });
        return true;
    }
}
