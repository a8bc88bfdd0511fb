// Parameters of quantization-aware training (QAT): a weight on a symmetric integer grid whose values and scales
// train, and a quantization scale that trains (LSQ: Esser et al., ICLR 2020, "Learned Step Size Quantization").
//   FakeQuantParameter:  values [w (n) ; u (C)],  s_c = s0_c u_c,  W_i = s_c clamp(round(w_i / s_c), -Q, Q)
//     straight-through estimator: dL/dw_i = dL/dW_i [|round(w_i / s_c)| <= Q]
//     LSQ:  dL/du_c = s0_c sum over channel c of dL/dW_i (round(w_i/s_c) - w_i/s_c inside, +-Q outside)
//   ScaleParameter:  values u (one per scale element), s = s0 u,  dL/du = s0 dL/ds
// Scales train in units of their starting value (u starts at 1), so one learning rate moves every scale by the
// same relative amount whatever its size (activation scales range over orders of magnitude); u stays >= 1e-3.
using OnnxOpt.Autodiff;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Training;

/// <summary>A weight fake-quantized on a symmetric grid [-Q, Q] with one scale per channel along an axis (or one).
/// </summary>
public sealed class FakeQuantParameter : Parameter
{
    private readonly string _initializer;
    private readonly int[] _shape;
    private readonly int _n;
    private readonly long _inner;
    private readonly double[] _s0;
    private float[]? _weights;

    /// <param name="initializer">The float weight the training graph reads (its values are the starting w).</param>
    /// <param name="scales">The starting scales s0: one, or one per index of <paramref name="axis"/>.</param>
    /// <param name="qmax">Q, the largest integer magnitude (127; 63 with reduce-range; 7 for 4-bit weights).</param>
    /// <param name="zeros">Positions of the weight held at zero after every step (a sparse mask), or null.</param>
    public FakeQuantParameter(Value initializer, float[] scales, int axis, int qmax, ZeroMask? zeros = null)
        : base(initializer.Name + ":fake-quant", Start(initializer, scales.Length))
    {
        _initializer = initializer.Name;
        _shape = initializer.Initializer!.Dims.Select(d => checked((int)d)).ToArray();
        _n = NdArray<float>.Size(_shape);
        if (scales.Length > 1 && (axis < 0 || axis >= _shape.Length || _shape[axis] != scales.Length))
            throw new ArgumentException($"{scales.Length} scales do not match axis {axis} of '{_initializer}'");
        _inner = 1;
        if (scales.Length > 1) for (int d = axis + 1; d < _shape.Length; d++) _inner *= _shape[d];
        else _inner = _n;
        _s0 = scales.Select(s => (double)s).ToArray();
        QMax = qmax;
        Constrain = u =>
        {
            for (int c = 0; c < _s0.Length; c++) u[_n + c] = Math.Max(u[_n + c], 1e-3f);
            zeros?.Apply(u);
        };
        HeldZeros = zeros?.Count ?? 0;
    }

    private static float[] Start(Value v, int channels)
    {
        var w = v.Initializer!.ToFloatArray();
        var values = new float[w.Length + channels];
        w.CopyTo(values, 0);
        Array.Fill(values, 1f, w.Length, channels);
        return values;
    }

    public int QMax { get; }

    public override IEnumerable<string> Initializers => [_initializer];

    private int Channel(int i) => (int)(i / _inner % _s0.Length);

    /// <summary>The current scales s = s0 u.</summary>
    public float[] Scales() => _s0.Select((s, c) => (float)(s * Values[_n + c])).ToArray();

    /// <summary>The integers of the current weights on the current grid: clamp(round(w / s), -Q, Q).</summary>
    public sbyte[] Integers()
    {
        var s = Scales();
        var q = new sbyte[_n];
        for (int i = 0; i < _n; i++) q[i] = (sbyte)Math.Clamp(Round(Values[i], s[Channel(i)]), -QMax, QMax);
        return q;
    }

    private static double Round(float w, float s) => Math.Round(w / (double)s, MidpointRounding.ToEven);

    public override void Materialize(IDictionary<string, NdArray<float>> into)
    {
        var s = Scales();
        var w = _weights ??= new float[_n];
        for (int i = 0; i < _n; i++)
        {
            var sc = s[Channel(i)];
            w[i] = (float)(sc * Math.Clamp(Round(Values[i], sc), -QMax, QMax));
        }
        into[_initializer] = new NdArray<float>(_shape, w);
    }

    public override void Gradient(IReadOnlyDictionary<string, NdArray<float>> g, float[] grad)
    {
        var d = g[_initializer].R;
        var s = Scales();
        var ds = new double[_s0.Length];
        for (int i = 0; i < _n; i++)
        {
            int c = Channel(i);
            double x = Values[i] / (double)s[c], r = Math.Round(x, MidpointRounding.ToEven);
            if (r > QMax) ds[c] += d[i] * (double)QMax;
            else if (r < -QMax) ds[c] -= d[i] * (double)QMax;
            else
            {
                grad[i] += d[i];
                ds[c] += d[i] * (r - x);
            }
        }
        for (int c = 0; c < ds.Length; c++) grad[_n + c] += (float)(ds[c] * _s0[c]);
    }
}

/// <summary>A quantization scale (scalar or per channel) trained in units of its starting value.</summary>
public sealed class ScaleParameter : Parameter
{
    private readonly string _initializer;
    private readonly int[] _shape;
    private readonly double[] _s0;

    public ScaleParameter(Value initializer) : base(initializer.Name, Ones(initializer))
    {
        _initializer = initializer.Name;
        _shape = initializer.Initializer!.Dims.Select(d => checked((int)d)).ToArray();
        _s0 = initializer.Initializer.ToFloatArray().Select(s => (double)s).ToArray();
        Constrain = u => { for (int i = 0; i < u.Length; i++) u[i] = Math.Max(u[i], 1e-3f); };
    }

    private static float[] Ones(Value v)
    {
        var u = new float[v.Initializer!.ElementCount];
        Array.Fill(u, 1f);
        return u;
    }

    public override IEnumerable<string> Initializers => [_initializer];

    /// <summary>The current scales s = s0 u.</summary>
    public float[] Scales() => _s0.Select((s, i) => (float)(s * Values[i])).ToArray();

    public override void Materialize(IDictionary<string, NdArray<float>> into) =>
        into[_initializer] = new NdArray<float>(_shape, Scales());

    public override void Gradient(IReadOnlyDictionary<string, NdArray<float>> g, float[] grad)
    {
        var d = g[_initializer].R;
        for (int i = 0; i < d.Length; i++) grad[i] += (float)(d[i] * _s0[i]);
    }
}
