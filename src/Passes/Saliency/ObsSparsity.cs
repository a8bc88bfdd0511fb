// sparsify{method=obs,pattern=unstructured|N:M}: layer-wise Optimal Brain Surgeon sparsity (Hassibi & Stork 1993;
// OBC, Frantar & Alistarh 2022; SparseGPT, Frantar & Alistarh, ICML 2023), per Conv/Gemm/MatMul layer on calibration
// data:
//   objective  min ||W X - W' X||^2 over W' with the mask's weights at 0, = sum over rows of d^T H d,
//              H = sum x x^T of the layer's input (LayerHessian, damped by 1% of its mean diagonal)
//   cost       removing weight j of a row costs w_j^2 / [H_F^-1]_jj (F: the columns not yet visited), and the OBS
//              update of the columns after it, w_F -= (w_j / U_jj) U_(j, F), absorbs the removal (Gptq.cs: the same
//              sweep as GPTQ with "quantize" meaning "set to 0 when pruned")
//   mask       chosen per group of columns when the sweep reaches it, from the already updated weights:
//              unstructured: in each block of 128 columns of a row, the (1 - density) share with the lowest cost;
//              (allocation=erk: each layer's own density, DensityAllocation, the same total kept);
//              N:M (pattern=2:4): in every M consecutive inputs of a row, the M - N with the lowest cost (the pattern
//              sparse tensor cores run; a trailing partial group keeps min(N, its size))
// The report has each layer's output error on the calibration rows for OBS and for magnitude pruning with the same
// pattern and density (no update), the comparison the literature makes. Shapes do not change; weights held by
// several layers or in Constant nodes are copied by the rewriter as usual.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>A layer OBS sparsified: weights kept, and its output error on calibration rows against magnitude pruning
/// of the same pattern.</summary>
public sealed record ObsLayer(string Layer, long Weights, long Kept, double ErrorMagnitude, double ErrorObs) : Decision;

/// <summary>The mask rule of the OBS sweep: per row, groups of columns pruned by the lowest w^2 / [H^-1]_jj (or |w|,
/// for the magnitude baseline) when the sweep reaches them.</summary>
public sealed class SparseGrid(int rows, int k, double density, int keepN, int groupM, bool magnitude = false,
    bool[]? zero = null) : IQuantGrid
{
    private const int Block = 128;
    public bool[] Pruned { get; } = new bool[rows * k];
    // Weights that are zero already (an earlier round's): pruned first, whatever their current value.

    public void Begin(int row, int col, ReadOnlySpan<double> rest, ReadOnlySpan<double> inverseDiagonal)
    {
        int group = groupM > 0 ? groupM : Block;
        if (col % group != 0) return;
        int len = Math.Min(group, rest.Length);
        int prune = groupM > 0 ? Math.Max(0, len - keepN) : (int)Math.Round((1 - density) * len);
        var cost = new double[len];
        int forced = 0;
        for (int j = 0; j < len; j++)
        {
            cost[j] = magnitude || inverseDiagonal.IsEmpty ? Math.Abs(rest[j])
                : rest[j] * rest[j] / Math.Max(inverseDiagonal[j], 1e-300);
            if (zero?[row * k + col + j] == true) { cost[j] = -1; forced++; }
        }
        prune = Math.Max(prune, forced);
        var order = Enumerable.Range(0, len).OrderBy(j => cost[j]).ThenBy(j => j).Take(prune);
        foreach (var j in order) Pruned[row * k + col + j] = true;
    }

    public double Quantize(int row, int col, double w) => Pruned[row * k + col] ? 0 : w;
}

internal static class ObsSparsity
{
    public static void Run(PassContext ctx, SparsifyOptions o)
    {
        var calib = ctx.RequireCalibration("sparsify{method=obs}");
        var (keepN, groupM) = ParsePattern(o.Pattern);
        if (groupM > 0 && o.Allocation != "uniform")
            throw new OnnxModelException($"sparsify: pattern {o.Pattern} keeps {keepN} of every {groupM} in every "
                + $"layer; allocation={o.Allocation} applies to unstructured densities");
        var model = ctx.Model;
        ShapeInference.Run(model);
        var layers = model.Graph.Nodes
            .Where(n => n.IsStandard && n.OpType is "Conv" or "Gemm" or "MatMul" && n.Input(0) is { } x
                && Rewriter.ConstantOf(x) is null)
            .Select(LinearOp.Of).OfType<LinearOp>().ToList();
        var eligible = layers.Where(l => LayerHessian.WhyNot(l) is null).ToList();
        var densities = DensityAllocation.Densities(eligible.Select(l => l.WeightDims).ToList(), o.Density,
            o.Allocation);
        var densityOf = eligible.Select((l, i) => (l.Node, densities[i])).ToDictionary(t => t.Node, t => t.Item2);
        long total = 0, kept = 0;
        int done = 0;
        void Sparsify(LayerHessian h)
        {
            var node = h.Op.Node;
            var density = densityOf.GetValueOrDefault(node, o.Density);
            var original = h.Rows();
            var rows = (double[])original.Clone();
            int k = h.K, per = h.RowsPerGroup, count = h.Op.OutChannels;
            var zero = original.Select(v => v == 0).ToArray();
            var grid = new SparseGrid(count, k, density, keepN, groupM, zero: zero);
            bool ok = true;
            for (int g = 0; g < h.Groups && ok; g++)
            {
                var slice = rows.AsSpan(g * per * k, per * k).ToArray();
                ok = Gptq.Run(slice, per, g * per, k, h.H[g], grid);
                slice.CopyTo(rows.AsSpan(g * per * k));
            }
            // Magnitude with the same pattern, no update: the baseline (and the fallback when H is singular).
            var mag = new SparseGrid(count, k, density, keepN, groupM, magnitude: true, zero: zero);
            var magRows = (double[])original.Clone();
            for (int r = 0; r < count; r++)
                for (int c = 0; c < k; c++)
                {
                    mag.Begin(r, c, magRows.AsSpan(r * k + c, k - c), default);
                    magRows[r * k + c] = mag.Quantize(r, c, magRows[r * k + c]);
                }
            double Err(double[] w) => h.Error(w.Select((v, i) => v - original[i]).ToArray());
            var (eMag, eObs) = (Err(magRows), ok ? Err(rows) : double.PositiveInfinity);
            if (!ok || eObs > eMag) rows = magRows;
            long nz = rows.LongCount(v => v != 0);
            total += rows.Length;
            kept += nz;
            h.Op.WriteWeight(ctx.Rewriter, h.FromRows(rows));
            ctx.Stats.Decide(new ObsLayer(QdqEmitter.Key(node), rows.Length, nz, eMag, Math.Min(eObs, eMag)));
            ctx.Stats.Count(Counters.Sparsify.WeightsZeroed, rows.Length - nz);
            done++;
        }
        var (hessians, refused) = LayerHessian.Collect(model, calib, layers, 4096, "sparsify: layer statistics");
        foreach (var h in hessians.Values) Sparsify(h);
        foreach (var (n, why) in refused) ctx.Stats.Notes.Add($"sparsify: {QdqEmitter.Key(n)} left dense: {why}");
        ctx.Stats.Count(Counters.Sparsify.Layers, done);
        ctx.Rewriter.RemoveUnusedInitializers(model.Graph);
        if (total == 0) return;
        var measured = ctx.Stats.Decisions.OfType<ObsLayer>().Where(d => d.ErrorMagnitude > 0).ToList();
        var ratio = measured.Count == 0 ? 1 : measured.Average(d => d.ErrorObs / d.ErrorMagnitude);
        var at = groupM > 0 ? $"{keepN}:{groupM}"
            : $"density {o.Density}" + (o.Allocation == "uniform" ? "" : $" ({o.Allocation} allocation)");
        ctx.Stats.Notes.Add($"obs: {done} layers at {at} ({(double)kept / total:P1} of their weights kept); "
            + $"layer output error {ratio:P0} of magnitude "
            + "pruning's with the same pattern on average (calibration rows)");
    }

    /// <summary>"unstructured" -> (0, 0); "N:M" -> (N, M) with 0 &lt; N &lt; M &lt;= 64.</summary>
    internal static (int N, int M) ParsePattern(string pattern)
    {
        if (pattern == "unstructured") return (0, 0);
        var parts = pattern.Split(':');
        if (parts.Length == 2 && int.TryParse(parts[0], out var n) && int.TryParse(parts[1], out var m) && n > 0
            && n < m && m <= 64) return (n, m);
        throw new OnnxModelException($"sparsify: pattern '{pattern}' is not 'unstructured' or N:M with 0 < N < M "
            + "<= 64 (e.g. 2:4)");
    }
}
