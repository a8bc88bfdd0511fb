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
