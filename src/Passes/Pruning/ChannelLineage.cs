// Channel lineage: which channels of the pipeline input's feature maps a pruned model's feature maps still are.
// Structured pruning removes channels but keeps every kept value's name, so after
//   prune{macs=0.5}:  conv3_out  [N, 64, 7, 7]  ->  [N, 29, 7, 7]
// the lineage records conv3_out -> (axis 1, kept [0, 3, 4, 9, ...]): the 29 channels of the student are the teacher's
// channels 0, 3, 4, 9, ... Training passes use it to match a pruned student's intermediate values with the kept part
// of the teacher's (features=blocks): t' = t.take(kept, axis). A second prune composes: if the first kept K (indices
// into the input model's channels) and the second keeps positions P of what is left, the value now holds K[P].
// A value the lineage does not name is whole (same channels as the input's value of that name, if any).
namespace OnnxOpt.Passes;

/// <summary>The kept channels of one feature map: indices into the pipeline input's channels on <see cref="Axis"/>.
/// </summary>
public sealed record KeptChannels(int Axis, int[] Kept);

/// <summary>Value name -> the input model's channels it keeps; filled by prune, read by distill's features.</summary>
public sealed class ChannelLineage
{
    private readonly Dictionary<string, KeptChannels> _map = new(StringComparer.Ordinal);

    public int Count => _map.Count;

    /// <summary>The values recorded, in name order.</summary>
    public IEnumerable<string> Values => _map.Keys.Order(StringComparer.Ordinal);

    public KeptChannels? Of(string value) => _map.GetValueOrDefault(value);

    /// <summary>Records that <paramref name="value"/> now keeps <paramref name="positions"/> (ascending) of the
    /// channels it had on <paramref name="axis"/> before this cut, composed with any earlier cut.</summary>
    public void Record(string value, int axis, IReadOnlyList<long> positions)
    {
        var pos = positions.Select(p => checked((int)p)).ToArray();
        if (_map.TryGetValue(value, out var before))
        {
            if (before.Axis != axis)
                throw new InvalidOperationException($"'{value}' was pruned on axis {before.Axis}, now on {axis}");
            pos = pos.Select(p => before.Kept[p]).ToArray();
        }
        _map[value] = new KeptChannels(axis, pos);
    }
}
