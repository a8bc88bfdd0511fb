// The speed-up's 95% interval over interleaved timings: a real difference is "beyond the timing noise", equal
// models give "no measurable change".
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Tests;

public class SpeedupIntervalTests
{
    private static double[] Noisy(int seed, int n, double ms)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => ms * (1 + 0.05 * (rng.NextDouble() - 0.5))).ToArray();
    }

    [Fact]
    public void ATwentyPercentGainIsMeasurableAndEqualModelsAreNot()
    {
        var stats = new LatencyStats(1, 1, 1, 1);
        var faster = new BenchReport(new BenchOptions(), stats, stats)
        {
            SpeedupInterval = BenchReport.MedianInterval(Noisy(1, 100, 1.2), Noisy(2, 100, 1.0)),
        };
        Assert.True(faster.Measurable);
        Assert.InRange(faster.SpeedupInterval!.Value.Low, 1.1, 1.2);
        var same = new BenchReport(new BenchOptions(), stats, stats)
        {
            SpeedupInterval = BenchReport.MedianInterval(Noisy(3, 100, 1.0), Noisy(4, 100, 1.0)),
        };
        Assert.False(same.Measurable);
        Assert.StartsWith("no measurable change", same.SpeedupText());
        Assert.Null(BenchReport.MedianInterval([1, 2], [1, 2]));
    }
}
