// Recovery training as the passes run it: the teacher is the model as it entered the pipeline
// (PassContext.Original, run by ONNX Runtime through the calibration source's runner), the training set
// is the calibration data (no labels needed), held-out data (--eval) scores the student every EvalEvery
// steps. The trainer (OnnxOpt.Training) does the rest; this file wires it to a pass and records what
// happened as a TrainingSummary decision, with progress lines on the pass log.
using System.Globalization;
using OnnxOpt.GraphIR;
using OnnxOpt.Training;

namespace OnnxOpt.Passes;

/// <summary>One training run of a pass: how long, how it scored on the held-out data, how fast.</summary>
public sealed record TrainingSummary(string Stage, int Steps, int Parameters, long Elements, string? Metric,
    double? ScoreBefore, double? ScoreBest, int BestStep, double FirstLoss, double FinalLoss, double Seconds,
    double StepsPerSecond, bool StoppedEarly, bool TeacherCached) : Decision;

internal static class Recovery
{
    /// <summary>The fewest held-out samples the best training point is chosen on (every EvalEvery steps).</summary>
    public const int MinSelectionSamples = 200;

    /// <summary>The teacher model: the pipeline's input (or, run outside a driver, the model now).</summary>
    public static Model TeacherModel(PassContext ctx) => ctx.Original ?? ctx.Model.Clone();

    /// <summary>Says how many zero weights keep-zeros holds (counter and note), if any.</summary>
    public static void ReportHeldZeros(PassContext ctx, IReadOnlyList<Parameter> parameters)
    {
        var held = parameters.Where(p => p.HeldZeros > 0).ToList();
        if (held.Count == 0) return;
        long zeros = held.Sum(p => (long)p.HeldZeros);
        ctx.Stats.Count(Counters.Training.WeightsHeldAtZero, zeros);
        ctx.Stats.Notes.Add($"keep-zeros: {zeros:N0} zero weights in {held.Count} tensors held at zero (the sparse "
            + "mask survives training)");
    }

    /// <summary>Trains the parameters of ctx.Model (or of <paramref name="student"/>, a training form of it)
    /// toward the teacher and writes the result back into the model.</summary>
    public static TrainResult Train(PassContext ctx, string stage, IReadOnlyList<Parameter> parameters,
        TrainSettings settings, Model? teacherModel = null, bool writeBack = true, Model? student = null)
    {
        var calib = ctx.RequireCalibration(stage);
        var model = student ?? ctx.Model;
        if (ctx.Deadline is { } end) settings = settings with { Deadline = end };
        var teacherSource = teacherModel ?? TeacherModel(ctx);
        var inputs = Data.IoInfo.InputsOf(model.Graph);
        var eval = ctx.Evaluation is { } e && settings.EvalEvery > 0 ? TrainingData.Load(e.DataFor(inputs)) : null;
        if (eval is not null && eval.Count < MinSelectionSamples)
        {
            // Choosing the best of ten points on a few samples picks noise: on the 50 a calibration split holds out,
            // accuracy moves in steps of 2 points, and the point chosen was early and undertrained (Fashion-MNIST
            // VGG at half the MACs: 89.8% and 90.2% on the test split against 90.6% and 91.1% trained to the end).
            // Nor the start against the end: on the Fashion-MNIST ResNet the 50 scored them equal and kept the
            // untrained start (88.7% on the test split).
            ctx.Stats.Notes.Add($"{stage}: {eval.Count} held-out samples are too few to choose a training point by "
                + $"(fewer than {MinSelectionSamples}); trained to the end");
            eval = null;
        }
        var trainer = new Trainer(model, parameters, settings)
        {
            Progress = (_, done, total) => calib.Progress?.Invoke($"{stage}: training steps", done, total),
        };
        var targets = trainer.TeacherTargets;
        foreach (var t in targets)
            if (teacherSource.Graph.Find(t) is null)
                throw new OnnxModelException($"{stage}: the teacher has no value '{t}' (features must exist in the "
                    + $"model "
                    + "as the pipeline received it)");
        var outputs = teacherSource.Graph.Outputs.Select(o => o.Name).ToHashSet();
        using var runner = calib.RunnerFor(teacherSource, targets.Where(t => !outputs.Contains(t)));
        using var teacher = new Teacher(runner, targets);
        var train = TrainingData.Load(calib.DataFor(inputs));
        using var evalRunner = eval is null ? null : calib.RunnerFor(teacherSource, []);
        using var evalTeacher = evalRunner is null ? null : new Teacher(evalRunner,
            [teacherSource.Graph.Outputs[0].Name]);
        var r = trainer.Fit(train, teacher, eval, evalTeacher);
        if (writeBack) Trainer.WriteBack(model, parameters, ctx.Rewriter.SetInitializer);
        ctx.Stats.Count(Counters.Training.Steps, r.Steps);
        if (r.StoppedAtDeadline)
            ctx.Stats.Notes.Add($"{stage}: stopped at the deadline after {r.Steps} of {settings.Steps} steps, with the "
                + "best weights so far");
        ctx.Stats.Decide(new TrainingSummary(stage, r.Steps, parameters.Count, parameters.Sum(p =>
            (long)p.Values.Length),
            eval is null ? null : r.ScoreMetric, Round(r.InitialScore), Round(r.BestScore), r.BestStep, r.FirstLoss,
            r.FinalLoss, Math.Round(r.Seconds, 3), Math.Round(r.StepsPerSecond, 2), r.StoppedEarly, r.TeacherCached));
        var c = CultureInfo.InvariantCulture;
        var held = r.BestScore is { } b
            ? string.Create(c, $", held-out {r.ScoreMetric} {r.InitialScore:F2} -> {b:F2} (step {r.BestStep})") : "";
        ctx.Log.WriteLine(string.Create(c, $"{stage}: {r.Steps} steps in {r.Seconds:F1} s ({r.StepsPerSecond:F1}/s), "
            + $"loss {r.FirstLoss:G4} -> {r.FinalLoss:G4}") + held);
        return r;
    }

    private static double? Round(double? v) => v is { } x ? Math.Round(x, 4) : null;
}
