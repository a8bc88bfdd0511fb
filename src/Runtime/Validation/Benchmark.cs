// Latency of one or two models in ONNX Runtime on seeded random inputs. With two models the runs are
// interleaved (A,B then B,A alternately) in one process, so drift in machine load hits both alike.
// Reported: median, p90, mean and min over the timed iterations, after warm-up.
using System.Diagnostics;
using OnnxOpt.GraphIR;
using OnnxOpt.Data;

namespace OnnxOpt.Runtime.Validation;

public sealed record BenchOptions
{
    public int Threads { get; init; } = 1;
    public int Warmup { get; init; } = 10;
    public int Iterations { get; init; } = 100;
    public int Batch { get; init; } = 1;
    public ulong Seed { get; init; } = 1;
    public GraphOptimization Optimization { get; init; } = GraphOptimization.All;
    /// <summary>Values of symbolic dims (others take <see cref="Batch"/>).</summary>
    public IReadOnlyDictionary<string, long>? Dims { get; init; }
    /// <summary>Ranges for random integer inputs, over the ones read from the model (InputRanges).</summary>
    public IReadOnlyDictionary<string, ValueRange>? IntRanges { get; init; }
    /// <summary>The inputs to time on (a batch of the user's data); random inputs when null. An input the
    /// second model has and these lack is drawn at random.</summary>
    public IReadOnlyDictionary<string, Tensor>? Inputs { get; init; }
    /// <summary>After timing, run each model again under ORT's profiler (<see cref="Iterations"/> runs after
    /// <see cref="Warmup"/>, in a session of its own so the timed runs carry no profiling cost) and report
    /// the time per op type.</summary>
    public bool Profile { get; init; }
    /// <summary>Sessions with flush-to-zero and denormals-as-zero (<see cref="SessionSettings.DenormalsAsZero"/>;
    /// ORT sets it once per process, so it holds for both models and must be the process's first session).</summary>
    public bool DenormalsAsZero { get; init; }
}

public sealed record LatencyStats(double MedianMs, double P90Ms, double MeanMs, double MinMs)
{
    public static LatencyStats Of(IReadOnlyList<double> ms)
    {
        var s = ms.Order().ToArray();
        double Q(double q) => s[Math.Min(s.Length - 1, (int)Math.Ceiling(q * s.Length) - 1)];
        var mid = s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
        return new LatencyStats(mid, Q(0.9), s.Average(), s[0]);
    }
}

public sealed record BenchReport(BenchOptions Options, LatencyStats Model, LatencyStats? Other)
{
    /// <summary>Time per op type of each model (<see cref="BenchOptions.Profile"/>).</summary>
    public OpProfile? ModelProfile { get; init; }
    public OpProfile? OtherProfile { get; init; }

    /// <summary>How many times faster the other model is (median of model / median of other).</summary>
    public double? Speedup => Other is null ? null : Model.MedianMs / Other.MedianMs;

    /// <summary>A 95% interval of the speed-up: the distribution-free interval of the median of the paired
    /// ratios model_i / other_i over the interleaved iterations (order statistics n/2 -+ 0.98 sqrt n).</summary>
    public (double Low, double High)? SpeedupInterval { get; init; }

    /// <summary>Whether the interval excludes 1: the speed-up (or slow-down) is beyond the timing noise.</summary>
    public bool Measurable => SpeedupInterval is { } i && (i.Low > 1 || i.High < 1);

    /// <summary>"1.42x (95% interval 1.38-1.47x)" or "no measurable change (1.01x, 95% interval 0.97-1.03x)"; with
    /// an interval the point is the median of the paired ratios it is the interval of.</summary>
    public string SpeedupText()
    {
        if (Speedup is not double sp) return "";
        if (SpeedupInterval is not { } i) return FormattableString.Invariant($"{sp:F2}x");
        var p = PairedSpeedup ?? sp;
        return Measurable ? FormattableString.Invariant($"{p:F2}x (95% interval {i.Low:F2}-{i.High:F2}x)")
            : FormattableString.Invariant($"no measurable change ({p:F2}x, 95% interval {i.Low:F2}-{i.High:F2}x)");
    }

    /// <summary>The median of the paired per-iteration ratios model_i / other_i.</summary>
    public double? PairedSpeedup { get; init; }

    public static double? MedianRatio(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        var n = Math.Min(a.Count, b.Count);
        if (n == 0) return null;
        var r = Enumerable.Range(0, n).Select(i => a[i] / b[i]).Order().ToArray();
        return n % 2 == 1 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
    }

    public static (double, double)? MedianInterval(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        var n = Math.Min(a.Count, b.Count);
        if (n < 6) return null;
        var r = Enumerable.Range(0, n).Select(i => a[i] / b[i]).Order().ToArray();
        var half = 0.98 * Math.Sqrt(n);
        var lo = Math.Clamp((int)Math.Floor(n / 2.0 - half), 0, n - 1);
        var hi = Math.Clamp((int)Math.Ceiling(n / 2.0 + half), 0, n - 1);
        return (r[lo], r[hi]);
    }
}

public static class Benchmark
{
    public static BenchReport Run(byte[] model, byte[]? other, BenchOptions o)
    {
        var settings = new SessionSettings
        {
            IntraOpThreads = o.Threads,
            InterOpThreads = 1,
            Optimization = o.Optimization,
            DenormalsAsZero = o.DenormalsAsZero,
        };
        using var a = InferenceSession.FromBytes(model, settings);
        using var b = other is null ? null : InferenceSession.FromBytes(other, settings);
        var dims = new Dictionary<string, long>();
        foreach (var d in a.Inputs.Concat(b?.Inputs ?? []).SelectMany(i => i.Shape?.Dims ?? [])
            .Where(d => d.Param is not null))
            dims[d.Param!] = o.Dims is not null && o.Dims.TryGetValue(d.Param!, out var v) ? v : o.Batch;
        foreach (var name in (o.Dims?.Keys ?? []).Where(n => !dims.ContainsKey(n)))
            throw new OnnxModelException($"--dim {name}: the model has no symbolic dim '{name}' (its dims: "
                + (dims.Count == 0 ? "none" : string.Join(", ", dims.Keys)) + ")");
        var feedA = Feed(a, model, o, dims);
        var feedB = b is null ? null : Feed(b, other!, o, dims);
        for (int i = 0; i < o.Warmup; i++)
        {
            a.Run(feedA);
            b?.Run(feedB!);
        }
        var ta = new List<double>(o.Iterations);
        var tb = new List<double>(o.Iterations);
        var sw = new Stopwatch();
        for (int i = 0; i < o.Iterations; i++)
        {
            void TimeA() { sw.Restart(); a.Run(feedA); ta.Add(sw.Elapsed.TotalMilliseconds); }
            void TimeB() { sw.Restart(); b!.Run(feedB!); tb.Add(sw.Elapsed.TotalMilliseconds); }
            if (b is null || i % 2 == 0) { TimeA(); if (b is not null) TimeB(); }
            else { TimeB(); TimeA(); }
        }
        return new BenchReport(o, LatencyStats.Of(ta), b is null ? null : LatencyStats.Of(tb))
        {
            SpeedupInterval = b is null ? null : BenchReport.MedianInterval(ta, tb),
            PairedSpeedup = b is null ? null : BenchReport.MedianRatio(ta, tb),
            ModelProfile = o.Profile ? Profile(model, feedA, settings, o) : null,
            OtherProfile = o.Profile && b is not null ? Profile(other!, feedB!, settings, o) : null,
        };
    }

    private static OpProfile Profile(byte[] model, Dictionary<string, Tensor> feed, SessionSettings settings,
        BenchOptions o)
    {
        var dir = Directory.CreateTempSubdirectory("onnxopt-profile-");
        try
        {
            using var s = InferenceSession.FromBytes(model,
                settings with { ProfilePrefix = Path.Combine(dir.FullName, "ort") });
            for (int i = 0; i < o.Warmup + o.Iterations; i++) s.Run(feed);
            return OpProfile.Read(s.EndProfiling(), o.Warmup);
        }
        finally { dir.Delete(recursive: true); }
    }

    /// <summary>The user's inputs where given (by name), random ones (seeded, in the model's ranges) for the
    /// rest. The model is parsed for its integer inputs' ranges only when one of them is drawn at random (a
    /// compress search benches every candidate against the same input).</summary>
    private static Dictionary<string, Tensor> Feed(InferenceSession s, byte[] model, BenchOptions o,
        IReadOnlyDictionary<string, long> dims)
    {
        var inputs = s.Inputs;
        if (inputs.Any(i => !i.ElementType.IsFloatingPoint() && o.Inputs?.ContainsKey(i.Name) != true))
        {
            var ranges = InputRanges.Of(OnnxImporter.Parse(model).Graph);
            inputs = inputs.Select(i => i with { Range = ranges.GetValueOrDefault(i.Name) }).ToList();
        }
        var random = DataSet.Random(inputs, 1, o.Seed, dims, o.IntRanges).Batches().First().Inputs;
        return s.Inputs.ToDictionary(i => i.Name, i => o.Inputs?.GetValueOrDefault(i.Name) ?? random[i.Name]);
    }
}
