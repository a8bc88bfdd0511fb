// ReduceMax, ReduceMin, ReduceProd, ReduceL2, ReduceLogSumExp over the axes ReduceOp resolves (attribute,
// or input from opset 18; keepdims; noop_with_empty_axes), each with its VJP:
//   Max/Min     the gradient goes to the first element holding the extreme of its group
//   Prod        dx_i = g prod_{j != i} x_j   (the product of the others, so zeros are exact)
//   L2          y = sqrt(sum x^2),   dx = g x / y   (0 where y = 0)
//   LogSumExp   y = m + log sum e^(x - m) (m the group's max, for stability),   dx = g e^(x - y)
using System.Numerics;

using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal enum ReduceKind { Max, Min, Prod, L2, LogSumExp }

internal sealed class ReduceKindOp<T>(ReduceKind kind) : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var (keep, outShape, map, _) = ReduceOp<T>.Prepare(c, mean: true);
        var x = c.In(0).R;
        int n = NdArray<T>.Size(keep);
        var y = Buffers<T>.New(n);
        var arg = new int[n];
        var seen = new bool[n];
        for (int i = 0; i < x.Length; i++)
        {
            int k = map[i];
            var v = x[i];
            if (!seen[k])
            {
                seen[k] = true;
                arg[k] = i;
                y[k] = kind switch { ReduceKind.L2 => v * v, _ => v };
                continue;
            }
            switch (kind)
            {
                case ReduceKind.Max: if (v > y[k]) { y[k] = v; arg[k] = i; } break;
                case ReduceKind.Min: if (v < y[k]) { y[k] = v; arg[k] = i; } break;
                case ReduceKind.Prod: y[k] *= v; break;
                case ReduceKind.L2: y[k] += v * v; break;
                default: if (v > y[k]) y[k] = v; break; // the max first; the sum below
            }
        }
        if (kind == ReduceKind.L2) for (int k = 0; k < n; k++) y[k] = T.Sqrt(y[k]);
        if (kind == ReduceKind.LogSumExp)
        {
            var s = Buffers<T>.New(n);
            for (int i = 0; i < x.Length; i++) s[map[i]] += T.Exp(x[i] - y[map[i]]);
            for (int k = 0; k < n; k++) y[k] += T.Log(s[k]);
        }
        c.Saved = arg;
        return [new NdArray<T>(outShape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy || !needed[0]) return r;
        var (_, _, map, _) = ReduceOp<T>.Prepare(c, mean: true);
        var x = c.In(0).R; var y = c.Outputs[0].R; var g = gy.R;
        var d = Buffers<T>.New(x.Length);
        switch (kind)
        {
            case ReduceKind.Max or ReduceKind.Min:
                var arg = (int[])c.Saved!;
                for (int k = 0; k < arg.Length; k++) d[arg[k]] = g[k];
                break;
            case ReduceKind.Prod:
                // The product of the others, by one pass per group member (groups are small).
                var members = new List<int>[y.Length];
                for (int i = 0; i < x.Length; i++) (members[map[i]] ??= new()).Add(i);
                foreach (var group in members.Where(m => m is not null))
                    foreach (var i in group)
                    {
                        var p = T.One;
                        foreach (var j in group) if (j != i) p *= x[j];
                        d[i] = g[map[i]] * p;
                    }
                break;
            case ReduceKind.L2:
                for (int i = 0; i < x.Length; i++) d[i] = y[map[i]] == T.Zero ? T.Zero : g[map[i]] * x[i] / y[map[i]];
                break;
            default:
                for (int i = 0; i < x.Length; i++) d[i] = g[map[i]] * T.Exp(x[i] - y[map[i]]);
                break;
        }
        r[0] = new NdArray<T>(c.In(0).Shape, d);
        return r;
    }
}
