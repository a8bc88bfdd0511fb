// Dependency groups for structured pruning (DepGraph, CVPR 2023, on the exported graph): the sets of
// channels that must be removed together, and who must change when they are.
//   A linear op's output (Conv, ConvTranspose, Gemm, MatMul) opens a channel space of Cout channels;
//   a graph input opens one that may not be pruned. Every feature map is a list of segments of such
//   spaces along its channel axis (axis 1), each segment possibly repeated (Flatten of [N,C,H,W] maps
//   channel c to features [c*H*W, (c+1)*H*W)).
//   - channel-preserving ops (activations, BatchNormalization, PRelu, pooling, GlobalAveragePool, Pad
//     and Resize that leave axis 1 alone, Identity, Dropout) pass their input's segments through; their
//     per-channel parameters (BN, PRelu slopes, a [C,1,1] constant) are sliced with the group;
//   - a depthwise conv (group == Cin == Cout > 1) ties its input and output channels;
//   - a grouped Conv (group G, not depthwise) reading or producing a group splits it into G equal blocks,
//     each kept in the same count (the conv stays G groups of Cin'/G -> Cout'/G channels);
//   - Add/Sub/Mul/Div of two feature maps unify their segments (residual streams, SE gates x * s(x));
//   - Concat on axis 1 concatenates segments; Split/Slice on axis 1 take whole segments;
//   - Flatten(axis 1) and a Reshape [N,C,1,1] -> [N,C] repeat each channel H*W times;
//   - a linear op reading a feature map consumes its segments (its input channels are sliced).
// A space reaching a graph output, a grouped ConvTranspose, an op whose channel mapping is not known, a
// Reshape/Transpose that moves axis 1, or a Split/Slice cutting a segment becomes unprunable, with the
// reason; nothing is guessed. Main graph only.
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

    public IReadOnlyList<DependencyGroup> Groups { get; private set; } = [];
    /// <summary>The channel segments of each feature map (by value), after grouping.</summary>
    public IReadOnlyDictionary<Value, List<ChannelSegment>> Segments => _segments;
    public long TotalMacs { get; private set; }

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

    private void Build(Graph g, IReadOnlySet<string> exclude)
    {
        foreach (var x in g.Inputs.Where(v => !v.IsInitializer))
            if (Channels(x) is int c) _segments[x] = [new(NewSpace(c, $"channels of graph input '{x.Name}'"), c)];
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
        // How channels flow through the op: its OpRegistry entry says (ChannelMapping).
        switch (OpRegistry.Find(n)?.Channels ?? ChannelMapping.Unknown)
        {
            case ChannelMapping.Tied:
                Through(n, inputs[0], y, tied: true);
                // Their per-channel parameters are sliced with the group: they must be constants.
                if (n.Inputs.Skip(1).Any(v => v is not null && Rewriter.ConstantOf(v) is null) && inputs[0] is { } ps)
                    Refuse(ps, $"{n} has a parameter that is not a constant (canonicalize first)");
                return;
            case ChannelMapping.ElementWise:
                Through(n, inputs[0], y, tied: false);
                return;
            case ChannelMapping.Pad:
                if (Rewriter.ConstantOf(n.Input(1))?.ToInt64Array() is { } pads && pads.Length % 2 == 0
                    && pads.Length / 2 > 1 && pads[1] == 0 && pads[pads.Length / 2 + 1] == 0)
                    Through(n, inputs[0], y, tied: false);
                else Unknown(n, fed, "pads not constant or padding the channel axis");
                return;
            case ChannelMapping.Resize:
                Through(n, inputs[0], y, tied: false);
                return;
            case ChannelMapping.Binary:
                Binary(n, inputs, y);
                return;
            case ChannelMapping.Concat:
                var ax = n.GetInt("axis", 0);
                if ((ax == 1 || (y.Shape is { } ys && ax == 1 - ys.Rank)) && inputs.All(s => s is not null))
                    _segments[y] = inputs.SelectMany(s => s!).ToList();
                else Unknown(n, fed, "concatenates on another axis than channels, or a non-feature-map input");
                return;
            case ChannelMapping.SplitOrSlice:
                SplitOrSlice(n, inputs[0], fed);
                return;
            case ChannelMapping.Flatten:
                if (n.GetInt("axis", 1) == 1 && inputs[0] is { } fs && n.Input(0)!.Shape is { } xs
                    && xs.Dims.Skip(2).All(d => d.IsKnown))
                    _segments[y] = Repeated(fs, xs.Dims.Skip(2).Aggregate(1L, (a, d) => a * d.Value!.Value));
                else Unknown(n, fed, "Flatten not on axis 1 of a static feature map");
                return;
            case ChannelMapping.DropUnitAxes:
                if (inputs[0] is { } rs && n.Input(0)!.Shape is { Rank: > 2 } rx && y.Shape is { Rank: 2 } ry
                    && rx[0].Equals(ry[0]) && rx.Dims.Skip(2).All(d => d.Value == 1) && ry[1].Value == rx[1].Value)
                    _segments[y] = rs.ToList();
                else Unknown(n, fed, $"{n.OpType} moves the channel axis");
                return;
            default:
                Unknown(n, fed, $"channel mapping of {n.OpType} unknown");
                return;
        }
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
        if (op.IsDepthwise && n.OpType == "Conv")
        {
            if (input is null) { OpenUnknown(n); return; }
            foreach (var s in input) Space(s.Group).Tied.Add(n);
            if (excluded) Refuse(input, $"{n} is excluded");
            _segments[y] = input.ToList();
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
        _segments[y] = [new(space, op.OutChannels)];
    }

    private void Through(Node n, List<ChannelSegment>? input, Value y, bool tied)
    {
        if (input is null) { OpenUnknown(n); return; }
        if (tied) foreach (var s in input) Space(s.Group).Tied.Add(n);
        _segments[y] = input.ToList();
        foreach (var o in n.Outputs.Skip(1))
            if (o is not null && (o.Uses.Count > 0 || o.IsGraphOutput)) Refuse(input, $"{n} has a used second output");
    }

    private void Binary(Node n, List<List<ChannelSegment>?> inputs, Value y)
    {
        var maps = inputs.Where(s => s is not null).Select(s => s!).ToList();
        if (maps.Count == 0) { OpenUnknown(n); return; }
        if (maps.Count == 2)
        {
            var (a, b) = (maps[0], maps[1]);
            if (a.Count != b.Count || a.Zip(b).Any(p => p.First.Channels != p.Second.Channels
                || p.First.Repeat != p.Second.Repeat))
            {
                Unknown(n, a.Concat(b).ToList(), "combines feature maps whose channel groups do not line up");
                return;
            }
            for (int i = 0; i < a.Count; i++) Union(a[i].Group, b[i].Group);
            _segments[y] = a.ToList();
            return;
        }
        // One feature map and a constant: a scalar, or one value per channel ([C,1,...] / [1,C,1,...]), is sliced
        // along.
        var map = maps[0];
        // (A malformed node may have no other operand at all: then it is an op whose mapping is unknown.)
        var other = n.Inputs.FirstOrDefault(v => Seg(v) is null);
        var c = map.Sum(s => s.Channels);
        if (other is not null && Rewriter.ConstantOf(other) is { } t && (t.ElementCount == 1 || PerChannel(t, c,
            y.Shape?.Rank ?? 0)))
        {
            if (t.ElementCount != 1) foreach (var s in map) Space(s.Group).Tied.Add(n);
            _segments[y] = map.ToList();
        }
        else Unknown(n, map, $"{n.OpType} with a non-constant or spatial second operand");
    }

    private static bool PerChannel(Tensor t, int c, int rank) =>
        rank >= 2 && t.ElementCount == c && t.Dims.Length >= rank - 1 && t.Dims.Length <= rank
        && t.Dims[t.Dims.Length - (rank - 1)] == c;

    /// <summary>A sum of MAC counts that stops at long.MaxValue (a malformed model's dims can overflow it).</summary>
    private static long SaturatingSum(IEnumerable<long> values) =>
        values.Aggregate(0L, (a, b) => b > 0 && a > long.MaxValue - b ? long.MaxValue : a + b);

    private void SplitOrSlice(Node n, List<ChannelSegment>? input, List<ChannelSegment> fed)
    {
        if (input is null) { OpenUnknown(n); return; }
        var x = n.Input(0)!;
        var rank = x.Shape?.Rank ?? 0;
        var ranges = new List<(long Start, long Count, Value Out)>();
        if (n.OpType == "Split")
        {
            var axis = n.GetInt("axis", 0);
            var split = n.GetInts("split") ?? Rewriter.ConstantOf(n.Input(1))?.ToInt64Array();
            if ((axis != 1 && axis != 1 - rank) || split is null)
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
                if (axes[i] != 1 && axes[i] != 1 - rank) continue;
                lo = Math.Clamp(starts[i] < 0 ? starts[i] + total : starts[i], 0, total);
                hi = Math.Clamp(ends[i] < 0 ? ends[i] + total : ends[i], lo, total);
            }
            if (lo == 0 && hi == total) { _segments[n.Output()] = input.ToList(); return; }
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
            _segments[o] = taken;
        }
    }

    private static List<ChannelSegment> Repeated(List<ChannelSegment> s, long factor) =>
        s.Select(x => x with { Repeat = x.Repeat * factor }).ToList();

    private void Unknown(Node n, List<ChannelSegment> fed, string reason)
    {
        Refuse(fed, $"read by {n}: {reason}");
        OpenUnknown(n);
    }

    /// <summary>Outputs of an op whose mapping is unknown open unprunable spaces.</summary>
    private void OpenUnknown(Node n)
    {
        foreach (var o in n.Outputs)
            if (o is not null && Channels(o) is int c) _segments[o] = [new(NewSpace(c,
                $"produced by {n} (mapping unknown)"), c)];
    }

    private void Finish(Graph g)
    {
        var roots = Enumerable.Range(0, _spaces.Count).Where(i => Find(i) == i).ToList();
        var macsOf = new Dictionary<Node, long>();
        foreach (var n in g.Nodes) macsOf[n] = ModelStats.Macs(n, out _) ?? 0;
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
