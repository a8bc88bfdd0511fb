// Trainable parameters over a model's initializers. Each parameter owns a flat float vector the optimizer
// updates, says which initializers it produces from that vector, and maps those initializers' gradients back
// to its own:
//   Direct:   W = p                                  dL/dp = dL/dW
//   Codebook: W[i] = c[slice(i)][code[i]]            dL/dc[s][k] = sum over members i of dL/dW[i]
//             (Deep Compression's trained centroids: assignments fixed, each centroid moves by the sum of
//             its members' gradients)
//   Grid:     W[i] = s[block(i)] * q[i]              dL/ds[b] = sum over the block of dL/dW[i] * q[i]
//             (a 4-bit grid per block, q = code - zero point fixed: the scale of each block trains)
// A parameter may add a penalty to the loss (Layer Folding's lambda * |1 - a^2|) and a constraint applied
// after each step (a clipped to [0, 1]).
using OnnxOpt.Autodiff;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Training;

public abstract class Parameter
{
    protected Parameter(string name, float[] values) { Name = name; Values = values; }

    /// <summary>Names the parameter in reports (the initializer, or the initializer and its role).</summary>
    public string Name { get; }
    /// <summary>The trainable values (updated in place by the optimizer).</summary>
    public float[] Values { get; }
    /// <summary>Whether weight decay applies (weights: yes; biases, slopes, codebooks: no).</summary>
    public bool Decays { get; init; }
    /// <summary>This parameter's learning rate as a multiple of the run's (e.g. faster slopes).</summary>
    public double LearningRateScale { get; init; } = 1;
    /// <summary>(values, grad): adds this parameter's penalty gradient to grad and returns the penalty.</summary>
    public Func<float[], float[], double>? Penalty { get; init; }
    /// <summary>Projects the values back into their domain after each step.</summary>
    public Action<float[]>? Constrain { get; init; }
    /// <summary>Values the constraint holds at zero (a sparsified weight's mask, keep-zeros).</summary>
    public int HeldZeros { get; init; }

    public abstract IEnumerable<string> Initializers { get; }

    /// <summary>The initializer arrays the current values give (used as evaluator overrides). Shared-weight
    /// parameters write into one array of their own each time: it is valid until the next call.</summary>
    public abstract void Materialize(IDictionary<string, NdArray<float>> into);

    /// <summary>dL/dValues from the gradients of the initializers this parameter produces (added to grad).</summary>
    public abstract void Gradient(IReadOnlyDictionary<string, NdArray<float>> initializerGrads, float[] grad);

    /// <summary>The initializer tensors of the current values (for writing back into the model).</summary>
    public IEnumerable<Tensor> Tensors(Model model)
    {
        var arrays = new Dictionary<string, NdArray<float>>(StringComparer.Ordinal);
        Materialize(arrays);
        foreach (var (name, a) in arrays)
        {
            var old = model.Graph.Find(name)?.Initializer ?? throw new OnnxModelException($"no initializer '{name}'");
            yield return Tensor.FromFloats(name, old.Dims, a.R);
        }
    }
}

/// <summary>An initializer trained as it is.</summary>
public sealed class DirectParameter : Parameter
{
    private readonly int[] _shape;

    public DirectParameter(Value initializer) : base(initializer.Name, initializer.Initializer!.ToFloatArray())
    {
        _shape = initializer.Initializer!.Dims.Select(d => checked((int)d)).ToArray();
    }

    public override IEnumerable<string> Initializers => [Name];

    public override void Materialize(IDictionary<string, NdArray<float>> into) =>
        into[Name] = new NdArray<float>(_shape, Values);

    public override void Gradient(IReadOnlyDictionary<string, NdArray<float>> g, float[] grad)
    {
        var d = g[Name].R;
        for (int i = 0; i < d.Length; i++) grad[i] += d[i];
    }
}

/// <summary>Shared weights: every element of an initializer is one centroid of its slice's codebook.</summary>
public sealed class CodebookParameter : Parameter
{
    private readonly string _initializer;
    private readonly int[] _shape;
    private readonly int[] _index; // element -> position in Values (slice * K + code)
    private float[]? _weights;

    /// <param name="codebooks">Slices x K centroids, flattened.</param>
    /// <param name="index">Per element of the initializer, its centroid's position in <paramref
    /// name="codebooks"/>.</param>
    public CodebookParameter(Value initializer, float[] codebooks, int[] index)
        : base(initializer.Name + ":codebook", codebooks)
    {
        _initializer = initializer.Name;
        _shape = initializer.Initializer!.Dims.Select(d => checked((int)d)).ToArray();
        if (index.Length != NdArray<float>.Size(_shape)) throw new ArgumentException("one index per element");
        _index = index;
    }

    public override IEnumerable<string> Initializers => [_initializer];

    public override void Materialize(IDictionary<string, NdArray<float>> into)
    {
        var w = _weights ??= new float[_index.Length];
        for (int i = 0; i < w.Length; i++) w[i] = Values[_index[i]];
        into[_initializer] = new NdArray<float>(_shape, w);
    }

    public override void Gradient(IReadOnlyDictionary<string, NdArray<float>> g, float[] grad)
    {
        var d = g[_initializer].R;
        for (int i = 0; i < d.Length; i++) grad[_index[i]] += d[i];
    }
}

/// <summary>A weight on a fixed integer grid per block, W[i] = s[block(i)] * q[i]: the block scales train.</summary>
public sealed class GridParameter : Parameter
{
    private readonly string _initializer;
    private readonly int[] _shape;
    private readonly int[] _block;
    private readonly float[] _q;
    private float[]? _weights;

    public GridParameter(Value initializer, float[] scales, int[] block, float[] q)
        : base(initializer.Name + ":scales", scales)
    {
        _initializer = initializer.Name;
        _shape = initializer.Initializer!.Dims.Select(d => checked((int)d)).ToArray();
        if (block.Length != q.Length || q.Length != NdArray<float>.Size(_shape))
            throw new ArgumentException("one block and grid value per element");
        _block = block; _q = q;
    }

    public override IEnumerable<string> Initializers => [_initializer];

    public override void Materialize(IDictionary<string, NdArray<float>> into)
    {
        var w = _weights ??= new float[_q.Length];
        for (int i = 0; i < w.Length; i++) w[i] = Values[_block[i]] * _q[i];
        into[_initializer] = new NdArray<float>(_shape, w);
    }

    public override void Gradient(IReadOnlyDictionary<string, NdArray<float>> g, float[] grad)
    {
        var d = g[_initializer].R;
        for (int i = 0; i < d.Length; i++) grad[_block[i]] += d[i] * _q[i];
    }
}
