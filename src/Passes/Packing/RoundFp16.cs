// round-fp16: every float initializer's values rounded to the nearest fp16 value (round to nearest even), kept
// as float32, so ORT runs the same float kernels and the graph does not change, while `pack` stores those
// tensors (and the codebooks of clustered ones) in half the bytes, exactly (ModelArchive widens them back).
//   before: %b = float[64] { 0.0123456789, ... }     after: %b = float[64] { 0.01234436, ... }
//   per value |x - fp16(x)| <= 2^-11 |x| in fp16's normal range (|x| >= 2^-14), <= 2^-25 below it;
//   a clustered tensor keeps at most its K distinct values (two may meet).
// Left alone, with a note: tensors with a value fp16 cannot hold (|x| > 65504, which would become infinity,
// or a non-zero value that would become zero, such as an epsilon of 1e-12), and float inputs that decide
// shapes or counts (Resize/Upsample scales, Range's start/limit/delta), which rounding could change.
// Approximate (tiny): validated on held-out data like the other storage passes.
using System.Globalization;
using System.Runtime.InteropServices;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record RoundFp16Options
{
    [Option("min-elements", "tensors with fewer elements are left alone", Min = 0)]
    public long MinElements { get; init; } = 1;
    [Option("exclude", "initializer names never rounded (';'-separated)")]
    public string Exclude { get; init; } = "";
}

public sealed class RoundFp16 : Pass<RoundFp16Options>
{
    public override string Name => "round-fp16";
    public override string Summary =>
        "round float initializers to fp16 values, kept float32: pack stores them (and codebooks) in half the bytes";
    public override bool IsExact(RoundFp16Options options) => false;

    private const float MinNormal = 6.1035156e-5f; // 2^-14

    /// <summary>Inputs (op, index) whose float value decides a shape or a count.</summary>
    private static readonly HashSet<(string, int)> ShapeDeciding =
        [("Resize", 1), ("Resize", 2), ("Upsample", 1), ("Range", 0), ("Range", 1), ("Range", 2)];

    public override void Run(PassContext ctx, RoundFp16Options o)
    {
        var g = ctx.Model.Graph;
        var exclude = o.Exclude.Split(';', StringSplitOptions.RemoveEmptyEntries
            | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        var shaping = g.SelfAndSubgraphs().SelectMany(s => s.Nodes)
            .SelectMany(n => n.Inputs.Select((v, i) => (v, i, n.OpType)))
            .Where(x => x.v is not null && ShapeDeciding.Contains((x.OpType, x.i))).Select(x => x.v!.Name)
            .ToHashSet(StringComparer.Ordinal);
        int rounded = 0;
        long changed = 0;
        double worst = 0;
        foreach (var v in g.Initializers.ToList())
        {
            if (v.Initializer is not { ElementType: DataType.Float } t || t.ElementCount < o.MinElements
                || exclude.Contains(v.Name)) continue;
            if (shaping.Contains(v.Name))
            {
                ctx.Stats.Notes.Add($"round-fp16: {v.Name} kept (it decides a shape or a count)");
                continue;
            }
            var w = MemoryMarshal.Cast<byte, float>(t.RawData.Span);
            var r = new float[w.Length];
            string? why = null;
            long n = 0;
            double err = 0;
            for (int i = 0; i < w.Length && why is null; i++)
            {
                var x = w[i];
                r[i] = (float)(Half)x;
                var shown = x.ToString("G6", CultureInfo.InvariantCulture);
                if (float.IsFinite(x) && !float.IsFinite(r[i])) why = $"{shown} is beyond fp16's range";
                else if (x != 0 && r[i] == 0) why = $"{shown} would become 0";
                else if (BitConverter.SingleToInt32Bits(r[i]) != BitConverter.SingleToInt32Bits(x))
                {
                    n++;
                    if (Math.Abs(x) >= MinNormal) err = Math.Max(err, Math.Abs((double)r[i] - x) / Math.Abs(x));
                }
            }
            if (why is not null)
            {
                ctx.Stats.Notes.Add($"round-fp16: {v.Name} kept ({why})");
                continue;
            }
            if (n == 0) continue;
            var bytes = MemoryMarshal.AsBytes(r.AsSpan()).ToArray();
            ctx.Rewriter.SetInitializer(v, t.WithData(DataType.Float, t.Dims, bytes));
            rounded++;
            changed += n;
            worst = Math.Max(worst, err);
        }
        ctx.Stats.Count(Counters.RoundFp16.TensorsRounded, rounded);
        ctx.Stats.Count(Counters.RoundFp16.ValuesChanged, changed);
        if (rounded > 0)
            ctx.Stats.Notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"round-fp16: largest relative change {worst:E2} (values of fp16's normal range)"));
    }
}
