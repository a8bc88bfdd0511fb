// The one way libraries report progress on long work (calibration batches, training epochs): a callback
// the caller sets. Libraries never write to the console; the CLI renders progress on stderr.
namespace OnnxOpt.Data;

/// <summary>Progress of a named task: <paramref name="done"/> of <paramref name="total"/> units (samples, steps);
/// called once more with done == total when the task ends.</summary>
public delegate void ProgressSink(string task, long done, long total);
