// The input-data options shared by run and validate: a data folder or seeded random inputs.
using System.CommandLine;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Data;

namespace OnnxOpt.Cli;

public sealed class DataOptions
{
    public Option<string?> Data { get; } = new("--data") { Description = "data folder: <input>.npy per input (+ labels.npy), or test_data_set_*/input_K.pb" };
    public Option<int?> Random { get; } = new("--random") { Description = "use N seeded random input sets instead of a data folder" };
    public Option<ulong> Seed { get; } = new("--seed") { Description = "seed for random inputs", DefaultValueFactory = _ => 1UL };
    public Option<string[]> Dims { get; } = new("--dim") { Description = "value of a symbolic dimension for random inputs, e.g. --dim N=8 (default 1)", AllowMultipleArgumentsPerToken = false };
    public Option<string[]> IntRanges { get; } = CliContext.IntRangeOption();
    public Option<int> Batch { get; } = new("--batch") { Description = "samples per run for a data folder when the batch dim is symbolic", DefaultValueFactory = _ => 32 };

    public void AddTo(Command c)
    {
        c.Add(Data); c.Add(Random); c.Add(Seed); c.Add(Dims); c.Add(IntRanges); c.Add(Batch);
    }

    public DataSet Load(ParseResult r, IReadOnlyList<IoInfo> inputs, int defaultRandom)
    {
        var dir = r.GetValue(Data);
        var n = r.GetValue(Random);
        if (dir is not null && n is not null) throw new OnnxModelException("give either --data or --random, not both");
        if (n is <= 0) throw new OnnxModelException("--random must be a positive count");
        if (dir is not null) return DataSet.FromFolder(dir, inputs);
        return DataSet.Random(inputs, n ?? defaultRandom, r.GetValue(Seed), CliContext.ParseDims(r.GetValue(Dims)),
            CliContext.ParseIntRanges(r.GetValue(IntRanges)));
    }
}

/// <summary>--metric, --metric-output and --pool: the measure a budget is judged on (FidelityMetric), declared once
/// for every command with a budget. (--metric-output, since -o/--output names the written model.)</summary>
public sealed class MetricOptions
{
    public Option<string?> Metric { get; } = new("--metric")
    {
        Description = "what a budget is measured in: accuracy|agreement|cosine|sqnr|iou:T (IoU of the elements above "
            + "T, for score maps; agreement on [batch, positions, classes] is per position; default: from the output's "
            + "shape)",
    };
    public Option<string?> Output { get; } = new("--metric-output")
    {
        Description = "the model output the measure is taken on (default: the first)",
    };
    public Option<string?> Pool { get; } = new("--pool")
    {
        Description = "mean: score a [batch, sequence, hidden] output as its mean over the attention mask (default "
            + "for such an output when the model has a mask input); none: every element",
    };

    public void AddTo(Command c)
    {
        c.Add(Metric); c.Add(Output); c.Add(Pool);
    }

    public OnnxOpt.Runtime.Validation.MetricSpec Read(ParseResult r)
    {
        var (kind, threshold) = OnnxOpt.Runtime.Validation.MetricSpec.Parse(r.GetValue(Metric));
        return new(kind, r.GetValue(Output), OnnxOpt.Runtime.Validation.MetricSpec.ParsePool(r.GetValue(Pool)))
        {
            Threshold = threshold,
        };
    }
}
