// The optimize driver: everything `onnxopt optimize` and `onnxopt quantize` decide, as a library call.
//   1. check before anything runs that every pass has the data it needs (Pass.Needs);
//   2. run the pipeline on a copy of the model (the input is never changed), verifier after every
//      pass when asked and once at the end;
//   3. validate in ORT when asked (or when held-out data is given). Data: the evaluation set, else the
//      calibration set, else seeded random inputs. Exact pipelines (every step's IsExact(options)) are
//      compared as math, ORT's own rewrites off, within rtol/atol; approximate ones as they will run
//      (optimizations on: an int8 model runs the int8 kernels), accepted while the drop (Fidelity.DropOf:
//      accuracy, else top-1 agreement, else cosine x 100) stays within MaxDrop, by default the
//      pipeline's largest budget option and at least 0.5 points;
//      A pipeline that trains on the calibration data (distill, linearize{mode=train}, cluster{train-steps}) is
//      never judged on the samples it trained on: without --eval, a seeded HoldOut share of the calibration
//      samples (at least 50) is held out for the passes' budgets and the validation, and the report says so; with
//      too few samples for both the run is refused, and with HoldOut 0 it trains on all and the result is refused
//      (unless forced) because no budget could be checked;
//   4. time before/after in ORT when asked; 5. return the model, its bytes and the report.
// Writing files and printing are the caller's.
using System.Globalization;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Data;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public static class Optimizer
{
    /// <summary>Loads and verifies a model file, then optimizes it; the report names the file and its size.</summary>
    public static OptimizeResult Run(string inputPath, OptimizeOptions options, string? outputPath = null)
    {
        var model = OnnxImporter.Load(inputPath);
        var errors = Verifier.Check(model);
        if (errors.Count > 0) throw new OnnxModelException($"{inputPath}: {errors[0]}");
        return Run(model, options, inputPath, new FileInfo(inputPath).Length, outputPath);
    }

    public static OptimizeResult Run(Model input, OptimizeOptions options) => Run(input, options, null, null, null);

    private static OptimizeResult Run(Model input, OptimizeOptions o, string? inputPath, long? inputBytes,
        string? outputPath)
    {
        CheckDataNeeds(o);
        var (held, dataNote, unchecked_) = HoldOutForBudgets(o, input);
        o = held;
        // No serialized copy is kept: sizes come from protobuf's size computation, exact validation hands the
        // weights to ORT over the IR's memory, and the rest serialize each model only while its session is made.
        var before = ModelStats.Compute(input, inputBytes ?? OnnxExporter.SizeOf(input), dims: o.Dims);
        var model = input.Clone();
        var ctx = PassContexts.Create(model, o.Calibration, o.Log, o.Evaluation, o.Metric);
        ctx.Original = input;
        var runs = PipelineRunner.Run(model, o.Pipeline, ctx, o.VerifyEach);
        Verifier.Verify(model);
        var after = ModelStats.Compute(model, OnnxExporter.SizeOf(model), dims: o.Dims);
        bool exact = IsExact(o.Pipeline);
        var validation = o.Validate || o.Evaluation is not null ? Validate(input, model, exact, o) : null;
        if (unchecked_ && validation is not null)
            validation = validation with
            {
                Accepted = false,
                Reason = "no held-out samples (hold-out 0): the budget was not checked on data the passes did not "
                    + "train on",
            };
        var latency = o.Bench is { } bench
            ? Benchmark.Run(OnnxExporter.ToBytes(input), OnnxExporter.ToBytes(model), bench with
            {
                Inputs = bench.Inputs ?? BenchInputs(o.Evaluation ?? o.Calibration, input, bench.Batch),
            }) : null;
        var report = new OptimizeReport
        {
            Input = inputPath,
            Output = outputPath,
            Pipeline = o.Pipeline.ToString(),
            Exact = exact,
            Before = before,
            After = after,
            Passes = runs,
            Validation = validation,
            Latency = latency,
            DataNote = dataNote,
        };
        return new OptimizeResult(model, report);
    }

    /// <summary>The options with the calibration data split for a training pipeline without evaluation data (see
    /// the header), the note that says so, and whether no budget can be checked (hold-out 0).</summary>
    public static (OptimizeOptions Options, string? Note, bool Unchecked) HoldOutForBudgets(OptimizeOptions o,
        Model input)
    {
        var trains = o.Pipeline.Steps.Where(s => s.Pass.NeedsTeacher(s.Options)).Select(s => s.Pass.Name).ToList();
        if (o.Evaluation is not null || o.Calibration is not { } calib || trains.Count == 0) return (o, null, false);
        var n = calib.DataFor(IoInfo.InputsOf(input.Graph)).SampleCount;
        var what = string.Join(", ", trains.Distinct());
        if (o.HoldOut <= 0)
            return (o with { Validate = true }, $"{what} trained on all {n} calibration samples and nothing is held "
                + "out (hold-out 0): the budget and the validation use the samples it trained on", true);
        var heldOut = Math.Max(OptimizeOptions.MinHeldOut, (int)Math.Round(o.HoldOut * n));
        if (n - heldOut < OptimizeOptions.MinHeldOut)
            throw new OnnxModelException($"{what} trains on the calibration data and its budget needs samples it did "
                + $"not train on: --calib has {n}, too few to hold out {heldOut} and train on the rest (at least "
                + $"{OptimizeOptions.MinHeldOut} each); give --eval DIR, more calibration samples, or --hold-out 0 to "
                + "train on all (the result is then not accepted without --force)");
        var (fit, heldSet) = calib.Split(heldOut);
        return (o with { Calibration = fit, Evaluation = heldSet },
            $"held out {heldOut} of the {n} calibration samples (seeded) for the budgets and the validation; {what} "
            + $"trained on the other {n - heldOut} (give --eval DIR to judge on your own held-out data)", false);
    }

    // Weights this large go to exact validation's sessions over the IR's memory (small ones are serialized).
    private const long SharedFrom = 4096;

    /// <summary>Whether every step is exact with its options (then validation is by tolerance).</summary>
    public static bool IsExact(Pipeline p) => p.Steps.All(s => s.Pass.IsExact(s.Options));

    /// <summary>The pipeline's largest budget option in points, at least 0.5: the default validation limit.</summary>
    public static double DefaultLimit(Pipeline p) => Math.Max(0.5, p.Steps
        .Where(s => s.Pass.BudgetOption is not null)
        .Select(s => s.Options.Double(s.Pass.BudgetOption!))
        .DefaultIfEmpty(0).Max());

    /// <summary>Refuses a run whose passes lack data, before any pass runs.</summary>
    public static void CheckDataNeeds(OptimizeOptions o)
    {
        foreach (var step in o.Pipeline.Steps)
        {
            var needs = step.Pass.Needs(step.Options);
            if (needs.HasFlag(DataNeeds.Calibration) && o.Calibration is null)
                throw new OnnxModelException($"pass '{step.Pass.Name}' needs calibration data: give --calib DIR or "
                    + "--calib-random N" + (step.Pass.WithoutCalibration(step.Options) is { } alt ? $"; {alt}" : ""));
            if (needs.HasFlag(DataNeeds.Evaluation) && o.Evaluation is null)
                throw new OnnxModelException($"pass '{step}' needs held-out evaluation data: give --eval DIR");
        }
    }

    private static ValidationOutcome Validate(Model original, Model candidate, bool exact, OptimizeOptions o)
    {
        // Exact rewrites are checked as math (ORT's own rewrites off), with the weights shared between the IR
        // and both sessions (the rewrite's copy shares every weight it did not change); approximate ones as
        // they will run.
        var settings = exact
            ? new SessionSettings
            {
                Optimization = GraphOptimization.Disabled,
                ShareInitializersFrom = SharedFrom,
                MemoryArena = false,
            }
            : new SessionSettings { Optimization = GraphOptimization.All };
        using var a = InferenceSession.FromModel(original, settings);
        using var b = InferenceSession.FromModel(candidate, settings);
        var data = (o.Evaluation ?? o.Calibration)?.DataFor(a.Inputs) ?? DataSet.Random(a.Inputs,
            o.RandomValidationSamples, o.Seed, o.Dims, o.IntRanges);
        var report = Validator.Compare(a, b, data, new ValidationOptions
        {
            Rtol = o.Rtol,
            Atol = o.Atol,
            Metric = o.Metric,
        });
        if (exact)
            return new ValidationOutcome(ValidationMode.Tolerance, report.Passed,
                report.Passed ? null : "outputs differ beyond tolerance", null, null, report);
        var limit = o.MaxDrop ?? DefaultLimit(o.Pipeline);
        var drop = Fidelity.DropOf(report);
        bool ok = drop.Points <= limit + 1e-9;
        var what = report.Primary?.Metric.Description
            ?? (drop.Metric == DropMetric.Accuracy ? "accuracy" : "agreement");
        var reason = ok ? null : string.Create(CultureInfo.InvariantCulture,
            $"{what} dropped {drop.Points:F2} points (limit {limit:G3})");
        return new ValidationOutcome(ValidationMode.Agreement, ok, reason, limit, drop, report);
    }

    /// <summary>The first batch of the user's data (the inputs latency is timed on), or null without data.</summary>
    public static IReadOnlyDictionary<string, Tensor>? BenchInputs(CalibrationSource? data, Model model, int batch) =>
        data?.DataFor(IoInfo.InputsOf(model.Graph)).Batches(batch).FirstOrDefault()?.Inputs;
}
