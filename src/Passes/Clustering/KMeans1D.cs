// Exact 1-D k-means (Ckmeans.1d.dp; Wang & Song 2011, Gronlund et al. 2017), optionally weighted:
//   minimize sum_i w_i (x_i - c(x_i))^2 over k centroids. In 1-D an optimal clustering is a partition of
//   the sorted values into k contiguous runs, so with prefix sums of w, w x, w x^2
//     D[q][j] = min_{i <= j} D[q-1][i-1] + cost(i, j),   cost(i, j) = S2 - S1^2 / W over values i..j,
//   and the best split i*(j) is monotone in j, which divide and conquer exploits:
//   O(k m log m) time and O(k m) split indices for m distinct values (the optimum, not a local minimum).
//   Large tensors are clustered over their distinct values with summed weights; beyond max-distinct
//   (65,536) distinct values, over a histogram of that many equal-width bins (each bin at its weighted
//   mean), after which each centroid is recomputed as the exact weighted mean of its members.
//   keepZero: exact zeros (a sparse tensor) form their own centroid 0 and the others get k - 1.
namespace OnnxOpt.Passes;

public sealed record KMeansResult(double[] Centroids, int[] Assignment, double Sse)
{
    /// <summary>The clustered values (each value's centroid).</summary>
    public float[] Values => Assignment.Select(a => (float)Centroids[a]).ToArray();
}

public static class KMeans1D
{
    public const int MaxDistinct = 65_536;

    /// <summary>Clusters <paramref name="values"/> into at most <paramref name="k"/> centroids (ascending).</summary>
    /// <param name="weights">Per-value weights (null: all 1); they must be finite and non-negative.</param>
    public static KMeansResult Cluster(float[] values, int k, double[]? weights = null, bool keepZero = false,
        int maxDistinct = MaxDistinct)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), "k must be at least 1");
        int n = values.Length;
        var assignment = new int[n];
        if (n == 0) return new KMeansResult([], assignment, 0);
        if (weights is not null && weights.Length != n) throw new ArgumentException("one weight per value");
        // Weights of exactly 0 would leave a cluster without mass; a tiny floor keeps every value placed.
        double W(int i) => weights is null ? 1 : Math.Max(weights[i], 1e-30);

        var zero = keepZero && k > 1 && Array.IndexOf(values, 0f) >= 0;
        var order = Enumerable.Range(0, n).Where(i => !(zero && values[i] == 0f)).ToArray();
        var vals = values;
        Array.Sort(order, (a, b) => vals[a].CompareTo(vals[b]) is var c && c != 0 ? c : a.CompareTo(b));
        int kk = zero ? k - 1 : k;

        // Distinct values (or histogram bins) with their summed weights.
        var groupOf = new int[order.Length];
        var gx = new List<double>();
        var gw = new List<double>();
        if (order.Length > 0)
        {
            double lo = vals[order[0]], hi = vals[order[^1]];
            int distinct = 1;
            for (int i = 1; i < order.Length; i++) if (vals[order[i]] != vals[order[i - 1]]) distinct++;
            bool binned = distinct > maxDistinct && hi > lo;
            double width = binned ? (hi - lo) / maxDistinct : 0;
            long lastKey = long.MinValue;
            for (int i = 0; i < order.Length; i++)
            {
                var v = vals[order[i]];
                long key = binned ? Math.Min(maxDistinct - 1, (long)((v - lo) / width))
                    : BitConverter.SingleToInt32Bits(v);
                if (i == 0 || key != lastKey || (!binned && v != vals[order[i - 1]]))
                {
                    gx.Add(0);
                    gw.Add(0);
                    lastKey = key;
                }
                var w = W(order[i]);
                gx[^1] += w * v;
                gw[^1] += w;
                groupOf[i] = gx.Count - 1;
            }
            for (int g = 0; g < gx.Count; g++) gx[g] /= gw[g];
        }

        var clusterOfGroup = gx.Count == 0 ? [] : Partition(gx.ToArray(), gw.ToArray(), Math.Min(kk, gx.Count));
        int clusters = clusterOfGroup.Length == 0 ? 0 : clusterOfGroup[^1] + 1;
        // Exact weighted means of the members, in float64.
        var sum = new double[clusters];
        var mass = new double[clusters];
        for (int i = 0; i < order.Length; i++)
        {
            var c = clusterOfGroup[groupOf[i]];
            sum[c] += W(order[i]) * vals[order[i]];
            mass[c] += W(order[i]);
        }
        var centroids = new List<double>();
        for (int c = 0; c < clusters; c++) centroids.Add(sum[c] / mass[c]);
        int zeroIndex = -1;
        if (zero)
        {
            zeroIndex = centroids.Count(c => c < 0);
            centroids.Insert(zeroIndex, 0);
        }
        for (int i = 0; i < order.Length; i++)
        {
            var c = clusterOfGroup[groupOf[i]];
            assignment[order[i]] = zero && c >= zeroIndex ? c + 1 : c;
        }
        if (zero) for (int i = 0; i < n; i++) if (values[i] == 0f) assignment[i] = zeroIndex;
        double sse = 0;
        for (int i = 0; i < n; i++)
        {
            var e = values[i] - centroids[assignment[i]];
            sse += W(i) * e * e;
        }
        return new KMeansResult(centroids.ToArray(), assignment, sse);
    }

    /// <summary>The optimal partition of sorted points x (weights w) into k contiguous clusters: each point's
    /// cluster index (0..k-1, non-decreasing).</summary>
    internal static int[] Partition(double[] x, double[] w, int k)
    {
        int m = x.Length;
        // Prefix sums around the weighted mean (less cancellation in S2 - S1^2 / W).
        double total = 0, mean = 0;
        for (int i = 0; i < m; i++) { total += w[i]; mean += w[i] * x[i]; }
        mean /= total;
        var pw = new double[m + 1];
        var p1 = new double[m + 1];
        var p2 = new double[m + 1];
        for (int i = 0; i < m; i++)
        {
            var d = x[i] - mean;
            pw[i + 1] = pw[i] + w[i];
            p1[i + 1] = p1[i] + w[i] * d;
            p2[i + 1] = p2[i] + w[i] * d * d;
        }
        // cost of points [i, j] (0-based, inclusive)
        double Cost(int i, int j)
        {
            var ww = pw[j + 1] - pw[i];
            var s1 = p1[j + 1] - p1[i];
            return Math.Max(0, p2[j + 1] - p2[i] - s1 * s1 / ww);
        }
        var prev = new double[m];
        var cur = new double[m];
        var split = new int[k][];
        for (int j = 0; j < m; j++) prev[j] = Cost(0, j);
        split[0] = new int[m];
        for (int q = 1; q < k; q++)
        {
            var s = split[q] = new int[m];
            // D[q][j] for j >= q (at least one point per cluster); split i in [q, j]: cluster q is [i, j].
            void Solve(int lo, int hi, int optLo, int optHi)
            {
                if (lo > hi) return;
                int mid = (lo + hi) / 2;
                double best = double.PositiveInfinity;
                int arg = Math.Max(optLo, q);
                for (int i = Math.Max(optLo, q); i <= Math.Min(mid, optHi); i++)
                {
                    var v = prev[i - 1] + Cost(i, mid);
                    if (v < best) { best = v; arg = i; }
                }
                cur[mid] = best;
                s[mid] = arg;
                Solve(lo, mid - 1, optLo, arg);
                Solve(mid + 1, hi, arg, optHi);
            }
            Array.Fill(cur, double.PositiveInfinity);
            Solve(q, m - 1, q, m - 1);
            (prev, cur) = (cur, prev);
        }
        var result = new int[m];
        int end = m - 1;
        for (int q = k - 1; q >= 0; q--)
        {
            int start = q == 0 ? 0 : split[q][end];
            for (int i = start; i <= end; i++) result[i] = q;
            end = start - 1;
        }
        return result;
    }
}
