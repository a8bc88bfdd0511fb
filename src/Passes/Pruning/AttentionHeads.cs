// Attention heads as pruning units (Michel, Levy & Neubig, NeurIPS 2019, "Are Sixteen Heads Really Better than
// One?"). On the attention view of an exported block (AttentionView):
//   head h = columns [h*D, (h+1)*D) of the query, key and value projections (a fused qkv projection: those
//            columns in each of its three slots, [s*H*D + h*D, ...)) and their biases,
//            + rows [h*D, (h+1)*D) of the output projection.
//   before: q,k,v = x Wq, x Wk, x Wv (H heads) -> Reshape [.., H, D] -> softmax(Q K^T / sqrt(D)) V -> Reshape
//           [.., H*D] -> y = C Wo
//   after:  the kept heads' columns and rows only; the head count in the split Reshapes becomes H' and the
//           width of the merge Reshape H'*D (a constant shape, or the entry of the Concat that builds it).
// Exact: the result equals the original with the removed heads' rows of Wo zeroed (their contribution to y), as
// each head's softmax reads only its own q and k columns. Importance per head, normalized by its layer's mean:
//   l2      the norm of the head's weights (q, k, v columns, their biases, Wo rows);
//   taylor  Michel's head importance E_x |sum_(tokens, j in head) c_j dL/dc_j| (c = the merged context, the
//           output projection's input), with L = r . y for random signs r (RandomProbes), squared per sample;
//   damage  measured: ||y(head removed) - y||^2 / ||y||^2 on calibration samples in ORT, one head at a time.
// Refused, with the reason: heads or head size unknown, a projection whose weight does not match H*D, a Reshape
// target that is neither a constant nor a Concat of 1-element parts, a Shape of a projection's output or of the
// merged heads read at the axis that changes (Shape reads between the split and the merge are not checked: the
// exactness tests run the exports in ORT).
using OnnxOpt.Autodiff;
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>One attention block's heads: what changes when some are removed.</summary>
public sealed class HeadGroup(int id, AttentionView view)
{
    public int Id { get; } = id;
    public AttentionView View { get; } = view;
    public int Heads { get; internal set; }
    public int HeadSize { get; internal set; }
    /// <summary>The distinct query/key/value projections with the slot each takes (null: the whole output).</summary>
    public List<Projection> Projections { get; } = new();
    /// <summary>Reshapes whose target gets a new entry: (node, index in the target, true: the merge (H*D)).</summary>
    public List<(Node Reshape, int Index, bool Merge)> ShapeEdits { get; } = new();
    public List<string> Reasons { get; } = new();
    public bool Prunable => Reasons.Count == 0;
    public string Name => View.Softmax.ToString();
}

/// <summary>prune{unit=head}: one attention block's heads before and after, the kept ones, their normalized
/// importance, or why the block was left whole.</summary>
public sealed record HeadsPruned(string Attention, int HeadsBefore, int HeadsAfter, int HeadSize, string? NotPrunable)
    : Decision
{
    public string? Kept { get; init; }
    public double[]? Importance { get; init; }
}

public static class AttentionHeads
{
    /// <summary>Every attention block of the main graph with its heads (shapes are inferred where missing).
    /// </summary>
    public static List<HeadGroup> Analyze(Model model)
    {
        ShapeInference.Run(model);
        var groups = new List<HeadGroup>();
        foreach (var view in AttentionView.All(model.Graph)) groups.Add(Group(groups.Count, view));
        return groups;
    }

    private static HeadGroup Group(int id, AttentionView v)
    {
        var g = new HeadGroup(id, v);
        if (v.Heads is not long h || v.HeadSize is not long d || h < 1 || d < 1)
        {
            g.Reasons.Add("head count or head size unknown");
            return g;
        }
        (g.Heads, g.HeadSize) = ((int)h, (int)d);
        var width = h * d;
        foreach (var p in new[] { v.Query, v.Key, v.Value }.DistinctBy(p => p.MatMul))
            g.Projections.Add(p with { Slot = p.Slot is null ? null : 0 });
        bool fused = g.Projections.Count == 1;
        if (!fused && g.Projections.Count != 3) g.Reasons.Add("query, key and value share some but not all weights");
        foreach (var p in g.Projections)
        {
            var w = Rewriter.ConstantOf(p.Weight);
            var cols = fused ? 3 * width : width;
            if (w is not { Dims.Length: 2 } || w.Dims[1] != cols)
                g.Reasons.Add($"{p.MatMul}: weight is not [hidden, {cols}]");
            if (p.Bias is { } b && Rewriter.ConstantOf(b)?.ElementCount != cols)
                g.Reasons.Add($"{p.BiasAdd}: bias is not [{cols}]");
            // One Reshape splits the projection into heads; Shape reads may only ask for the leading dims.
            var uses = p.Output.Uses.Select(u => u.Node).ToList();
            var reshapes = uses.Where(n => n.OpType == "Reshape").ToList();
            if (reshapes.Count != 1 || uses.Any(n => n.OpType is not ("Reshape" or "Shape")))
            {
                g.Reasons.Add($"{p.Output.Name} is read by other ops than one Reshape");
                continue;
            }
            var r = reshapes[0];
            var rank = r.Output().Shape?.Rank ?? 0;
            var split = r.Output().Shape;
            if (rank < 4 || split![rank - 2].Value != h || split[rank - 1].Value != d
                || (fused && split[rank - 3].Value != 3))
                g.Reasons.Add($"{r} does not split into [.., {(fused ? "3, " : "")}{h}, {d}]");
            else g.ShapeEdits.Add((r, rank - 2, false));
            foreach (var s in uses.Where(n => n.OpType == "Shape")) CheckShapeRead(g, s, p.Output.Shape?.Rank - 1);
        }
        var merge = MergeReshape(v.Context);
        if (v.Output is null || merge is null) g.Reasons.Add("no Reshape merging the heads into an output projection");
        else
        {
            var rank = merge.Output().Shape?.Rank ?? 0;
            if (rank < 2 || merge.Output().Shape![rank - 1].Value != width)
                g.Reasons.Add($"{merge} does not merge into [.., {width}]");
            else g.ShapeEdits.Add((merge, rank - 1, true));
            if (Rewriter.ConstantOf(v.Output.Weight) is not { Dims.Length: 2 } wo || wo.Dims[0] != width)
                g.Reasons.Add($"{v.Output.MatMul}: weight is not [{width}, hidden]");
            foreach (var s in merge.Input(0)!.Uses.Select(u => u.Node).Where(n => n.OpType == "Shape"))
                CheckShapeRead(g, s, merge.Input(0)!.Shape?.Rank - 2);
        }
        foreach (var (r, index, _) in g.ShapeEdits)
            if (!EditableTarget(r.Input(1), index))
                g.Reasons.Add($"{r}: target shape entry {index} cannot be rewritten");
        return g;
    }

    /// <summary>Transpose (and Shape reads) after the context, then the Reshape that merges the heads.</summary>
    private static Node? MergeReshape(Node context)
    {
        var v = context.Output();
        for (int step = 0; step < 3; step++)
        {
            var data = v.Uses.Select(u => u.Node).Where(n => n.OpType != "Shape").ToList();
            if (data.Count != 1) return null;
            if (data[0].OpType == "Reshape") return data[0];
            if (data[0].OpType != "Transpose") return null;
            v = data[0].Output();
        }
        return null;
    }

    /// <summary>A Shape of a value whose axis <paramref name="changed"/> changes: only Gathers of other axes.</summary>
    private static void CheckShapeRead(HeadGroup g, Node shape, int? changed)
    {
        foreach (var u in shape.Output().Uses.Select(u => u.Node))
        {
            var index = u.OpType == "Gather" ? Rewriter.ConstantOf(u.Input(1)) : null;
            if (index is not { ElementCount: 1 } || changed is null || index.ToInt64Array()[0] is var i
                && (i == changed || i < 0))
                g.Reasons.Add($"{shape} reads the head axis ({u})");
        }
    }

    /// <summary>A Reshape target is a constant, or a Concat of constant or 1-element parts, at the entry.</summary>
    private static bool EditableTarget(Value? target, int index) =>
        Rewriter.ConstantOf(target) is { } t ? index < t.ElementCount
            : target?.Producer is { OpType: "Concat" } c && Part(c, index) is not null;

    /// <summary>The Concat input holding entry <paramref name="index"/> when it has exactly one element.</summary>
    private static (int Input, bool Single)? Part(Node concat, int index)
    {
        long at = 0;
        for (int i = 0; i < concat.Inputs.Count; i++)
        {
            var len = Rewriter.ConstantOf(concat.Input(i))?.ElementCount
                ?? (concat.Input(i)?.Shape is { Rank: 1 } s ? s[0].Value : null);
            if (len is null) return null;
            if (index < at + len) return len == 1 ? (i, true) : null;
            at += len.Value;
        }
        return null;
    }

    /// <summary>The columns of a projection that heads <paramref name="kept"/> use (all three slots when fused).
    /// </summary>
    public static int[] Columns(HeadGroup g, Projection p, IReadOnlyList<int> kept)
    {
        var width = g.Heads * g.HeadSize;
        var slots = p.Slot is null ? 1 : 3;
        return Enumerable.Range(0, slots).SelectMany(s => kept.SelectMany(h => Enumerable.Range(s * width
            + h * g.HeadSize, g.HeadSize))).ToArray();
    }

    /// <summary>Keeps heads <paramref name="kept"/> (ascending) of a prunable group, in place.</summary>
    public static void Apply(Model model, Rewriter rw, HeadGroup g, IReadOnlyList<int> kept)
    {
        if (!g.Prunable) throw new InvalidOperationException($"{g.Name}: heads not prunable: {g.Reasons[0]}");
        if (kept.Count == 0 || kept.Any(h => h < 0 || h >= g.Heads)
            || kept.Zip(kept.Skip(1)).Any(p => p.First >= p.Second))
            throw new ArgumentException($"{g.Name}: kept heads must be ascending, distinct, in [0, {g.Heads})");
        foreach (var p in g.Projections)
        {
            var cols = Columns(g, p, kept);
            var op = LinearOp.Of(p.MatMul)!;
            var (dims, w, _) = op.KeepOutputs(cols);
            op.Write(rw, dims, w, new float[cols.Length]);
            if (p.BiasAdd is { } add)
            {
                var index = add.Inputs.ToList().FindIndex(i => Rewriter.ConstantOf(i) is not null);
                var b = Rewriter.ConstantOf(add.Input(index))!;
                var data = b.ToFloatArray();
                var bdims = b.Dims.ToArray();
                bdims[^1] = cols.Length;
                FoldBatchNorm.SetWeight(rw, add, index, bdims, cols.Select(c => data[c]).ToArray(),
                    add.Output().Name + "_heads");
            }
        }
        var o = LinearOp.Of(g.View.Output!.MatMul)!;
        var (odims, ow) = o.KeepInputs(Columns(g, g.View.Output with { Slot = null }, kept));
        o.Write(rw, odims, ow, o.Bias);
        foreach (var (r, index, isMerge) in g.ShapeEdits)
            SetEntry(rw, r, index, isMerge ? kept.Count * (long)g.HeadSize : kept.Count);
        ShapeInference.Refresh(model);
    }

    private static void SetEntry(Rewriter rw, Node reshape, int index, long value)
    {
        var graph = reshape.Graph;
        if (Rewriter.ConstantOf(reshape.Input(1)) is { } t)
        {
            var shape = t.ToInt64Array();
            shape[index] = value;
            rw.SetInput(reshape, 1, rw.Constant(graph, reshape.Input(1)!.Name, Tensor.FromInt64s("", [shape.Length],
                shape)));
            return;
        }
        var concat = reshape.Input(1)!.Producer!;
        var (input, _) = Part(concat, index)!.Value;
        var parts = concat.Inputs.ToList();
        // A fresh Concat: the original may build other targets too.
        parts[input] = rw.Constant(graph, reshape.Output().Name + "_heads", Tensor.FromInt64s("", [1], [value]));
        var fresh = rw.Insert(graph, "Concat", parts, concat.Output().Name + "_heads", 1, OnnxAttribute.Int("axis", 0));
        rw.SetInput(reshape, 1, fresh.Output());
    }

    /// <summary>Importance of each head of each prunable group, normalized by the group's mean.</summary>
    /// <param name="samples">criterion=damage: most calibration samples per measurement.</param>
    public static Dictionary<int, double[]> Importance(string criterion, IReadOnlyList<HeadGroup> groups, Model model,
        CalibrationSource? calib, int samples = 64)
    {
        var prunable = groups.Where(g => g.Prunable).ToList();
        var raw = criterion switch
        {
            "l2" => prunable.ToDictionary(g => g.Id, L2),
            "taylor" => Taylor(prunable, model, calib ?? throw new OnnxModelException(
                "prune unit=head criterion=taylor needs calibration data (--calib)")),
            "damage" => Damage(prunable, model, calib ?? throw new OnnxModelException(
                "prune unit=head criterion=damage needs calibration data (--calib)"), samples),
            _ => throw new OnnxModelException(
                $"prune unit=head: criterion '{criterion}' does not rank heads (l2 or taylor)"),
        };
        return raw.ToDictionary(kv => kv.Key, kv =>
        {
            var mean = kv.Value.Average();
            return kv.Value.Select(x => mean > 0 ? x / mean : 1).ToArray();
        });
    }

    /// <summary>Each head's measured damage: its output-projection rows zeroed (the head removed, exactly), the
    /// graph outputs' relative squared error against the model's on calibration samples.</summary>
    private static Dictionary<int, double[]> Damage(List<HeadGroup> groups, Model model, CalibrationSource calib,
        int samples)
    {
        var reference = SensitivityAllocation.Outputs(model, calib, samples);
        var trial = model.Clone();
        var rw = new Rewriter(trial);
        var result = new Dictionary<int, double[]>();
        int done = 0, total = groups.Sum(g => g.Heads);
        foreach (var g in groups)
        {
            var wo = trial.Graph.Find(g.View.Output!.Weight.Name)!;
            var original = Rewriter.ConstantOf(wo)!;
            var cols = (int)original.Dims[1];
            var damage = new double[g.Heads];
            for (int h = 0; h < g.Heads; h++)
            {
                var w = original.ToFloatArray();
                Array.Clear(w, h * g.HeadSize * cols, g.HeadSize * cols);
                rw.SetInitializer(wo, Tensor.FromFloats(wo.Name, original.Dims.ToArray(), w));
                damage[h] = SensitivityAllocation.Damage(reference, SensitivityAllocation.Outputs(trial, calib,
                    samples));
                calib.Progress?.Invoke("prune: head damage", ++done, total);
            }
            rw.SetInitializer(wo, original);
            result[g.Id] = damage;
        }
        return result;
    }

    private static double[] L2(HeadGroup g)
    {
        var sums = new double[g.Heads];
        for (int h = 0; h < g.Heads; h++)
        {
            foreach (var p in g.Projections)
            {
                var op = LinearOp.Of(p.MatMul)!;
                var cols = Columns(g, p, [h]);
                var (_, w, _) = op.KeepOutputs(cols);
                sums[h] += w.Sum(x => (double)x * x);
                if (p.Bias is { } b && Rewriter.ConstantOf(b)?.ToFloatArray() is { } bias)
                    sums[h] += cols.Sum(c => (double)bias[c] * bias[c]);
            }
            var o = LinearOp.Of(g.View.Output!.MatMul)!;
            var (_, ow) = o.KeepInputs(Columns(g, g.View.Output with { Slot = null }, [h]));
            sums[h] += ow.Sum(x => (double)x * x);
        }
        return sums.Select(Math.Sqrt).ToArray();
    }

    private static Dictionary<int, double[]> Taylor(List<HeadGroup> groups, Model model, CalibrationSource calib)
    {
        var reads = groups.ToDictionary(g => g.Id, g => g.View.Output!.MatMul.Input(0)!.Name);
        var sums = groups.ToDictionary(g => g.Id, g => new double[g.Heads]);
        RandomProbes.Run(model, calib, reads.Values.Distinct().ToList(), "prune: head taylor", "taylor",
            (trace, output) => trace[output].Shape.FirstOrDefault(1), (trace, grads, n) =>
            {
                foreach (var g in groups)
                {
                    var a = trace[reads[g.Id]];
                    var ga = grads[reads[g.Id]].R;
                    var ar = a.R;
                    var width = g.Heads * g.HeadSize;
                    var tokens = ar.Length / Math.Max(1, n * width);
                    for (int s = 0; s < n; s++)
                        for (int h = 0; h < g.Heads; h++)
                        {
                            double dot = 0;
                            for (int t = 0; t < tokens; t++)
                            {
                                var at = ((long)s * tokens + t) * width + h * g.HeadSize;
                                for (int j = 0; j < g.HeadSize; j++) dot += (double)ar[at + j] * ga[at + j];
                            }
                            sums[g.Id][h] += dot * dot;
                        }
                }
            });
        return sums.ToDictionary(kv => kv.Key, kv => kv.Value.Select(Math.Sqrt).ToArray());
    }
}
