// A counter's key: the text reports print for it. A pass counts with a constant (ctx.Stats.Count(Key, n)) and a
// test reads the same constant (stats[Key]); onnxopt's own passes declare theirs in Counters (OnnxOpt.Passes).
namespace OnnxOpt.Passes;

public readonly record struct CounterKey(string Text)
{
    public override string ToString() => Text;
}
