// Accuracy-aware quantization (as Intel Neural Compressor's tuning): quantize everything, measure on
// held-out data in ONNX Runtime with its optimizations on (the int8 kernels that will run), and while
// the drop (accuracy points with labels; else top-1 agreement points with fp32; else cosine x 100)
// exceeds the budget, fall back to float the op whose own error is largest, one at a time. An op's own
// error is the model output's SQNR, 10 log10(sum y^2 / sum (y - y')^2), when that op alone is int8:
// the SQNR of an activation inside the all-int8 model would mostly measure the ops before it. The best
// model seen is kept; every trial and every op's SQNR are reported.
using System.Globalization;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;

namespace OnnxOpt.Passes;

internal static class AccuracyAwareSearch
{
    public static HashSet<string> Run(PassContext ctx, Model model, IReadOnlyDictionary<string,
        RangeCalibrator> ranges, QuantizeOptions qo,
        bool qoperator, CalibrationSource eval, double maxDrop, int maxTrials)
    {
        var fp32 = OnnxExporter.ToBytes(model);
        var deployed = eval.With(new SessionSettings
        {
            Optimization = GraphOptimization.All,
            IntraOpThreads = Environment.ProcessorCount
        });
        var reference = Reference.Capture(deployed, OnnxImporter.Parse(fp32));
        (Model Model, QdqResult Result) Build(IReadOnlySet<string> fallback, bool lower)
        {
            var m = OnnxImporter.Parse(fp32);
            var rw = new Rewriter(m);
            var r = QdqEmitter.Emit(m, rw, ranges, qo, fallback);
            if (lower) QOperatorLowering.Run(m, rw, new PassStats());
            return (m, r);
        }

        var fallback = new HashSet<string>(StringComparer.Ordinal);
        var (first, firstResult) = Build(fallback, qoperator);
        var f0 = reference.Measure(deployed, first);
        Trial(ctx, reference, 0, null, f0, fallback);
        var best = (Drop: reference.Drop(f0), Fallback: new HashSet<string>(fallback));
        if (best.Drop <= maxDrop + 1e-9) return fallback;

        // Each op's own error: the output SQNR with only that op in int8.
        var computeKeys = firstResult.Quantized.Where(q => QdqEmitter.ComputeOps.Contains(q.Op)).Select(q => q.Key).ToList();
        var sqnr = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var key in computeKeys)
        {
            var others = computeKeys.Where(k => k != key).ToHashSet(StringComparer.Ordinal);
            sqnr[key] = reference.Measure(deployed, Build(others, false).Model).SqnrDb;
        }
        foreach (var (key, db) in sqnr.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal))
            ctx.Stats.Decide(new OpSensitivity(key, double.IsFinite(db) ? Math.Round(db, 3) : null));
        int trial = 0;
        foreach (var (key, _) in sqnr.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (++trial > maxTrials) break;
            fallback.Add(key);
            var f = reference.Measure(deployed, Build(fallback, qoperator).Model);
            Trial(ctx, reference, trial, key, f, fallback);
            var drop = reference.Drop(f);
            if (drop < best.Drop - 1e-9) best = (drop, new HashSet<string>(fallback));
            if (drop <= maxDrop + 1e-9) return fallback;
        }
        ctx.Stats.Notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"accuracy budget {maxDrop} not met within {maxTrials} fallbacks; kept the best model seen ({reference.DropMetric} drop {best.Drop:F2})"));
        ctx.Stats.Count("accuracy budget not met");
        return best.Fallback;
    }

    private static void Trial(PassContext ctx, Reference reference, int trial, string? fellBack, FidelityResult f,
        HashSet<string> fallback)
    {
        ctx.Stats.Count("accuracy trials");
        ctx.Stats.Decide(new QuantizeTrial(trial, fellBack, string.Join(";", fallback.Order(StringComparer.Ordinal)),
            reference.DropMetric, reference.Accuracy ?? 100.0, f.Accuracy
                ?? f.Agreement, Math.Round(reference.Drop(f), 6), f.Agreement));
    }
}
