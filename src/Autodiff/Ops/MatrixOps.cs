// Gemm and MatMul.
// Gemm: Y = alpha * op(A) op(B) + beta * C (op = optional transpose, C broadcast to [M, N]).
//   VJP: d op(A) = alpha dY op(B)^T, d op(B) = alpha op(A)^T dY, dC = beta * sum of dY over C's broadcast axes.
// MatMul: numpy matmul (batch axes broadcast; a 1-D operand gains and then loses a unit axis).
//   VJP per batch: dA += dY B^T, dB += A^T dY, accumulated onto broadcast batch entries.
using System.Numerics;
using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal sealed class GemmOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static (Mat<T> A, Mat<T> B, int M, int N, int K, bool TA, bool TB, T Alpha, T Beta) Views(OpCall<T> c)
    {
        var a = c.In(0); var b = c.In(1);
        if (a.Rank != 2 || b.Rank != 2) throw c.Error($"Gemm needs 2-D operands, got {a} and {b}");
        bool ta = Attr.Int(c.Node, "transA", 0) != 0, tb = Attr.Int(c.Node, "transB", 0) != 0;
        var opA = ta ? Mat<T>.Dense(a.R, 0, a.Shape[0], a.Shape[1]).T_ : Mat<T>.Dense(a.R, 0, a.Shape[0], a.Shape[1]);
        var opB = tb ? Mat<T>.Dense(b.R, 0, b.Shape[0], b.Shape[1]).T_ : Mat<T>.Dense(b.R, 0, b.Shape[0], b.Shape[1]);
        if (opA.Cols != opB.Rows) throw c.Error($"Gemm of {opA.Rows}x{opA.Cols} and {opB.Rows}x{opB.Cols}");
        return (opA, opB, opA.Rows, opB.Cols, opA.Cols, ta, tb, T.CreateChecked(Attr.Float(c.Node,
            "alpha", 1f)), T.CreateChecked(Attr.Float(c.Node, "beta", 1f)));
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var v = Views(c);
        var y = Buffers<T>.New(v.M * v.N);
        Mat<T>.Multiply(v.A, v.B, y, 0, false);
        if (v.Alpha != T.One) for (int i = 0; i < y.Length; i++) y[i] *= v.Alpha;
        if (c.Optional(2) is { } cc)
        {
            var map = Broadcast.Map([v.M, v.N], cc.Shape);
            var cd = cc.R;
            for (int i = 0; i < y.Length; i++) y[i] += v.Beta * cd[map[i]];
        }
        return [new NdArray<T>([v.M, v.N], y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var v = Views(c);
        var g = Mat<T>.Dense(gy.R, 0, v.M, v.N);
        if (needed[0])
        {
            var a = c.In(0);
            var d = Buffers<T>.New(a.Length);
            if (!v.TA) Mat<T>.Multiply(g, v.B.T_, d, 0, false); else Mat<T>.Multiply(v.B, g.T_, d, 0, false);
            Scale(d, v.Alpha);
            r[0] = new NdArray<T>(a.Shape, d);
        }
        if (needed[1])
        {
            var b = c.In(1);
            var d = Buffers<T>.New(b.Length);
            if (!v.TB) Mat<T>.Multiply(v.A.T_, g, d, 0, false); else Mat<T>.Multiply(g.T_, v.A, d, 0, false);
            Scale(d, v.Alpha);
            r[1] = new NdArray<T>(b.Shape, d);
        }
        if (needed.Length > 2 && needed[2] && c.Optional(2) is { } cc)
        {
            var d = (T[])Broadcast.ReduceTo(gy.R, [v.M, v.N], cc.Shape).Clone();
            Scale(d, v.Beta);
            r[2] = new NdArray<T>(cc.Shape, d);
        }
        return r;
    }

    private static void Scale(T[] d, T s)
    {
        if (s == T.One) return;
        for (int i = 0; i < d.Length; i++) d[i] *= s;
    }
}

internal sealed class MatMulOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private sealed record Plan(int M, int K, int N, int[] Batch, int[] MapA, int[] MapB, int[] OutShape);

    private static Plan Prepare(OpCall<T> c)
    {
        var a = c.In(0); var b = c.In(1);
        if (a.Rank == 0 || b.Rank == 0) throw c.Error("MatMul of a scalar");
        var sa = a.Rank == 1 ? new[] { 1, a.Shape[0] } : a.Shape;
        var sb = b.Rank == 1 ? new[] { b.Shape[0], 1 } : b.Shape;
        int m = sa[^2], k = sa[^1], n = sb[^1];
        if (sb[^2] != k) throw c.Error($"MatMul of {a} and {b}: inner sizes {k} and {sb[^2]} differ");
        var batch = Broadcast.Shape(c.Node, sa[..^2], sb[..^2]);
        var outShape = batch.Concat(a.Rank == 1 ? [] : new[] { m }).Concat(b.Rank == 1 ? [] : new[] { n }).ToArray();
        return new Plan(m, k, n, batch, Broadcast.Map(batch, sa[..^2]), Broadcast.Map(batch, sb[..^2]), outShape);
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var p = Prepare(c);
        var a = c.In(0).R; var b = c.In(1).R;
        var y = Buffers<T>.New(p.MapA.Length * p.M * p.N);
        for (int i = 0; i < p.MapA.Length; i++)
            Mat<T>.Multiply(Mat<T>.Dense(a, p.MapA[i] * p.M * p.K, p.M, p.K), Mat<T>.Dense(b, p.MapB[i] * p.K * p.N,
                p.K, p.N), y, i * p.M * p.N, false);
        return [new NdArray<T>(p.OutShape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[2];
        if (gradOutputs[0] is not { } gyA) return r;
        var p = Prepare(c);
        var a = c.In(0); var b = c.In(1); var gy = gyA.R;
        var da = needed[0] ? Buffers<T>.New(a.Length) : null;
        var db = needed[1] ? Buffers<T>.New(b.Length) : null;
        for (int i = 0; i < p.MapA.Length; i++)
        {
            var g = Mat<T>.Dense(gy, i * p.M * p.N, p.M, p.N);
            if (da is not null) Mat<T>.Multiply(g, Mat<T>.Dense(b.R, p.MapB[i] * p.K * p.N, p.K, p.N).T_, da,
                p.MapA[i] * p.M * p.K, true);
            if (db is not null) Mat<T>.Multiply(Mat<T>.Dense(a.R, p.MapA[i] * p.M * p.K, p.M, p.K).T_, g, db,
                p.MapB[i] * p.K * p.N, true);
        }
        if (da is not null) r[0] = new NdArray<T>(a.Shape, da);
        if (db is not null) r[1] = new NdArray<T>(b.Shape, db);
        return r;
    }
}
