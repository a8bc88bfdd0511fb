// Runs a pipeline: each pass in order, its statistics and wall time recorded, the verifier after
// every pass when asked (always in tests: the IR's invariants, then declared vs inferred shapes), and
// topological order restored after each pass. Training passes get the model as the pipeline received it
// as their teacher (PassContext.Original; the optimize driver gives its untouched input).
using System.Diagnostics;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record PassRun(string Step, double Milliseconds, PassStats Stats);

public static class PipelineRunner
{
    public static List<PassRun> Run(Model model, Pipeline pipeline, PassContext ctx, bool verifyEach = false)
    {
        var runs = new List<PassRun>();
        if (ctx.Original is null && pipeline.Steps.Any(s =>
            s.Pass.NeedsTeacher(s.Options))) ctx.Original = model.Clone();
        foreach (var step in pipeline.Steps)
        {
            ctx.Stats = new PassStats();
            // A step that cannot change the model says so (an approximate one refuses the driver's result).
            if (step.Pass.WhyNoChange(model, step.Options) is { } why)
            {
                var said = $"{step.Pass.Name} changes nothing: {why}";
                ctx.Stats.Notes.Add(said);
                if (!step.Pass.IsExact(step.Options)) ctx.Stats.Unchanged = said;
            }
            var sw = Stopwatch.StartNew();
            step.Pass.Run(ctx, step.Options);
            ctx.Rewriter.Finish();
            sw.Stop();
            if (verifyEach)
            {
                var errors = Verifier.Check(model);
                if (errors.Count == 0) errors = Verifier.CheckShapes(model);
                if (errors.Count > 0) throw new OnnxModelException($"pass '{step.Pass.Name}' broke the model: {errors[0]}");
            }
            runs.Add(new PassRun(step.ToString(), sw.Elapsed.TotalMilliseconds, ctx.Stats));
        }
        return runs;
    }
}
