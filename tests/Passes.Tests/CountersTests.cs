using System.Reflection;
using OnnxOpt.Passes;
using Xunit;

namespace OnnxOpt.Tests;

/// <summary>The counter catalogue: one constant per text, so two counters never merge in a report.</summary>
public class CountersTests
{
    [Fact]
    public void EveryCounterTextIsDeclaredOnce()
    {
        var keys = typeof(Counters).GetNestedTypes()
            .SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.Static)
                .Where(f => f.FieldType == typeof(CounterKey))
                .Select(f => (Name: $"{t.Name}.{f.Name}", Key: (CounterKey)f.GetValue(null)!)))
            .ToList();
        Assert.True(keys.Count > 60, $"{keys.Count} counters found");
        var twice = keys.GroupBy(k => k.Key.Text).Where(g => g.Count() > 1)
            .Select(g => $"'{g.Key}': {string.Join(", ", g.Select(k => k.Name))}").ToList();
        Assert.True(twice.Count == 0, string.Join("; ", twice));
        Assert.All(keys, k => Assert.False(string.IsNullOrWhiteSpace(k.Key.Text), k.Name));
    }

    [Fact]
    public void StatsAddUpByKeyAndReadZeroWhenNeverCounted()
    {
        var s = new PassStats();
        s.Count(Counters.Prune.HeadsRemoved, 3);
        s.Count(Counters.Prune.HeadsRemoved);
        s.Count(Counters.Quantize.Quantized("MatMul"));
        Assert.Equal(4, s[Counters.Prune.HeadsRemoved]);
        Assert.Equal(1, s[Counters.Quantize.Quantized("MatMul")]);
        Assert.Equal(0, s[Counters.Prune.BlocksDropped]);
        Assert.Equal(["heads removed", "quantized MatMul"], s.Counters.Keys);
    }
}
