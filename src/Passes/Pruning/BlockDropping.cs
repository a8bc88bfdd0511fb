// prune{unit=block}: remove whole residual blocks, y = p + f(x) -> y = p, where p is the skip (x itself, or
// a projection of x) and f the residual branch. With few samples this beats filter pruning in the
// literature (PRACTISE, CVPR 2023); it also lowers depth, as Layer Folding does.
//   A block is an Add of two feature maps of the output's shape (no broadcasting) where one side's branch
//   is a sub-graph entered only by one value x (constants aside), x is the other side or an ancestor of
//   it, the branch's values are used only inside it and by the Add, and no graph output is among them.
//   When both sides qualify, the side with more MACs is the branch.
//   Each block's damage is measured alone on calibration data (dropped and repaired, relative output
//   error as in SensitivityAllocation); blocks are dropped in order of least damage per MAC saved until
//   `ratio` of the blocks are gone, or the MACs are at most `macs` of the input's.
//   Repair: recover=lstsq refits the linear layers that read the block's output (through channel-wise
//   ops) against the original model's outputs of those layers (LeastSquaresRepair); bias and none do not
//   change anything else.
//   before: x -> Conv -> BN -> Relu -> Conv -> BN -> Add(., x) -> Relu -> Conv   after: x -> Relu -> Conv'
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>A droppable residual block: the Add, the side that stays, the branch's nodes and their MACs.</summary>
public sealed record ResidualBlock(Node Add, Value Kept, IReadOnlyList<Node> Branch, long Macs)
{
    public override string ToString() => Add.ToString();
}

/// <summary>One block's measured damage and whether it was dropped.</summary>
public sealed record BlockDropped(string Block, int Nodes, long Macs, double Damage, bool Dropped) : Decision;

public static class BlockDropping
{
    private static readonly HashSet<string> PassThrough = new(StringComparer.Ordinal)
    {
        "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSwish", "Identity", "Dropout", "BatchNormalization", "MaxPool",
        "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Squeeze",
    };

    /// <summary>The model's droppable residual blocks, in graph order.</summary>
    public static List<ResidualBlock> Find(Model model)
    {
        ShapeInference.Run(model);
        var g = model.Graph;
        var macs = g.Nodes.ToDictionary(n => n, n => ModelStats.Macs(n, out _) ?? 0);
        var result = new List<ResidualBlock>();
        foreach (var add in g.Nodes.Where(n => n is { OpType: "Add", IsStandard: true } && n.Inputs.Count == 2))
        {
            var (a, b) = (add.Input(0)!, add.Input(1)!);
            var y = add.Output();
            if (y.IsGraphOutput || y.Shape is not { } ys) continue;
            if (!SameShape(a, ys) || !SameShape(b, ys)) continue;
            ResidualBlock? best = null;
            foreach (var (kept, side) in new[] { (a, b), (b, a) })
            {
                if (Branch(side, kept, add) is not { } branch) continue;
                var m = branch.Sum(n => macs[n]);
                if (best is null || m > best.Macs) best = new ResidualBlock(add, kept, branch, m);
            }
            if (best is not null) result.Add(best);
        }
        return result;
    }

    private static bool SameShape(Value v, Shape s) =>
        v.Shape is { } vs && vs.Rank == s.Rank && vs.Dims.Zip(s.Dims).All(p => p.First.Equals(p.Second));

    /// <summary>The nodes computing <paramref name="side"/> from one entry value that <paramref name="kept"/> also
    /// derives from, when they form a closed branch of the Add; else null.</summary>
    private static List<Node>? Branch(Value side, Value kept, Node add)
    {
        if (side.Producer is not { } start || side.Uses.Count != 1) return null;
        var nodes = new HashSet<Node>();
        var entries = new HashSet<Value>();
        var stack = new Stack<Node>([start]);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (!nodes.Add(n)) continue;
            if (nodes.Count > 10_000) return null;
            foreach (var v in n.Inputs)
            {
                if (v is null || v.IsInitializer || Rewriter.ConstantOf(v) is not null) continue;
                if (v == kept || v.Producer is null || Reaches(kept, v)) { entries.Add(v); continue; }
                stack.Push(v.Producer);
            }
        }
        if (entries.Count != 1) return null;
        foreach (var n in nodes)
            foreach (var o in n.Outputs)
                if (o is not null && (o.IsGraphOutput || o.Uses.Any(u => u.Node != add && !nodes.Contains(u.Node))))
                    return null;
        var g = add.Graph;
        return nodes.OrderBy(g.PositionOf).ToList();
    }

    /// <summary>Whether <paramref name="to"/> is <paramref name="from"/> or computed from it.</summary>
    private static bool Reaches(Value to, Value from)
    {
        var seen = new HashSet<Value>();
        var stack = new Stack<Value>([to]);
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (v == from) return true;
            if (!seen.Add(v) || v.Producer is null || seen.Count > 10_000) continue;
            foreach (var i in v.Producer.Inputs) if (i is not null && !i.IsInitializer) stack.Push(i);
        }
        return false;
    }

    /// <summary>The linear layers reading the block's output through channel-wise ops (the ones to refit).</summary>
    public static List<Node> Readers(ResidualBlock block)
    {
        var result = new List<Node>();
        var seen = new HashSet<Value>();
        var stack = new Stack<Value>([block.Add.Output()]);
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (!seen.Add(v)) continue;
            foreach (var u in v.Uses)
            {
                if (OpTraits.Has(u.Node, OpTrait.Linear) && u.InputIndex == 0)
                {
                    if (LinearOp.Of(u.Node) is { IsDepthwise: false }) result.Add(u.Node);
                }
                else if (u.Node.IsStandard && PassThrough.Contains(u.Node.OpType) && u.InputIndex == 0)
                    stack.Push(u.Node.Output());
            }
        }
        return result.Distinct().ToList();
    }

    /// <summary>y = p: the Add's uses move to the kept side; the branch becomes dead and is removed.
    /// <paramref name="replaced"/> carries what earlier drops replaced, for chained blocks (the kept side of
    /// one block is the output of the block before it).</summary>
    public static void Drop(Rewriter rw, ResidualBlock block, Dictionary<Value, Value>? replaced = null)
    {
        var kept = block.Kept;
        while (replaced is not null && replaced.TryGetValue(kept, out var k)) kept = k;
        var y = block.Add.Output();
        rw.Replace(y, kept);
        replaced?.Add(y, kept);
        rw.Erase(block.Add);
        rw.Cleanup();
    }

    /// <summary>Drops blocks of <paramref name="model"/> in place (least damage per MAC first) until the target,
    /// repairing the layers that read them; returns one decision per block.</summary>
    internal static List<BlockDropped> Run(Model model, Rewriter rw, Prune.Repair repair, CalibrationSource calib,
        double ratio, double macs, int samples, ProgressSink? progress)
    {
        var original = model.Clone();
        var blocks = Find(model);
        if (blocks.Count == 0) return [];
        var reference = SensitivityAllocation.Outputs(model, calib, samples);
        var damage = new double[blocks.Count];
        for (int i = 0; i < blocks.Count; i++)
        {
            var trial = original.Clone();
            var tb = Find(trial)[i];
            DropAndRepair(trial, new Rewriter(trial), [tb], original, repair);
            damage[i] = SensitivityAllocation.Damage(reference, SensitivityAllocation.Outputs(trial, calib, samples));
            progress?.Invoke("prune: block damage", i + 1, blocks.Count);
        }
        long total = ModelStats.Compute(model).TotalMacs;
        var order = Enumerable.Range(0, blocks.Count)
            .OrderBy(i => damage[i] / Math.Max(1, blocks[i].Macs)).ThenBy(i => i).ToList();
        var chosen = new List<int>();
        long left = total;
        int wanted = (int)Math.Round(ratio * blocks.Count, MidpointRounding.AwayFromZero);
        foreach (var i in order)
        {
            if (macs >= 0 ? left <= macs * total : chosen.Count >= wanted) break;
            chosen.Add(i);
            left -= blocks[i].Macs;
        }
        DropAndRepair(model, rw, chosen.Select(i => blocks[i]).ToList(), original, repair);
        return blocks.Select((b, i) => new BlockDropped(b.ToString(), b.Branch.Count, b.Macs, damage[i],
            chosen.Contains(i))).ToList();
    }

    private static void DropAndRepair(Model model, Rewriter rw, List<ResidualBlock> blocks, Model original,
        Prune.Repair repair)
    {
        var readers = blocks.SelectMany(Readers).Distinct().ToList();
        var replaced = new Dictionary<Value, Value>();
        foreach (var b in blocks.Where(b => !b.Add.IsErased)) Drop(rw, b, replaced);
        ShapeInference.Refresh(model);
        if (repair.Mode != "lstsq") return;
        var layers = readers.Where(n => !n.IsErased).OrderBy(model.Graph.PositionOf).ToList();
        LeastSquaresRepair.Run(original, model, rw, layers, new Dictionary<Node, int[]>(), repair.Calib!,
            repair.MaxRows, repair.Ridge);
    }
}
