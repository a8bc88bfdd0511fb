// Accuracy-aware quantization (as Intel Neural Compressor's tuning): quantize everything, measure on
// held-out data in ONNX Runtime with its optimizations on (the int8 kernels that will run), and while
// the drop (accuracy points with labels; else top-1 agreement points with fp32; else cosine x 100)
// exceeds the budget, fall back to float the quantized op whose own output is damaged most -- the
// lowest SQNR of its dequantized int8 activation against the fp32 one, 10 log10(sum x^2 / sum (x - x')^2),
// measured once on the all-int8 model -- one op at a time. The best model seen is kept; every trial
// is reported.
using System.Globalization;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;

namespace OnnxOpt.Passes;

internal static class AccuracyAwareSearch
{
    public static HashSet<string> Run(PassContext ctx, Model model, IReadOnlyDictionary<string, RangeCalibrator> ranges, QuantizeOptions qo,
        bool qoperator, CalibrationSource eval, double maxDrop, int maxTrials)
    {
        var fp32 = OnnxExporter.ToBytes(model);
        var deployed = eval.With(new SessionSettings { Optimization = GraphOptimization.All, IntraOpThreads = Environment.ProcessorCount });
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

        var (qdq, result) = qoperator ? Build(fallback, false) : (first, firstResult);
        var sqnr = OutputSqnr(eval, OnnxImporter.Parse(fp32), qdq, result);
        foreach (var (key, db) in sqnr.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal))
            ctx.Stats.Decide(("node", key), ("int8_output_sqnr_db", double.IsFinite(db) ? Math.Round(db, 3) : null));
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

    private static void Trial(PassContext ctx, Reference reference, int trial, string? fellBack, Fidelity f, HashSet<string> fallback)
    {
        ctx.Stats.Count("accuracy trials");
        ctx.Stats.Decide(("trial", (long)trial), ("fell_back", fellBack), ("in_float", string.Join(";", fallback.Order(StringComparer.Ordinal))),
            ("metric", reference.DropMetric), ("reference", reference.Accuracy ?? 100.0), ("int8", f.Accuracy ?? f.Agreement),
            ("drop", Math.Round(reference.Drop(f), 6)), ("agreement", f.Agreement));
    }

    /// <summary>SQNR (dB) of each quantized op's dequantized output against the fp32 model's, over the data.</summary>
    private static Dictionary<string, double> OutputSqnr(CalibrationSource eval, Model fp32, Model qdq, QdqResult r)
    {
        var keys = r.Outputs.Keys.Order(StringComparer.Ordinal).ToList();
        var refNames = keys.Select(k => r.Outputs[k].Reference).ToList();
        var qNames = keys.Select(k => r.Outputs[k].Dequantized).ToList();
        var settings = new SessionSettings { Optimization = GraphOptimization.Disabled, IntraOpThreads = Environment.ProcessorCount };
        using var a = InferenceSession.FromModel(fp32, settings, refNames);
        using var b = InferenceSession.FromModel(qdq, settings, qNames);
        var signal = new double[keys.Count]; var noise = new double[keys.Count];
        foreach (var batch in eval.DataFor(a.Inputs).Batches(eval.BatchSize))
        {
            var x = a.Run(batch.Inputs, refNames);
            var y = b.Run(batch.Inputs, qNames);
            for (int k = 0; k < keys.Count; k++)
            {
                var xs = x[k].ToFloatArray(); var ys = y[k].ToFloatArray();
                for (int i = 0; i < xs.Length; i++) { signal[k] += xs[i] * (double)xs[i]; noise[k] += (xs[i] - (double)ys[i]) * (xs[i] - (double)ys[i]); }
            }
        }
        return keys.Select((key, k) => (key, noise[k] == 0 ? double.PositiveInfinity : 10 * Math.Log10(signal[k] / noise[k]))).ToDictionary(t => t.key, t => t.Item2);
    }
}
