// Where int8 error enters a model: every quantized activation x of the all-int8 (QDQ) model is compared
// with the same tensor of the fp32 model on the evaluation data, as SQNR = 10 log10(sum x^2 / sum (x - x')^2)
// of DQ(Q(x')) against x, in graph order (graph inputs first). An activation's jump is how far its SQNR
// falls below the lowest SQNR of the quantized activations it is computed from; one computed from exact
// values only (graph inputs, weights) is measured against 49.9 dB, an ideal 8-bit quantizer's SQNR
// (6.02 * 8 + 1.76). Large jumps are where the error is made, not merely carried.
//   input 48.1 dB -> stem conv 41.0 (jump 7.1) -> gate Mul 30.2 (jump 10.8) -> ... -> head 28.9 (jump 0.4)
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

/// <summary>One quantized activation's error in the all-int8 model.</summary>
public sealed record TensorError(string Tensor, string Op, double? SqnrDb, double? JumpDb) : Decision;

internal static class ErrorTrace
{
    private const double Ideal = 6.02 * 8 + 1.76;

    public static List<TensorError> Run(Model fp32, Model int8, CalibrationSource data)
    {
        // Pairs (fp32 tensor, its dequantized value in the int8 model).
        var pairs = new List<(string Tensor, string Dq)>();
        foreach (var dq in int8.Graph.Nodes.Where(n => n.OpType == "DequantizeLinear"))
            if (dq.Input(0)?.Producer is { OpType: "QuantizeLinear" } q && q.Input(0) is { } x
                && Rewriter.ConstantOf(x) is null && fp32.Graph.Find(x.Name) is { } v && Rewriter.ConstantOf(v) is null
                && pairs.All(p => p.Tensor != x.Name))
                pairs.Add((x.Name, dq.Output().Name));
        if (pairs.Count == 0) return [];
        // A Relu/Clip absorbed into x's range (gone from the int8 model) is compared after it, as it runs.
        for (int i = 0; i < pairs.Count; i++)
            if (fp32.Graph.Find(pairs[i].Tensor) is { Uses: [{ Node: { OpType: "Relu" or "Clip" } act }] }
                && int8.Graph.Find(act.Output().Name) is null && pairs.All(p => p.Tensor != act.Output().Name))
                pairs[i] = (act.Output().Name, pairs[i].Dq);
        var signal = pairs.ToDictionary(p => p.Tensor, _ => new SignalComparison(), StringComparer.Ordinal);
        var refNames = pairs.Select(p => p.Tensor).ToList();
        var dqNames = pairs.Select(p => p.Dq).ToList();
        var outputs = fp32.Graph.Outputs.Select(o => o.Name).ToHashSet();
        var int8Outputs = int8.Graph.Outputs.Select(o => o.Name).ToHashSet();
        using var a = data.RunnerFor(fp32, refNames.Where(n => !outputs.Contains(n)));
        using var b = data.RunnerFor(int8, dqNames.Where(n => !int8Outputs.Contains(n)));
        var set = data.DataFor(a.Inputs);
        // Both models' traced values are held at once: the batch is sized for twice the reference's.
        var batchSize = Math.Max(1, data.BatchFor(fp32, refNames, a, set) / 2);
        foreach (var batch in set.Batches(batchSize))
        {
            var ra = a.Run(batch.Inputs, refNames);
            var rb = b.Run(batch.Inputs, dqNames);
            for (int i = 0; i < pairs.Count; i++)
                signal[pairs[i].Tensor].Add(ra[i].ToFloatArray(), rb[i].ToFloatArray());
        }
        // Graph order, and each tensor's jump against the traced tensors it is computed from.
        var order = fp32.Graph.Inputs.Select(v => v.Name).Concat(fp32.Graph.Nodes.SelectMany(n => n.Outputs)
            .OfType<Value>().Select(v => v.Name)).Select((name, i) => (name, i)).GroupBy(p => p.name)
            .ToDictionary(g => g.Key, g => g.First().i, StringComparer.Ordinal);
        var sqnr = signal.ToDictionary(kv => kv.Key, kv => kv.Value.SqnrDb, StringComparer.Ordinal);
        var upstream = new Dictionary<string, double>(StringComparer.Ordinal);
        double Upstream(Value v)
        {
            if (upstream.TryGetValue(v.Name, out var u)) return u;
            double best = double.PositiveInfinity;
            if (v.Producer is { } p)
                foreach (var i in p.Inputs.OfType<Value>().Where(i => Rewriter.ConstantOf(i) is null))
                    best = Math.Min(best, sqnr.TryGetValue(i.Name, out var s) ? s : Upstream(i));
            return upstream[v.Name] = best;
        }
        return pairs.OrderBy(p => order.GetValueOrDefault(p.Tensor, int.MaxValue)).Select(p =>
        {
            var v = fp32.Graph.Find(p.Tensor)!;
            var db = sqnr[p.Tensor];
            var up = Upstream(v);
            double? jump = double.IsFinite(db) ? Math.Round((double.IsFinite(up) ? up : Ideal) - db, 3) : null;
            return new TensorError(p.Tensor, v.Producer?.OpType ?? "input", double.IsFinite(db) ? Math.Round(db, 3)
                : null, jump);
        }).ToList();
    }
}
