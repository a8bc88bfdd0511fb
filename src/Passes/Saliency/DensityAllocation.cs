// How a sparsity budget is shared between layers (sparsify{allocation=...}, per-layer scopes and method=obs):
//   uniform  every layer keeps the same share d of its weights (what the literature calls "uniform"; a 9-weight
//            stem and a 3x3 depthwise kernel lose as much as a 512x512 projection)
//   erk      Erdos-Renyi-Kernel (Evci et al., ICML 2020, "Rigging the Lottery"; Mocanu et al. 2018 for the
//            Erdos-Renyi form): layer l with weight dims n_1..n_r keeps
//                d_l = min(1, eps * (n_1 + ... + n_r) / (n_1 * ... * n_r))
//            with eps solved so that sum_l d_l |W_l| = d sum_l |W_l| (layers that would exceed 1 are made dense and
//            eps is solved again over the rest). Small layers (stems, depthwise kernels, classifiers) stay denser,
//            large ones sparser; the total number of weights kept is the same as uniform's.
//   before (d = 0.1): [16,1,3,3] stem 0.1, [64,64,3,3] 0.1   after (erk): stem 1.0, [64,64,3,3] ~0.09
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class DensityAllocation
{
    public static readonly string[] Choices = ["uniform", "erk"];

    /// <summary>Per-layer densities (in the order of <paramref name="shapes"/>) whose weight-weighted mean is
    /// <paramref name="density"/>.</summary>
    public static double[] Densities(IReadOnlyList<long[]> shapes, double density, string allocation)
    {
        if (density is <= 0 or > 1) throw new OnnxModelException($"density {density} must be in (0, 1]");
        var d = new double[shapes.Count];
        if (allocation == "uniform" || density >= 1)
        {
            Array.Fill(d, density);
            return d;
        }
        if (allocation != "erk")
            throw new OnnxModelException($"allocation '{allocation}' is not one of {string.Join(", ", Choices)}");
        var size = shapes.Select(s => (double)s.Aggregate(1L, (a, b) => a * Math.Max(b, 1))).ToArray();
        var raw = shapes.Select((s, i) => s.Sum(x => (double)Math.Max(x, 1)) / size[i]).ToArray();
        var dense = new bool[shapes.Count];
        double budget = density * size.Sum();
        while (true)
        {
            // Solve eps over the layers not made dense: eps * sum raw_l |W_l| = budget - sum_dense |W_l|.
            double fixedWeights = 0, scaled = 0;
            for (int i = 0; i < d.Length; i++)
                if (dense[i]) fixedWeights += size[i];
                else scaled += raw[i] * size[i];
            double eps = scaled > 0 ? Math.Max(0, budget - fixedWeights) / scaled : 0;
            int over = -1;
            for (int i = 0; i < d.Length; i++)
                if (!dense[i] && eps * raw[i] > 1 && (over < 0 || raw[i] > raw[over])) over = i;
            if (over < 0)
            {
                for (int i = 0; i < d.Length; i++) d[i] = dense[i] ? 1 : eps * raw[i];
                return d;
            }
            dense[over] = true;
        }
    }
}
