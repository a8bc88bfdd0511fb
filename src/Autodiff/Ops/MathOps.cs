// Element-wise math and the variadic reductions over inputs, each with its derivative.
//   Abs y = |x|, y' = sign(x)        Neg y' = -1                Sqrt y' = 1 / (2 y)
//   Exp y' = y                       Log y' = 1 / x             Reciprocal y = 1/x, y' = -y^2
//   Erf y' = 2/sqrt(pi) e^(-x^2)     Softplus y = log(1 + e^x), y' = sigmoid(x)
//   Elu y = x > 0 ? x : a (e^x - 1), y' = x > 0 ? 1 : y + a    (a = 1)
//   Selu y = g (x > 0 ? x : a (e^x - 1)), y' = g (x > 0 ? 1 : a e^x)   (attributes a = 1.67326, g = 1.0507)
//   Mish y = x tanh(softplus(x)),  y' = tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2)
//   Gelu (opset 20) y = x Phi(x),  y' = Phi(x) + x phi(x); approximate="tanh":
//        y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), y' = (1 + t)/2 + x/2 (1 - t^2) u'
//   Pow  y = a^b (broadcast),  da = b a^(b-1) g,  db = ln(a) a^b g
//   Max/Min (variadic, broadcast): the gradient goes to the input holding the extreme (the first on ties);
//   Sum: to every input; Mean: g / count to every input; each reduced onto its input's shape.
using System.Numerics;
using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal sealed class MathOp<T>(Func<T, T> f, Func<T, T, T> d) : UnaryOp<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override T F(T x, T a, T b) => f(x);
    protected override T D(T x, T y, T a, T b) => d(x, y);
}

internal static class MathOps<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static readonly T Half = T.CreateChecked(0.5), Two = T.CreateChecked(2);

    private static T Sigmoid(T x) => T.One / (T.One + T.Exp(-x));
    private static T Softplus(T x) => x > T.CreateChecked(20) ? x : T.Log(T.One + T.Exp(x));

    internal static T Erf(T x)
    {
        // Abramowitz-Stegun 7.1.26 is too coarse for gradient checks: the Maclaurin series below 2.5, the
        // continued fraction of erfc above, in double (about 1e-11 relative at worst).
        var v = double.CreateChecked(x);
        return T.CreateChecked(ErfD(v));
    }

    private static double ErfD(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        var ax = Math.Abs(x);
        double r;
        if (ax < 2.5)
        {
            // Maclaurin series: erf x = 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1))
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 60; n++)
            {
                term *= -x2 / n;
                var add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // erfc x = e^(-x^2) / (sqrt(pi) K), K = x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))), from the tail.
            double k = ax;
            for (int n = 80; n >= 1; n--) k = ax + n / 2.0 / k;
            r = 1 - Math.Exp(-ax * ax) / (Math.Sqrt(Math.PI) * k);
        }
        return x < 0 ? -r : r;
    }

    private static readonly T TwoOverSqrtPi = T.CreateChecked(2 / Math.Sqrt(Math.PI));

    public static IOp<T> Abs => new MathOp<T>(T.Abs, (x, _) => x > T.Zero ? T.One : x < T.Zero ? -T.One : T.Zero);
    public static IOp<T> Neg => new MathOp<T>(x => -x, (_, _) => -T.One);
    public static IOp<T> Sqrt => new MathOp<T>(T.Sqrt, (_, y) => Half / y);
    public static IOp<T> Exp => new MathOp<T>(T.Exp, (_, y) => y);
    public static IOp<T> Log => new MathOp<T>(T.Log, (x, _) => T.One / x);
    public static IOp<T> Reciprocal => new MathOp<T>(x => T.One / x, (_, y) => -y * y);
    public static IOp<T> ErfOp => new MathOp<T>(Erf, (x, _) => TwoOverSqrtPi * T.Exp(-x * x));
    public static IOp<T> SoftplusOp => new MathOp<T>(Softplus, (x, _) => Sigmoid(x));
    public static IOp<T> Mish => new MathOp<T>(x => x * T.Tanh(Softplus(x)), (x, _) =>
    {
        var t = T.Tanh(Softplus(x));
        return t + x * Sigmoid(x) * (T.One - t * t);
    });
}

/// <summary>Elu with its alpha attribute (default 1).</summary>
internal sealed class EluOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (T A, T B) Params(OpCall<T> c) => (T.CreateChecked(Attr.Float(c.Node, "alpha", 1f)), T.Zero);
    protected override T F(T x, T a, T b) => x > T.Zero ? x : a * (T.Exp(x) - T.One);
    protected override T D(T x, T y, T a, T b) => x > T.Zero ? T.One : y + a;
}

/// <summary>Selu with its alpha and gamma attributes.</summary>
internal sealed class SeluOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (T A, T B) Params(OpCall<T> c) => (T.CreateChecked(Attr.Float(c.Node, "alpha", 1.67326319f)),
        T.CreateChecked(Attr.Float(c.Node, "gamma", 1.05070102f)));
    protected override T F(T x, T a, T g) => g * (x > T.Zero ? x : a * (T.Exp(x) - T.One));
    protected override T D(T x, T y, T a, T g) => g * (x > T.Zero ? T.One : a * T.Exp(x));
}

/// <summary>Gelu (opset 20): exact (erf) or approximate="tanh".</summary>
internal sealed class GeluOp<T> : UnaryOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static readonly T Half = T.CreateChecked(0.5), InvSqrt2 = T.CreateChecked(1 / Math.Sqrt(2));
    private static readonly T InvSqrt2Pi = T.CreateChecked(1 / Math.Sqrt(2 * Math.PI));
    private static readonly T K = T.CreateChecked(Math.Sqrt(2 / Math.PI)), C = T.CreateChecked(0.044715);
    private static readonly T Three = T.CreateChecked(3);

    protected override (T A, T B) Params(OpCall<T> c) =>
        (c.Node.GetString("approximate") == "tanh" ? T.One : T.Zero, T.Zero);

    protected override T F(T x, T tanh, T b) => tanh == T.One
        ? Half * x * (T.One + T.Tanh(K * (x + C * x * x * x)))
        : Half * x * (T.One + MathOps<T>.Erf(x * InvSqrt2));

    protected override T D(T x, T y, T tanh, T b)
    {
        if (tanh == T.One)
        {
            var t = T.Tanh(K * (x + C * x * x * x));
            return Half * (T.One + t) + Half * x * (T.One - t * t) * K * (T.One + Three * C * x * x);
        }
        return Half * (T.One + MathOps<T>.Erf(x * InvSqrt2)) + x * InvSqrt2Pi * T.Exp(-Half * x * x);
    }
}

internal sealed class PowOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var a = c.In(0); var b = c.In(1);
        var shape = Broadcast.Shape(c.Node, a.Shape, b.Shape);
        var ma = Broadcast.Map(shape, a.Shape); var mb = Broadcast.Map(shape, b.Shape);
        var x = Real(a); var y = Real(b);
        var r = Buffers<T>.New(NdArray<T>.Size(shape));
        for (int i = 0; i < r.Length; i++) r[i] = T.Pow(x[ma[i]], y[mb[i]]);
        return [new NdArray<T>(shape, r)];
    }

    private static T[] Real(NdArray<T> a) => BinaryOp<T>.Real(a);

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[2];
        if (gradOutputs[0] is not { } gy) return r;
        var a = c.In(0); var b = c.In(1);
        var shape = gy.Shape;
        var ma = Broadcast.Map(shape, a.Shape); var mb = Broadcast.Map(shape, b.Shape);
        var x = Real(a); var y = Real(b); var out0 = c.Outputs[0].R; var g = gy.R;
        if (needed[0] && !a.IsInt)
        {
            var d = Buffers<T>.New(a.Length);
            for (int i = 0; i < g.Length; i++) d[ma[i]] += g[i] * y[mb[i]] * T.Pow(x[ma[i]], y[mb[i]] - T.One);
            r[0] = new NdArray<T>(a.Shape, d);
        }
        if (needed[1] && !b.IsInt)
        {
            var d = Buffers<T>.New(b.Length);
            for (int i = 0; i < g.Length; i++) d[mb[i]] += g[i] * out0[i] * T.Log(x[ma[i]]);
            r[1] = new NdArray<T>(b.Shape, d);
        }
        return r;
    }
}

internal enum VariadicKind { Max, Min, Sum, Mean }

/// <summary>Max, Min, Sum, Mean over any number of broadcast inputs.</summary>
internal sealed class VariadicOp<T>(VariadicKind kind) : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var ins = c.Inputs.Select((a, i) => a ?? throw c.Error($"input {i} is required")).ToArray();
        var shape = Broadcast.Shape(c.Node, ins.Select(a => a.Shape).ToArray());
        var maps = ins.Select(a => Broadcast.Map(shape, a.Shape)).ToArray();
        var r = Buffers<T>.New(NdArray<T>.Size(shape));
        var winner = kind is VariadicKind.Max or VariadicKind.Min ? new int[r.Length] : null;
        for (int i = 0; i < r.Length; i++)
        {
            var v = ins[0].R[maps[0][i]];
            for (int k = 1; k < ins.Length; k++)
            {
                var u = ins[k].R[maps[k][i]];
                switch (kind)
                {
                    case VariadicKind.Max: if (u > v) { v = u; winner![i] = k; } break;
                    case VariadicKind.Min: if (u < v) { v = u; winner![i] = k; } break;
                    default: v += u; break;
                }
            }
            r[i] = kind == VariadicKind.Mean ? v / T.CreateChecked(ins.Length) : v;
        }
        c.Saved = winner;
        return [new NdArray<T>(shape, r)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var g = gy.R;
        var winner = c.Saved as int[];
        var scale = kind == VariadicKind.Mean ? T.One / T.CreateChecked(c.Inputs.Length) : T.One;
        for (int k = 0; k < c.Inputs.Length; k++)
        {
            if (!needed[k] || c.Inputs[k] is not { IsInt: false } a) continue;
            var map = Broadcast.Map(gy.Shape, a.Shape);
            var d = Buffers<T>.New(a.Length);
            for (int i = 0; i < g.Length; i++)
                if (winner is null || winner[i] == k) d[map[i]] += g[i] * scale;
            r[k] = new NdArray<T>(a.Shape, d);
        }
        return r;
    }
}
