// Numpy-style broadcasting for the element-wise ops and its adjoint. Shapes align on the right; a
// dimension of 1 stretches. For an output index, the source index of an operand is found with strides
// that are 0 on stretched axes. ReduceTo is the adjoint of broadcasting: it sums a gradient of the
// output's shape back to an operand's shape (over the axes that operand was stretched along).
using System.Numerics;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Autodiff.Kernels;

internal static class Broadcast
{
    public static int[] Shape(Node n, params int[][] shapes)
    {
        int rank = shapes.Max(s => s.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int d = 1;
            foreach (var s in shapes)
            {
                int k = i - (rank - s.Length);
                if (k < 0) continue;
                int v = s[k];
                if (v == d || v == 1) continue;
                if (d == 1) { d = v; continue; }
                throw new OnnxModelException($"node {n}: shapes {string.Join(" and ", shapes.Select(x => "[" + string.Join(",", x) + "]"))} do not broadcast");
            }
            r[i] = shapes.Any(s => i - (rank - s.Length) >= 0 && s[i - (rank - s.Length)] == 0) ? 0 : d;
        }
        return r;
    }

    /// <summary>For every output element, the linear index into an operand of shape <paramref name="src"/>.</summary>
    public static int[] Map(int[] outShape, int[] src)
    {
        int rank = outShape.Length, n = NdArrayShape.Size(outShape);
        var strides = new int[rank];
        int st = 1;
        for (int i = src.Length - 1; i >= 0; i--)
        {
            int oi = i + rank - src.Length;
            strides[oi] = src[i] == 1 ? 0 : st;
            st *= src[i];
        }
        var map = new int[n];
        if (n == 0) return map;
        var idx = new int[rank];
        int off = 0;
        for (int k = 0; k < n; k++)
        {
            map[k] = off;
            for (int a = rank - 1; a >= 0; a--)
            {
                idx[a]++; off += strides[a];
                if (idx[a] < outShape[a]) break;
                off -= strides[a] * idx[a]; idx[a] = 0;
            }
        }
        return map;
    }

    public static bool Same(int[] a, int[] b) => a.AsSpan().SequenceEqual(b);

    /// <summary>Sums <paramref name="g"/> (shape outShape) onto an array of shape <paramref name="to"/>.</summary>
    public static T[] ReduceTo<T>(T[] g, int[] outShape, int[] to) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Same(outShape, to)) return g;
        var r = Buffers<T>.New(NdArrayShape.Size(to));
        var map = Map(outShape, to);
        for (int i = 0; i < g.Length; i++) r[map[i]] += g[i];
        return r;
    }
}

internal static class NdArrayShape
{
    public static int Size(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return checked((int)n);
    }

    public static int[] Strides(int[] shape)
    {
        var s = new int[shape.Length];
        int st = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = st; st *= shape[i]; }
        return s;
    }

    public static int Axis(Node n, long axis, int rank)
    {
        var a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.Max(rank,
            1)) throw new OnnxModelException($"node {n}: axis {axis} is out of range for rank {rank}");
        return (int)a;
    }
}
