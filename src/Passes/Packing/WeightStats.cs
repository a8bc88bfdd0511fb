// Per-weight storage figures for `inspect --weights`: for every float initializer of at least 16 elements,
// its distinct values, the bits per weight a code needs (ceil log2 distinct), its zeros, and the model's
// packed size (ModelArchive.Pack, measured, not estimated from a formula).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record WeightStat(string Name, string Dims, long Elements, long Distinct, int BitsPerWeight,
    double Sparsity);

public static class WeightStats
{
    public static List<WeightStat> Of(Model model) => model.Graph.Initializers
        .Where(v => v.Initializer is { ElementType: DataType.Float } t && t.ElementCount >= 16)
        .Select(v =>
        {
            var w = v.Initializer!.ToFloatArray();
            var distinct = w.Distinct().LongCount();
            return new WeightStat(v.Name, "[" + string.Join(",", v.Initializer.Dims) + "]", w.Length, distinct,
                (int)Math.Ceiling(Math.Log2(Math.Max(2, distinct))), (double)w.Count(x => x == 0) / w.Length);
        }).ToList();
}
