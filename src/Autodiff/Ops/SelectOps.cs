// Selection, comparison and index ops of the reference evaluator:
//   Expand   y = x broadcast to broadcast(x.shape, shape)           dx = g summed onto x's shape
//   Tile     y[i] = x[i mod d] per axis (repeats r)                 dx = sum of g over the copies
//   Where    y = c ? a : b (broadcast)                              da = g [c], db = g [!c], reduced
//   Equal, Less, Greater, LessOrEqual, GreaterOrEqual (bool), Not, ArgMax, ArgMin (int64), Range: no gradient.
using System.Numerics;
using OnnxOpt.Autodiff.Kernels;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Autodiff.Ops;

internal sealed class ExpandOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        var shape = Broadcast.Shape(c.Node, x.Shape, c.In(1).ToLongs().Select(v => checked((int)v)).ToArray());
        var map = Broadcast.Map(shape, x.Shape);
        return [x.Gather(shape, map)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy || !needed[0] || c.In(0).IsInt) return r;
        var map = Broadcast.Map(gy.Shape, c.In(0).Shape);
        var d = Buffers<T>.New(c.In(0).Length);
        for (int i = 0; i < map.Length; i++) d[map[i]] += gy.R[i];
        r[0] = new NdArray<T>(c.In(0).Shape, d);
        return r;
    }
}

internal sealed class TileOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static (int[] Shape, int[] Map) Layout(OpCall<T> c)
    {
        var x = c.In(0);
        var reps = c.In(1).ToLongs();
        if (reps.Length != x.Rank) throw c.Error($"Tile has {reps.Length} repeats for rank {x.Rank}");
        var shape = x.Shape.Select((d, i) => checked(d * (int)reps[i])).ToArray();
        var outStrides = NdArrayShape.Strides(shape);
        var inStrides = NdArrayShape.Strides(x.Shape);
        var map = new int[NdArray<T>.Size(shape)];
        for (int i = 0; i < map.Length; i++)
        {
            int rest = i, src = 0;
            for (int a = 0; a < shape.Length; a++)
            {
                int idx = rest / outStrides[a];
                rest %= outStrides[a];
                src += idx % x.Shape[a] * inStrides[a];
            }
            map[i] = src;
        }
        return (shape, map);
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var (shape, map) = Layout(c);
        return [c.In(0).Gather(shape, map)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy || !needed[0] || c.In(0).IsInt) return r;
        var (_, map) = Layout(c);
        var d = Buffers<T>.New(c.In(0).Length);
        for (int i = 0; i < map.Length; i++) d[map[i]] += gy.R[i];
        r[0] = new NdArray<T>(c.In(0).Shape, d);
        return r;
    }
}

internal sealed class WhereOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var (cond, a, b) = (c.In(0), c.In(1), c.In(2));
        var shape = Broadcast.Shape(c.Node, cond.Shape, a.Shape, b.Shape);
        var mc = Broadcast.Map(shape, cond.Shape);
        var (ma, mb) = (Broadcast.Map(shape, a.Shape), Broadcast.Map(shape, b.Shape));
        int n = NdArray<T>.Size(shape);
        if (a.IsInt && b.IsInt)
        {
            var o = new long[n];
            for (int i = 0; i < n; i++) o[i] = cond.ToDouble(mc[i]) != 0 ? a.I[ma[i]] : b.I[mb[i]];
            return [new NdArray<T>(shape, o, a.ElementType)];
        }
        var y = Buffers<T>.New(n);
        for (int i = 0; i < n; i++) y[i] = cond.ToDouble(mc[i]) != 0 ? a.R[ma[i]] : b.R[mb[i]];
        return [new NdArray<T>(shape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[3];
        if (gradOutputs[0] is not { } gy) return r;
        var cond = c.In(0);
        var mc = Broadcast.Map(gy.Shape, cond.Shape);
        for (int side = 1; side <= 2; side++)
        {
            if (!needed[side] || c.In(side).IsInt) continue;
            var target = c.In(side);
            var map = Broadcast.Map(gy.Shape, target.Shape);
            var d = Buffers<T>.New(target.Length);
            for (int i = 0; i < map.Length; i++)
                if ((cond.ToDouble(mc[i]) != 0) == (side == 1)) d[map[i]] += gy.R[i];
            r[side] = new NdArray<T>(target.Shape, d);
        }
        return r;
    }
}

internal enum CompareKind { Equal, Less, Greater, LessOrEqual, GreaterOrEqual }

internal sealed class CompareOp<T>(CompareKind kind) : ConstantOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var (a, b) = (c.In(0), c.In(1));
        var shape = Broadcast.Shape(c.Node, a.Shape, b.Shape);
        var (ma, mb) = (Broadcast.Map(shape, a.Shape), Broadcast.Map(shape, b.Shape));
        var o = new long[NdArray<T>.Size(shape)];
        for (int i = 0; i < o.Length; i++)
        {
            double u = a.ToDouble(ma[i]), v = b.ToDouble(mb[i]);
            o[i] = kind switch
            {
                CompareKind.Equal => u == v,
                CompareKind.Less => u < v,
                CompareKind.Greater => u > v,
                CompareKind.LessOrEqual => u <= v,
                _ => u >= v,
            } ? 1 : 0;
        }
        return [new NdArray<T>(shape, o, DataType.Bool)];
    }
}

internal sealed class NotOp<T> : ConstantOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        return [new NdArray<T>(x.Shape, Enumerable.Range(0, x.Length).Select(i => x.ToDouble(i) != 0 ? 0L : 1L)
            .ToArray(), DataType.Bool)];
    }
}

internal sealed class ArgExtremeOp<T>(bool max) : ConstantOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        int axis = NdArrayShape.Axis(c.Node, Attr.Int(c.Node, "axis", 0), x.Rank);
        bool keep = Attr.Int(c.Node, "keepdims", 1) != 0, last = Attr.Int(c.Node, "select_last_index", 0) != 0;
        int outer = x.Shape.Take(axis).Aggregate(1, (p, q) => p * q), len = x.Shape[axis];
        int inner = x.Shape.Skip(axis + 1).Aggregate(1, (p, q) => p * q);
        var o = new long[outer * inner];
        for (int a = 0; a < outer; a++)
            for (int b = 0; b < inner; b++)
            {
                int best = 0;
                double bv = x.ToDouble(a * len * inner + b);
                for (int k = 1; k < len; k++)
                {
                    var v = x.ToDouble((a * len + k) * inner + b);
                    if (max ? v > bv || (last && v == bv) : v < bv || (last && v == bv)) { best = k; bv = v; }
                }
                o[a * inner + b] = best;
            }
        var shape = keep ? x.Shape.Select((d, i) => i == axis ? 1 : d).ToArray()
            : x.Shape.Where((_, i) => i != axis).ToArray();
        return [new NdArray<T>(shape, o, DataType.Int64)];
    }
}

internal sealed class RangeOp<T> : ConstantOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var (s, l, d) = (c.In(0), c.In(1), c.In(2));
        double start = s.ToDouble(0), limit = l.ToDouble(0), delta = d.ToDouble(0);
        if (delta == 0) throw c.Error("Range with delta 0");
        int n = Math.Max(0, (int)Math.Ceiling((limit - start) / delta));
        if (s.IsInt)
            return [new NdArray<T>([n], Enumerable.Range(0, n).Select(i => s.I[0] + i * d.I[0]).ToArray(),
                s.ElementType)];
        return [new NdArray<T>([n], Enumerable.Range(0, n).Select(i => T.CreateChecked(start + i * delta)).ToArray())];
    }
}
