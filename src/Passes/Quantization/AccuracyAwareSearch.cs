// Accuracy-aware quantization (as Intel Neural Compressor's tuning, searched by op class first): quantize
// everything, measure on held-out data in ONNX Runtime with its optimizations on (the int8 kernels that
// will run); while the drop (accuracy points with labels; else top-1 agreement points with fp32; else
// cosine x 100) exceeds the budget, keep parts of the model in float:
//   1. whole classes where int8 error typically enters (search=class, the default), each measured for its
//      drop (and its ORT latency, 1 thread, reported):
//        element-wise   the quantized Add/Mul (residual sums, gates such as x * HardSigmoid(x))
//        concat-pools   Concat, AveragePool, GlobalAveragePool (one scale shared by many inputs)
//        only-matmuls   both of the above: only Conv/ConvTranspose/Gemm/MatMul stay int8
//        output-head    every quantized op between the graph outputs and the last conv/matmul, inclusive
//        input-stem     the ops from the graph inputs to the first conv/matmul, inclusive
//      the fastest class within the budget is taken, by a deterministic estimate (fewest MACs left in
//      float, then fewest float<->int8 conversions), and its ops are then put back in int8 one at a time,
//      least harmful first, while the budget holds and the estimate does not get worse;
//   2. when no class meets the budget, from the class with the least drop, one op at a time, the op whose
//      own error is largest first (search=op does only this). An op's own error is the model output's
//      SQNR, 10 log10(sum y^2 / sum (y - y')^2), with that op alone in int8: the SQNR of an activation
//      inside the all-int8 model would mostly measure the ops before it.
// Before searching, ErrorTrace says where the error enters (each quantized activation's SQNR along the
// graph). Every trial (drop, latency), every op's own SQNR and what stays float and why are reported; the
// best model seen is kept when the budget cannot be met within max-trials.
using System.Globalization;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

internal static class AccuracyAwareSearch
{
    // Ops whose weights are quantized too (QuantClass.WeightedCompute): Conv, ConvTranspose, Gemm, MatMul.
    private static readonly HashSet<string> MatMuls = OpRegistry.All
        .Where(o => o.Domain.Length == 0 && o.Quant == QuantClass.WeightedCompute).Select(o => o.OpType)
        .ToHashSet(StringComparer.Ordinal);

    public static (HashSet<string> Fallback, Dictionary<string, RangeCalibrator> Ranges) Run(PassContext ctx,
        Model model, Dictionary<string, RangeCalibrator> ranges, QuantizeOptions qo,
        bool qoperator, CalibrationSource eval, double maxDrop, int maxTrials, bool byClass = true)
    {
        var current = new Dictionary<string, RangeCalibrator>(ranges, StringComparer.Ordinal);
        var fp32 = OnnxExporter.ToBytes(model);
        var deployed = eval.With(new SessionSettings
        {
            Optimization = GraphOptimization.All,
            IntraOpThreads = Environment.ProcessorCount
        });
        var reference = Reference.Capture(deployed, OnnxImporter.Parse(fp32));
        (Model Model, QdqResult Result) Build(IReadOnlySet<string> fallback, bool lower,
            Dictionary<string, RangeCalibrator>? with = null)
        {
            var m = OnnxImporter.Parse(fp32);
            var rw = new Rewriter(m);
            var r = QdqEmitter.Emit(m, rw, with ?? current, qo, fallback);
            if (lower) QOperatorLowering.Run(m, rw, new PassStats());
            return (m, r);
        }
        bool Within(double drop) => drop <= maxDrop + 1e-9;
        int trial = 0;
        // The speed of a candidate, deterministically: MACs left in float, then float<->int8 conversions
        // (measured latency is reported with each class trial, but noise must not pick the model).
        var macs = model.Graph.Nodes.ToDictionary(QdqEmitter.Key, n => ModelStats.Macs(n, out _) ?? 0,
            StringComparer.Ordinal);
        // qdq: the candidate in QDQ form (Build(fallback, false)).
        (long FloatMacs, int Conversions) Cost(HashSet<string> fallback, Model qdq) =>
            (fallback.Sum(k => macs.GetValueOrDefault(k)), qdq.Graph.Nodes.Count(n => n.OpType is "QuantizeLinear"
                or "DequantizeLinear" && Rewriter.ConstantOf(n.Input(0)) is null));
        (double Drop, double? Ms) Try(HashSet<string> fallback, string? what, bool timed,
            Dictionary<string, RangeCalibrator>? with = null, Model? built = null)
        {
            eval.Progress?.Invoke("quantize: accuracy trials", Math.Min(trial, maxTrials), maxTrials);
            var m = built ?? Build(fallback, qoperator, with).Model;
            var f = reference.Measure(deployed, m);
            double? ms = timed ? Benchmark.Run(OnnxExporter.ToBytes(m), null,
                new BenchOptions { Iterations = 60, Warmup = 5 }).Model.MedianMs : null;
            Trial(ctx, reference, trial, what, f, fallback, ms);
            return (reference.Drop(f), ms);
        }

        var (first, firstResult) = Build(new HashSet<string>(), qoperator);
        var f0 = reference.Measure(deployed, first);
        Trial(ctx, reference, 0, null, f0, [], null);
        var best = (Drop: reference.Drop(f0), Fallback: new HashSet<string>(StringComparer.Ordinal));
        if (Within(best.Drop)) return (best.Fallback, current);

        // Where the error enters: every quantized activation's SQNR in the all-int8 model, in graph order.
        var trace = ErrorTrace.Run(OnnxImporter.Parse(fp32), Build(new HashSet<string>(), false).Model, eval);
        foreach (var t in trace) ctx.Stats.Decide(t);
        var entry = trace.Where(t => t.JumpDb is not null).OrderByDescending(t => t.JumpDb).Take(3).ToList();
        if (entry.Count > 0)
            ctx.Stats.Notes.Add("accuracy-aware: int8 error enters most at " + string.Join(", ", entry.Select(t =>
                string.Create(CultureInfo.InvariantCulture,
                    $"{t.Tensor} ({t.Op}, {t.SqnrDb:F1} dB, -{t.JumpDb:F1} dB)"))));

        // The other calibration methods: for every tensor at once.
        var every = ranges.Values.All(r => r is EveryMethodCalibrator) && ranges.Count > 0;
        Dictionary<string, RangeCalibrator> View(Func<string, string> method) => ranges.ToDictionary(kv => kv.Key,
            kv => ((EveryMethodCalibrator)kv.Value).Method(method(kv.Key)), StringComparer.Ordinal);
        var chosen = ranges.Keys.ToDictionary(k => k, k => every ? ((EveryMethodCalibrator)ranges[k]).Selected
            : "", StringComparer.Ordinal);
        if (every)
        {
            var start = chosen.Values.First();
            foreach (var method in RangeCalibrator.Methods.Where(m => m != start))
            {
                if (++trial > maxTrials) break;
                var view = View(_ => method);
                var (drop, _) = Try([], $"calibrate={method} for every tensor", false, view);
                if (drop >= best.Drop - 1e-9) continue;
                best = (drop, []);
                current = view;
                foreach (var k in ranges.Keys) chosen[k] = method;
            }
            if (Within(best.Drop))
            {
                ctx.Stats.Notes.Add(
                    $"accuracy-aware: calibrate={chosen.Values.First()} for every tensor met the budget");
                return (best.Fallback, current);
            }
        }

        // Each op's own error: the output SQNR with only that op in int8.
        var computeKeys = firstResult.Quantized.Where(q => QdqEmitter.ComputeOps.Contains(q.Op)).Select(q => q.Key)
            .ToList();
        var sqnr = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var key in computeKeys)
        {
            var others = computeKeys.Where(k => k != key).ToHashSet(StringComparer.Ordinal);
            sqnr[key] = reference.Measure(deployed, Build(others, false).Model).SqnrDb;
        }
        var worstFirst = sqnr.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => kv.Key).ToList();
        foreach (var key in worstFirst)
            ctx.Stats.Decide(new OpSensitivity(key, double.IsFinite(sqnr[key]) ? Math.Round(sqnr[key], 3) : null));

        // The calibration method per tensor, for the outputs of the ops with the largest own error.
        if (every)
            foreach (var key in worstFirst.Take(3))
            {
                if (!firstResult.Outputs.TryGetValue(key, out var t) || !ranges.ContainsKey(t.Reference)) continue;
                foreach (var method in RangeCalibrator.Methods.Where(m => m != chosen[t.Reference]))
                {
                    if (++trial > maxTrials) break;
                    var view = View(k => k == t.Reference ? method : chosen[k]);
                    var (drop, _) = Try([], $"calibrate={method} for {t.Reference}", false, view);
                    if (drop >= best.Drop - 1e-9) continue;
                    best = (drop, []);
                    current = view;
                    chosen[t.Reference] = method;
                }
                if (Within(best.Drop)) break;
            }
        var retuned = chosen.Where(kv => every && kv.Value != ((EveryMethodCalibrator)ranges[kv.Key]).Selected)
            .ToList();
        if (retuned.Count > 0)
            ctx.Stats.Notes.Add($"accuracy-aware: calibration method changed for {retuned.Count} tensors ("
                + string.Join(", ", retuned.Take(6).Select(kv => $"{kv.Key}: {kv.Value}"))
                + (retuned.Count > 6 ? ", ..." : "") + ")");
        if (Within(best.Drop)) return (best.Fallback, current);

        var fallback = new HashSet<string>(StringComparer.Ordinal);
        if (byClass)
        {
            var tried = new List<(string Name, HashSet<string> Keys, double Drop, (long, int) Cost)>();
            foreach (var (name, keys) in Classes(model, firstResult))
            {
                if (++trial > maxTrials) break;
                var qdq = Build(keys, false).Model;
                var (drop, _) = Try(keys, $"class {name}", true, built: qoperator ? null : qdq);
                tried.Add((name, keys, drop, Cost(keys, qdq)));
                if (drop < best.Drop - 1e-9) best = (drop, new HashSet<string>(keys));
            }
            var fits = tried.Where(t => Within(t.Drop)).OrderBy(t => t.Cost).ThenBy(t => t.Drop).ToList();
            if (fits.Count > 0)
            {
                var pick = fits[0];
                fallback = new HashSet<string>(pick.Keys, StringComparer.Ordinal);
                var cost = pick.Cost;
                // Back to int8, least harmful first (ops without an own SQNR, e.g. shared-scale ones, last).
                var order = fallback.OrderByDescending(k => sqnr.GetValueOrDefault(k, double.NegativeInfinity))
                    .ThenBy(k => k, StringComparer.Ordinal).ToList();
                foreach (var key in order)
                {
                    if (++trial > maxTrials) break;
                    var fewer = new HashSet<string>(fallback, StringComparer.Ordinal);
                    fewer.Remove(key);
                    var qdq = Build(fewer, false).Model;
                    var c = Cost(fewer, qdq);
                    if (c.CompareTo(cost) > 0) continue;
                    var (drop, _) = Try(fewer, $"back to int8 {key}", true, built: qoperator ? null : qdq);
                    if (!Within(drop)) continue;
                    fallback = fewer;
                    cost = c;
                }
                Explain(ctx, fallback, $"class {pick.Name} kept in float: the fastest class within the budget");
                return (fallback, current);
            }
            fallback = new HashSet<string>(best.Fallback, StringComparer.Ordinal);
        }
        foreach (var key in worstFirst.Where(k => !fallback.Contains(k)))
        {
            if (++trial > maxTrials) break;
            fallback.Add(key);
            var (drop, _) = Try(fallback, key, false);
            if (drop < best.Drop - 1e-9) best = (drop, new HashSet<string>(fallback));
            if (Within(drop))
            {
                Explain(ctx, fallback, "kept in float, largest own error first, until the budget held");
                return (fallback, current);
            }
        }
        ctx.Stats.Notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"accuracy budget {maxDrop} not met within {maxTrials} fallbacks; kept the best model seen ({reference.DropMetric} drop {best.Drop:F2})"));
        ctx.Stats.Count("accuracy budget not met");
        Explain(ctx, best.Fallback, "kept in float: the best model seen");
        return (best.Fallback, current);
    }

    /// <summary>The op classes the search tries to keep in float, each as the keys of its quantized ops
    /// (empty and repeated sets left out).</summary>
    internal static List<(string Name, HashSet<string> Keys)> Classes(Model model, QdqResult r)
    {
        HashSet<string> Of(Func<string, bool> op) =>
            r.Quantized.Where(q => op(q.Op)).Select(q => q.Key).ToHashSet(StringComparer.Ordinal);
        var quantized = r.Quantized.Select(q => q.Key).ToHashSet(StringComparer.Ordinal);
        var list = new List<(string, HashSet<string>)>
        {
            ("element-wise", Of(op => op is "Add" or "Mul")),
            ("concat-pools", Of(op => op is "Concat" or "AveragePool" or "GlobalAveragePool")),
            ("only-matmuls", Of(op => !MatMuls.Contains(op))),
            ("output-head", Walk(model, quantized, backward: true)),
            ("input-stem", Walk(model, quantized, backward: false)),
        };
        var seen = new List<HashSet<string>>();
        return list.Where(c => c.Item2.Count > 0 && !seen.Any(s => s.SetEquals(c.Item2)) && Add(seen, c.Item2))
            .ToList();
        static bool Add(List<HashSet<string>> seen, HashSet<string> s) { seen.Add(s); return true; }
    }

    /// <summary>The quantized ops between the graph outputs (backward) or inputs (forward) and the nearest
    /// conv/matmul on each path, inclusive.</summary>
    private static HashSet<string> Walk(Model model, HashSet<string> quantized, bool backward)
    {
        var g = model.Graph;
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<Node>();
        var stack = new Stack<Node>(backward
            ? g.Outputs.Select(o => o.Producer).OfType<Node>()
            : g.Inputs.Where(v => !v.IsInitializer).SelectMany(v => v.Uses.Select(u => u.Node)));
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (!seen.Add(n)) continue;
            var key = QdqEmitter.Key(n);
            if (quantized.Contains(key)) keys.Add(key);
            if (MatMuls.Contains(n.OpType)) continue;
            var next = backward
                ? n.Inputs.Select(i => i?.Producer).OfType<Node>()
                : n.Outputs.OfType<Value>().SelectMany(o => o.Uses.Select(u => u.Node));
            foreach (var m in next) stack.Push(m);
        }
        return keys;
    }

    private static void Explain(PassContext ctx, HashSet<string> fallback, string why)
    {
        if (fallback.Count == 0) return;
        ctx.Stats.Notes.Add($"accuracy-aware: {why} ({fallback.Count} ops: "
            + string.Join(", ", fallback.Order(StringComparer.Ordinal).Take(8)) + (fallback.Count > 8 ? ", ..." : "")
            + ")");
    }

    private static void Trial(PassContext ctx, Reference reference, int trial, string? fellBack, FidelityResult f,
        HashSet<string> fallback, double? ms)
    {
        ctx.Stats.Count("accuracy trials");
        ctx.Stats.Decide(new QuantizeTrial(trial, fellBack, string.Join(";", fallback.Order(StringComparer.Ordinal)),
            reference.DropMetric, reference.Accuracy ?? 100.0, f.Accuracy
                ?? f.Agreement, Math.Round(reference.Drop(f), 6), f.Agreement)
        {
            LatencyMs = ms is double v ? Math.Round(v, 4) : null,
        });
    }
}
