// The teacher: the model as it entered the pipeline, run by an IModelRunner (ONNX Runtime in the passes),
// giving the targets of each training batch (its outputs and the named features). Without augmentation the
// targets of the whole training set are computed once and cached when they fit in the cache budget; with
// augmentation (or when they do not fit) the teacher runs on every batch as the student sees it.
using OnnxOpt.Autodiff;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Training;

public sealed class Teacher : IDisposable
{
    private readonly IModelRunner _runner;
    private readonly IReadOnlyList<string> _targets;
    private List<float[]>? _cache;
    private int[][]? _sampleShapes;

    public Teacher(IModelRunner runner, IReadOnlyList<string> targets)
    {
        _runner = runner;
        _targets = targets;
    }

    public IReadOnlyList<string> Targets => _targets;
    public bool Cached => _cache is not null;

    /// <summary>Runs the teacher over the whole set once and keeps its targets if they take at most maxBytes.</summary>
    public bool TryCache(TrainingData data, long maxBytes)
    {
        var parts = _targets.Select(_ => new List<float[]>()).ToList();
        long bytes = 0;
        for (int start = 0; start < data.Count; start += 64)
        {
            var idx = Enumerable.Range(start, Math.Min(64, data.Count - start)).ToArray();
            var outs = Run(data, data.Gather(idx));
            if (_sampleShapes is null) _sampleShapes = outs.Select(o => o.Shape[1..]).ToArray();
            for (int k = 0; k < outs.Length; k++) { parts[k].Add(outs[k].R); bytes += 4L * outs[k].Length; }
            if (bytes > maxBytes) return false;
        }
        _cache = parts.Select(p => p.SelectMany(x => x).ToArray()).ToList();
        return true;
    }

    /// <summary>The targets of a batch: from the cache by sample index, else by running the teacher on it.</summary>
    public NdArray<float>[] For(TrainingData data, int[] samples, IReadOnlyDictionary<string, NdArray<float>> batch)
    {
        if (_cache is null) return Run(data, batch);
        var r = new NdArray<float>[_targets.Count];
        for (int k = 0; k < r.Length; k++)
        {
            int per = NdArray<float>.Size(_sampleShapes![k]);
            var a = new float[samples.Length * per];
            for (int i = 0; i < samples.Length; i++) Array.Copy(_cache[k], (long)samples[i] * per, a, (long)i * per,
                per);
            r[k] = new NdArray<float>(new[] { samples.Length }.Concat(_sampleShapes[k]).ToArray(), a);
        }
        return r;
    }

    /// <summary>Runs the teacher on a batch (no cache).</summary>
    public NdArray<float>[] Run(TrainingData data, IReadOnlyDictionary<string, NdArray<float>> batch)
    {
        var outs = _runner.Run(data.AsTensors(batch), _targets);
        return outs.Select((t, k) => t.ElementType.IsFloatingPoint() ? NdArray<float>.FromTensor(t)
            : throw new OnnxModelException($"teacher value '{_targets[k]}' is {t.ElementType.Name()}, not float"))
            .ToArray();
    }

    public void Dispose() => _runner.Dispose();
}
