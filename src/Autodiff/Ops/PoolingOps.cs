// Pooling, reductions and inference BatchNormalization.
//   MaxPool      y = max over the window (padding never wins); dX[argmax] += dY. Optional Indices
//                output (row-major flat index, storage_order 0).
//   AveragePool  y = window sum / count; count is the window clipped to the padded input
//                (count_include_pad=1) or to the input (0), as ONNX Runtime counts it; dX += dY/count.
//   GlobalAveragePool / GlobalMaxPool over all spatial axes; ReduceMean / ReduceSum over axes.
//   BatchNormalization (inference): y = s (x - m) / sqrt(v + eps) + b per channel;
//     dx = g s / sqrt(v+eps), ds = sum g (x-m)/sqrt(v+eps), db = sum g, dm = -sum g s / sqrt(v+eps),
//     dv = -1/2 sum g s (x-m) (v+eps)^-3/2.
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal abstract class WindowPoolOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected static (ConvGeometry G, int[] OutShape, int Planes) Prepare(OpCall<T> c)
    {
        var x = c.In(0);
        if (x.Rank is < 3 or > 4) throw c.Error($"{c.Node.OpType} of {x}: 1-D and 2-D pooling only");
        var kernel = c.Node.GetInts("kernel_shape")?.Select(v => (int)v).ToArray() ?? throw c.Error("kernel_shape is required");
        var g = ConvGeometry.Of(c.Node, x.Shape[2..], kernel, ceilMode: Attr.Int(c.Node, "ceil_mode", 0) != 0);
        var outShape = new[] { x.Shape[0], x.Shape[1] }.Concat(x.Rank == 3 ? [g.Out[1]] : g.Out).ToArray();
        return (g, outShape, x.Shape[0] * x.Shape[1]);
    }

    public abstract NdArray<T>[] Forward(OpCall<T> c);
    public abstract NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed);
}

internal sealed class MaxPoolOp<T> : WindowPoolOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var (g, outShape, planes) = Prepare(c);
        var x = c.In(0).R;
        var y = Buffers<T>.NewUninitialized(planes * g.Out[0] * g.Out[1]);
        // The argmax as its tap in the window (i * kw + j, -1 for a window wholly in the padding), stored as T
        // in a recycled array (a training step makes one per pooling); the Indices output, when asked for, as
        // the flat index.
        var arg = Buffers<T>.NewUninitialized(y.Length);
        bool wantIndices = c.Node.Outputs.Count > 1 && c.Node.Outputs[1] is not null;
        var indices = wantIndices ? new long[y.Length] : null;
        Parallelism.ForRanges(planes, (lo, hi) => Planes(g, x, y, arg, indices, lo, hi));
        c.Saved = arg;
        return indices is null ? [new(outShape, y)] : [new(outShape, y), new NdArray<T>(outShape, indices)];
    }

    /// <summary>MaxPool of planes [lo, hi): the window's maximum (padding never wins) and its tap.</summary>
    private static void Planes(ConvGeometry g, T[] x, T[] y, T[] arg, long[]? indices, int lo, int hi)
    {
        int H = g.In[0], W = g.In[1], Ho = g.Out[0], Wo = g.Out[1];
        int kh = g.Kernel[0], kw = g.Kernel[1], sh = g.Stride[0], sw = g.Stride[1], ph = g.PadBegin[0];
        int pw = g.PadBegin[1], dh = g.Dilation[0], dw = g.Dilation[1];
        if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 && dw == 1 && 2 * Ho <= H
            && 2 * Wo <= W)
        {
            Planes2x2(H, W, Ho, Wo, x, y, arg, indices, lo, hi);
            return;
        }
        for (int p = lo; p < hi; p++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++)
                {
                    T best = T.NegativeInfinity; int at = -1, tap = -1;
                    for (int i = 0; i < kh; i++)
                    {
                        int ih = oh * sh - ph + i * dh;
                        if ((uint)ih >= (uint)H) continue;
                        for (int j = 0; j < kw; j++)
                        {
                            int iw = ow * sw - pw + j * dw;
                            if ((uint)iw >= (uint)W) continue;
                            int k = (p * H + ih) * W + iw;
                            if (at < 0 || x[k] > best) { best = x[k]; at = k; tap = i * kw + j; }
                        }
                    }
                    int o = (p * Ho + oh) * Wo + ow;
                    y[o] = best; arg[o] = T.CreateTruncating(tap);
                    if (indices is not null) indices[o] = at;
                }
    }

    /// <summary>The common 2x2 stride-2 unpadded window: no bounds to test, ties to the first tap as above.</summary>
    private static void Planes2x2(int H, int W, int Ho, int Wo, T[] x, T[] y, T[] arg, long[]? indices, int lo, int hi)
    {
        T t1 = T.One, t2 = T.CreateTruncating(2), t3 = T.CreateTruncating(3);
        for (int p = lo; p < hi; p++)
            for (int oh = 0; oh < Ho; oh++)
            {
                var r0 = x.AsSpan((p * H + 2 * oh) * W, W);
                var r1 = x.AsSpan((p * H + 2 * oh + 1) * W, W);
                int o0 = (p * Ho + oh) * Wo;
                var yr = y.AsSpan(o0, Wo); var ar = arg.AsSpan(o0, Wo);
                int done = typeof(T) == typeof(float) ? Rows2x2(MemoryMarshal.Cast<T, float>(r0),
                    MemoryMarshal.Cast<T, float>(r1), MemoryMarshal.Cast<T, float>(yr),
                    MemoryMarshal.Cast<T, float>(ar)) : 0;
                for (int ow = done; ow < yr.Length; ow++)
                {
                    int j = 2 * ow;
                    T best = r0[j], tap = T.Zero;
                    if (r0[j + 1] > best) { best = r0[j + 1]; tap = t1; }
                    if (r1[j] > best) { best = r1[j]; tap = t2; }
                    if (r1[j + 1] > best) { best = r1[j + 1]; tap = t3; }
                    yr[ow] = best; ar[ow] = tap;
                }
                if (indices is not null)
                    for (int ow = 0; ow < Wo; ow++)
                    {
                        int t = int.CreateTruncating(ar[ow]);
                        indices[o0 + ow] = (long)(p * H + 2 * oh + t / 2) * W + 2 * ow + t % 2;
                    }
            }
    }

    /// <summary>The 2x2 windows over rows r0 and r1 in vectors of 8 (then 4) outputs, ties to the first tap as the
    /// scalar loop: even and odd columns split by shuffles (the 256-bit one's lanes put back in order). Returns
    /// how many outputs it wrote.</summary>
    private static int Rows2x2(ReadOnlySpan<float> r0, ReadOnlySpan<float> r1, Span<float> y, Span<float> tap)
    {
        if (!Avx2.IsSupported) return 0;
        int ow = 0;
        for (; ow + 8 <= y.Length; ow += 8)
        {
            var (a, b) = Transpose.Deinterleave(Vector256.Create(r0.Slice(2 * ow, 8)),
                Vector256.Create(r0.Slice(2 * ow + 8, 8)));
            var (c, d) = Transpose.Deinterleave(Vector256.Create(r1.Slice(2 * ow, 8)),
                Vector256.Create(r1.Slice(2 * ow + 8, 8)));
            var (best, t) = Take(d, 3, Take(c, 2, Take(b, 1, (a, Vector256<float>.Zero))));
            best.CopyTo(y.Slice(ow, 8)); t.CopyTo(tap.Slice(ow, 8));
        }
        for (; ow + 4 <= y.Length; ow += 4)
        {
            Vector128<float> x0 = Vector128.Create(r0.Slice(2 * ow, 4)), x1 = Vector128.Create(r0[(2 * ow + 4)..]);
            Vector128<float> x2 = Vector128.Create(r1.Slice(2 * ow, 4)), x3 = Vector128.Create(r1[(2 * ow + 4)..]);
            // As above, in one lane: (a, b, c, d) = (x0 even, x0 odd, x2 even, x2 odd), lane order kept.
            var first = (Sse.Shuffle(x0, x1, 0b10_00_10_00).ToVector256(), Vector256<float>.Zero);
            var (best, t) = Take(Sse.Shuffle(x2, x3, 0b11_01_11_01).ToVector256(), 3, Take(
                Sse.Shuffle(x2, x3, 0b10_00_10_00).ToVector256(), 2, Take(Sse.Shuffle(x0, x1, 0b11_01_11_01)
                    .ToVector256(), 1, first)));
            best.GetLower().CopyTo(y.Slice(ow, 4)); t.GetLower().CopyTo(tap.Slice(ow, 4));
        }
        return ow;
    }

    /// <summary>Tap k's values v where they beat the best so far (strictly: an earlier tap keeps a tie).</summary>
    private static (Vector256<float> Best, Vector256<float> Tap) Take(Vector256<float> v, float k,
        (Vector256<float> Best, Vector256<float> Tap) so)
    {
        var m = Vector256.GreaterThan(v, so.Best);
        return (Vector256.ConditionalSelect(m, v, so.Best),
            Vector256.ConditionalSelect(m, Vector256.Create(k), so.Tap));
    }

    public override NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[1];
        if (gradOutputs[0] is not { } gy || !needed[0]) return r;
        var arg = (T[])c.Saved!;
        var (geo, _, planes) = Prepare(c);
        int H = geo.In[0], W = geo.In[1], Ho = geo.Out[0], Wo = geo.Out[1], kw = geo.Kernel[1];
        var offset = new int[geo.KernelSize];
        for (int t = 0; t < offset.Length; t++) offset[t] = t / kw * geo.Dilation[0] * W + t % kw * geo.Dilation[1];
        var d = Buffers<T>.New(c.In(0).Length);
        var g = gy.R;
        // Windows of different planes never overlap: planes run in ranges.
        Parallelism.ForRanges(planes, (lo, hi) =>
        {
            for (int p = lo; p < hi; p++)
                for (int oh = 0; oh < Ho; oh++)
                {
                    int row = (p * H + oh * geo.Stride[0] - geo.PadBegin[0]) * W - geo.PadBegin[1];
                    for (int ow = 0, o = (p * Ho + oh) * Wo; ow < Wo; ow++, o++)
                    {
                        int tap = int.CreateTruncating(arg[o]);
                        if (tap >= 0) d[row + ow * geo.Stride[1] + offset[tap]] += g[o];
                    }
                }
        });
        r[0] = new NdArray<T>(c.In(0).Shape, d);
        return r;
    }
}

internal sealed class AveragePoolOp<T> : WindowPoolOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Per output position: the clipped window [h0,h1) x [w0,w1) and its divisor.</summary>
    private static (int H0, int H1, int W0, int W1, T Count)[] Windows(OpCall<T> c, ConvGeometry g)
    {
        if (g.Dilation.Any(d => d != 1)) throw c.Error("dilated AveragePool is not supported by the reference evaluator");
        bool include = Attr.Int(c.Node, "count_include_pad", 0) != 0;
        int H = g.In[0], W = g.In[1], Ho = g.Out[0], Wo = g.Out[1];
        var r = new (int, int, int, int, T)[Ho * Wo];
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++)
            {
                int h0 = oh * g.Stride[0] - g.PadBegin[0], w0 = ow * g.Stride[1] - g.PadBegin[1];
                int h1 = Math.Min(h0 + g.Kernel[0], H + g.PadEnd[0]), w1 = Math.Min(w0 + g.Kernel[1], W + g.PadEnd[1]);
                int padded = (h1 - h0) * (w1 - w0);
                h0 = Math.Max(h0, 0); w0 = Math.Max(w0, 0); h1 = Math.Min(h1, H); w1 = Math.Min(w1, W);
                r[oh * Wo + ow] = (h0, h1, w0, w1, T.CreateChecked(include ? padded : Math.Max(1,
                    (h1 - h0) * (w1 - w0))));
            }
        return r;
    }

    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var (g, outShape, planes) = Prepare(c);
        var win = Windows(c, g);
        var x = c.In(0).R;
        int H = g.In[0], W = g.In[1], n = g.OutSize;
        var y = Buffers<T>.New(planes * n);
        for (int p = 0; p < planes; p++)
            for (int o = 0; o < n; o++)
            {
                var (h0, h1, w0, w1, cnt) = win[o];
                T s = T.Zero;
                for (int h = h0; h < h1; h++) for (int w = w0; w < w1; w++) s += x[(p * H + h) * W + w];
                y[p * n + o] = s / cnt;
            }
        return [new NdArray<T>(outShape, y)];
    }

    public override NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[1];
        if (gradOutputs[0] is not { } gy || !needed[0]) return r;
        var (g, _, planes) = Prepare(c);
        var win = Windows(c, g);
        int H = g.In[0], W = g.In[1], n = g.OutSize;
        var gr = gy.R; var d = Buffers<T>.New(c.In(0).Length);
        for (int p = 0; p < planes; p++)
            for (int o = 0; o < n; o++)
            {
                var (h0, h1, w0, w1, cnt) = win[o];
                var v = gr[p * n + o] / cnt;
                for (int h = h0; h < h1; h++) for (int w = w0; w < w1; w++) d[(p * H + h) * W + w] += v;
            }
        r[0] = new NdArray<T>(c.In(0).Shape, d);
        return r;
    }
}

internal sealed class GlobalAveragePoolOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        int planes = x.Shape[0] * x.Shape[1], inner = x.Length / Math.Max(1, planes);
        var y = Buffers<T>.New(planes); var xr = x.R;
        var cnt = T.CreateChecked(inner);
        for (int p = 0; p < planes; p++)
        {
            T s = T.Zero;
            for (int i = 0; i < inner; i++) s += xr[p * inner + i];
            y[p] = s / cnt;
        }
        return [new NdArray<T>(x.Shape.Select((d, i) => i < 2 ? d : 1).ToArray(), y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[1];
        if (gradOutputs[0] is not { } gy || !needed[0]) return r;
        var x = c.In(0);
        int planes = x.Shape[0] * x.Shape[1], inner = x.Length / Math.Max(1, planes);
        var d = Buffers<T>.New(x.Length); var g = gy.R; var cnt = T.CreateChecked(inner);
        for (int p = 0; p < planes; p++) d.AsSpan(p * inner, inner).Fill(g[p] / cnt);
        r[0] = new NdArray<T>(x.Shape, d);
        return r;
    }
}

internal sealed class GlobalMaxPoolOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        int planes = x.Shape[0] * x.Shape[1], inner = x.Length / Math.Max(1, planes);
        var y = Buffers<T>.New(planes); var arg = new int[planes]; var xr = x.R;
        for (int p = 0; p < planes; p++)
        {
            int at = p * inner;
            for (int i = 1; i < inner; i++) if (xr[p * inner + i] > xr[at]) at = p * inner + i;
            y[p] = xr[at]; arg[p] = at;
        }
        c.Saved = arg;
        return [new NdArray<T>(x.Shape.Select((d, i) => i < 2 ? d : 1).ToArray(), y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[1];
        if (gradOutputs[0] is not { } gy || !needed[0]) return r;
        var arg = (int[])c.Saved!; var d = Buffers<T>.New(c.In(0).Length); var g = gy.R;
        for (int p = 0; p < arg.Length; p++) d[arg[p]] += g[p];
        r[0] = new NdArray<T>(c.In(0).Shape, d);
        return r;
    }
}

internal sealed class ReduceOp<T>(bool mean) : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    internal static (int[] Keep, int[] Out, int[] Map, int Count) Prepare(OpCall<T> c, bool mean)
    {
        var x = c.In(0);
        bool axesAsInput = mean ? c.Opset >= 18 : c.Opset >= 13;
        var axes = axesAsInput ? c.Optional(1)?.ToLongs() : c.Node.GetInts("axes");
        bool keep = Attr.Int(c.Node, "keepdims", 1) != 0;
        var set = new HashSet<int>();
        if (axes is null || axes.Length == 0)
        {
            if (Attr.Int(c.Node, "noop_with_empty_axes", 0) != 0)
                return (x.Shape, x.Shape, Enumerable.Range(0, x.Length).ToArray(), 1);
            for (int i = 0; i < x.Rank; i++) set.Add(i);
        }
        else foreach (var a in axes) set.Add(NdArrayShape.Axis(c.Node, a, x.Rank));
        var keepShape = x.Shape.Select((d, i) => set.Contains(i) ? 1 : d).ToArray();
        var outShape = keep ? keepShape : x.Shape.Where((_, i) => !set.Contains(i)).ToArray();
        int count = x.Shape.Where((_, i) => set.Contains(i)).Aggregate(1, (a, b) => a * b);
        return (keepShape, outShape, Broadcast.Map(x.Shape, keepShape), count);
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var (keep, outShape, map, count) = Prepare(c, mean);
        var x = c.In(0).R; var y = Buffers<T>.New(NdArray<T>.Size(keep));
        for (int i = 0; i < x.Length; i++) y[map[i]] += x[i];
        if (mean && count > 0) { var n = T.CreateChecked(count); for (int i = 0; i < y.Length; i++) y[i] /= n; }
        return [new NdArray<T>(outShape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy || !needed[0]) return r;
        var (_, _, map, count) = Prepare(c, mean);
        var g = gy.R; var d = Buffers<T>.New(c.In(0).Length);
        var n = mean ? T.CreateChecked(Math.Max(count, 1)) : T.One;
        for (int i = 0; i < d.Length; i++) d[i] = g[map[i]] / n;
        r[0] = new NdArray<T>(c.In(0).Shape, d);
        return r;
    }
}

internal sealed class BatchNormOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static (int N, int C, int Inner, T[] InvStd) Prepare(OpCall<T> c)
    {
        if (Attr.Int(c.Node,
            "training_mode", 0) != 0) throw c.Error("training-mode BatchNormalization is not supported");
        var x = c.In(0);
        int n = x.Shape[0], ch = x.Rank > 1 ? x.Shape[1] : 1, inner = x.Length / Math.Max(1, n * ch);
        var eps = T.CreateChecked(Attr.Float(c.Node, "epsilon", 1e-5f));
        var v = c.In(4).R;
        if (v.Length != ch) throw c.Error($"BatchNormalization statistics have {v.Length} channels, input has {ch}");
        return (n, ch, inner, v.Select(vv => T.One / T.Sqrt(vv + eps)).ToArray());
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var (n, ch, inner, inv) = Prepare(c);
        var x = c.In(0).R; var s = c.In(1).R; var b = c.In(2).R; var m = c.In(3).R;
        var y = Buffers<T>.New(x.Length);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < ch; k++)
            {
                var a = s[k] * inv[k]; var off = (i * ch + k) * inner;
                for (int j = 0; j < inner; j++) y[off + j] = (x[off + j] - m[k]) * a + b[k];
            }
        return [new NdArray<T>(c.In(0).Shape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var (n, ch, inner, inv) = Prepare(c);
        var x = c.In(0).R; var s = c.In(1).R; var m = c.In(3).R; var g = gy.R;
        var dx = needed[0] ? Buffers<T>.New(x.Length) : null;
        T[] ds = Buffers<T>.New(ch), db = Buffers<T>.New(ch), dm = Buffers<T>.New(ch), dv = Buffers<T>.New(ch);
        var half = T.CreateChecked(0.5);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < ch; k++)
            {
                var off = (i * ch + k) * inner;
                for (int j = 0; j < inner; j++)
                {
                    var gv = g[off + j]; var xc = x[off + j] - m[k];
                    if (dx is not null) dx[off + j] = gv * s[k] * inv[k];
                    ds[k] += gv * xc * inv[k];
                    db[k] += gv;
                    dm[k] -= gv * s[k] * inv[k];
                    dv[k] -= half * gv * s[k] * xc * inv[k] * inv[k] * inv[k];
                }
            }
        if (dx is not null) r[0] = new NdArray<T>(c.In(0).Shape, dx);
        var grads = new[] { ds, db, dm, dv };
        for (int i = 1; i <= 4; i++) if (needed[i]) r[i] = new NdArray<T>([ch], grads[i - 1]);
        return r;
    }
}
