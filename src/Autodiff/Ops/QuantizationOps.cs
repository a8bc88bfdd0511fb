// QuantizeLinear and DequantizeLinear, differentiable by the straight-through estimator, so that a QDQ model
// trains (quantization-aware training; the scale's gradient is LSQ's: Esser et al., ICLR 2020, "Learned Step
// Size Quantization"):
//   Q   q = clamp(round(x / s) + z, qmin, qmax)   round half to even; [qmin, qmax] the range of z's type (or
//                                                 output_dtype, else uint8); q is held as reals of that type
//   DQ  y = (q - z) s
//   STE: round's derivative is taken as 1, so inside the grid (qmin <= round(x/s) + z <= qmax)
//        dq/dx = 1/s and dq/ds = -x/s^2; outside both are 0 (the clamp).
//   Q then DQ with one s (as the QDQ emitter writes them): dy/dx = [inside] and
//        dy/ds = round(x/s) - x/s inside, qmin - z or qmax - z outside: LSQ's step-size gradient.
// Zero points are integers and do not train. s and z are scalars (per tensor) or 1-D along `axis` (per channel,
// default 1); blocked quantization (opset 21's block_size) is refused.
using System.Numerics;
using OnnxOpt.Autodiff.Kernels;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Autodiff.Ops;

internal static class QuantGrid
{
    /// <summary>The integer range of a quantized element type.</summary>
    public static (double Min, double Max) Range(DataType t, string node) => t switch
    {
        DataType.UInt8 => (0, 255),
        DataType.Int8 => (-128, 127),
        DataType.UInt16 => (0, 65535),
        DataType.Int16 => (-32768, 32767),
        DataType.UInt4 => (0, 15),
        DataType.Int4 => (-8, 7),
        DataType.Int32 => (int.MinValue, int.MaxValue),
        _ => throw new OnnxModelException($"node {node}: {t.Name()} quantization is not supported by the reference "
            + "evaluator"),
    };

    /// <summary>(channel count, elements per channel step) of a scale along the node's axis, checked against x.
    /// </summary>
    public static (int Channels, long Inner) Layout<T>(OpCall<T> c, NdArray<T> x, NdArray<T> scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (c.Node.GetInt("block_size", 0) != 0)
            throw c.Error("blocked quantization (block_size) is not supported by the reference evaluator");
        if (scale.Length == 1) return (1, x.Length);
        if (scale.Rank != 1) throw c.Error($"scale of shape [{string.Join(",", scale.Shape)}] is neither a scalar nor "
            + "1-D");
        var axis = (int)c.Node.GetInt("axis", 1);
        if (axis < 0) axis += x.Rank;
        if (axis < 0 || axis >= x.Rank || x.Shape[axis] != scale.Length)
            throw c.Error($"{scale.Length} scales do not match axis {axis} of [{string.Join(",", x.Shape)}]");
        long inner = 1;
        for (int d = axis + 1; d < x.Rank; d++) inner *= x.Shape[d];
        return (scale.Length, inner);
    }

    public static double Zero<T>(NdArray<T>? z, int ch) where T : unmanaged, IFloatingPointIeee754<T> =>
        z is null ? 0 : z.ToDouble(z.Length == 1 ? 0 : ch);
}

internal sealed class QuantizeLinearOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static DataType OutputType(OpCall<T> c) => c.Optional(2) is { } z ? z.ElementType
        : c.Node.GetInt("output_dtype", 0) is var t and not 0 ? (DataType)t : DataType.UInt8;

    // Every loop runs over blocks of `inner` elements that share one channel's scale and zero point.
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0); var s = c.In(1); var z = c.Optional(2);
        var type = OutputType(c);
        var (lo, hi) = QuantGrid.Range(type, c.Node.ToString());
        var (channels, inner) = QuantGrid.Layout(c, x, s);
        var xr = x.R; var y = Buffers<T>.New(xr.Length);
        T tlo = T.CreateChecked(lo), thi = T.CreateChecked(hi);
        for (long start = 0; start < xr.Length; start += inner)
        {
            int ch = (int)(start / inner % channels);
            T sc = T.CreateChecked(s.ToDouble(ch)), zc = T.CreateChecked(QuantGrid.Zero(z, ch));
            for (long i = start; i < start + inner; i++)
                y[i] = T.Clamp(T.Round(xr[i] / sc, MidpointRounding.ToEven) + zc, tlo, thi);
        }
        return [new NdArray<T>(x.Shape, y, type)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var x = c.In(0); var s = c.In(1); var z = c.Optional(2);
        var (lo, hi) = QuantGrid.Range(OutputType(c), c.Node.ToString());
        var (channels, inner) = QuantGrid.Layout(c, x, s);
        var xr = x.R; var g = gy.R;
        var dx = needed[0] ? Buffers<T>.New(xr.Length) : null;
        var ds = needed.Length > 1 && needed[1] ? new double[channels] : null;
        T tlo = T.CreateChecked(lo), thi = T.CreateChecked(hi);
        for (long start = 0; start < xr.Length; start += inner)
        {
            int ch = (int)(start / inner % channels);
            T sc = T.CreateChecked(s.ToDouble(ch)), zc = T.CreateChecked(QuantGrid.Zero(z, ch));
            double dsum = 0;
            for (long i = start; i < start + inner; i++)
            {
                var q = T.Round(xr[i] / sc, MidpointRounding.ToEven) + zc;
                bool inside = q >= tlo && q <= thi;
                if (dx is not null) dx[i] = inside ? g[i] / sc : T.Zero;
                if (inside) dsum += double.CreateChecked(g[i] * xr[i]);
            }
            var sd = double.CreateChecked(sc);
            if (ds is not null) ds[ch] -= dsum / (sd * sd);
        }
        if (dx is not null) r[0] = new NdArray<T>(x.Shape, dx);
        if (ds is not null) r[1] = new NdArray<T>(s.Shape, ds.Select(T.CreateChecked).ToArray());
        return r;
    }
}

internal sealed class DequantizeLinearOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var q = c.In(0); var s = c.In(1); var z = c.Optional(2);
        var (channels, inner) = QuantGrid.Layout(c, q, s);
        var y = Buffers<T>.New(q.Length);
        for (long start = 0; start < y.Length; start += inner)
        {
            int ch = (int)(start / inner % channels);
            double sc = s.ToDouble(ch), zc = QuantGrid.Zero(z, ch);
            if (q.Real is { } qr)
            {
                T ts = T.CreateChecked(sc), tz = T.CreateChecked(zc);
                for (long i = start; i < start + inner; i++) y[i] = (qr[i] - tz) * ts;
            }
            else for (long i = start; i < start + inner; i++) y[i] = T.CreateChecked((q.Int![i] - zc) * sc);
        }
        return [new NdArray<T>(q.Shape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var q = c.In(0); var s = c.In(1); var z = c.Optional(2);
        var (channels, inner) = QuantGrid.Layout(c, q, s);
        var g = gy.R;
        var dq = needed[0] ? Buffers<T>.New(q.Length) : null;
        var ds = needed.Length > 1 && needed[1] ? new double[channels] : null;
        for (long start = 0; start < q.Length; start += inner)
        {
            int ch = (int)(start / inner % channels);
            T ts = T.CreateChecked(s.ToDouble(ch)), tz = T.CreateChecked(QuantGrid.Zero(z, ch));
            if (dq is not null) for (long i = start; i < start + inner; i++) dq[i] = g[i] * ts;
            if (ds is null) continue;
            double sum = 0;
            if (q.Real is { } qr)
                for (long i = start; i < start + inner; i++) sum += double.CreateChecked(g[i] * (qr[i] - tz));
            else
                for (long i = start; i < start + inner; i++)
                    sum += double.CreateChecked(g[i]) * (q.Int![i] - double.CreateChecked(tz));
            ds[ch] += sum;
        }
        if (dq is not null) r[0] = new NdArray<T>(q.Shape, dq);
        if (ds is not null) r[1] = new NdArray<T>(s.Shape, ds.Select(T.CreateChecked).ToArray());
        return r;
    }
}
