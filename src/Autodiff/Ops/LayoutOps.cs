// Data-movement ops. Views (Identity, Dropout, Flatten, Reshape, Squeeze, Unsqueeze) change only the
// shape; their VJP reshapes the gradient back. Gathers (Transpose, Slice, Pad, Gather) are an index
// map out[i] = in[map[i]] (map[i] = -1: a pad value); their VJP scatters: dIn[map[i]] += dOut[i].
// Concat's VJP splits the gradient, Split's concatenates. Shape, Constant, ConstantOfShape and Cast
// to integers have no gradient; Cast between real types passes it through. Integer arrays (shapes,
// indices) flow through the same ops.
using System.Numerics;
using OnnxOpt.Autodiff.Kernels;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Autodiff.Ops;

internal abstract class ViewOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected abstract int[] OutShape(OpCall<T> c);

    public virtual NdArray<T>[] Forward(OpCall<T> c) => [c.In(0).Reshape(OutShape(c))];

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is { } g && needed[0]) r[0] = g.Reshape(c.In(0).Shape);
        return r;
    }
}

internal sealed class IdentityOp<T> : ViewOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override int[] OutShape(OpCall<T> c) => c.In(0).Shape;
}

internal sealed class DropoutOp<T> : ViewOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override int[] OutShape(OpCall<T> c) => c.In(0).Shape;

    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        if (c.Optional(2) is { } training && training.ToDouble(0) != 0)
            throw c.Error("Dropout in training mode is random; the reference evaluator runs inference only");
        var x = c.In(0);
        if (c.Node.Outputs.Count > 1 && c.Node.Outputs[1] is not null)
            return [x, new NdArray<T>(x.Shape, Enumerable.Repeat(1L, x.Length).ToArray(), DataType.Bool)];
        return [x];
    }
}

internal sealed class FlattenOp<T> : ViewOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override int[] OutShape(OpCall<T> c)
    {
        var s = c.In(0).Shape;
        var axis = Attr.Int(c.Node, "axis", 1);
        if (axis < 0) axis += s.Length;
        if (axis < 0 || axis > s.Length) throw c.Error($"Flatten axis {axis} for rank {s.Length}");
        return [NdArrayShape.Size(s.AsSpan(0, (int)axis)), NdArrayShape.Size(s.AsSpan((int)axis))];
    }
}

internal sealed class ReshapeOp<T> : ViewOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override int[] OutShape(OpCall<T> c)
    {
        var x = c.In(0);
        var want = (c.Opset < 5 ? c.Node.GetInts("shape") : c.In(1).ToLongs()) ?? throw c.Error("Reshape without a shape");
        bool allowZero = Attr.Int(c.Node, "allowzero", 0) != 0;
        var r = new int[want.Length];
        int infer = -1; long known = 1;
        for (int i = 0; i < want.Length; i++)
        {
            if (want[i] == -1) { if (infer >= 0) throw c.Error("Reshape with two -1 dimensions"); infer = i; continue; }
            if (want[i] == 0 && !allowZero && i >= x.Rank)
                throw c.Error("Reshape copies a dimension the input does not have");
            r[i] = want[i] == 0 && !allowZero ? x.Shape[i] : (int)want[i];
            known *= r[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || x.Length % known != 0) throw c.Error($"cannot reshape {x} to [{string.Join(",", want)}]");
            r[infer] = (int)(x.Length / known);
        }
        if (NdArray<T>.Size(r) != x.Length) throw c.Error($"cannot reshape {x} to [{string.Join(",", want)}]");
        return r;
    }
}

internal sealed class SqueezeOp<T> : ViewOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override int[] OutShape(OpCall<T> c)
    {
        var s = c.In(0).Shape;
        var axes = c.Opset >= 13 ? c.Optional(1)?.ToLongs() : c.Node.GetInts("axes");
        if (axes is null) return s.Where(d => d != 1).ToArray();
        var set = axes.Select(a => NdArrayShape.Axis(c.Node, a, s.Length)).ToHashSet();
        foreach (var a in set) if (s[a] != 1) throw c.Error($"Squeeze of axis {a} of size {s[a]}");
        return s.Where((_, i) => !set.Contains(i)).ToArray();
    }
}

internal sealed class UnsqueezeOp<T> : ViewOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override int[] OutShape(OpCall<T> c)
    {
        var s = c.In(0).Shape;
        var axes = (c.Opset >= 13 ? c.Optional(1)?.ToLongs() : c.Node.GetInts("axes")) ?? throw c.Error("Unsqueeze without axes");
        int rank = s.Length + axes.Length;
        var set = axes.Select(a => NdArrayShape.Axis(c.Node, a, rank)).ToHashSet();
        var r = new int[rank];
        int k = 0;
        for (int i = 0; i < rank; i++) r[i] = set.Contains(i) ? 1 : s[k++];
        return r;
    }
}

/// <summary>out[i] = in[map[i]] (or the fill value where map[i] = -1); VJP scatters back.</summary>
internal abstract class GatherMapOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected abstract (int[] Shape, int[] Map, double Fill) Plan(OpCall<T> c);
    /// <summary>The input holding the fill value, if it is one (its gradient sums dOut over filled positions).</summary>
    protected virtual int FillInput(OpCall<T> c) => -1;

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var (shape, map, fill) = Plan(c);
        c.Saved = map;
        return [c.In(0).Gather(shape, map, fill)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var map = (int[])c.Saved!;
        var g = gy.R;
        if (needed[0])
        {
            var d = Buffers<T>.New(c.In(0).Length);
            for (int i = 0; i < map.Length; i++) if (map[i] >= 0) d[map[i]] += g[i];
            r[0] = new NdArray<T>(c.In(0).Shape, d);
        }
        int fill = FillInput(c);
        if (fill > 0 && fill < needed.Length && needed[fill] && c.Optional(fill) is { } fv)
        {
            T s = T.Zero;
            for (int i = 0; i < map.Length; i++) if (map[i] < 0) s += g[i];
            r[fill] = new NdArray<T>(fv.Shape, Enumerable.Repeat(s, fv.Length).ToArray());
        }
        return r;
    }

    /// <summary>Visits every index of <paramref name="shape"/> in row-major order.</summary>
    protected static int[] Build(int[] shape, Func<int[], int> source)
    {
        int n = NdArray<T>.Size(shape);
        var map = new int[n];
        var idx = new int[shape.Length];
        for (int k = 0; k < n; k++)
        {
            map[k] = source(idx);
            for (int a = shape.Length - 1; a >= 0; a--)
            {
                if (++idx[a] < shape[a]) break;
                idx[a] = 0;
            }
        }
        return map;
    }
}

internal sealed class TransposeOp<T> : GatherMapOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (int[], int[], double) Plan(OpCall<T> c)
    {
        var s = c.In(0).Shape;
        var perm = c.Node.GetInts("perm")?.Select(p => (int)p).ToArray() ?? Enumerable.Range(0, s.Length).Reverse().ToArray();
        if (perm.Length != s.Length || perm.Distinct().Count() != s.Length || perm.Any(p => p < 0
            || p >= s.Length)) throw c.Error("bad perm");
        var strides = NdArrayShape.Strides(s);
        var outShape = perm.Select(p => s[p]).ToArray();
        return (outShape, Build(outShape,
            idx => { int o = 0; for (int a = 0; a < idx.Length; a++) o += idx[a] * strides[perm[a]]; return o; }), 0);
    }
}

internal sealed class SliceOp<T> : GatherMapOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (int[], int[], double) Plan(OpCall<T> c)
    {
        var s = c.In(0).Shape;
        long[] starts, ends; long[]? axes, steps;
        if (c.Opset < 10) { starts = c.Node.GetInts("starts")!; ends = c.Node.GetInts("ends")!; axes = c.Node.GetInts("axes"); steps = null; }
        else { starts = c.In(1).ToLongs(); ends = c.In(2).ToLongs(); axes = c.Optional(3)?.ToLongs(); steps = c.Optional(4)?.ToLongs(); }
        var begin = new int[s.Length]; var step = Enumerable.Repeat(1,
            s.Length).ToArray(); var outShape = (int[])s.Clone();
        for (int i = 0; i < starts.Length; i++)
        {
            int a = NdArrayShape.Axis(c.Node, axes?[i] ?? i, s.Length);
            long d = s[a], st = steps?[i] ?? 1, b = starts[i], e = ends[i];
            if (st == 0) throw c.Error("Slice step 0");
            if (b < 0) b += d;
            if (e < 0) e += d;
            if (st > 0) { b = Math.Clamp(b, 0, d); e = Math.Clamp(e, 0, d); }
            else { b = Math.Clamp(b, 0, d - 1); e = Math.Clamp(e, -1, d - 1); }
            long len = st > 0 ? Math.Max(0, (e - b + st - 1) / st) : Math.Max(0, (b - e + (-st) - 1) / (-st));
            begin[a] = (int)b; step[a] = (int)st; outShape[a] = (int)len;
        }
        var strides = NdArrayShape.Strides(s);
        int Source(int[] idx)
        {
            int o = 0;
            for (int a = 0; a < idx.Length; a++) o += (begin[a] + idx[a] * step[a]) * strides[a];
            return o;
        }
        return (outShape, Build(outShape, Source), 0);
    }
}

internal sealed class PadOp<T> : GatherMapOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override int FillInput(OpCall<T> c) => c.Opset >= 11
        && (c.Node.GetString("mode") ?? "constant") == "constant" ? 2 : -1;

    protected override (int[], int[], double) Plan(OpCall<T> c)
    {
        var s = c.In(0).Shape; int r = s.Length;
        var mode = c.Node.GetString("mode") ?? "constant";
        long[] pads; double value;
        if (c.Opset < 11) { pads = c.Node.GetInts("pads") ?? throw c.Error("Pad without pads"); value = Attr.Float(c.Node, "value", 0f); }
        else
        {
            var raw = c.In(1).ToLongs();
            value = c.Optional(2) is { Length: > 0 } cv ? cv.ToDouble(0) : 0;
            if (c.Optional(3) is { } ax)
            {
                var axes = ax.ToLongs();
                pads = new long[2 * r];
                for (int i = 0; i < axes.Length; i++)
                {
                    int a = NdArrayShape.Axis(c.Node, axes[i], r);
                    pads[a] = raw[i]; pads[a + r] = raw[i + axes.Length];
                }
            }
            else pads = raw;
        }
        if (pads.Length != 2 * r) throw c.Error($"Pad has {pads.Length} pads for rank {r}");
        var outShape = s.Select((d, a) => d + (int)pads[a] + (int)pads[a + r]).ToArray();
        if (outShape.Any(d => d < 0)) throw c.Error("Pad crops more than the input holds");
        var strides = NdArrayShape.Strides(s);
        return (outShape, Build(outShape, idx =>
        {
            int o = 0;
            for (int a = 0; a < r; a++)
            {
                int i = idx[a] - (int)pads[a], d = s[a];
                if ((uint)i >= (uint)d)
                {
                    switch (mode)
                    {
                        case "constant": return -1;
                        case "edge": i = Math.Clamp(i, 0, d - 1); break;
                        case "wrap": i = ((i % d) + d) % d; break;
                        case "reflect":
                            if (d == 1) { i = 0; break; }
                            int period = 2 * (d - 1);
                            i = ((i % period) + period) % period;
                            if (i >= d) i = period - i;
                            break;
                        default: throw c.Error($"Pad mode '{mode}' is not supported");
                    }
                }
                o += i * strides[a];
            }
            return o;
        }), value);
    }
}

internal sealed class GatherOp<T> : GatherMapOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (int[], int[], double) Plan(OpCall<T> c)
    {
        var s = c.In(0).Shape; var ind = c.In(1);
        int axis = NdArrayShape.Axis(c.Node, Attr.Int(c.Node, "axis", 0), s.Length);
        var idx = ind.ToLongs();
        int dim = s[axis], inner = NdArrayShape.Size(s.AsSpan(axis + 1)), outer = NdArrayShape.Size(s.AsSpan(0, axis));
        var outShape = s[..axis].Concat(ind.Shape).Concat(s[(axis + 1)..]).ToArray();
        var map = new int[outer * idx.Length * inner];
        int k = 0;
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < idx.Length; j++)
            {
                long v = idx[j] < 0 ? idx[j] + dim : idx[j];
                if (v < 0 || v >= dim) throw c.Error($"Gather index {idx[j]} is out of range for axis size {dim}");
                for (int i = 0; i < inner; i++) map[k++] = (int)((o * dim + v) * inner + i);
            }
        return (outShape, map, 0);
    }
}

internal sealed class ConcatOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var parts = c.Inputs.Select((a, i) => a ?? throw c.Error($"input {i} is missing")).ToArray();
        var first = parts[0];
        int axis = NdArrayShape.Axis(c.Node, Attr.Int(c.Node, "axis", 0), first.Rank);
        foreach (var p in parts)
            if (p.Rank != first.Rank || Enumerable.Range(0, p.Rank).Any(a => a != axis && p.Shape[a] != first.Shape[a]))
                throw c.Error($"Concat of {first} and {p} along axis {axis}");
        var outShape = (int[])first.Shape.Clone();
        outShape[axis] = parts.Sum(p => p.Shape[axis]);
        int outer = NdArrayShape.Size(first.Shape.AsSpan(0, axis));
        bool ints = parts.All(p => p.IsInt);
        int total = NdArray<T>.Size(outShape), rowOut = total / Math.Max(outer, 1);
        var real = ints ? null : Buffers<T>.New(total); var integer = ints ? new long[total] : null;
        int at = 0;
        foreach (var p in parts)
        {
            int row = p.Length / Math.Max(outer, 1);
            for (int o = 0; o < outer; o++)
            {
                if (ints) p.I.AsSpan(o * row, row).CopyTo(integer.AsSpan(o * rowOut + at));
                else (p.Real ?? p.I.Select(v => T.CreateChecked(v)).ToArray()).AsSpan(o * row,
                    row).CopyTo(real.AsSpan(o * rowOut + at));
            }
            at += row;
        }
        return [ints ? new NdArray<T>(outShape, integer!, first.ElementType) : new NdArray<T>(outShape, real!)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var first = c.In(0);
        int axis = NdArrayShape.Axis(c.Node, Attr.Int(c.Node, "axis", 0), first.Rank);
        int outer = NdArrayShape.Size(first.Shape.AsSpan(0, axis)), rowOut = gy.Length / Math.Max(outer, 1);
        int at = 0;
        for (int k = 0; k < c.Inputs.Length; k++)
        {
            var p = c.In(k); int row = p.Length / Math.Max(outer, 1);
            if (needed[k])
            {
                var d = Buffers<T>.New(p.Length);
                for (int o = 0; o < outer; o++) gy.R.AsSpan(o * rowOut + at, row).CopyTo(d.AsSpan(o * row));
                r[k] = new NdArray<T>(p.Shape, d);
            }
            at += row;
        }
        return r;
    }
}

internal sealed class SplitOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static (int Axis, int[] Sizes) Plan(OpCall<T> c)
    {
        var x = c.In(0);
        int axis = NdArrayShape.Axis(c.Node, Attr.Int(c.Node, "axis", 0), x.Rank);
        int outs = c.Node.Outputs.Count, dim = x.Shape[axis];
        var split = c.Opset >= 13 ? c.Optional(1)?.ToLongs() : c.Node.GetInts("split");
        int[] sizes;
        if (split is not null) sizes = split.Select(v => (int)v).ToArray();
        else
        {
            int parts = (int)Attr.Int(c.Node, "num_outputs", outs);
            int each = (dim + parts - 1) / parts;
            sizes = Enumerable.Range(0, parts).Select(i => Math.Max(0, Math.Min(each, dim - i * each))).ToArray();
            if (c.Opset < 18 && dim % parts != 0) throw c.Error($"Split of {dim} into {parts} equal parts");
        }
        if (sizes.Sum() != dim || sizes.Length != outs)
            throw c.Error($"Split sizes [{string.Join(",", sizes)}] do not fit axis size {dim} and {outs} outputs");
        return (axis, sizes);
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        var (axis, sizes) = Plan(c);
        int outer = NdArrayShape.Size(x.Shape.AsSpan(0, axis)), inner = NdArrayShape.Size(x.Shape.AsSpan(axis + 1));
        var strides = NdArrayShape.Strides(x.Shape);
        var result = new NdArray<T>[sizes.Length];
        int at = 0;
        for (int k = 0; k < sizes.Length; k++)
        {
            var shape = (int[])x.Shape.Clone(); shape[axis] = sizes[k];
            var map = new int[outer * sizes[k] * inner];
            int m = 0;
            for (int o = 0; o < outer; o++)
                for (int j = 0; j < sizes[k]; j++)
                    for (int i = 0; i < inner; i++) map[m++] = (o * x.Shape[axis] + at + j) * inner + i;
            result[k] = x.Gather(shape, map);
            at += sizes[k];
        }
        return result;
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (!needed[0] || gradOutputs.All(g => g is null)) return r;
        var x = c.In(0);
        var (axis, sizes) = Plan(c);
        int outer = NdArrayShape.Size(x.Shape.AsSpan(0, axis)), inner = NdArrayShape.Size(x.Shape.AsSpan(axis + 1));
        var d = Buffers<T>.New(x.Length);
        int at = 0;
        for (int k = 0; k < sizes.Length; k++)
        {
            if (gradOutputs[k] is { } g)
                for (int o = 0; o < outer; o++)
                    g.R.AsSpan(o * sizes[k] * inner,
                        sizes[k] * inner).CopyTo(d.AsSpan((o * x.Shape[axis] + at) * inner));
            at += sizes[k];
        }
        r[0] = new NdArray<T>(x.Shape, d);
        return r;
    }
}

internal sealed class ShapeOp<T> : ConstantOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var s = c.In(0).Shape;
        long start = Attr.Int(c.Node, "start", 0), end = Attr.Int(c.Node, "end", s.Length);
        if (start < 0) start += s.Length;
        if (end < 0) end += s.Length;
        start = Math.Clamp(start, 0, s.Length); end = Math.Clamp(end, start, s.Length);
        var dims = s[(int)start..(int)end].Select(d => (long)d).ToArray();
        return [new NdArray<T>([dims.Length], dims)];
    }
}

internal sealed class ConstantValueOp<T> : ConstantOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var n = c.Node;
        if (n.GetTensor("value") is { } t) return [NdArray<T>.FromTensor(t)];
        if (n.Attr("value_float") is { } f) return [NdArray<T>.Scalar(T.CreateChecked(f.F))];
        if (n.Attr("value_floats") is { Floats: { } fs }) return [new NdArray<T>([fs.Length], fs.Select(v => T.CreateChecked(v)).ToArray())];
        if (n.Attr("value_int") is { } i) return [new NdArray<T>([], [i.I])];
        if (n.Attr("value_ints") is { Ints: { } iv }) return [new NdArray<T>([iv.Length], iv)];
        throw c.Error("Constant without a numeric value (strings and sparse values are not supported)");
    }
}

internal sealed class ConstantOfShapeOp<T> : ConstantOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public override NdArray<T>[] Forward(OpCall<T> c)
    {
        var shape = c.In(0).ToLongs().Select(v => (int)v).ToArray();
        var value = c.Node.GetTensor("value");
        if (value is null || value.ElementType.IsFloatingPoint())
            return [NdArray<T>.Full(shape, value is null ? T.Zero : T.CreateChecked(value.ToDoubleArray()[0]))];
        var v = value.ToInt64Array()[0];
        return [new NdArray<T>(shape, Enumerable.Repeat(v, NdArray<T>.Size(shape)).ToArray(), value.ElementType)];
    }
}

internal sealed class CastOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0);
        var to = (DataType)Attr.Int(c.Node, "to", 0);
        if (to.IsFloatingPoint()) return [x.Real is not null ? x : new NdArray<T>(x.Shape,
            x.I.Select(v => T.CreateChecked(v)).ToArray())];
        if (to == DataType.Bool) return [new NdArray<T>(x.Shape, Enumerable.Range(0,
            x.Length).Select(i => x.ToDouble(i) != 0 ? 1L : 0L).ToArray(), DataType.Bool)];
        if (to is DataType.String or DataType.Undefined) throw c.Error($"Cast to {to.Name()} is not supported");
        return [new NdArray<T>(x.Shape, x.Int ?? x.Real!.Select(v => long.CreateTruncating(v)).ToArray(), to)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var to = (DataType)Attr.Int(c.Node, "to", 0);
        return [gradOutputs[0] is { } g && needed[0] && to.IsFloatingPoint() && !c.In(0).IsInt ? g : null];
    }
}
