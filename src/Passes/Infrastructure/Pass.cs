// A pass: a named, documented graph transformation with declared options. Exact passes preserve
// the model's function (validated by tolerance); approximate ones (linearization, pruning, ...) are
// validated by agreement/accuracy on calibration data.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public abstract class Pass
{
    public abstract string Name { get; }
    public abstract string Summary { get; }
    public virtual IReadOnlyList<PassOption> Options => [];
    public virtual bool IsExact => true;
    /// <summary>Whether the pass needs calibration data (--calib or --calib-random).</summary>
    public virtual bool NeedsCalibration => false;

    public abstract void Run(PassContext ctx, PassOptions options);
}

/// <summary>What a pass sees: the model, the rewriter, its statistics, calibration data if any.</summary>
public sealed class PassContext
{
    public PassContext(Model model, Calibration.CalibrationSource? calibration = null, TextWriter? log = null, Calibration.CalibrationSource? evaluation = null)
    {
        Model = model;
        Rewriter = new Rewriter(model);
        Calibration = calibration;
        Evaluation = evaluation;
        Log = log ?? TextWriter.Null;
    }

    public Model Model { get; }
    public Rewriter Rewriter { get; }
    public Calibration.CalibrationSource? Calibration { get; }
    /// <summary>Held-out data for passes that search under an accuracy budget (optimize --eval).</summary>
    public Calibration.CalibrationSource? Evaluation { get; }
    public TextWriter Log { get; }
    public PassStats Stats { get; internal set; } = new();

    public Calibration.CalibrationSource RequireCalibration(string pass) =>
        Calibration ?? throw new OnnxModelException($"pass '{pass}' needs calibration data: give --calib DIR or --calib-random N");
}

/// <summary>Counters and decisions of one pass run, in a stable order for reports.</summary>
public sealed class PassStats
{
    public SortedDictionary<string, long> Counters { get; } = new(StringComparer.Ordinal);
    /// <summary>One entry per decision (e.g. each activation considered), fields in insertion order.</summary>
    public List<List<KeyValuePair<string, object?>>> Decisions { get; } = new();
    public List<string> Notes { get; } = new();
    private readonly HashSet<string> _once = new(StringComparer.Ordinal);

    /// <summary>True the first time a key is seen in this pass run (to record a decision once).</summary>
    public bool Once(string key) => _once.Add(key);

    public void Count(string key, long by = 1) => Counters[key] = Counters.GetValueOrDefault(key) + by;

    public void Decide(params (string Key, object? Value)[] fields) =>
        Decisions.Add(fields.Select(f => new KeyValuePair<string, object?>(f.Key, f.Value)).ToList());
}
