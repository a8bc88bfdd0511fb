// Element-wise activations and Softmax/LogSoftmax, each with its derivative.
//   Relu       y = max(x, 0)                      y' = [x > 0]
//   LeakyRelu  y = x >= 0 ? x : a x (a = 0.01)     y' = x >= 0 ? 1 : a
//   PRelu      y = x >= 0 ? x : s x (s broadcast)  dx = x >= 0 ? g : s g,  ds = sum g x [x < 0]
//   Clip       y = min(max(x, lo), hi)            y' = [lo <= x <= hi]  (bounds: inputs, or attributes before opset 11;
//              d lo = sum g [x < lo], d hi = sum g [x > hi])
//   Sigmoid    y = 1 / (1 + e^-x)                 y' = y (1 - y)
//   HardSigmoid y = clamp(a x + b, 0, 1) (0.2, 0.5)  y' = a [0 < a x + b < 1]
//   HardSwish  y = x clamp(x/6 + 1/2, 0, 1)       y' = x < -3 ? 0 : x > 3 ? 1 : x/3 + 1/2
//   Tanh       y' = 1 - y^2
//   Softmax    y = e^x / sum e^x along the axis   dx = y (g - sum g y)
//   LogSoftmax y = x - log sum e^x                dx = g - e^y sum g
// Softmax's axis: before opset 13 the input is flattened to 2-D at axis (default 1); from 13, one
// axis (default -1).
using System.Numerics;
using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal abstract class UnaryOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected virtual (T A, T B) Params(OpCall<T> c) => (T.Zero, T.Zero);
    protected abstract T F(T x, T a, T b);
    /// <summary>dy/dx at x (y = F(x)).</summary>
    protected abstract T D(T x, T y, T a, T b);

    public virtual NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        var (a, b) = Params(c);
        var xr = x.R; var y = Buffers<T>.New(xr.Length);
        for (int i = 0; i < y.Length; i++) y[i] = F(xr[i], a, b);
        return [new NdArray<T>(x.Shape, y)];
    }

    public virtual NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy || !needed[0]) return r;
        var (a, b) = Params(c);
        var x = c.In(0).R; var y = c.Outputs[0].R; var g = gy.R;
        var d = Buffers<T>.New(x.Length);
        for (int i = 0; i < d.Length; i++) d[i] = g[i] * D(x[i], y[i], a, b);
        r[0] = new NdArray<T>(c.In(0).Shape, d);
        return r;
    }
}

internal sealed class ReluOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override T F(T x, T a, T b) => x > T.Zero ? x : T.Zero;
    protected override T D(T x, T y, T a, T b) => x > T.Zero ? T.One : T.Zero;

    public override NdArray<T>[] Forward(OpCall<T> c) => [Clamped.Forward(c.In(0), T.Zero, T.PositiveInfinity)];

    public override NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is { } gy && needed[0]) r[0] = Clamped.Backward(c.In(0), gy, T.Zero, T.PositiveInfinity,
            true);
        return r;
    }
}

/// <summary>Vectorized min(max(x, lo), hi) and its input gradient g [lo &lt;= x &lt;= hi] (strict x &gt; lo for
/// Relu).</summary>
internal static class Clamped
{
    public static NdArray<T> Forward<T>(NdArray<T> xa, T lo, T hi) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = xa.R; var y = Buffers<T>.NewUninitialized(x.Length);
        int v = Vector<T>.Count, i = 0;
        Vector<T> l = new(lo), h = new(hi);
        for (; i + v <= x.Length; i += v) Vector.Min(Vector.Max(new Vector<T>(x, i), l), h).CopyTo(y, i);
        for (; i < x.Length; i++) y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
        return new NdArray<T>(xa.Shape, y);
    }

    public static NdArray<T> Backward<T>(NdArray<T> xa, NdArray<T> ga, T lo, T hi, bool strictLow)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = xa.R; var g = ga.R; var d = Buffers<T>.NewUninitialized(x.Length);
        int v = Vector<T>.Count, i = 0;
        Vector<T> l = new(lo), h = new(hi);
        for (; i + v <= x.Length; i += v)
        {
            var xv = new Vector<T>(x, i);
            var low = strictLow ? Vector.GreaterThan(xv, l) : Vector.GreaterThanOrEqual(xv, l);
            var inside = Vector.BitwiseAnd(low, Vector.LessThanOrEqual(xv, h));
            Vector.ConditionalSelect(inside, new Vector<T>(g, i), Vector<T>.Zero).CopyTo(d, i);
        }
        for (; i < x.Length; i++) d[i] = (strictLow ? x[i] > lo : x[i] >= lo) && x[i] <= hi ? g[i] : T.Zero;
        return new NdArray<T>(xa.Shape, d);
    }
}

internal sealed class LeakyReluOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (T A, T B) Params(OpCall<T> c) => (T.CreateChecked(Attr.Float(c.Node, "alpha", 0.01f)), T.Zero);
    protected override T F(T x, T a, T b) => x >= T.Zero ? x : a * x;
    protected override T D(T x, T y, T a, T b) => x >= T.Zero ? T.One : a;
}

internal sealed class ClipOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (T A, T B) Params(OpCall<T> c)
    {
        T lo = T.NegativeInfinity, hi = T.PositiveInfinity;
        if (c.Opset < 11)
        {
            if (c.Node.Attr("min") is { } mn) lo = T.CreateChecked(mn.F);
            if (c.Node.Attr("max") is { } mx) hi = T.CreateChecked(mx.F);
        }
        else
        {
            if (c.Optional(1) is { } mn) lo = T.CreateChecked(mn.ToDouble(0));
            if (c.Optional(2) is { } mx) hi = T.CreateChecked(mx.ToDouble(0));
        }
        return (lo, hi);
    }
    protected override T F(T x, T lo, T hi) => x < lo ? lo : x > hi ? hi : x;
    protected override T D(T x, T y, T lo, T hi) => x >= lo && x <= hi ? T.One : T.Zero;

    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var (lo, hi) = Params(c);
        return [Clamped.Forward(c.In(0), lo, hi)];
    }

    /// <summary>Also the bounds' gradients (opset 11+ inputs): dlo = sum g [x &lt; lo], dhi = sum g [x &gt; hi].</summary>
    public override NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var (lo, hi) = Params(c);
        if (needed[0]) r[0] = Clamped.Backward(c.In(0), gy, lo, hi, false);
        if (c.Opset < 11) return r;
        var x = c.In(0).R; var g = gy.R;
        for (int side = 1; side <= 2; side++)
        {
            if (side >= needed.Length || !needed[side] || c.Optional(side) is not { } bound) continue;
            T s = T.Zero;
            for (int i = 0; i < x.Length; i++) if (side == 1 ? x[i] < lo : x[i] > hi) s += g[i];
            r[side] = new NdArray<T>(bound.Shape, [s]);
        }
        return r;
    }
}

internal sealed class SigmoidOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override T F(T x, T a, T b) => T.One / (T.One + T.Exp(-x));
    protected override T D(T x, T y, T a, T b) => y * (T.One - y);
}

internal sealed class HardSigmoidOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (T A, T B) Params(OpCall<T> c) => (T.CreateChecked(Attr.Float(c.Node,
        "alpha", 0.2f)), T.CreateChecked(Attr.Float(c.Node, "beta", 0.5f)));
    protected override T F(T x, T a, T b) => T.Clamp(a * x + b, T.Zero, T.One);
    protected override T D(T x, T y, T a, T b) { var z = a * x + b; return z > T.Zero && z < T.One ? a : T.Zero; }
}

internal sealed class HardSwishOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static readonly T Three = T.CreateChecked(3), Six = T.CreateChecked(6), Half = T.CreateChecked(0.5);
    protected override T F(T x, T a, T b) => x * T.Clamp(x / Six + Half, T.Zero, T.One);
    protected override T D(T x, T y, T a, T b) => x < -Three ? T.Zero : x > Three ? T.One : x / Three + Half;
}

internal sealed class TanhOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override T F(T x, T a, T b) => T.Tanh(x);
    protected override T D(T x, T y, T a, T b) => T.One - y * y;
}

internal sealed class PReluOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0); var s = c.In(1);
        var map = Broadcast.Map(x.Shape, s.Shape);
        var xr = x.R; var sr = s.R; var y = Buffers<T>.New(xr.Length);
        for (int i = 0; i < y.Length; i++) y[i] = xr[i] >= T.Zero ? xr[i] : sr[map[i]] * xr[i];
        return [new NdArray<T>(x.Shape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[2];
        if (gradOutputs[0] is not { } gy) return r;
        var x = c.In(0); var s = c.In(1);
        var map = Broadcast.Map(x.Shape, s.Shape);
        var xr = x.R; var sr = s.R; var g = gy.R;
        if (needed[0])
        {
            var d = Buffers<T>.New(xr.Length);
            for (int i = 0; i < d.Length; i++) d[i] = xr[i] >= T.Zero ? g[i] : sr[map[i]] * g[i];
            r[0] = new NdArray<T>(x.Shape, d);
        }
        if (needed[1])
        {
            var d = Buffers<T>.New(sr.Length);
            for (int i = 0; i < xr.Length; i++) if (xr[i] < T.Zero) d[map[i]] += g[i] * xr[i];
            r[1] = new NdArray<T>(s.Shape, d);
        }
        return r;
    }
}

internal sealed class SoftmaxOp<T>(bool log) : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static (int Outer, int Len, int Inner) Layout(OpCall<T> c, int[] shape)
    {
        int rank = shape.Length;
        if (c.Opset < 13)
        {
            int axis = NdArrayShape.Axis(c.Node, Attr.Int(c.Node, "axis", 1), rank);
            return (NdArrayShape.Size(shape.AsSpan(0, axis)), NdArrayShape.Size(shape.AsSpan(axis)), 1);
        }
        int ax = NdArrayShape.Axis(c.Node, Attr.Int(c.Node, "axis", -1), rank);
        return (NdArrayShape.Size(shape.AsSpan(0, ax)), shape[ax], NdArrayShape.Size(shape.AsSpan(ax + 1)));
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        var (outer, len, inner) = Layout(c, x.Shape);
        var xr = x.R; var y = Buffers<T>.New(xr.Length);
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                int b = o * len * inner + j;
                T mx = T.NegativeInfinity;
                for (int i = 0; i < len; i++) mx = T.Max(mx, xr[b + i * inner]);
                T sum = T.Zero;
                for (int i = 0; i < len; i++) sum += T.Exp(xr[b + i * inner] - mx);
                var lse = mx + T.Log(sum);
                for (int i = 0; i < len; i++) y[b + i * inner] = log ? xr[b + i * inner] - lse : T.Exp(xr[b + i * inner] - lse);
            }
        return [new NdArray<T>(x.Shape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[1];
        if (gradOutputs[0] is not { } gy || !needed[0]) return r;
        var (outer, len, inner) = Layout(c, gy.Shape);
        var y = c.Outputs[0].R; var g = gy.R; var d = Buffers<T>.New(g.Length);
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                int b = o * len * inner + j;
                T s = T.Zero;
                for (int i = 0; i < len; i++) s += log ? g[b + i * inner] : g[b + i * inner] * y[b + i * inner];
                for (int i = 0; i < len; i++)
                {
                    int k = b + i * inner;
                    d[k] = log ? g[k] - T.Exp(y[k]) * s : y[k] * (g[k] - s);
                }
            }
        r[0] = new NdArray<T>(gy.Shape, d);
        return r;
    }
}
