// Ops that move, regroup, select or repeat elements without arithmetic: Identity, Reshape (0 copies a dim,
// -1 is inferred, symbols cancel: [N,3,2,4] -> [N,6,-1] gives 4), Flatten, Transpose, Squeeze/Unsqueeze,
// Concat, Split, Slice, Pad, Expand, Tile, Gather, Resize/Upsample. Small integer constants flowing through
// them (Shape -> Gather -> Unsqueeze -> Concat) are tracked, so the Reshape targets that exporters compute
// resolve. Channel mappings say which of them keep feature-map channels apart.
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class LayoutOps
{
    private const OpTrait Move = OpTrait.Layout | OpTrait.PositivelyHomogeneous;

    private static OnnxType?[] In0(Node n, Func<Shape?, DataType, OnnxType?> f) =>
        [f(ShapeOf(n.Input(0)), TypeOf(n.Input(0)))];

    public static IEnumerable<OpInfo> All =>
    [
        new("Identity")
        {
            Traits = Move | OpTrait.ElementWise | OpTrait.ChannelPreserving, Channels = ChannelMapping.ElementWise,
            Infer = (n, c) => { c.SetConst(n.Output(), c.SymConst(n.Input(0))); return [c.SameAsInput(n)]; },
        },
        new("Reshape")
        {
            Traits = Move | OpTrait.SharesScale, Channels = ChannelMapping.DropUnitAxes,
            Infer = (n, c) => In0(n, (xs, xt) => c.Reshape(n, xs, xt)),
        },
        new("Flatten")
        {
            Traits = Move | OpTrait.SharesScale, Channels = ChannelMapping.Flatten,
            Infer = (n, c) => In0(n, (xs, xt) => Flatten(n, xs, xt)),
        },
        new("Transpose")
        {
            Traits = Move | OpTrait.SharesScale, Channels = ChannelMapping.Transpose,
            Infer = (n, c) => In0(n, (xs, xt) => c.Transpose(n, xs, xt)),
        },
        new("Squeeze")
        {
            Traits = Move | OpTrait.SharesScale, Channels = ChannelMapping.DropUnitAxes,
            Infer = (n, c) => In0(n, (xs, xt) => c.Squeeze(n, xs, xt)),
        },
        new("Unsqueeze")
        {
            Traits = Move | OpTrait.SharesScale, Infer = (n, c) => In0(n, (xs, xt) => c.Unsqueeze(n, xs, xt)),
        },
        new("Split")
        {
            Traits = Move | OpTrait.SharesScale, Channels = ChannelMapping.SplitOrSlice,
            Infer = (n, c) => c.Split(n, ShapeOf(n.Input(0)), TypeOf(n.Input(0))),
        },
        new("Slice")
        {
            Traits = Move | OpTrait.SharesScale, Channels = ChannelMapping.SplitOrSlice,
            Infer = (n, c) => In0(n, (xs, xt) => c.Slice(n, xs, xt)),
        },
        new("Concat")
        {
            Traits = Move, Channels = ChannelMapping.Concat, Quant = QuantClass.Compute,
            Infer = (n, c) => [c.Concat(n, FirstType(n.Inputs))],
        },
        new("Pad") { Channels = ChannelMapping.Pad, Infer = (n, c) => In0(n, (xs, xt) => c.Pad(n, xs, xt)) },
        new("Expand") { Infer = (n, c) => In0(n, (xs, xt) => c.Expand(n, xs, xt)) },
        new("Tile") { Infer = (n, c) => In0(n, (xs, xt) => c.Tile(n, xs, xt)) },
        new("Gather") { Infer = (n, c) => In0(n, (xs, xt) => c.Gather(n, xs, xt)) },
        new("Resize")
        {
            Traits = OpTrait.ChannelPreserving | OpTrait.SharesScale, Channels = ChannelMapping.Resize,
            Infer = (n, c) => In0(n, (xs, xt) => T(xt, c.Resize(n, xs))),
        },
        new("Upsample")
        {
            Channels = ChannelMapping.Resize, Infer = (n, c) => In0(n, (xs, xt) => T(xt, c.Resize(n, xs))),
        },
    ];
}

public sealed partial class ShapeContext
{
    internal static OnnxType? Flatten(Node n, Shape? xs, DataType xt)
    {
        if (xs is null) return T(xt, null);
        var axis = (int)n.GetInt("axis", 1);
        if (axis < 0) axis += xs.Rank;
        return TD(xt, [Product(xs.Dims.Take(axis)), Product(xs.Dims.Skip(axis))]);
    }

    internal OnnxType? Transpose(Node n, Shape? xs, DataType xt)
    {
        if (xs is null) return T(xt, null);
        var perm = n.GetInts("perm") ?? Enumerable.Range(0, xs.Rank).Reverse().Select(i => (long)i).ToArray();
        if (SymConst(n.Input(0)) is { } cx && Known(xs) is { } inDims)
            SetConst(n.Output(), Remap(cx, inDims, perm.Select(p => inDims[p]).ToArray(),
                (o, i) => { for (int a = 0; a < perm.Length; a++) i[perm[a]] = o[a]; }));
        return TD(xt, perm.Select(p => xs[(int)p]));
    }

    internal OnnxType? Reshape(Node n, Shape? xs, DataType xt)
    {
        var target = n.GetInts("shape")?.Select(Dim.Of).ToArray() ?? SymConst(n.Input(1));
        if (target is null)
            return T(xt, ShapeOf(n.Input(1)) is { Rank: 1 } ss
                && ss[0].Value is long r ? new Shape(Enumerable.Repeat(Dim.Unknown, (int)r)) : null);
        var allowZero = n.GetInt("allowzero", 0) != 0;
        var dims = new Dim[target.Length];
        int inferIdx = -1;
        for (int i = 0; i < target.Length; i++)
        {
            if (target[i].Value == 0 && !allowZero) dims[i] = xs is not null && i < xs.Rank ? xs[i] : Dim.Unknown;
            else if (target[i].Value == -1) { inferIdx = i; dims[i] = Dim.Unknown; }
            else dims[i] = target[i];
        }
        if (inferIdx >= 0 && xs?.ElementCount() is long total)
        {
            long known = 1;
            var ok = true;
            for (int i = 0; i < dims.Length; i++)
                if (i != inferIdx) { if (dims[i].Value is long v) known *= v; else ok = false; }
            if (ok && known != 0) dims[inferIdx] = Dim.Of(total / known);
        }
        else if (inferIdx >= 0 && xs is not null)
        {
            // Symbolic: the symbols of the input must reappear in the target (e.g. N -> N); then
            // -1 is the ratio of the static products: [N,3,2,4] -> [N,6,-1] gives 4.
            var symbols = xs.Dims.Where(d => !d.IsKnown).ToList();
            long inStatic = 1, outStatic = 1;
            var ok = symbols.All(d => d.Param is not null);
            foreach (var d in xs.Dims) if (d.Value is long v) inStatic *= v;
            for (int i = 0; i < dims.Length && ok; i++)
            {
                if (i == inferIdx) continue;
                if (dims[i].Value is long v) outStatic *= v;
                else
                {
                    var match = symbols.FindIndex(d => d.Param is not null && d.Param == dims[i].Param);
                    if (match < 0) ok = false; else symbols.RemoveAt(match);
                }
            }
            if (ok && symbols.Count == 0 && outStatic != 0
                && inStatic % outStatic == 0) dims[inferIdx] = Dim.Of(inStatic / outStatic);
        }
        var r2 = new Shape(dims);
        SetConst(n.Output(), SymConst(n.Input(0)));
        return T(xt, r2);
    }

    internal OnnxType? Concat(Node n, DataType xt)
    {
        var shapes = n.Inputs.Select(ShapeOf).ToList();
        var consts = n.Inputs.Select(SymConst).ToList();
        if (consts.All(c => c is not null)) SetConst(n.Output(), consts.SelectMany(c => c!).ToArray());
        if (shapes.Any(s => s is null)) return T(xt, null);
        var axis = (int)n.GetInt("axis", 0);
        var rank = shapes[0]!.Rank;
        if (shapes.Any(s => s!.Rank != rank)) return T(xt, null); // invalid: ORT names it; no guess here
        if (axis < 0) axis += rank;
        var dims = shapes[0]!.Dims.ToArray();
        dims[axis] = shapes.Aggregate((Dim?)Dim.Of(0), (acc, s) => acc?.Value is long a
            && s![axis].Value is long b ? Dim.Of(a + b) : Dim.Unknown)!.Value;
        for (int i = 0; i < rank; i++)
            if (i != axis && !dims[i].IsKnown)
                foreach (var s in shapes) if (s![i].IsKnown) { dims[i] = s[i]; break; }
        return TD(xt, dims);
    }

    /// <summary>Expand: the input broadcast with the constant target shape.</summary>
    internal OnnxType? Expand(Node n, Shape? xs, DataType xt)
    {
        if (SymConst(n.Input(1)) is not { } target) return T(xt, null);
        var ts = new Shape(target.Select(d => d.Value == 1 ? Dim.Of(1) : d));
        if (xs is null) return T(xt, null);
        // A target dim of 1 keeps the input's dim (broadcasting); Broadcast already does exactly that.
        return T(xt, Broadcast([xs, ts]));
    }

    /// <summary>Tile: each dim times its constant repeat.</summary>
    internal OnnxType? Tile(Node n, Shape? xs, DataType xt)
    {
        if (xs is null) return T(xt, null);
        if (Const(n.Input(1)) is not { } reps || reps.Length != xs.Rank)
            return T(xt, new Shape(xs.Dims.Select(_ => Dim.Unknown)));
        return TD(xt, xs.Dims.Select((d, i) => reps[i] == 1 ? d : d.Value is long v ? Dim.Of(v * reps[i])
            : Dim.Unknown));
    }

    internal OnnxType?[] Split(Node n, Shape? xs, DataType xt)
    {
        var outs = new OnnxType?[n.Outputs.Count];
        if (xs is null) { Array.Fill(outs, T(xt, null)); return outs; }
        var axis = (int)n.GetInt("axis", 0);
        if (axis < 0) axis += xs.Rank;
        var split = n.GetInts("split") ?? Const(n.Input(1));
        // Equal parts only when no split is given at all (a split input that is not constant is unknown).
        if (split is null && n.GetInts("split") is null && n.Input(1) is null && xs[axis].Value is long len)
        {
            var k = n.Outputs.Count;
            var chunk = (len + k - 1) / k;
            split = Enumerable.Range(0, k).Select(i => Math.Min(chunk, Math.Max(0, len - i * chunk))).ToArray();
        }
        for (int i = 0; i < outs.Length; i++)
        {
            var dims = xs.Dims.ToArray();
            dims[axis] = split is null ? Dim.Unknown : Dim.Of(split[i]);
            outs[i] = TD(xt, dims);
        }
        return outs;
    }

    internal OnnxType? Slice(Node n, Shape? xs, DataType xt)
    {
        long[]? starts, ends, axes, steps = null;
        Dim[]? symEnds = null;
        if (opset < 10) { starts = n.GetInts("starts"); ends = n.GetInts("ends"); axes = n.GetInts("axes"); }
        else
        {
            starts = Const(n.Input(1));
            ends = Const(n.Input(2));
            // buffer[:, :sequence] (a position-ids buffer cut to the input's length): a symbolic end.
            if (ends is null && SymConst(n.Input(2)) is { } se)
            {
                symEnds = se;
                ends = se.Select(d => d.Value ?? long.MaxValue).ToArray();
            }
            axes = n.Input(3) is null ? null : Const(n.Input(3));
            steps = n.Input(4) is null ? null : Const(n.Input(4));
            // Axes or steps given but not constant: the slice is unknown.
            if (n.Input(3) is not null && axes is null) starts = null;
            if (n.Input(4) is not null && steps is null) starts = null;
        }
        if (xs is null) return T(xt, null);
        if (starts is null || ends is null) return T(xt, new Shape(Enumerable.Repeat(Dim.Unknown, xs.Rank)));
        axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
        var dims = xs.Dims.ToArray();
        var cx = SymConst(n.Input(0));
        var first = new long[xs.Rank];
        var stride = Enumerable.Repeat(1L, xs.Rank).ToArray();
        for (int i = 0; i < axes.Length; i++)
        {
            var a = (int)(axes[i] < 0 ? axes[i] + xs.Rank : axes[i]);
            if (symEnds is not null && !symEnds[i].IsKnown)
            {
                // [0 : S] with step 1 is S long (S no longer than the axis, as exporters mean it).
                dims[a] = starts[i] == 0 && steps[i] == 1 ? symEnds[i] : Dim.Unknown;
                continue;
            }
            if (dims[a].Value is not long len) { dims[a] = Dim.Unknown; continue; }
            var (s, e, st) = (starts[i], ends[i], steps[i]);
            if (s < 0) s += len; if (e < 0) e += len;
            long count;
            if (st > 0)
            {
                s = Math.Clamp(s, 0, len); e = Math.Clamp(e, 0, len); count = Math.Max(0,
                (e - s + st - 1) / st);
            }
            else
            {
                s = Math.Clamp(s, 0, len - 1); e = Math.Clamp(e, -1, len - 1); count = Math.Max(0,
                (s - e + (-st) - 1) / (-st));
            }
            dims[a] = Dim.Of(count);
            first[a] = s;
            stride[a] = st;
        }
        if (cx is not null && Known(xs) is { } inDims && Known(new Shape(dims)) is { } outDims)
            SetConst(n.Output(), Remap(cx, inDims, outDims,
                (o, i) => { for (int a = 0; a < o.Length; a++) i[a] = first[a] + o[a] * stride[a]; }));
        return TD(xt, dims);
    }

    internal OnnxType? Squeeze(Node n, Shape? xs, DataType xt)
    {
        if (xs is null) return T(xt, null);
        var axes = Axes(n);
        if (axes is [long.MinValue]) return T(xt, null);
        var set = axes?.Select(a => a < 0 ? a + xs.Rank : a).ToHashSet();
        var dims = xs.Dims.Where((d, i) => set is null ? d.Value != 1 : !set.Contains(i)).ToArray();
        SetConst(n.Output(), SymConst(n.Input(0)));
        return TD(xt, dims);
    }

    internal OnnxType? Unsqueeze(Node n, Shape? xs, DataType xt)
    {
        var axes = Axes(n);
        if (xs is null || axes is null || axes is [long.MinValue]) return T(xt, null);
        var rank = xs.Rank + axes.Length;
        var set = axes.Select(a => a < 0 ? a + rank : a).ToHashSet();
        var dims = new List<Dim>();
        var j = 0;
        for (int i = 0; i < rank; i++) dims.Add(set.Contains(i) ? Dim.Of(1) : xs[j++]);
        SetConst(n.Output(), SymConst(n.Input(0)));
        return TD(xt, dims);
    }

    internal OnnxType? Pad(Node n, Shape? xs, DataType xt)
    {
        if (xs is null) return T(xt, null);
        var pads = opset < 11 ? n.GetInts("pads") : Const(n.Input(1));
        if (pads is null) return T(xt, new Shape(Enumerable.Repeat(Dim.Unknown, xs.Rank)));
        var axes = n.Input(3) is { } av ? Const(av) : null;
        if (n.Input(3) is not null && axes is null) return T(xt, new Shape(Enumerable.Repeat(Dim.Unknown,
            xs.Rank)));
        axes ??= Enumerable.Range(0, xs.Rank).Select(i => (long)i).ToArray();
        var dims = xs.Dims.ToArray();
        for (int i = 0; i < axes.Length; i++)
        {
            var a = (int)(axes[i] < 0 ? axes[i] + xs.Rank : axes[i]);
            var grow = pads[i] + pads[i + axes.Length];
            dims[a] = grow == 0 ? dims[a] : dims[a].Value is long v ? Dim.Of(v + grow) : Dim.Unknown;
        }
        return TD(xt, dims);
    }

    internal OnnxType? Gather(Node n, Shape? xs, DataType xt)
    {
        var idx = ShapeOf(n.Input(1));
        if (xs is null || idx is null) return T(xt, null);
        var axis = (int)n.GetInt("axis", 0);
        if (axis < 0) axis += xs.Rank;
        if (SymConst(n.Input(0)) is { } data && Const(n.Input(1)) is { } ind && xs.Rank == 1)
            SetConst(n.Output(), ind.Select(i => data[(int)(i < 0 ? i + data.Length : i)]).ToArray());
        return TD(xt, xs.Dims.Take(axis).Concat(idx.Dims).Concat(xs.Dims.Skip(axis + 1)));
    }

    /// <summary>Resize/Upsample: the 'sizes' input when constant, else floor(dim * scale) from constant
    /// scales.</summary>
    internal Shape? Resize(Node n, Shape? xs)
    {
        if (xs is null) return null;
        var sizesInput = n.OpType == "Resize" ? n.Input(3) : null;
        if (Const(sizesInput) is { } sizes && sizes.Length == xs.Rank) return Shape.Of(sizes);
        var scalesInput = n.OpType == "Upsample" ? n.Input(1) : n.Input(n.Inputs.Count == 2 ? 1 : 2);
        var scales = n.OpType == "Upsample" && n.GetFloats("scales") is { } attr
            ? attr.Select(f => (double)f).ToArray() : FloatConst(scalesInput);
        if (scales is not null && scales.Length == xs.Rank)
        {
            return new Shape(xs.Dims.Select((d, i) => d.Value is long v ? Dim.Of((long)Math.Floor(v * scales[i]))
                : scales[i] == 1 ? d : Dim.Unknown));
        }
        return new Shape(xs.Dims.Select(_ => Dim.Unknown));
    }
}
