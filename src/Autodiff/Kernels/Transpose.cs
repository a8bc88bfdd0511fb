// Transposes for the conv kernels: a plane-major block [rows][cols] into a pixel-major one [cols][rows].
//   dst[c * dstStride + r] = src[r * srcStride + c]
// Floats go in 8 x 8 blocks through registers (AVX: unpack, shuffle and 128-bit lane swaps), the rest
// element by element. And the 2 x n case of a row: its even and odd elements apart (stride-2 windows).
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnnxOpt.Autodiff.Kernels;

internal static class Transpose
{
    /// <summary>dst[c * dstStride + r] = src[r * srcStride + c] for an 8 x 8 block of floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block8x8(ref float src, int srcStride, ref float dst, int dstStride)
    {
        var r0 = Vector256.LoadUnsafe(ref src); var r1 = Vector256.LoadUnsafe(ref src, (nuint)srcStride);
        var r2 = Vector256.LoadUnsafe(ref src, (nuint)(2 * srcStride));
        var r3 = Vector256.LoadUnsafe(ref src, (nuint)(3 * srcStride));
        var r4 = Vector256.LoadUnsafe(ref src, (nuint)(4 * srcStride));
        var r5 = Vector256.LoadUnsafe(ref src, (nuint)(5 * srcStride));
        var r6 = Vector256.LoadUnsafe(ref src, (nuint)(6 * srcStride));
        var r7 = Vector256.LoadUnsafe(ref src, (nuint)(7 * srcStride));
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Permute2x128(s0, s4, 0x20).StoreUnsafe(ref dst);
        Avx.Permute2x128(s1, s5, 0x20).StoreUnsafe(ref dst, (nuint)dstStride);
        Avx.Permute2x128(s2, s6, 0x20).StoreUnsafe(ref dst, (nuint)(2 * dstStride));
        Avx.Permute2x128(s3, s7, 0x20).StoreUnsafe(ref dst, (nuint)(3 * dstStride));
        Avx.Permute2x128(s0, s4, 0x31).StoreUnsafe(ref dst, (nuint)(4 * dstStride));
        Avx.Permute2x128(s1, s5, 0x31).StoreUnsafe(ref dst, (nuint)(5 * dstStride));
        Avx.Permute2x128(s2, s6, 0x31).StoreUnsafe(ref dst, (nuint)(6 * dstStride));
        Avx.Permute2x128(s3, s7, 0x31).StoreUnsafe(ref dst, (nuint)(7 * dstStride));
    }

    /// <summary>The even and the odd elements of (v0, v1), in order (AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<float> Even, Vector256<float> Odd) Deinterleave(Vector256<float> v0, Vector256<float> v1)
    {
        // Within each 128-bit lane: v0's pair then v1's pair; the 64-bit permute puts the lanes' halves in order.
        var even = Avx.Shuffle(v0, v1, 0b10_00_10_00).AsDouble();
        var odd = Avx.Shuffle(v0, v1, 0b11_01_11_01).AsDouble();
        return (Avx2.Permute4x64(even, 0b11_01_10_00).AsSingle(), Avx2.Permute4x64(odd, 0b11_01_10_00).AsSingle());
    }

    /// <summary>dst[dstOff + c*dstStride + r] = src[srcOff + r*srcStride + c] for r &lt; rows, c &lt; cols.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Matrix<T>(T[] src, int srcOff, int srcStride, int rows, int cols, T[] dst, int dstOff,
        int dstStride) where T : unmanaged
    {
        int r0 = 0;
        if (typeof(T) == typeof(float) && Avx.IsSupported)
        {
            ref float s = ref Unsafe.As<T, float>(ref MemoryMarshal.GetArrayDataReference(src));
            ref float d = ref Unsafe.As<T, float>(ref MemoryMarshal.GetArrayDataReference(dst));
            for (; r0 + 8 <= rows; r0 += 8)
            {
                int c0 = 0;
                for (; c0 + 8 <= cols; c0 += 8)
                    Block8x8(ref Unsafe.Add(ref s, srcOff + r0 * srcStride + c0), srcStride,
                        ref Unsafe.Add(ref d, dstOff + c0 * dstStride + r0), dstStride);
                for (int c = c0; c < cols; c++)
                    for (int r = r0; r < r0 + 8; r++) dst[dstOff + c * dstStride + r] = src[srcOff + r * srcStride + c];
            }
        }
        for (int r = r0; r < rows; r++)
            for (int c = 0; c < cols; c++) dst[dstOff + c * dstStride + r] = src[srcOff + r * srcStride + c];
    }
}
