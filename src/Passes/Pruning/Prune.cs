// prune: structured filter pruning over dependency groups (DependencyGroups), surgery by ChannelSurgery.
//   importance: one score per channel of every group, normalized by the group's mean (ChannelImportance:
//   l2, l1, fpgm, bn-scale, synflow, activation, taylor);
//   target: ratio = fraction of channels removed, per group (scope=local) or by one global threshold over
//   the normalized importances (scope=global, at most max-ratio of any group); or macs = fraction of MACs
//   to keep, reached by bisection on the ratio (measured on the pruned graph);
//   kept counts are rounded up to a multiple of round-to (ORT's x64 convs run in 8-channel blocks with
//   AVX2, 16 with AVX-512) and never below min-channels; the extra channels are the next most important;
//   min-speedup: the pruned model is timed against the input in ORT and kept only if that much faster.
// recover=lstsq (default) refits every consumer of a pruned group by ridge least squares against the
// original layer's output on calibration data (LeastSquaresRepair); recover=bias moves the removed
// channels' mean contribution into the consumers' biases (BiasRepair); recover=none leaves the cut.
// Approximate: validate on held-out data.
//   before: Conv(3->16) -> BN -> Relu -> Conv(16->8)   after ratio 0.5: Conv(3->8) -> BN(8) -> Relu -> Conv(8->8)
// Main graph only.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record PruneOptions
{
    [Option("criterion", "channel importance (ChannelImportance): group L2/L1 norm of its weights, distance to the "
        + "filters' geometric median, BatchNorm |gamma|, per-filter SynFlow, mean |a| or first-order Taylor "
        + "|a dy/da| on calibration data",
        Choices = ["l2", "l1", "fpgm", "bn-scale", "synflow", "activation", "taylor", "obd", "fisher", "damage"])]
    public string Criterion { get; init; } = "l2";
    [Option("ratio", "fraction of channels to remove (ignored when macs >= 0)", Min = 0, Max = 1)]
    public double Ratio { get; init; } = 0.5;
    [Option("macs", "fraction of MACs to keep, reached by bisection on the ratio (-1: use ratio)", Max = 1)]
    public double Macs { get; init; } = -1;
    [Option("scope", "one threshold over all groups, or the same ratio in every group", Choices = ["global", "local"])]
    public string Scope { get; init; } = "global";
    [Option("unit", "filter: channels of dependency groups; head: attention heads (AttentionHeads; ratio = fraction "
        + "of the heads; criterion l2, taylor or damage); block: whole residual blocks y = x + f(x) -> y = x "
        + "(BlockDropping; ratio = fraction of the blocks)", Choices = ["filter", "head", "block"])]
    public string Unit { get; init; } = "filter";
    [Option("allocate", "uniform: rank by importance (scope); sensitivity: per-group ratios from each group's "
        + "measured damage on calibration data (SensitivityAllocation)", Choices = ["uniform", "sensitivity"])]
    public string Allocate { get; init; } = "uniform";
    [Option("sensitivity-samples",
        "allocate=sensitivity, unit=block and criterion=damage: most calibration samples per damage measurement",
        Min = 1)]
    public long SensitivitySamples { get; init; } = 256;
    [Option("round-to", "kept channel counts rounded up to a multiple of this (1: no rounding)", Min = 1)]
    public long RoundTo { get; init; } = 8;
    [Option("min-channels", "never keep fewer channels in a group", Min = 1)]
    public long MinChannels { get; init; } = 1;
    [Option("max-ratio", "never remove more than this fraction of one group", Min = 0, Max = 1)]
    public double MaxRatio { get; init; } = 0.9;
    [Option("exclude", "node names, output names or op types never to prune (';'-separated)")]
    public string Exclude { get; init; } = "";
    [Option("recover", "repair without labels: refit each consumer by ridge least squares, or move the removed "
        + "channels' mean into its bias", Choices = ["lstsq", "bias", "none"])]
    public string Recover { get; init; } = "lstsq";
    [Option("min-speedup", "keep the pruned model only if ORT runs it at least this many times faster than the "
        + "input (0: do not measure)", Min = 0)]
    public double MinSpeedup { get; init; } = 1.0;
    [Option("max-rows", "recover=lstsq: most sampled output positions per layer", Min = 1)]
    public long MaxRows { get; init; } = 4096;
    [Option("ridge", "recover=lstsq: ridge strength, relative to the mean diagonal of X'X", Min = 0)]
    public double Ridge { get; init; } = 1e-3;
}

public sealed class Prune : Pass<PruneOptions>
{
    public override string Name => "prune";
    public override string Summary =>
        "structured filter pruning over channel dependency groups (weights physically removed)";
    public override bool IsExact(PruneOptions options) => false;

    public override DataNeeds Needs(PruneOptions options) =>
        options.Recover is "lstsq" or "bias" || ChannelImportance.NeedsData(options.Criterion)
        || options.Allocate == "sensitivity" || options.Unit == "block"
            ? DataNeeds.Calibration : DataNeeds.None;

    public override string? WhyNoChange(Model model, PruneOptions options)
    {
        if (options.Unit == "block") return null;
        if (options.Unit == "head")
        {
            var heads = AttentionHeads.Analyze(model.Clone());
            return heads.Any(g => g.Prunable) ? null : heads.Count == 0 ? "no attention block (Softmax over Q K^T)"
                : $"no attention block whose heads can be removed ({heads.Count} found: {heads[0].Reasons[0]})";
        }
        var exclude = options.Exclude.Split(';',
            StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var d = DependencyGroups.Analyze(model.Clone(), exclude.ToHashSet(StringComparer.Ordinal));
        return d.Groups.Any(g => g.Prunable) ? null
            : $"no prunable channel group ({d.Groups.Count} groups, all refused; see `onnxopt groups`)";
    }

    public override void Run(PassContext ctx, PruneOptions o)
    {
        UpgradeOpset.Require(ctx, Name, 13, "the opset onnxopt's compression passes share");
        var exclude = o.Exclude.Split(';', StringSplitOptions.RemoveEmptyEntries
            | StringSplitOptions.TrimEntries);
        var plan = new PrunePlan(o.Criterion, o.Scope == "global", (int)o.RoundTo,
            (int)o.MinChannels, o.MaxRatio, exclude.ToHashSet(StringComparer.Ordinal));
        var repair = new Repair(o.Recover, o.Recover == "none" ? null : ctx.RequireCalibration(Name),
            (int)o.MaxRows, o.Ridge);
        if (o.Unit == "block") { DropBlocks(ctx, o, repair); return; }
        if (o.Unit == "head") { PruneHeads(ctx, o, plan, repair); return; }
        var d = DependencyGroups.Analyze(ctx.Model, plan.Exclude);
        var importance = ChannelImportance.Compute(plan.Criterion, d, ctx.Model,
            ChannelImportance.NeedsData(plan.Criterion) ? ctx.RequireCalibration(Name) : null, ctx.Stats.Notes);
        double ratio = o.Ratio;
        Dictionary<int, int[]> keep;
        if (o.Allocate == "sensitivity")
        {
            var calib = ctx.RequireCalibration(Name);
            var (counts, table) = SensitivityAllocation.Allocate(ctx.Model, d, plan, importance, calib, ratio,
                o.Macs, (int)o.SensitivitySamples,
                (trial, td, k) => CutAndRepair(trial, new Rewriter(trial), td, k, ctx.Model, repair), calib.Progress);
            foreach (var row in table) ctx.Stats.Decide(row);
            keep = counts.Where(kv => kv.Value < importance[kv.Key].Length)
                .ToDictionary(kv => kv.Key,
                    kv => PrunePlan.TopK(importance[kv.Key], kv.Value, d.Groups[kv.Key].Blocks));
        }
        else
        {
            if (o.Macs >= 0) ratio = FindRatio(ctx.Model, plan, importance, o.Macs, ctx);
            keep = plan.Keep(d, importance, ratio);
        }
        var minSpeedup = o.MinSpeedup;
        var original = o.Recover == "lstsq" || minSpeedup > 0 ? ctx.Model.Clone() : null;
        var paramsBefore = d.Groups.ToDictionary(g => g.Id, g => ParamsOf(Members(g)));
        RecordLineage(ctx.Lineage, d, keep);
        var (biases, refits) = CutAndRepair(ctx.Model, ctx.Rewriter, d, keep, original, repair);
        if (o.Recover == "bias") ctx.Stats.Count(Counters.Prune.BiasesRepaired, biases);
        foreach (var r in refits) ctx.Stats.Decide(r);
        if (o.Recover == "lstsq") ctx.Stats.Count(Counters.Prune.LayersRefitted, refits.Count);
        foreach (var g in d.Groups)
        {
            var after = keep.TryGetValue(g.Id, out var k) ? k.Length : g.Channels;
            var members = Members(g);
            var imp = importance.GetValueOrDefault(g.Id);
            var kept = k ?? [];
            var removed = imp is null ? [] : Enumerable.Range(0, g.Channels).Except(kept).ToArray();
            var sqnr = refits.Where(r => g.Consumers.Any(u => u.Node.ToString() == r.Layer))
                .Select(r => (double?)r.SqnrDbAfter).Min();
            ctx.Stats.Decide(new GroupPruned(g.Id, g.Channels, after, g.Prunable ? null : g.Reasons[0],
                string.Join(";", g.Producers.Select(p => p.ToString())), g.Macs)
            {
                Consumers = string.Join(";", g.Consumers.Select(u => u.Node.ToString()).Distinct()),
                Tied = string.Join(";", g.Tied.Select(n => n.ToString()).Distinct()),
                MacsAfter = members.Sum(n => ModelStats.Macs(n, out _) ?? 0),
                Params = paramsBefore[g.Id],
                ParamsAfter = ParamsOf(members),
                ImportanceKeptMean = imp is null || k is null ? null : kept.Average(c => imp[c]),
                ImportanceKeptMin = imp is null || k is null ? null : kept.Min(c => imp[c]),
                ImportanceRemovedMean = removed.Length == 0 || k is null ? null : removed.Average(c => imp![c]),
                ImportanceRemovedMax = removed.Length == 0 || k is null ? null : removed.Max(c => imp![c]),
                SqnrDbAfterRepair = sqnr,
            });
            if (after < g.Channels) ctx.Stats.Count(Counters.Prune.GroupsPruned);
            ctx.Stats.Count(Counters.Prune.ChannelsRemoved, g.Channels - after);
        }
        ctx.Stats.Count(Counters.Prune.Groups, d.Groups.Count);
        ctx.Stats.Count(Counters.Prune.GroupsNotPrunable, d.Groups.Count(g => !g.Prunable));
        if (minSpeedup > 0 && keep.Count > 0) Guard(ctx, original!, minSpeedup);
    }

    private static List<Node> Members(DependencyGroup g) =>
        g.Producers.Concat(g.Consumers.Select(u => u.Node)).Concat(g.Tied).Distinct().ToList();

    /// <summary>Elements of the constant inputs (weights, biases, BatchNorm/PRelu parameters) of the nodes.</summary>
    private static long ParamsOf(IEnumerable<Node> nodes) => nodes.SelectMany(n => n.Inputs)
        .Where(v => v is not null && (v.IsInitializer || v.Producer is { OpType: "Constant" })).Distinct()
        .Sum(v => Rewriter.ConstantOf(v)?.ElementCount ?? 0);

    private void DropBlocks(PassContext ctx, PruneOptions o, Repair repair)
    {
        var minSpeedup = o.MinSpeedup;
        var before = minSpeedup > 0 ? ctx.Model.Clone() : null;
        var calib = ctx.RequireCalibration(Name);
        var decisions = BlockDropping.Run(ctx.Model, ctx.Rewriter, repair, calib, o.Ratio, o.Macs,
            (int)o.SensitivitySamples, calib.Progress);
        foreach (var dec in decisions) ctx.Stats.Decide(dec);
        ctx.Stats.Count(Counters.Prune.Blocks, decisions.Count);
        ctx.Stats.Count(Counters.Prune.BlocksDropped, decisions.Count(x => x.Dropped));
        if (decisions.Count == 0) ctx.Stats.Notes.Add("prune: unit=block found no residual block to drop");
        if (before is not null && decisions.Any(x => x.Dropped)) Guard(ctx, before, minSpeedup);
    }

    /// <summary>unit=head: whole attention heads (AttentionHeads), ranked by l2, taylor or damage, kept per layer by
    /// one global threshold (scope=global) or the same ratio (local), at least one head and at most max-ratio
    /// removed per layer; the output projections are repaired.</summary>
    private void PruneHeads(PassContext ctx, PruneOptions o, PrunePlan plan, Repair repair)
    {
        var groups = AttentionHeads.Analyze(ctx.Model);
        var calib = ChannelImportance.NeedsData(plan.Criterion) ? ctx.RequireCalibration(Name) : null;
        var importance = AttentionHeads.Importance(plan.Criterion, groups, ctx.Model, calib,
            (int)o.SensitivitySamples);
        // An excluded Softmax or projection (node or output name) keeps its block's heads.
        foreach (var g in groups.Where(g => g.Prunable && g.Projections.Select(p => p.MatMul)
            .Append(g.View.Softmax).Concat(g.View.Output is { } op ? [op.MatMul] : [])
            .Any(n => plan.Exclude.Contains(n.Name ?? "") || plan.Exclude.Contains(n.Output().Name))))
            importance.Remove(g.Id);
        var dims = ctx.Calibration?.SymbolicDims(ctx.Model);
        var ratio = o.Macs >= 0 ? Bisect(plan, o.Macs, ctx, r =>
        {
            var trial = ctx.Model.Clone();
            var tg = AttentionHeads.Analyze(trial);
            foreach (var (id, k) in plan.KeepHeads(importance, r))
                AttentionHeads.Apply(trial, new Rewriter(trial), tg[id], k);
            return ModelStats.Compute(trial, dims: dims).TotalMacs;
        }, ModelStats.Compute(ctx.Model, dims: dims).TotalMacs) : o.Ratio;
        var keep = plan.KeepHeads(importance, ratio);
        var original = ctx.Model.Clone();
        var outputs = keep.Keys.Select(id => groups[id].View.Output!.MatMul).ToList();
        var bias = o.Recover == "bias" ? BiasRepair.Prepare(ctx.Model, outputs, repair.Calib!) : null;
        foreach (var (id, k) in keep) AttentionHeads.Apply(ctx.Model, ctx.Rewriter, groups[id], k);
        foreach (var (id, k) in keep)
        {
            var g = groups[id];
            var rows = AttentionHeads.Columns(g, g.View.Output! with { Slot = null }, k).Select(c => (long)c);
            if (bias is not null && bias.ApplyRemoved(ctx.Rewriter, g.View.Output!.MatMul, rows.ToHashSet()))
                ctx.Stats.Count(Counters.Prune.BiasesRepaired);
        }
        ctx.Rewriter.Cleanup();
        if (o.Recover == "lstsq")
        {
            var refits = LeastSquaresRepair.Run(original, ctx.Model, ctx.Rewriter, outputs,
                new Dictionary<Node, int[]>(), repair.Calib!, repair.MaxRows, repair.Ridge);
            foreach (var r in refits) ctx.Stats.Decide(r);
            ctx.Stats.Count(Counters.Prune.LayersRefitted, refits.Count);
        }
        foreach (var g in groups)
        {
            var imp = importance.GetValueOrDefault(g.Id);
            var k = keep.GetValueOrDefault(g.Id);
            ctx.Stats.Decide(new HeadsPruned(g.Name, g.Heads, k?.Length ?? g.Heads, g.HeadSize,
                g.Prunable ? null : g.Reasons[0])
            {
                Kept = k is null ? null : string.Join(",", k),
                Importance = imp,
            });
            ctx.Stats.Count(Counters.Prune.HeadsRemoved, g.Heads - (k?.Length ?? g.Heads));
        }
        ctx.Stats.Count(Counters.Prune.AttentionBlocks, groups.Count);
        ctx.Stats.Count(Counters.Prune.AttentionBlocksPruned, keep.Count);
        if (o.MinSpeedup > 0 && keep.Count > 0) Guard(ctx, original, o.MinSpeedup);
    }

    /// <summary>Records which channels every feature map the cut touches keeps (before the cut: the axes come from
    /// the shapes it changes).</summary>
    internal static void RecordLineage(ChannelLineage lineage, DependencyGroups d, IReadOnlyDictionary<int, int[]> keep)
    {
        foreach (var (v, segs) in d.Segments)
            if (segs.Any(s => s.Group >= 0 && keep.ContainsKey(s.Group)) && d.ChannelAxis(v) is { } axis)
                lineage.Record(v.Name, axis, ChannelSurgery.KeptPositions(segs, d, keep));
    }

    /// <summary>How the cut is repaired (recover=none|bias|lstsq) and with what data.</summary>
    internal sealed record Repair(string Mode, Calibration.CalibrationSource? Calib, int MaxRows, double Ridge);

    /// <summary>Removes the channels (ChannelSurgery) and repairs the consumers of the pruned groups;
    /// <paramref name="original"/> is the dense model the least-squares refit targets.</summary>
    internal static (int Biases, List<LayerRefit> Refits) CutAndRepair(Model model, Rewriter rw, DependencyGroups d,
        IReadOnlyDictionary<int, int[]> keep, Model? original, Repair repair)
    {
        var consumers = keep.Keys.SelectMany(id => d.Groups[id].Consumers.Select(u => u.Node)).Distinct().ToList();
        var keptOutputs = new Dictionary<Node, int[]>();
        foreach (var (id, k) in keep) foreach (var p in d.Groups[id].Producers) keptOutputs[p] = k;
        var bias = repair.Mode == "bias" ? BiasRepair.Prepare(model, consumers, repair.Calib!) : null;
        ChannelSurgery.Apply(model, rw, d, keep);
        int biases = bias?.Apply(rw, d, keep, keptOutputs) ?? 0;
        rw.Cleanup();
        if (repair.Mode != "lstsq" || original is null || consumers.Count == 0) return (biases, []);
        var layers = consumers.Where(n => !n.IsErased).OrderBy(n => model.Graph.PositionOf(n)).ToList();
        return (biases, LeastSquaresRepair.Run(original, model, rw, layers, keptOutputs, repair.Calib!,
            repair.MaxRows, repair.Ridge));
    }

    /// <summary>Measures the pruned model against the input in ORT (1 thread, interleaved); keeps the input,
    /// with a note, when the pruned one is not at least min-speedup times faster.</summary>
    private static void Guard(PassContext ctx, Model before, double minSpeedup)
    {
        var a = OnnxExporter.ToBytes(before);
        var b = OnnxExporter.ToBytes(ctx.Model);
        var probe = Runtime.Validation.Benchmark.Run(a, b, new Runtime.Validation.BenchOptions
        {
            Warmup = 2,
            Iterations = 6
        });
        // About 2 s of runs per model (20 to 400 runs).
        var iters = (int)Math.Clamp(2000 / Math.Max(0.01, probe.Model.MedianMs), 20, 400);
        var r = Runtime.Validation.Benchmark.Run(a, b, new Runtime.Validation.BenchOptions
        {
            Warmup = 5,
            Iterations = iters
        });
        bool kept = r.Speedup >= minSpeedup;
        ctx.Stats.Decide(new PruneLatency(r.Model.MedianMs, r.Other!.MedianMs, r.Speedup!.Value, minSpeedup, kept));
        if (kept) return;
        ctx.Rewriter.ReplaceGraph(before.Graph);
        ctx.Stats.Count(Counters.Prune.NotFaster);
        ctx.Stats.Notes.Add(System.FormattableString.Invariant(
            $"prune: the pruned model ran {r.Speedup:F2}x as fast as the input (needs {minSpeedup}x); kept the input"));
    }

    /// <summary>The ratio whose pruned model keeps at most <paramref name="macs"/> of the MACs (bisection).</summary>
    private static double FindRatio(Model model, PrunePlan plan, Dictionary<int, double[]> importance, double macs,
        PassContext ctx)
    {
        var dims = ctx.Calibration?.SymbolicDims(model);
        return Bisect(plan, macs, ctx, r =>
        {
            var trial = model.Clone();
            var d = DependencyGroups.Analyze(trial, plan.Exclude);
            // The analysis is deterministic: a clone's groups have the same ids as the model's.
            ChannelSurgery.Apply(trial, new Rewriter(trial), d, plan.Keep(d, importance, r));
            return ModelStats.Compute(trial, dims: dims).TotalMacs;
        }, ModelStats.Compute(model, dims: dims).TotalMacs);
    }

    /// <summary>The smallest ratio in [0, max-ratio] whose MACs (<paramref name="macsAt"/>) are at most
    /// <paramref name="macs"/> of <paramref name="total"/>, by bisection.</summary>
    private static double Bisect(PrunePlan plan, double macs, PassContext ctx, Func<double, long> macsAt, long total)
    {
        double lo = 0, hi = plan.MaxRatio;
        long MacsAt(double r) => macsAt(r);
        if (MacsAt(hi) > macs * total)
        {
            var most = MacsAt(hi) / (double)total;
            ctx.Stats.Notes.Add(
                $"macs={macs}: the most pruning allowed (max-ratio {plan.MaxRatio}) keeps {most:P1} of the MACs");
            return hi;
        }
        for (int i = 0; i < 14; i++)
        {
            var mid = (lo + hi) / 2;
            if (MacsAt(mid) <= macs * total) hi = mid; else lo = mid;
        }
        return hi;
    }
}

/// <summary>How channels are ranked and how many each group keeps.</summary>
public sealed record PrunePlan(string Criterion, bool Global, int RoundTo, int MinChannels, double MaxRatio,
    IReadOnlySet<string> Exclude)
{
    /// <summary>The channels each prunable group keeps (ascending) for a removal ratio.</summary>
    public Dictionary<int, int[]> Keep(DependencyGroups d, Dictionary<int, double[]> importance, double ratio)
    {
        var keepCount = new Dictionary<int, int>();
        if (Global)
        {
            var all = importance.SelectMany(kv => kv.Value).Order().ToArray();
            var cut = all.Length == 0 ? 0 : all[Math.Clamp((int)Math.Floor(ratio * all.Length), 0, all.Length - 1)];
            foreach (var (id, imp) in importance)
            {
                var removed = ratio <= 0 ? 0 : imp.Count(v => v < cut);
                keepCount[id] = imp.Length - Math.Min(removed, (int)Math.Floor(MaxRatio * imp.Length));
            }
        }
        else
            foreach (var (id, imp) in importance)
                keepCount[id] = imp.Length - (int)Math.Floor(Math.Min(ratio, MaxRatio) * imp.Length);
        var keep = new Dictionary<int, int[]>();
        foreach (var (id, imp) in importance)
        {
            var blocks = d.Groups[id].Blocks;
            var n = Rounded(keepCount[id], imp.Length, blocks);
            if (n < imp.Length) keep[id] = TopK(imp, n, blocks);
        }
        return keep;
    }

    /// <summary>unit=head: the heads each attention block keeps (ascending) for a removal ratio, by one threshold
    /// over the normalized importances (global) or per block (local); at least one head, at most max-ratio removed.
    /// </summary>
    public Dictionary<int, int[]> KeepHeads(Dictionary<int, double[]> importance, double ratio)
    {
        var all = importance.Values.SelectMany(v => v).Order().ToArray();
        var cut = all.Length == 0 ? 0 : all[Math.Clamp((int)Math.Floor(ratio * all.Length), 0, all.Length - 1)];
        var keep = new Dictionary<int, int[]>();
        foreach (var (id, imp) in importance)
        {
            var most = (int)Math.Floor(MaxRatio * imp.Length);
            var removed = Global ? (ratio <= 0 ? 0 : imp.Count(v => v < cut)) : (int)Math.Floor(ratio * imp.Length);
            var n = Math.Max(1, imp.Length - Math.Min(removed, most));
            if (n < imp.Length) keep[id] = TopK(imp, n);
        }
        return keep;
    }

    /// <summary>A kept count raised to min-channels, rounded up to a multiple of round-to, then of the group's
    /// blocks (grouped convs), at most all.</summary>
    public int Rounded(int n, int channels, int blocks = 1)
    {
        n = Math.Max(n, Math.Min(MinChannels, channels));
        if (RoundTo > 1) n = Math.Min(channels, (n + RoundTo - 1) / RoundTo * RoundTo);
        if (blocks > 1) n = Math.Min(channels, (n + blocks - 1) / blocks * blocks);
        return n;
    }

    /// <summary>The <paramref name="k"/> most important channels, ascending (ties: the lower index); with blocks,
    /// the k / blocks most important of each equal consecutive block.</summary>
    public static int[] TopK(double[] importance, int k, int blocks = 1)
    {
        var size = importance.Length / blocks;
        return Enumerable.Range(0, blocks).SelectMany(b => importance.Skip(b * size).Take(size)
                .Select((v, c) => (v, c: b * size + c)).OrderByDescending(x => x.v).ThenBy(x => x.c).Take(k / blocks))
            .Select(x => x.c).Order().ToArray();
    }
}
