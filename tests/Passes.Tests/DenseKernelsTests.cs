// DenseKernels: the blocked, parallel Cholesky solve and the Gram updates equal the textbook loops, across
// block boundaries (sizes not multiples of the 64 block or of the vector width), and are deterministic.
using OnnxOpt.Passes;

namespace OnnxOpt.Tests;

public class DenseKernelsTests
{
    private static double[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => r.NextDouble() * 2 - 1).ToArray();
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(63, 5)]
    [InlineData(150, 70)]
    [InlineData(301, 129)]
    public void CholeskySolveLeavesASmallResidual(int n, int m)
    {
        // A = G G' + n I (positive definite), B random; check ||A X - B|| against ||B||.
        var g = Random(n * n, 1);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = i == j ? n : 0;
                for (int k = 0; k < n; k++) s += g[i * n + k] * g[j * n + k];
                a[i * n + j] = s;
            }
        var b = Random(n * m, 2);
        var a0 = (double[])a.Clone();
        var x = (double[])b.Clone();
        Assert.True(DenseKernels.CholeskySolve(a, x, n, m));
        double err = 0, norm = 0;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < m; c++)
            {
                double s = 0;
                for (int k = 0; k < n; k++) s += a0[i * n + k] * x[k * m + c];
                err += (s - b[i * m + c]) * (s - b[i * m + c]);
                norm += b[i * m + c] * b[i * m + c];
            }
        Assert.True(Math.Sqrt(err / norm) < 1e-10, $"relative residual {Math.Sqrt(err / norm)}");
        var again = (double[])b.Clone();
        Assert.True(DenseKernels.CholeskySolve((double[])a0.Clone(), again, n, m));
        Assert.Equal(x, again); // bit-identical run to run
    }

    [Fact]
    public void GramAndCrossEqualTheirLoops()
    {
        int rows = 37, len = 13, cols = 5;
        var p = Random(rows * len, 3);
        var q = Random(cols * len, 4);
        var gram = new double[rows * rows];
        DenseKernels.AddGram(gram, rows, 0, rows, p, len, 2);
        var cross = new double[rows * cols];
        DenseKernels.AddCross(cross, cols, p, rows, q, cols, len);
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j <= i; j++)
                Assert.Equal(2 * Enumerable.Range(0, len).Sum(k => p[i * len + k] * p[j * len + k]), gram[i * rows + j], 12);
            for (int o = 0; o < cols; o++)
                Assert.Equal(Enumerable.Range(0, len).Sum(k => p[i * len + k] * q[o * len + k]), cross[i * cols + o], 12);
        }
    }
}
