// Add, Sub, Mul, Div with numpy broadcasting (integer operands: exact integer arithmetic, no gradient).
// VJP, each reduced onto its operand's shape:  Add: dA = dY, dB = dY;  Sub: dA = dY, dB = -dY;
//   Mul: dA = dY*B, dB = dY*A;  Div: dA = dY/B, dB = -dY*A/B^2.
using System.Numerics;
using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal enum BinaryKind { Add, Sub, Mul, Div }

internal sealed class BinaryOp<T>(BinaryKind kind) : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var a = c.In(0); var b = c.In(1);
        var shape = Broadcast.Shape(c.Node, a.Shape, b.Shape);
        int n = NdArray<T>.Size(shape);
        bool same = Broadcast.Same(a.Shape, shape) && Broadcast.Same(b.Shape, shape);
        var ma = same ? null : Broadcast.Map(shape, a.Shape);
        var mb = same ? null : Broadcast.Map(shape, b.Shape);
        if (a.IsInt && b.IsInt)
        {
            var x = a.I; var y = b.I; var o = new long[n];
            for (int i = 0; i < n; i++)
            {
                long u = x[ma?[i] ?? i], v = y[mb?[i] ?? i];
                o[i] = kind switch
                {
                    BinaryKind.Add => u + v,
                    BinaryKind.Sub => u - v,
                    BinaryKind.Mul => u * v,
                    _ => v == 0 ? throw c.Error("integer division by zero") : u / v,
                };
            }
            return [new NdArray<T>(shape, o, a.ElementType)];
        }
        var xr = Real(a); var yr = Real(b); var r = Buffers<T>.New(n);
        switch (kind)
        {
            case BinaryKind.Add: for (int i = 0; i < n; i++) r[i] = xr[ma?[i] ?? i] + yr[mb?[i] ?? i]; break;
            case BinaryKind.Sub: for (int i = 0; i < n; i++) r[i] = xr[ma?[i] ?? i] - yr[mb?[i] ?? i]; break;
            case BinaryKind.Mul: for (int i = 0; i < n; i++) r[i] = xr[ma?[i] ?? i] * yr[mb?[i] ?? i]; break;
            default: for (int i = 0; i < n; i++) r[i] = xr[ma?[i] ?? i] / yr[mb?[i] ?? i]; break;
        }
        return [new NdArray<T>(shape, r)];
    }

    /// <summary>The operand as reals (integer operands converted).</summary>
    internal static T[] Real(NdArray<T> a) => a.Real ?? a.I.Select(v => T.CreateChecked(v)).ToArray();

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[2];
        if (gradOutputs[0] is not { } gy) return r;
        var a = c.In(0); var b = c.In(1);
        var shape = gy.Shape;
        var g = gy.R;
        int n = g.Length;
        if (kind is BinaryKind.Add or BinaryKind.Sub && Broadcast.Same(a.Shape, shape) && Broadcast.Same(b.Shape,
            shape))
        {
            if (needed[0] && !a.IsInt) r[0] = gy;
            if (needed[1] && !b.IsInt) r[1] = kind == BinaryKind.Add ? gy : new NdArray<T>(shape,
                g.Select(v => -v).ToArray());
            return r;
        }
        var ma = Broadcast.Map(shape, a.Shape); var mb = Broadcast.Map(shape, b.Shape);
        for (int side = 0; side < 2; side++)
        {
            if (!needed[side]) continue;
            var target = side == 0 ? a : b;
            if (target.IsInt) continue;
            var d = Buffers<T>.New(target.Length);
            var map = side == 0 ? ma : mb;
            var x = a.Real; var y = b.Real;
            for (int i = 0; i < n; i++)
            {
                T v = kind switch
                {
                    BinaryKind.Add => g[i],
                    BinaryKind.Sub => side == 0 ? g[i] : -g[i],
                    BinaryKind.Mul => g[i] * (side == 0 ? y![mb[i]] : x![ma[i]]),
                    _ => side == 0 ? g[i] / y![mb[i]] : -g[i] * x![ma[i]] / (y![mb[i]] * y[mb[i]]),
                };
                d[map[i]] += v;
            }
            r[side] = new NdArray<T>(target.Shape, d);
        }
        return r;
    }
}
