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
        if (a.IsInt && b.IsInt)
        {
            bool same = Broadcast.Same(a.Shape, shape) && Broadcast.Same(b.Shape, shape);
            var ma = same ? null : Broadcast.Map(shape, a.Shape);
            var mb = same ? null : Broadcast.Map(shape, b.Shape);
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
        var xr = Real(a); var yr = Real(b); var r = Buffers<T>.NewUninitialized(n);
        var plan = new BroadcastBlocks(shape, a.Shape, b.Shape);
        bool af = plan.Full[0], bf = plan.Full[1];
        int op = (int)kind, inner = plan.Inner;
        plan.ForPieces((o, s, len) =>
        {
            int ao = plan.Offsets[0][o], bo = plan.Offsets[1][o];
            Runs<T>.Apply(op, af ? xr.AsSpan(ao + s, len) : default, af ? T.Zero : xr[ao], af,
                bf ? yr.AsSpan(bo + s, len) : default, bf ? T.Zero : yr[bo], bf, r.AsSpan(o * inner + s, len));
        });
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
            if (needed[1] && !b.IsInt)
            {
                if (kind == BinaryKind.Add) r[1] = gy;
                else
                {
                    var neg = Buffers<T>.New(n);
                    Runs<T>.AddScaled(neg, g, -T.One);
                    r[1] = new NdArray<T>(shape, neg);
                }
            }
            return r;
        }
        var plan = new BroadcastBlocks(shape, a.Shape, b.Shape);
        int inner = plan.Inner;
        var x = a.Real!; var y = b.Real!; // ONNX gives both operands one type: both are real here
        for (int side = 0; side < 2; side++)
        {
            if (!needed[side]) continue;
            var target = side == 0 ? a : b;
            if (target.IsInt) continue;
            var d = Buffers<T>.New(target.Length);
            bool full = plan.Full[side], otherFull = plan.Full[1 - side];
            var offs = plan.Offsets[side]; var otherOffs = plan.Offsets[1 - side];
            var other = side == 0 ? y : x;
            int sd = side;
            // A run of dY, and the other operand over it (a run or one value).
            plan.ForPieces((o, s, len) =>
            {
                var gr = g.AsSpan(o * inner + s, len);
                int off = offs[o], oo = otherOffs[o];
                var orun = otherFull ? other.AsSpan(oo + s, len) : default;
                T oval = otherFull ? T.Zero : other[oo];
                switch (kind)
                {
                    case BinaryKind.Add or BinaryKind.Sub:
                        T sign = kind == BinaryKind.Sub && sd == 1 ? -T.One : T.One;
                        if (full) Runs<T>.AddScaled(d.AsSpan(off + s, len), gr, sign);
                        else d[off] += sign * Runs<T>.Sum(gr);
                        break;
                    case BinaryKind.Mul:
                        if (full) Runs<T>.AddProduct(d.AsSpan(off + s, len), gr, orun, oval, otherFull);
                        else d[off] += Runs<T>.Dot(gr, orun, oval, otherFull);
                        break;
                    default:
                        // Div: dA = dY / B (B the other operand), dB = -dY A / B^2 (A the other, B this one).
                        T acc = T.Zero;
                        for (int i = 0; i < len; i++)
                        {
                            T ov = otherFull ? orun[i] : oval;
                            T v;
                            if (sd == 0) v = gr[i] / ov;
                            else
                            {
                                T bv = full ? y[off + s + i] : y[off];
                                v = -gr[i] * ov / (bv * bv);
                            }
                            if (full) d[off + s + i] += v; else acc += v;
                        }
                        if (!full) d[off] += acc;
                        break;
                }
            }, parallel: full && target.Length == plan.Size);
            r[side] = new NdArray<T>(target.Shape, d);
        }
        return r;
    }
}
