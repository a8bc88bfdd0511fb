// A strided view of a matrix inside an array: element (i, j) is Data[Offset + i*RowStride + j*ColStride].
// Transposing a view swaps its strides, so the matrix products of forward passes and of their
// vector-Jacobian products are all one call: Mat.Multiply(a, b.T, c).
using System.Numerics;

namespace OnnxOpt.Autodiff.Kernels;

internal readonly record struct Mat<T>(T[] Data, int Offset, int Rows, int Cols, int RowStride, int ColStride)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>A contiguous row-major rows x cols matrix starting at offset.</summary>
    public static Mat<T> Dense(T[] data, int offset, int rows, int cols) => new(data, offset, rows, cols, cols, 1);

    public Mat<T> T_ => new(Data, Offset, Cols, Rows, ColStride, RowStride);

    /// <summary>C (row-major, ldc = cols of the product, at cOffset) (+)= a * b, on at most maxThreads threads
    /// (0: Parallelism.Threads).</summary>
    public static void Multiply(Mat<T> a, Mat<T> b, T[] c, int cOffset, bool accumulate, int maxThreads = 0)
    {
        if (a.Cols != b.Rows) throw new InvalidOperationException($"matrix product of {a.Rows}x{a.Cols} and {b.Rows}x{b.Cols}");
        Gemm<T>.Multiply(a.Rows, b.Cols, a.Cols, a.Data, a.Offset, a.RowStride, a.ColStride, b.Data, b.Offset,
            b.RowStride, b.ColStride,
            c, cOffset, b.Cols, accumulate, maxThreads);
    }

    /// <summary>C = A * B into column blocks: C(i, j) at c[cOffset + i*ldc + (j / block)*blockStride + j % block]
    /// (block a multiple of Gemm's TileColumns); a conv's product over a chunk of images into
    /// [n][channel][pixel].</summary>
    public static void MultiplyBlocked(Mat<T> a, Mat<T> b, T[] c, int cOffset, int ldc, int block, int blockStride,
        bool accumulate, int maxThreads = 0)
    {
        if (a.Cols != b.Rows)
            throw new InvalidOperationException($"matrix product of {a.Rows}x{a.Cols} and {b.Rows}x{b.Cols}");
        Gemm<T>.Multiply(a.Rows, b.Cols, a.Cols, a.Data, a.Offset, a.RowStride, a.ColStride, b.Data, b.Offset,
            b.RowStride, b.ColStride, c, cOffset, ldc, accumulate, maxThreads, block, blockStride);
    }
}

/// <summary>The evaluator's blocked matrix product for other libraries (the quantizers' error simulations).
/// </summary>
public static class DenseProduct
{
    /// <summary>Row-major [m, k] x [k, n] -> [m, n] (float accumulation in the blocked kernel).</summary>
    public static float[] Multiply(float[] a, float[] b, int m, int k, int n)
    {
        if (a.Length != (long)m * k || b.Length != (long)k * n)
            throw new ArgumentException($"matrix product of {m}x{k} ({a.Length}) and {k}x{n} ({b.Length})");
        var c = new float[m * n];
        Mat<float>.Multiply(Mat<float>.Dense(a, 0, m, k), Mat<float>.Dense(b, 0, k, n), c, 0, false);
        return c;
    }
}
