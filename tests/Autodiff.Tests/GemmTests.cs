// The blocked product against a plain triple loop: shapes on both sides of the micro-tile, KC and in-place-B
// limits, ragged edges, transposed operands, the dot-product tiles, accumulation, one thread and several.
using OnnxOpt.Autodiff.Kernels;
using OnnxOpt.Data;

namespace OnnxOpt.Tests;

public class GemmTests
{
    public static TheoryData<int, int, int, bool, bool, bool> Shapes() => new()
    {
        { 16, 1000, 144, false, false, false },  // few rows: B read in place, ragged last panel
        { 16, 1024, 40, false, false, true },    // few rows, but B's rows 4 KiB apart: packed
        { 9, 64, 9, false, false, true },        // fewer rows than a micro-tile
        { 64, 333, 600, false, false, true },    // k over two KC blocks
        { 192, 96, 40, false, true, false },     // the in-place limit, transposed B (packed)
        { 200, 257, 31, true, false, true },     // over the limit, transposed A
        { 13, 2100, 7, true, true, false },      // n over NC, both transposed
        { 16, 150, 1030, false, true, false },   // dot-product tiles (A and B^T rows along k): k over a block, tail
        { 7, 5, 300, false, true, true },        // dot-product tiles, ragged both ways, accumulating
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BlockedProductMatchesTheTripleLoop(int m, int n, int k, bool ta, bool tb, bool accumulate)
    {
        var rng = new SplitMix64((ulong)(m * 7919 + n * 31 + k));
        float[] R(int len) => Enumerable.Range(0, len).Select(_ => (float)rng.NextGaussian()).ToArray();
        var a = R(m * k); var b = R(k * n); var c0 = R(m * n);
        // A(i,p) = a[i*aRow + p*aCol]; B(p,j) = b[p*bRow + j*bCol].
        int aRow = ta ? 1 : k, aCol = ta ? m : 1, bRow = tb ? 1 : n, bCol = tb ? k : 1;
        foreach (int threads in new[] { 1, 2 })
        {
            var c = (float[])c0.Clone();
            Gemm<float>.Multiply(m, n, k, a, 0, aRow, aCol, b, 0, bRow, bCol, c, 0, n, accumulate, threads);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = accumulate ? c0[i * n + j] : 0;
                    for (int p = 0; p < k; p++) s += (double)a[i * aRow + p * aCol] * b[p * bRow + j * bCol];
                    Assert.True(Math.Abs(c[i * n + j] - s) <= 1e-4 * (1 + Math.Sqrt(k)),
                        $"C[{i},{j}] = {c[i * n + j]}, expected {s} ({threads} threads)");
                }
        }
    }

    [Theory]
    [InlineData(16, 3, 2, false)]   // rows over a micro-tile, two tiles per image
    [InlineData(5, 4, 1, true)]     // ragged rows, one tile per image, accumulating
    [InlineData(70, 6, 3, false)]   // k ragged against KC, several threads split the images
    public void BlockedOutputPutsEachImageInItsOwnBlock(int m, int images, int tilesPerImage, bool accumulate)
    {
        // C (m x images*ohw) written as [image][m + 2 spare channels][ohw]: the spare rows stay untouched.
        int ohw = tilesPerImage * Gemm<float>.TileColumns, n = images * ohw, k = 37 + m, stride = (m + 2) * ohw;
        var rng = new SplitMix64((ulong)(m * 31 + images));
        float[] R(int len) => Enumerable.Range(0, len).Select(_ => (float)rng.NextGaussian()).ToArray();
        var a = R(m * k); var b = R(k * n); var c0 = R(images * stride);
        foreach (int threads in new[] { 1, 2 })
        {
            var c = (float[])c0.Clone();
            Mat<float>.MultiplyBlocked(Mat<float>.Dense(a, 0, m, k), Mat<float>.Dense(b, 0, k, n), c, ohw, ohw, ohw,
                stride, accumulate, threads);
            for (int img = 0; img < images; img++)
                for (int row = 0; row < m + 2; row++)
                    for (int q = 0; q < ohw; q++)
                    {
                        int at = img * stride + row * ohw + q;
                        // Rows 1..m of each block hold C (offset ohw); row 0 and row m+1 are the spare ones.
                        if (row == 0 || row == m + 1) { Assert.Equal(c0[at], c[at]); continue; }
                        int i = row - 1, j = img * ohw + q;
                        double s = accumulate ? c0[at] : 0;
                        for (int p = 0; p < k; p++) s += (double)a[i * k + p] * b[p * n + j];
                        Assert.True(Math.Abs(c[at] - s) <= 1e-4 * (1 + Math.Sqrt(k)), $"C[{i},{j}] = {c[at]}, expected {s}");
                    }
        }
    }

    [Fact]
    public void BlocksThatSplitATileAreRefused()
    {
        var x = new float[64];
        Assert.Throws<ArgumentException>(() => Mat<float>.MultiplyBlocked(Mat<float>.Dense(x, 0, 2, 2),
            Mat<float>.Dense(x, 0, 2, Gemm<float>.TileColumns + 1), x, 0, 4, 3, 8, false));
    }
}
