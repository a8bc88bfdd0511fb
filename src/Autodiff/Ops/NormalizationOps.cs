// LayerNormalization (opset 17), InstanceNormalization and GroupNormalization, with VJPs. Both normalize groups of
// elements by their own mean and (population) variance, then apply a per-element affine map:
//   xhat = (x - mu_g) / sqrt(var_g + eps),   y = s[a(i)] xhat + b[a(i)]
//   LayerNorm: groups = the trailing dims from `axis` (default -1); s, b broadcast over those dims
//   InstanceNorm: groups = (n, c) over the spatial dims; s, b per channel
//   GroupNorm: groups = (n, g) over C/G channels and the spatial dims; s, b per group (opset 18) or per
//              channel (opset 21)
// VJP per group of N elements, with dxhat = g s[a]:
//   dx = (N dxhat - sum dxhat - xhat sum(dxhat xhat)) / (N sigma),  ds[a] += g xhat,  db[a] += g
using System.Numerics;
using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal abstract class GroupNormBase<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Group of each element, number of groups, and the affine parameter index of each element.</summary>
    protected abstract (int[] Group, int Groups, int[] Affine) Layout(OpCall<T> c);

    private static T Eps(OpCall<T> c) => T.CreateChecked(Attr.Float(c.Node, "epsilon", 1e-5f));

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var x = c.In(0).R;
        var (group, groups, affine) = Layout(c);
        var (mean, inv, _) = Stats(x, group, groups, Eps(c));
        var s = c.In(1).R;
        var b = c.Optional(2)?.R;
        var y = Buffers<T>.New(x.Length);
        for (int i = 0; i < x.Length; i++)
            y[i] = (x[i] - mean[group[i]]) * inv[group[i]] * s[affine[i]] + (b is null ? T.Zero : b[affine[i]]);
        return [new NdArray<T>(c.In(0).Shape, y)];
    }

    private static (T[] Mean, T[] Inv, int[] Count) Stats(T[] x, int[] group, int groups, T eps)
    {
        var mean = Buffers<T>.New(groups);
        var count = new int[groups];
        for (int i = 0; i < x.Length; i++) { mean[group[i]] += x[i]; count[group[i]]++; }
        for (int g = 0; g < groups; g++) mean[g] /= T.CreateChecked(Math.Max(1, count[g]));
        var v = Buffers<T>.New(groups);
        for (int i = 0; i < x.Length; i++) { var d = x[i] - mean[group[i]]; v[group[i]] += d * d; }
        var inv = Buffers<T>.New(groups);
        for (int g = 0; g < groups; g++) inv[g] = T.One / T.Sqrt(v[g] / T.CreateChecked(Math.Max(1, count[g])) + eps);
        return (mean, inv, count);
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var x = c.In(0).R; var s = c.In(1).R; var g = gy.R;
        var (group, groups, affine) = Layout(c);
        var (mean, inv, count) = Stats(x, group, groups, Eps(c));
        var xhat = Buffers<T>.New(x.Length);
        for (int i = 0; i < x.Length; i++) xhat[i] = (x[i] - mean[group[i]]) * inv[group[i]];
        if (needed[0])
        {
            var sumD = Buffers<T>.New(groups); var sumDx = Buffers<T>.New(groups);
            for (int i = 0; i < x.Length; i++)
            {
                var dh = g[i] * s[affine[i]];
                sumD[group[i]] += dh;
                sumDx[group[i]] += dh * xhat[i];
            }
            var dx = Buffers<T>.New(x.Length);
            for (int i = 0; i < x.Length; i++)
            {
                int k = group[i];
                var n = T.CreateChecked(count[k]);
                dx[i] = (n * g[i] * s[affine[i]] - sumD[k] - xhat[i] * sumDx[k]) * inv[k] / n;
            }
            r[0] = new NdArray<T>(c.In(0).Shape, dx);
        }
        if (needed.Length > 1 && needed[1])
        {
            var ds = Buffers<T>.New(s.Length);
            for (int i = 0; i < x.Length; i++) ds[affine[i]] += g[i] * xhat[i];
            r[1] = new NdArray<T>(c.In(1).Shape, ds);
        }
        if (needed.Length > 2 && needed[2] && c.Optional(2) is { } bias)
        {
            var db = Buffers<T>.New(bias.Length);
            for (int i = 0; i < x.Length; i++) db[affine[i]] += g[i];
            r[2] = new NdArray<T>(bias.Shape, db);
        }
        return r;
    }
}

internal sealed class LayerNormOp<T> : GroupNormBase<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (int[] Group, int Groups, int[] Affine) Layout(OpCall<T> c)
    {
        var x = c.In(0);
        if (c.Node.Outputs.Skip(1).Any(o => o is not null && (o.Uses.Count > 0 || o.IsGraphOutput)))
            throw c.Error("LayerNormalization's Mean and InvStdDev outputs are not supported");
        int axis = NdArrayShape.Axis(c.Node, Attr.Int(c.Node, "axis", -1), x.Rank);
        int inner = x.Shape.Skip(axis).Aggregate(1, (a, b) => a * b);
        var affineShape = x.Shape.Skip(axis).ToArray();
        var sMap = Broadcast.Map(affineShape, c.In(1).Shape);
        var group = new int[x.Length];
        var affine = new int[x.Length];
        for (int i = 0; i < x.Length; i++) { group[i] = i / inner; affine[i] = sMap[i % inner]; }
        if (c.Optional(2) is { } b && !b.Shape.AsSpan().SequenceEqual(c.In(1).Shape))
            throw c.Error("LayerNormalization with a bias shaped unlike its scale is not supported");
        return (group, x.Length / Math.Max(1, inner), affine);
    }
}

internal sealed class InstanceNormOp<T> : GroupNormBase<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (int[] Group, int Groups, int[] Affine) Layout(OpCall<T> c)
    {
        var x = c.In(0);
        int n = x.Shape[0], ch = x.Rank > 1 ? x.Shape[1] : 1, inner = x.Length / Math.Max(1, n * ch);
        var group = new int[x.Length];
        var affine = new int[x.Length];
        for (int i = 0; i < x.Length; i++) { group[i] = i / inner; affine[i] = i / inner % ch; }
        return (group, n * ch, affine);
    }
}

internal sealed class GroupNormOp<T> : GroupNormBase<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override (int[] Group, int Groups, int[] Affine) Layout(OpCall<T> c)
    {
        var x = c.In(0);
        int groups = (int)Attr.Int(c.Node, "num_groups", 0);
        int n = x.Shape[0], ch = x.Rank > 1 ? x.Shape[1] : 1, inner = x.Length / Math.Max(1, n * ch);
        if (groups <= 0 || ch % groups != 0)
            throw c.Error($"GroupNormalization: num_groups {groups} does not divide {ch} channels");
        bool perChannel = c.Opset >= 21;
        int per = ch / groups;
        var group = new int[x.Length];
        var affine = new int[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int sample = i / (ch * inner), channel = i / inner % ch;
            group[i] = sample * groups + channel / per;
            affine[i] = perChannel ? channel : channel / per;
        }
        return (group, n * groups, affine);
    }
}
