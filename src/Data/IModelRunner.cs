// Something that computes a model's values for given inputs: ONNX Runtime's session (Runtime) or our own
// reference evaluator (Autodiff's EvaluatorRunner). Calibration, validation and fidelity measurements run
// through this interface, so the distillation engine can do without ORT.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Data;

public interface IModelRunner : IDisposable
{
    IReadOnlyList<IoInfo> Inputs { get; }
    IReadOnlyList<IoInfo> Outputs { get; }

    /// <summary>The requested values (default: every output) in order, each a Tensor named after its value.</summary>
    Tensor[] Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string>? outputNames = null);
}

/// <summary>Makes a runner for a model that also returns the named intermediate values.</summary>
public delegate IModelRunner RunnerFactory(Model model, IEnumerable<string> extraOutputs);
