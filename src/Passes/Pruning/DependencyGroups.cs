// Dependency groups for structured pruning (DepGraph, CVPR 2023, on the exported graph): the sets of
// channels that must be removed together, and who must change when they are.
//   A linear op's output (Conv, ConvTranspose, Gemm, MatMul) opens a channel space of Cout channels;
//   a graph input opens one that may not be pruned. Every feature map is a list of segments of such
//   spaces along its channel axis, each segment possibly repeated (Flatten of [N,C,H,W] maps channel c to
//   features [c*H*W, (c+1)*H*W)). The channel axis is kept per feature map, counted from the end so that
//   broadcasting lines maps up: a Conv's output has its channels on axis 1 ([N,C,H,W]: -3), a MatMul's or
//   Gemm's on the last axis ([batch, sequence, C]: -1, a transformer's hidden or MLP channels).
//   - channel-preserving ops (activations, BatchNormalization, PRelu, pooling, GlobalAveragePool, Pad
//     and Resize that leave axis 1 alone, Identity, Dropout) pass their input's segments through; their
//     per-channel parameters (BN, PRelu slopes, a [C,1,1] constant) are sliced with the group;
//   - a depthwise conv (group == Cin == Cout > 1) ties its input and output channels;
//   - a grouped Conv (group G, not depthwise) reading or producing a group splits it into G equal blocks,
//     each kept in the same count (the conv stays G groups of Cin'/G -> Cout'/G channels);
//   - Add/Sub/Mul/Div/Pow/Max/Min of two feature maps unify their segments (residual streams, SE gates
//     x * s(x), GELU's x * Phi(x)); with a constant, a scalar or one value per channel on the channel axis
//     ([C] after a MatMul, [C,1,1] after a Conv) is sliced along (a MatMul's bias Add);
//   - Concat on the channel axis concatenates segments; Split/Slice on it take whole segments;
//   - Flatten(axis 1) repeats each channel H*W times; a Transpose moves the channel axis where its perm
//     says ([N,C,L] -> [N,L,C]); a Reshape keeps the channels when the dims before the channel axis keep
//     their product (symbols matched by name) and the channel dim stays whole ([N,C,1,1] -> [N,C],
//     [N,C,H,W] -> [N,C,H*W]);
//   - a linear op reading a feature map consumes its segments when they lie on the axis it reduces over
//     (a Conv's axis 1, a MatMul's or Gemm's last axis): its input channels are sliced.
// A space reaching a graph output, a grouped ConvTranspose, an op whose channel mapping is not known, a
// Reshape that splits or merges the channel axis (attention heads: prune{unit=head}), a LayerNormalization
// over the channels (removing channels changes its mean and variance, so the cut would not be exact), or a
// Split/Slice cutting a segment becomes unprunable, with the reason; nothing is guessed. Main graph only.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>A run of one group's channels in a feature map, <paramref name="Repeat"/> elements per channel.</summary>
public readonly record struct ChannelSegment(int Group, int Channels, long Repeat = 1);

/// <summary>A linear op reading a group's channels: its input channels [Offset, Offset + channels*Repeat).</summary>
public sealed record GroupConsumer(Node Node, long Offset, long Repeat);

/// <summary>One dependency group: channels removed together, and every op that changes when they are.</summary>
public sealed class DependencyGroup(int id, int channels)
{
    public int Id { get; internal set; } = id;
    public int Channels { get; } = channels;
    /// <summary>Linear ops whose output channels are this group (their weights lose rows on the out axis).</summary>
    public List<Node> Producers { get; } = new();
    /// <summary>Linear ops whose input channels include this group (their weights lose input slices).</summary>
    public List<GroupConsumer> Consumers { get; } = new();
    /// <summary>Ops whose per-channel parameters follow the group (BN, PRelu, depthwise convs, constants).</summary>
    public List<Node> Tied { get; } = new();
    /// <summary>Why the group may not be pruned (empty: prunable).</summary>
    public List<string> Reasons { get; } = new();
    public bool Prunable => Reasons.Count == 0;
    public long Macs { get; internal set; }
    /// <summary>Grouped convs touch these channels: they must be kept in equal counts in each of this many
    /// equal consecutive blocks (1: no constraint).</summary>
    public int Blocks { get; internal set; } = 1;
}

public sealed class DependencyGroups
{
    private readonly List<DependencyGroup> _spaces = new();
    private readonly List<int> _parent = new();
    private readonly Dictionary<Value, List<ChannelSegment>> _segments = new();
    private readonly Dictionary<Value, int> _axes = new();

    public IReadOnlyList<DependencyGroup> Groups { get; private set; } = [];
    /// <summary>The channel segments of each feature map (by value), after grouping.</summary>
    public IReadOnlyDictionary<Value, List<ChannelSegment>> Segments => _segments;
    public long TotalMacs { get; private set; }
    /// <summary>Ops that do multiply-accumulates whose count is unknown (a symbolic dim other than the batch, as a
    /// transformer's sequence): <see cref="TotalMacs"/> and each group's MACs leave them out.</summary>
    public int NodesWithUnknownMacs { get; private set; }

    /// <summary>The channel axis of a feature map (non-negative), or null when the value carries no channels.
    /// </summary>
    public int? ChannelAxis(Value v) =>
        _axes.TryGetValue(v, out var a) && v.Shape is { } s && s.Rank + a >= 0 ? s.Rank + a : null;

    /// <summary>The groups of a model's main graph (shapes are inferred where missing).</summary>
    public static DependencyGroups Analyze(Model model, IReadOnlySet<string>? exclude = null)
    {
        ShapeInference.Run(model);
        var d = new DependencyGroups();
        d.Build(model.Graph, exclude ?? new HashSet<string>());
        return d;
    }

    private int NewSpace(int channels, string? reason = null)
    {
        _spaces.Add(new DependencyGroup(_spaces.Count, channels));
        _parent.Add(_parent.Count);
        if (reason is not null) _spaces[^1].Reasons.Add(reason);
        return _spaces.Count - 1;
    }

    private int Find(int a)
    {
        while (_parent[a] != a) a = _parent[a] = _parent[_parent[a]];
        return a;
    }

    private void Union(int a, int b)
    {
        a = Find(a); b = Find(b);
        if (a == b) return;
        if (b < a) (a, b) = (b, a);
        _parent[b] = a;
        var (x, y) = (_spaces[a], _spaces[b]);
        x.Producers.AddRange(y.Producers);
        x.Consumers.AddRange(y.Consumers);
        x.Tied.AddRange(y.Tied);
        x.Blocks = (int)Lcm(x.Blocks, y.Blocks);
        foreach (var r in y.Reasons) if (!x.Reasons.Contains(r)) x.Reasons.Add(r);
    }

    private DependencyGroup Space(int a) => _spaces[Find(a)];

    private static long Lcm(long a, long b)
    {
        long x = a, y = b;
        while (y != 0) (x, y) = (y, x % y);
        return a / x * b;
    }

    private void Refuse(IEnumerable<ChannelSegment> segs, string reason)
    {
        foreach (var s in segs)
            if (!Space(s.Group).Reasons.Contains(reason)) Space(s.Group).Reasons.Add(reason);
    }

    private static int? Channels(Value v) =>
        v.Shape is { Rank: >= 2 } s && s[1].Value is long c && c > 0 && c <= int.MaxValue ? (int)c : null;

    private List<ChannelSegment>? Seg(Value? v) => v is not null && _segments.TryGetValue(v, out var s) ? s : null;

    /// <summary>The channel axis of a feature map counted from the end (-1: last), 0 when unknown.</summary>
    private int AxisOf(Value? v) => v is not null && _axes.TryGetValue(v, out var a) ? a : 0;

    /// <summary>Records a feature map's segments on its channel axis (<paramref name="axis"/> counted from the end).
    /// </summary>
    private void Set(Value y, List<ChannelSegment> segs, int axis)
    {
        _segments[y] = segs;
        _axes[y] = axis;
    }

    /// <summary>Channels on axis 1 of a value of known rank (graph inputs, Conv outputs, unknown ops).</summary>
    private void SetOnAxis1(Value y, List<ChannelSegment> segs) => Set(y, segs, 1 - (y.Shape?.Rank ?? 2));

    private void Build(Graph g, IReadOnlySet<string> exclude)
    {
        foreach (var x in g.Inputs.Where(v => !v.IsInitializer))
            if (Channels(x) is int c) SetOnAxis1(x, [new(NewSpace(c, $"channels of graph input '{x.Name}'"), c)]);
        foreach (var n in g.Nodes) Visit(n, exclude);
        foreach (var o in g.Outputs)
            if (Seg(o) is { } s) Refuse(s, $"reaches graph output '{o.Name}'");
        Finish(g);
    }

    private static bool Excluded(Node n, IReadOnlySet<string> exclude) =>
        exclude.Contains(n.Name ?? "") || exclude.Contains(n.OpType)
        || n.Outputs.Any(o => o is not null && exclude.Contains(o.Name));

    private void Visit(Node n, IReadOnlySet<string> exclude)
    {
        var inputs = n.Inputs.Select(Seg).ToList();
        var fed = inputs.Where(s => s is not null).SelectMany(s => s!).ToList();
        var y = n.Outputs.Count > 0 ? n.Outputs[0] : null;
        if (!n.IsStandard)
        {
            Refuse(fed, $"read by {n} ({n.Domain}.{n.OpType}: channel mapping unknown)");
            OpenUnknown(n);
            return;
        }
        if (OpTraits.Has(n, OpTrait.Linear))
        {
            Linear(n, inputs.FirstOrDefault(), exclude);
            if (inputs.Skip(1).Any(s => s is not null)) Refuse(fed, $"{n} reads a feature map as its weight");
            return;
        }
        if (y is null) { Refuse(fed, $"read by {n} (no output)"); return; }
        if (n.OpType == "LayerNormalization" && inputs[0] is not null)
        {
            LayerNorm(n, fed);
            return;
        }
        // How channels flow through the op: its OpRegistry entry says (ChannelMapping).
        switch (OpRegistry.Find(n)?.Channels ?? ChannelMapping.Unknown)
        {
            case ChannelMapping.Tied:
                Tied(n, inputs[0], fed, y);
                return;
            case ChannelMapping.ElementWise:
                Through(n, inputs[0], y, tied: false);
                return;
            case ChannelMapping.Pad:
                Pad(n, inputs[0], fed, y);
                return;
            case ChannelMapping.Resize:
                Through(n, inputs[0], y, tied: false);
                return;
            case ChannelMapping.Binary:
                Binary(n, inputs, y);
                return;
            case ChannelMapping.Concat:
                Concat(n, inputs, fed, y);
                return;
            case ChannelMapping.SplitOrSlice:
                SplitOrSlice(n, inputs[0], fed);
                return;
            case ChannelMapping.Flatten:
                Flatten(n, inputs[0], fed, y);
                return;
            case ChannelMapping.DropUnitAxes:
                // A Reshape's target must be a constant: the surgery rewrites its channel entry.
                if (inputs[0] is { } rs && KeptAxis(n.Input(0)!, y) is int kept
                    && (n.OpType != "Reshape" || Rewriter.ConstantOf(n.Input(1)) is not null))
                    Set(y, rs.ToList(), kept);
                else Unknown(n, fed, $"{n.OpType} splits, merges or moves the channel axis");
                return;
            case ChannelMapping.Transpose:
                Transpose(n, inputs[0], fed, y);
                return;
            default:
                Unknown(n, fed, $"channel mapping of {n.OpType} unknown");
                return;
        }
    }

    /// <summary>LayerNormalization over the channel axis: removing channels changes its statistics (not exact).
    /// </summary>
    private void LayerNorm(Node n, List<ChannelSegment> fed)
    {
        var rank = n.Input(0)!.Shape?.Rank ?? 0;
        var first = n.GetInt("axis", -1);
        if (first < 0) first += rank;
        var axis = rank + AxisOf(n.Input(0));
        Unknown(n, fed, axis >= first ? "LayerNormalization normalizes over these channels (removing some "
            + "changes its mean and variance)" : "LayerNormalization's channel mapping unknown");
    }

    /// <summary>An op with per-channel parameters on axis 1 (PRelu, BatchNormalization, InstanceNorm): they are
    /// sliced with the group, so they must be constants.</summary>
    private void Tied(Node n, List<ChannelSegment>? input, List<ChannelSegment> fed, Value y)
    {
        if (input is not null && AxisOf(n.Input(0)) != 1 - (n.Input(0)!.Shape?.Rank ?? 0))
        {
            Unknown(n, fed, $"{n.OpType}'s channels are on axis 1, the feature map's are not");
            return;
        }
        Through(n, input, y, tied: true);
        if (n.Inputs.Skip(1).Any(v => v is not null && Rewriter.ConstantOf(v) is null) && input is { } ps)
            Refuse(ps, $"{n} has a parameter that is not a constant (canonicalize first)");
    }

    /// <summary>Pad passes channels through when its pads are constant and leave the channel axis alone.</summary>
    private void Pad(Node n, List<ChannelSegment>? input, List<ChannelSegment> fed, Value y)
    {
        var padAxis = (n.Input(0)?.Shape?.Rank ?? 0) + AxisOf(n.Input(0));
        if (Rewriter.ConstantOf(n.Input(1))?.ToInt64Array() is { } pads && pads.Length % 2 == 0
            && pads.Length / 2 > padAxis && padAxis >= 0 && pads[padAxis] == 0
            && pads[pads.Length / 2 + padAxis] == 0)
            Through(n, input, y, tied: false);
        else Unknown(n, fed, "pads not constant or padding the channel axis");
    }

    /// <summary>A Concat on the channel axis of feature maps: the output's channels are its inputs' in order.
    /// </summary>
    private void Concat(Node n, List<List<ChannelSegment>?> inputs, List<ChannelSegment> fed, Value y)
    {
        var ax = n.GetInt("axis", 0);
        var cat = AxisOf(n.Input(0));
        if (y.Shape is { } ys && (ax == cat || ax == ys.Rank + cat) && inputs.All(s => s is not null)
            && n.Inputs.All(i => AxisOf(i) == cat))
            Set(y, inputs.SelectMany(s => s!).ToList(), cat);
        else Unknown(n, fed, "concatenates on another axis than channels, or a non-feature-map input");
    }

    /// <summary>Flatten on axis 1 of a static feature map: each channel becomes a run of H*W features.</summary>
    private void Flatten(Node n, List<ChannelSegment>? input, List<ChannelSegment> fed, Value y)
    {
        if (n.GetInt("axis", 1) == 1 && input is { } fs && n.Input(0)!.Shape is { } xs
            && AxisOf(n.Input(0)) == 1 - xs.Rank && xs.Dims.Skip(2).All(d => d.IsKnown))
            Set(y, Repeated(fs, xs.Dims.Skip(2).Aggregate(1L, (a, d) => a * d.Value!.Value)), -1);
        else Unknown(n, fed, "Flatten not on axis 1 of a static feature map");
    }

    /// <summary>Transpose moves the channel axis where its perm says.</summary>
    private void Transpose(Node n, List<ChannelSegment>? input, List<ChannelSegment> fed, Value y)
    {
        var perm = n.GetInts("perm");
        var tr = n.Input(0)?.Shape?.Rank ?? 0;
        if (input is { } tsegs && tr > 0)
        {
            var from = tr + AxisOf(n.Input(0));
            var to = perm is null ? tr - 1 - from : Array.IndexOf(perm, (long)from);
            if (to >= 0) { Set(y, tsegs.ToList(), to - tr); return; }
        }
        Unknown(n, fed, "Transpose's perm unknown");
    }

    private void Linear(Node n, List<ChannelSegment>? input, IReadOnlySet<string> exclude)
    {
        var op = LinearOp.Of(n);
        var y = n.Output();
        if (op is null)
        {
            if (input is not null) Refuse(input, $"read by {n} whose weight is not constant");
            OpenUnknown(n);
            return;
        }
        bool excluded = Excluded(n, exclude);
        // The axis the op reduces over: a Conv's axis 1, a MatMul's or Gemm's last; its output's channels likewise.
        bool conv = n.OpType is "Conv" or "ConvTranspose";
        var xRank = n.Input(0)?.Shape?.Rank ?? 2;
        int reads = conv ? 1 - xRank : -1;
        int writes = conv ? 1 - (y.Shape?.Rank ?? xRank) : -1;
        if (input is not null && AxisOf(n.Input(0)) != reads)
        {
            Refuse(input, $"read by {n} on another axis than its channels");
            input = null;
        }
        if (op.IsDepthwise && n.OpType == "Conv")
        {
            if (input is null) { OpenUnknown(n); return; }
            foreach (var s in input) Space(s.Group).Tied.Add(n);
            if (excluded) Refuse(input, $"{n} is excluded");
            Set(y, input.ToList(), writes);
            return;
        }
        bool grouped = op.Groups != 1;
        if (input is not null)
        {
            if (grouped && n.OpType != "Conv") Refuse(input, $"read by grouped {n} (group={op.Groups})");
            else if (grouped && (input.Count != 1 || input[0].Repeat != 1))
                Refuse(input, $"read by grouped {n} whose input is not one channel group");
            else if (grouped) Space(input[0].Group).Blocks = (int)Lcm(Space(input[0].Group).Blocks, op.Groups);
            long offset = 0;
            foreach (var s in input)
            {
                Space(s.Group).Consumers.Add(new GroupConsumer(n, offset, s.Repeat));
                offset += s.Channels * s.Repeat;
            }
            if (offset != op.InChannels) Refuse(input,
                $"{n} reads {op.InChannels} input channels, its input has {offset}");
            if (excluded) Refuse(input, $"{n} is excluded");
        }
        var space = NewSpace(op.OutChannels);
        Space(space).Producers.Add(n);
        if (grouped && n.OpType != "Conv") Space(space).Reasons.Add($"produced by grouped {n} (group={op.Groups})");
        else if (grouped) Space(space).Blocks = op.Groups;
        if (excluded) Space(space).Reasons.Add($"{n} is excluded");
        Set(y, [new(space, op.OutChannels)], writes);
    }

    private void Through(Node n, List<ChannelSegment>? input, Value y, bool tied)
    {
        if (input is null) { OpenUnknown(n); return; }
        if (tied) foreach (var s in input) Space(s.Group).Tied.Add(n);
        Set(y, input.ToList(), AxisOf(n.Input(0)));
        foreach (var o in n.Outputs.Skip(1))
            if (o is not null && (o.Uses.Count > 0 || o.IsGraphOutput)) Refuse(input, $"{n} has a used second output");
    }

    private void Binary(Node n, List<List<ChannelSegment>?> inputs, Value y)
    {
        var maps = inputs.Where(s => s is not null).Select(s => s!).ToList();
        if (maps.Count == 0) { OpenUnknown(n); return; }
        if (n.Inputs.Count != 2)
        {
            Unknown(n, maps.SelectMany(m => m).ToList(), $"{n.OpType} of more than two operands");
            return;
        }
        var mapped = n.Inputs.Where(v => Seg(v) is not null).ToList();
        var axis = AxisOf(mapped[0]);
        if (maps.Count == 2)
        {
            var (a, b) = (maps[0], maps[1]);
            if (a.Count != b.Count || AxisOf(mapped[1]) != axis || a.Zip(b).Any(p => p.First.Channels
                != p.Second.Channels || p.First.Repeat != p.Second.Repeat))
            {
                Unknown(n, a.Concat(b).ToList(), "combines feature maps whose channel groups do not line up");
                return;
            }
            for (int i = 0; i < a.Count; i++) Union(a[i].Group, b[i].Group);
            Set(y, a.ToList(), axis);
            return;
        }
        // One feature map and a constant: a scalar, or one value per channel ([C,1,...] / [1,C,1,...]), is sliced
        // along.
        var map = maps[0];
        // (A malformed node may have no other operand at all: then it is an op whose mapping is unknown.)
        var other = n.Inputs.FirstOrDefault(v => Seg(v) is null);
        var c = map.Sum(s => s.Channels);
        if (other is not null && Rewriter.ConstantOf(other) is { } t && (t.ElementCount == 1 || PerChannel(t, c,
            axis)))
        {
            if (t.ElementCount != 1) foreach (var s in map) Space(s.Group).Tied.Add(n);
            Set(y, map.ToList(), axis);
        }
        else Unknown(n, map, $"{n.OpType} with a non-constant or spatial second operand");
    }

    /// <summary>One value per channel on the channel axis (<paramref name="axis"/> counted from the end), ones
    /// elsewhere.</summary>
    private static bool PerChannel(Tensor t, int c, int axis) =>
        axis < 0 && t.ElementCount == c && t.Dims.Length >= -axis && t.Dims[t.Dims.Length + axis] == c;

    /// <summary>Where a Reshape or Squeeze puts the channel axis of <paramref name="x"/> in <paramref name="y"/>
    /// (counted from the end): the dims before it keep their product and the channel dim stays whole; else null.
    /// </summary>
    private int? KeptAxis(Value x, Value y)
    {
        if (x.Shape is not { } xs || y.Shape is not { } ys || xs.Rank == 0) return null;
        var a = xs.Rank + AxisOf(x);
        if (a < 0 || a >= xs.Rank || xs[a].Value is not long c) return null;
        var before = Product(xs.Dims.Take(a));
        if (before is null) return null;
        for (int b = 0; b < ys.Rank; b++)
            if (ys[b].Value == c && Product(ys.Dims.Take(b)) is { } p && p.Known == before.Value.Known
                && p.Symbols.SequenceEqual(before.Value.Symbols))
                return b - ys.Rank;
        return null;
    }

    /// <summary>A product of dims: its known factor and its symbols, sorted; null when a dim is neither.</summary>
    private static (long Known, List<string> Symbols)? Product(IEnumerable<Dim> dims)
    {
        long known = 1;
        var symbols = new List<string>();
        foreach (var d in dims)
        {
            if (d.Value is long v) known *= v;
            else if (d.Param is string p) symbols.Add(p);
            else return null;
        }
        symbols.Sort(StringComparer.Ordinal);
        return (known, symbols);
    }

    /// <summary>A sum of MAC counts that stops at long.MaxValue (a malformed model's dims can overflow it).</summary>
    private static long SaturatingSum(IEnumerable<long> values) =>
        values.Aggregate(0L, (a, b) => b > 0 && a > long.MaxValue - b ? long.MaxValue : a + b);

    private void SplitOrSlice(Node n, List<ChannelSegment>? input, List<ChannelSegment> fed)
    {
        if (input is null) { OpenUnknown(n); return; }
        var x = n.Input(0)!;
        var rank = x.Shape?.Rank ?? 0;
        var axis0 = rank + AxisOf(x);
        var ranges = new List<(long Start, long Count, Value Out)>();
        if (n.OpType == "Split")
        {
            var axis = n.GetInt("axis", 0);
            var split = n.GetInts("split") ?? Rewriter.ConstantOf(n.Input(1))?.ToInt64Array();
            if ((axis != axis0 && axis != axis0 - rank) || split is null)
            {
                Unknown(n, fed,
                "Split not on channels with constant sizes"); return;
            }
            long at = 0;
            for (int i = 0; i < split.Length && i < n.Outputs.Count; i++)
            {
                if (n.Outputs[i] is { } o) ranges.Add((at, split[i], o));
                at += split[i];
            }
        }
        else
        {
            var starts = Rewriter.ConstantOf(n.Input(1))?.ToInt64Array();
            var ends = Rewriter.ConstantOf(n.Input(2))?.ToInt64Array();
            var axes = n.Input(3) is null ? starts?.Select((_,
                i) => (long)i).ToArray() : Rewriter.ConstantOf(n.Input(3))?.ToInt64Array();
            var steps = n.Input(4) is null ? null : Rewriter.ConstantOf(n.Input(4))?.ToInt64Array();
            if (starts is null || ends is null || axes is null || (steps is not null && steps.Any(s => s != 1)))
            {
                Unknown(n, fed, "Slice bounds not constant");
                return;
            }
            var total = input.Sum(s => s.Channels * s.Repeat);
            long lo = 0, hi = total;
            for (int i = 0; i < axes.Length; i++)
            {
                if (axes[i] != axis0 && axes[i] != axis0 - rank) continue;
                lo = Math.Clamp(starts[i] < 0 ? starts[i] + total : starts[i], 0, total);
                hi = Math.Clamp(ends[i] < 0 ? ends[i] + total : ends[i], lo, total);
            }
            if (lo == 0 && hi == total) { Set(n.Output(), input.ToList(), AxisOf(x)); return; }
            ranges.Add((lo, hi - lo, n.Output()));
        }
        foreach (var (start, count, o) in ranges)
        {
            var taken = new List<ChannelSegment>();
            long at = 0;
            foreach (var s in input)
            {
                var len = s.Channels * s.Repeat;
                bool inside = at >= start && at + len <= start + count;
                bool overlaps = at < start + count && at + len > start;
                if (inside) taken.Add(s);
                else if (overlaps) { Unknown(n, fed, $"{n.OpType} cuts a channel group"); return; }
                at += len;
            }
            Set(o, taken, AxisOf(x));
        }
    }

    private static List<ChannelSegment> Repeated(List<ChannelSegment> s, long factor) =>
        s.Select(x => x with { Repeat = x.Repeat * factor }).ToList();

    private void Unknown(Node n, List<ChannelSegment> fed, string reason)
    {
        Refuse(fed, $"read by {n}: {reason}");
        OpenUnknown(n);
    }

    /// <summary>Outputs of an op whose mapping is unknown open unprunable spaces: on the channel axis of the widest
    /// feature map it reads when the rank is the same (a residual stream stays on its hidden axis, a cls token
    /// Concat follows the patches), else on axis 1.</summary>
    private void OpenUnknown(Node n)
    {
        var from = n.Inputs.Where(v => Seg(v) is not null).MaxBy(v => Seg(v)!.Sum(x => x.Channels * x.Repeat));
        foreach (var o in n.Outputs)
        {
            if (o?.Shape is not { } os) continue;
            var reason = $"produced by {n} (mapping unknown)";
            if (from?.Shape is { } fs && fs.Rank == os.Rank && os.Rank + AxisOf(from) is var a && a >= 0
                && os[a].Value is long c && c > 0 && c <= int.MaxValue)
                Set(o, [new(NewSpace((int)c, reason), (int)c)], AxisOf(from));
            else if (Channels(o) is int c1) SetOnAxis1(o, [new(NewSpace(c1, reason), c1)]);
        }
    }

    private void Finish(Graph g)
    {
        var roots = Enumerable.Range(0, _spaces.Count).Where(i => Find(i) == i).ToList();
        var macsOf = new Dictionary<Node, long>();
        foreach (var n in g.Nodes)
        {
            var macs = ModelStats.Macs(n, out var applies);
            if (applies && macs is null) NodesWithUnknownMacs++;
            macsOf[n] = macs ?? 0;
        }
        TotalMacs = SaturatingSum(macsOf.Values);
        var groups = new List<DependencyGroup>();
        foreach (var s in _spaces) s.Id = -1;
        foreach (var r in roots)
        {
            var grp = _spaces[r];
            // Only spaces some op could shrink are groups (a graph input feeding only a conv is not).
            if (grp.Producers.Count == 0 && grp.Consumers.Count == 0 && grp.Tied.Count == 0) continue;
            var members = grp.Producers.Concat(grp.Consumers.Select(c => c.Node)).Concat(grp.Tied).Distinct();
            grp.Macs = SaturatingSum(members.Select(n => macsOf.GetValueOrDefault(n)));
            if (grp.Producers.Count == 0 && grp.Prunable) grp.Reasons.Add("no linear op produces these channels");
            if (grp.Channels % grp.Blocks != 0)
                grp.Reasons.Add($"grouped convs split its {grp.Channels} channels into {grp.Blocks} unequal blocks");
            groups.Add(grp);
        }
        for (int i = 0; i < groups.Count; i++) groups[i].Id = i;
        foreach (var (v, segs) in _segments.ToList())
            _segments[v] = segs.Select(s => s with { Group = _spaces[Find(s.Group)].Id }).ToList();
        Groups = groups;
    }
}
