// Exact 1-D k-means: equals brute force over every contiguous partition on small inputs (weighted or not),
// is never worse than Lloyd's algorithm from a linear initialization, keeps zero as its own centroid when
// asked, stays near the exact optimum over a histogram, and is deterministic.
using OnnxOpt.Passes;

namespace OnnxOpt.Tests;

public class KMeans1DTests
{
    private static float[] Values(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * r.NextDouble() * 4 - 1)).ToArray();
    }

    private static double Sse(float[] v, double[]? w, double[] centroids, int[] a) =>
        v.Select((x, i) => (w?[i] ?? 1) * (x - centroids[a[i]]) * (x - centroids[a[i]])).Sum();

    // Best SSE over every way to cut the sorted values into k non-empty runs.
    private static double BruteForce(float[] v, double[]? w, int k)
    {
        var idx = Enumerable.Range(0, v.Length).OrderBy(i => v[i]).ToArray();
        double Cost(int lo, int hi)
        {
            double sw = 0, s = 0;
            for (int i = lo; i < hi; i++) { sw += w?[idx[i]] ?? 1; s += (w?[idx[i]] ?? 1) * v[idx[i]]; }
            var mu = s / sw;
            double c = 0;
            for (int i = lo; i < hi; i++) c += (w?[idx[i]] ?? 1) * (v[idx[i]] - mu) * (v[idx[i]] - mu);
            return c;
        }
        double Best(int start, int parts)
        {
            if (parts == 1) return Cost(start, v.Length);
            double best = double.PositiveInfinity;
            for (int end = start + 1; end <= v.Length - parts + 1; end++)
                best = Math.Min(best, Cost(start, end) + Best(end, parts - 1));
            return best;
        }
        return Best(0, k);
    }

    [Theory]
    [InlineData(6, 2, 1, false)]
    [InlineData(8, 3, 2, false)]
    [InlineData(9, 4, 3, true)]
    [InlineData(10, 3, 4, true)]
    public void EqualsBruteForceOnSmallInputs(int n, int k, int seed, bool weighted)
    {
        var v = Values(n, seed);
        var w = weighted ? Values(n, seed + 10).Select(x => 0.1 + Math.Abs(x)).ToArray() : null;
        var r = KMeans1D.Cluster(v, k, w);
        Assert.Equal(k, r.Centroids.Length);
        Assert.Equal(BruteForce(v, w, k), r.Sse, 9);
        Assert.Equal(r.Sse, Sse(v, w, r.Centroids, r.Assignment), 9);
        Assert.True(r.Centroids.Zip(r.Centroids.Skip(1)).All(p => p.First < p.Second), "ascending centroids");
    }

    // Lloyd's algorithm from k centroids evenly spaced between min and max (Deep Compression's linear init).
    private static double Lloyd(float[] v, int k)
    {
        double lo = v.Min(), hi = v.Max();
        var c = Enumerable.Range(0, k).Select(i => lo + (hi - lo) * i / Math.Max(1, k - 1)).ToArray();
        var a = new int[v.Length];
        for (int iter = 0; iter < 100; iter++)
        {
            for (int i = 0; i < v.Length; i++)
                a[i] = Enumerable.Range(0, k).MinBy(j => Math.Abs(v[i] - c[j]));
            for (int j = 0; j < k; j++)
            {
                var members = v.Where((_, i) => a[i] == j).ToArray();
                if (members.Length > 0) c[j] = members.Average(x => (double)x);
            }
        }
        return Sse(v, null, c, a);
    }

    [Fact]
    public void IsNeverWorseThanLloydFromALinearStart()
    {
        int better = 0;
        for (int seed = 0; seed < 6; seed++)
        {
            var v = Values(400, seed);
            foreach (var k in new[] { 4, 16 })
            {
                var exact = KMeans1D.Cluster(v, k).Sse;
                var lloyd = Lloyd(v, k);
                Assert.True(exact <= lloyd * (1 + 1e-12), $"seed {seed} k {k}: {exact} > {lloyd}");
                if (exact < lloyd * 0.999) better++;
            }
        }
        Assert.True(better > 0, "the exact optimum should beat Lloyd on some of these skewed inputs");
    }

    [Fact]
    public void KeepsZeroAsItsOwnExactCentroid()
    {
        var v = Values(300, 7);
        for (int i = 0; i < v.Length; i += 3) v[i] = 0;
        var r = KMeans1D.Cluster(v, 8, keepZero: true);
        Assert.Equal(8, r.Centroids.Length);
        Assert.Contains(0.0, r.Centroids);
        var values = r.Values;
        for (int i = 0; i < v.Length; i++) Assert.Equal(v[i] == 0, values[i] == 0);
    }

    [Fact]
    public void FewDistinctValuesAreKeptExactlyAndTheResultIsDeterministic()
    {
        float[] v = [0.5f, -1f, 0.5f, 2f, -1f];
        var r = KMeans1D.Cluster(v, 8);
        Assert.Equal([-1.0, 0.5, 2.0], r.Centroids);
        Assert.Equal(0, r.Sse);
        var big = Values(5000, 9);
        var a = KMeans1D.Cluster(big, 16);
        var b = KMeans1D.Cluster(big, 16);
        Assert.Equal(a.Centroids, b.Centroids);
        Assert.Equal(a.Assignment, b.Assignment);
    }

    [Fact]
    public void TheHistogramPathStaysNearTheExactOptimum()
    {
        var v = Values(20000, 11);
        var exact = KMeans1D.Cluster(v, 16);
        var binned = KMeans1D.Cluster(v, 16, maxDistinct: 2048);
        Assert.True(binned.Sse <= exact.Sse * 1.01, $"{binned.Sse} vs {exact.Sse}");
    }
}
