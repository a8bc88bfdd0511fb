// How close a candidate's outputs are to a reference's: the one definition of each measure, used by
// validate, optimize's verdict, linearize's budget and quantize's accuracy-aware search.
//   cosine  = sum(x y) / sqrt(sum x^2 * sum y^2) over every element of the output (1 when both are 0,
//             0 when only one is);
//   SQNR    = 10 log10(sum x^2 / sum (x - y)^2) dB, +inf when identical;
//   top-1 agreement = share of rows [batch, classes] whose argmax is the reference's, in %;
//   drop    = the points a rewrite costs: accuracy (with labels), else top-1 agreement, else cosine x 100.
namespace OnnxOpt.Runtime.Validation;

/// <summary>Streaming sums for cosine and SQNR of one output (reference x, candidate y).</summary>
public sealed class SignalComparison
{
    public double Dot { get; private set; }
    public double ReferenceEnergy { get; private set; }
    public double CandidateEnergy { get; private set; }
    public double ErrorEnergy { get; private set; }
    public long Elements { get; private set; }

    public void Add(double x, double y)
    {
        Dot += x * y;
        ReferenceEnergy += x * x;
        CandidateEnergy += y * y;
        var e = x - y;
        if (!double.IsNaN(e)) ErrorEnergy += e * e;
        Elements++;
    }

    public void Add(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        for (int i = 0; i < x.Length; i++) Add(x[i], y[i]);
    }

    public double Cosine => Fidelity.Cosine(Dot, ReferenceEnergy, CandidateEnergy);
    public double SqnrDb => Fidelity.SqnrDb(ReferenceEnergy, ErrorEnergy);
}

/// <summary>What a drop is measured in.</summary>
public enum DropMetric { Accuracy, Top1Agreement, Cosine, NeighbourAgreement, Sqnr, Iou, PositionAgreement }

/// <summary>A drop in points and what it measures.</summary>
public readonly record struct Drop(double Points, DropMetric Metric)
{
    public string MetricName => Metric switch
    {
        DropMetric.Accuracy => "accuracy",
        DropMetric.Top1Agreement => "top1_agreement",
        DropMetric.NeighbourAgreement => "neighbour_agreement",
        DropMetric.Sqnr => "noise_pct",
        DropMetric.Iou => "iou_x100",
        DropMetric.PositionAgreement => "position_agreement",
        _ => "cosine_x100",
    };
}

public static class Fidelity
{
    public static double Cosine(double dot, double referenceEnergy, double candidateEnergy) =>
        referenceEnergy == 0 && candidateEnergy == 0 ? 1.0
        : referenceEnergy == 0 || candidateEnergy == 0 ? 0.0
        : dot / Math.Sqrt(referenceEnergy * candidateEnergy);

    public static double SqnrDb(double signalEnergy, double errorEnergy) =>
        errorEnergy == 0 ? double.PositiveInfinity : 10 * Math.Log10(signalEnergy / errorEnergy);

    /// <summary>hits / total in % (100 when there is nothing to count).</summary>
    public static double Percent(long hits, long total) => total == 0 ? 100.0 : 100.0 * hits / total;

    /// <summary>The drop in points: accuracy (both in %) when known, else top-1 agreement (%), else cosine x 100.</summary>
    public static Drop DropOf(double? referenceAccuracy, double? candidateAccuracy, double? agreement, double cosine) =>
        referenceAccuracy is double ra && candidateAccuracy is double ca ? new Drop(ra - ca, DropMetric.Accuracy)
        : agreement is double ag ? new Drop(100 - ag, DropMetric.Top1Agreement)
        : new Drop(100 * (1 - cosine), DropMetric.Cosine);

    /// <summary>The drop of a validation report: its primary measure's (ValidationOptions.Metric), else as the
    /// first outputs give it (fractions there are turned into points).</summary>
    public static Drop DropOf(ValidationReport r) => r.Primary is { } p
        ? new Drop(p.DropPoints, p.Metric.Kind switch
        {
            MetricKind.Accuracy => DropMetric.Accuracy,
            MetricKind.Agreement => p.Metric.Pooled ? DropMetric.NeighbourAgreement
                : p.Metric.PerPosition ? DropMetric.PositionAgreement : DropMetric.Top1Agreement,
            MetricKind.Sqnr => DropMetric.Sqnr,
            MetricKind.Iou => DropMetric.Iou,
            _ => DropMetric.Cosine,
        })
        : DropOf(r.ReferenceAccuracy * 100, r.CandidateAccuracy * 100,
            r.Outputs.Select(o => o.Top1Agreement).FirstOrDefault(x => x is not null) * 100, r.Outputs[0].Cosine);
}
