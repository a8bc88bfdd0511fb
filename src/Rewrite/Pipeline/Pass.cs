// A pass: a named, documented whole-graph transformation with declared options. What the optimize
// driver needs to know before anything runs is declared here too, per option set:
//   IsExact(options): exact passes preserve the model's function (validated by tolerance, ORT's own
//     rewrites off); approximate ones (linearization, pruning, int8, ...) are validated by the drop in
//     accuracy/agreement on held-out data, as they will run;
//   BudgetOption: the option that bounds the pass's accuracy cost in points (the default validation limit);
//   Needs(options): calibration data, held-out evaluation data.
// Local rewrites are rules (RewriteRule) run by a pass through the GreedyRewriteDriver.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

[Flags]
public enum DataNeeds
{
    None = 0,
    /// <summary>Samples to calibrate on (--calib DIR or --calib-random N).</summary>
    Calibration = 1,
    /// <summary>Held-out samples to measure an accuracy budget on (--eval DIR).</summary>
    Evaluation = 2,
}

public abstract class Pass
{
    public abstract string Name { get; }
    public abstract string Summary { get; }
    public virtual IReadOnlyList<PassOption> Options => [];
    public virtual bool IsExact(PassOptions options) => true;
    /// <summary>The option bounding this pass's accuracy cost in points, if it has one.</summary>
    public virtual string? BudgetOption => null;
    public virtual DataNeeds Needs(PassOptions options) => DataNeeds.None;
    /// <summary>What else the user can do when calibration data is missing (appended to the one-line error).
    /// </summary>
    public virtual string? WithoutCalibration(PassOptions options) => null;
    /// <summary>Whether the pass trains toward the model as the pipeline received it (PassContext.Original).</summary>
    public virtual bool NeedsTeacher(PassOptions options) => false;
    /// <summary>Whether the pass also rewrites subgraphs (If/Loop/Scan bodies); most see the main graph only.</summary>
    public virtual bool VisitsSubgraphs => false;
    /// <summary>Why this pass cannot change <paramref name="model"/> at all (no prunable group, no eligible
    /// activation), checked before spending time on it (compress skips such a stage with the reason); null when
    /// it may change it.</summary>
    public virtual string? WhyNoChange(Model model, PassOptions options) => null;

    /// <summary>The options with every default, e.g. for listings.</summary>
    public PassOptions Defaults() => new(this);

    public abstract void Run(PassContext ctx, PassOptions options);
}

/// <summary>What a pass sees: the model, the rewriter, its statistics, and what the pass family attaches (onnxopt's
/// passes: calibration and evaluation data, the metric, channel lineage, as PassContext extensions).</summary>
public sealed class PassContext(Model model, TextWriter? log = null)
{
    private readonly Dictionary<Type, object> _attached = new();

    public Model Model { get; } = model;
    /// <summary>The model as the pipeline received it, the teacher of training passes (never changed).</summary>
    public Model? Original { get; set; }
    public Rewriter Rewriter { get; } = new(model);
    public TextWriter Log { get; } = log ?? TextWriter.Null;
    /// <summary>When training passes must stop (with their best weights so far); null: no deadline.</summary>
    public DateTime? Deadline { get; set; }
    public PassStats Stats { get; internal set; } = new();

    /// <summary>The object of type <typeparamref name="T"/> attached to this run, if any.</summary>
    public T? Get<T>() where T : class => _attached.GetValueOrDefault(typeof(T)) as T;

    /// <summary>The attached <typeparamref name="T"/>, attaching <paramref name="create"/>'s the first time.</summary>
    public T GetOrAttach<T>(Func<T> create) where T : class
    {
        if (Get<T>() is { } t) return t;
        var made = create();
        _attached[typeof(T)] = made;
        return made;
    }

    /// <summary>Attaches (or replaces) the object of type <typeparamref name="T"/>.</summary>
    public void Attach<T>(T value) where T : class => _attached[typeof(T)] = value;
}

/// <summary>Counters and decisions of one pass run, in a stable order for reports.</summary>
public sealed class PassStats
{
    private readonly SortedDictionary<string, long> _counters = new(StringComparer.Ordinal);
    /// <summary>Every counter by its text (reports print these); a pass adds with Count, a reader indexes by key.
    /// </summary>
    public IReadOnlyDictionary<string, long> Counters => _counters;
    /// <summary>One typed record per decision (each activation considered, fold, quantized op, trial, ...).</summary>
    public List<Decision> Decisions { get; } = new();
    public List<string> Notes { get; } = new();
    /// <summary>An approximate pass that could not change the model it was given: "prune changes nothing: why"
    /// (its WhyNoChange); the driver refuses such a result. Null otherwise.</summary>
    public string? Unchanged { get; set; }
    /// <summary>Per rule: applications and match failures by reason (passes built on the rule driver).</summary>
    public List<RuleStats> Rules { get; } = new();
    private readonly HashSet<string> _once = new(StringComparer.Ordinal);

    /// <summary>True the first time a key is seen in this pass run (to record a decision once).</summary>
    public bool Once(string key) => _once.Add(key);

    /// <summary>Adds a driver run's rule statistics (a pass may run its rules several times): applications
    /// add up; failures are those of the latest run (the nodes still unmatched at the end).</summary>
    public void MergeRules(IEnumerable<RuleStats> stats)
    {
        foreach (var s in stats)
        {
            var mine = Rules.Find(r => r.Rule == s.Rule);
            if (mine is null) { Rules.Add(s); continue; }
            mine.Applied += s.Applied;
            mine.Failures.Clear();
            foreach (var (why, n) in s.Failures) mine.Failures[why] = n;
        }
    }

    public void Count(CounterKey key, long by = 1) => _counters[key.Text] = _counters.GetValueOrDefault(key.Text) + by;

    /// <summary>A counter's value (0 when never counted).</summary>
    public long this[CounterKey key] => Counters.GetValueOrDefault(key.Text);

    public void Decide(Decision d) => Decisions.Add(d);
}
