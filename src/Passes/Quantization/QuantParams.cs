// Quantization parameters and the integer tensors they produce.
//   activations, uint8 asymmetric: the range widened to include 0, [rmin, rmax];
//       scale = (rmax - rmin) / 255,  zero_point = clamp(round(-rmin / scale), 0, 255)
//   activations, int8 symmetric:  scale = max(|rmin|, |rmax|) / 127, zero_point = 0
//   weights, int8 symmetric in [-Q, Q], per output channel (or per tensor), Q = 127 (63 with
//   reduce-range, see Int8Hardware):  scale_c = max|w_c| / Q,  q = clamp(round(w / scale_c), -Q, Q)
//   bias, int32:  scale_c = input_scale * weight_scale_c,  q = round(b / scale_c), zero_point 0
// A zero range gets scale 1 (every value is then 0 exactly). Rounding is half to even, as
// QuantizeLinear's.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record QParams(float Scale, int ZeroPoint, DataType Type)
{
    public static QParams Activation(double lo, double hi, DataType type)
    {
        if (type == DataType.Int8)
        {
            var t = Math.Max(Math.Abs(lo), Math.Abs(hi));
            return new QParams(t > 0 ? (float)(t / 127) : 1f, 0, DataType.Int8);
        }
        double rmin = Math.Min(lo, 0), rmax = Math.Max(hi, 0);
        if (rmax - rmin <= 0) return new QParams(1f, 0, DataType.UInt8);
        var scale = (float)((rmax - rmin) / 255);
        var zp = (int)Math.Clamp(Math.Round(-rmin / scale, MidpointRounding.ToEven), 0, 255);
        return new QParams(scale, zp, DataType.UInt8);
    }

    public int QMin => Type == DataType.UInt8 ? 0 : -128;
    public int QMax => Type == DataType.UInt8 ? 255 : 127;

    /// <summary>The real values this tensor can represent: [(qmin - zp) s, (qmax - zp) s].</summary>
    public (double Lo, double Hi) Representable => ((QMin - ZeroPoint) * (double)Scale,
        (QMax - ZeroPoint) * (double)Scale);

    public Tensor ScaleTensor(string name) => Tensor.FromFloats(name, [], [Scale]);

    public Tensor ZeroPointTensor(string name) => Type == DataType.UInt8
        ? Tensor.FromValues(name, DataType.UInt8, [], [(byte)ZeroPoint])
        : Tensor.FromValues(name, DataType.Int8, [], [(sbyte)ZeroPoint]);

    /// <summary>A constant float tensor quantized with these (per-tensor) parameters.</summary>
    public Tensor Quantize(string name, long[] dims, float[] values)
    {
        var q = values.Select(v => (int)Math.Clamp(Math.Round(v / (double)Scale, MidpointRounding.ToEven) + ZeroPoint,
            QMin, QMax)).ToArray();
        return Type == DataType.UInt8
            ? Tensor.FromValues(name, DataType.UInt8, dims, q.Select(v => (byte)v).ToArray().AsSpan())
            : Tensor.FromValues(name, DataType.Int8, dims, q.Select(v => (sbyte)v).ToArray().AsSpan());
    }
}

/// <summary>An int8 weight tensor with its per-channel (axis) or per-tensor (axis -1) scales.</summary>
public sealed record QuantizedWeight(sbyte[] Values, float[] Scales, int Axis)
{
    /// <summary>Symmetric int8 quantization of <paramref name="w"/> (dims) along axis (-1: one scale).</summary>
    public static QuantizedWeight Of(float[] w, long[] dims, int axis, int qmax = 127)
    {
        int channels = axis < 0 ? 1 : (int)dims[axis];
        long inner = axis < 0 ? w.Length : dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
        int ChannelOf(int i) => axis < 0 ? 0 : (int)(i / inner % channels);
        var amax = new double[channels];
        for (int i = 0; i < w.Length; i++) amax[ChannelOf(i)] = Math.Max(amax[ChannelOf(i)], Math.Abs(w[i]));
        var scales = amax.Select(a => a > 0 ? (float)(a / qmax) : 1f).ToArray();
        var q = new sbyte[w.Length];
        for (int i = 0; i < w.Length; i++)
            q[i] = (sbyte)Math.Clamp(Math.Round(w[i] / (double)scales[ChannelOf(i)], MidpointRounding.ToEven), -qmax,
                qmax);
        return new QuantizedWeight(q, scales, axis);
    }

    /// <summary>int32 bias for input scale sx: q_c = round(b_c / (sx * s_c)), with its scales.</summary>
    public (int[] Values, float[] Scales) Bias(float[] b, float inputScale)
    {
        var scales = b.Select((_, c) => inputScale * Scales[Scales.Length == 1 ? 0 : c]).ToArray();
        var q = b.Select((v, c) => (int)Math.Clamp(Math.Round(v / (double)scales[c], MidpointRounding.ToEven),
            int.MinValue, int.MaxValue)).ToArray();
        return (q, scales);
    }
}
