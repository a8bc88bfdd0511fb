// What onnxopt's passes attach to a PassContext (the core's context knows only the model, the rewriter and the
// statistics): calibration and held-out data, the metric budgets are judged on, and the channels a pruned value
// kept. Read as properties of the context (C# extension members): ctx.Calibration, ctx.Metric, ctx.Lineage.
//   var ctx = PassContexts.Create(model, calibration, log, evaluation, metric);   // was new PassContext(...)
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

/// <summary>The data a pipeline run gives its passes.</summary>
public sealed record PassData(CalibrationSource? Calibration, CalibrationSource? Evaluation, MetricSpec Metric);

public static class PassContexts
{
    /// <summary>A context with calibration data, a log, held-out data and the metric budgets are judged on.
    /// </summary>
    public static PassContext Create(Model model, CalibrationSource? calibration = null, TextWriter? log = null,
        CalibrationSource? evaluation = null, MetricSpec? metric = null)
    {
        var ctx = new PassContext(model, log);
        ctx.Attach(new PassData(calibration, evaluation, metric ?? MetricSpec.Default));
        return ctx;
    }

    extension(PassContext ctx)
    {
        public CalibrationSource? Calibration => ctx.Get<PassData>()?.Calibration;

        /// <summary>Held-out data for passes that search under an accuracy budget (optimize --eval).</summary>
        public CalibrationSource? Evaluation => ctx.Get<PassData>()?.Evaluation;

        /// <summary>The measure budgets are judged on (--metric); passes that search under a budget use it.</summary>
        public MetricSpec Metric => ctx.Get<PassData>()?.Metric ?? MetricSpec.Default;

        /// <summary>The channels of the pipeline input each pruned value keeps (prune records, distill's features
        /// read).</summary>
        public ChannelLineage Lineage => ctx.GetOrAttach(() => new ChannelLineage());

        public CalibrationSource RequireCalibration(string pass) =>
            ctx.Calibration ?? throw new OnnxModelException(
                $"pass '{pass}' needs calibration data: give --calib DIR or --calib-random N");

        public CalibrationSource RequireEvaluation(string pass) =>
            ctx.Evaluation ?? throw new OnnxModelException(
                $"pass '{pass}' needs held-out evaluation data: give --eval DIR");
    }
}
