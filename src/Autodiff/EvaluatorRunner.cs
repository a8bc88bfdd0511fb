// Our reference evaluator behind the IModelRunner interface, so calibration, validation and fidelity can
// run a model without ONNX Runtime (the distillation engine's path): inputs are converted from Tensors,
// the forward pass runs in float64 or float32, and the requested values come back as Tensors of the
// element type the graph declares (float unless declared otherwise).
using System.Numerics;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Autodiff;

public sealed class EvaluatorRunner<T> : IModelRunner where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Evaluator<T> _evaluator;

    public EvaluatorRunner(Model model, IEnumerable<string>? extraOutputs = null)
    {
        _evaluator = new Evaluator<T>(model);
        Inputs = IoInfo.InputsOf(model.Graph);
        var outputs = IoInfo.OutputsOf(model.Graph).ToList();
        foreach (var name in extraOutputs ?? [])
        {
            var v = model.Graph.Find(name)
                ?? throw new OnnxModelException($"no value named '{name}' in the main graph");
            if (outputs.All(o => o.Name != name)) outputs.Add(new IoInfo(v.Name, v.ElementType, v.Shape));
        }
        Outputs = outputs;
    }

    /// <summary>A factory for CalibrationSource.With(...): every model run by this evaluator.</summary>
    public static RunnerFactory Factory => (model, extra) => new EvaluatorRunner<T>(model, extra);

    public IReadOnlyList<IoInfo> Inputs { get; }
    public IReadOnlyList<IoInfo> Outputs { get; }

    public Tensor[] Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string>? outputNames = null)
    {
        foreach (var i in Inputs)
            if (!inputs.ContainsKey(i.Name))
                throw new OnnxModelException($"model input '{i.Name}' ({i}) was not given");
        var feed = inputs.ToDictionary(kv => kv.Key, kv => NdArray<T>.FromTensor(kv.Value));
        var trace = _evaluator.Forward(feed);
        outputNames ??= Outputs.Select(o => o.Name).ToList();
        return outputNames.Select(name =>
        {
            var info = Outputs.FirstOrDefault(o => o.Name == name);
            var a = trace[name];
            var type = a.IsInt ? (info?.ElementType is { } t && t != DataType.Undefined ? t : DataType.Int64)
                : info?.ElementType is DataType.Double ? DataType.Double : DataType.Float;
            return a.ToTensor(name, type);
        }).ToArray();
    }

    public void Dispose() { }
}
