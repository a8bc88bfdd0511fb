// Einsum (opset 12) with its VJP: any number of operands, an explicit output ("ij,jk->ik") or the implicit
// one (labels seen once, in alphabetical order), a label repeated within an operand (diagonal, trace) and
// "..." for leading dims, which broadcast (size 1 against any size):
//   y[out labels] = sum over the other labels of prod_k x_k[labels of operand k]
//   dx_k[labels of k] += dy[out labels] * prod_{j != k} x_j[labels of j]   (the same loop)
// Every label gets one stride per operand (the sum of the strides of the positions it occupies, so a
// repeated label walks the diagonal; 0 where the operand broadcasts it) and one in the output.
using System.Numerics;
using OnnxOpt.Autodiff.Kernels;

namespace OnnxOpt.Autodiff.Ops;

internal sealed class EinsumOp<T> : IOp<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private sealed record Plan(int[] Sizes, int[][] Strides, int[] OutStrides, int[] OutShape);

    private static Plan Prepare(OpCall<T> c)
    {
        var eq = (c.Node.GetString("equation") ?? throw c.Error("Einsum needs an equation")).Replace(" ", "");
        var parts = eq.Split("->");
        var terms = parts[0].Split(',');
        if (parts.Length > 2 || terms.Length != c.Inputs.Length)
            throw c.Error($"Einsum equation '{eq}' does not match its {c.Inputs.Length} operands");
        // "..." becomes the dims E-e.. of E fresh labels, E the most dims any operand's ellipsis covers.
        var ellipsis = terms.Select((t, k) => t.Contains("...") ? c.In(k).Rank - (t.Length - 3) : 0).ToArray();
        if (ellipsis.Any(e => e < 0)) throw c.Error($"Einsum equation '{eq}' has more labels than dims");
        int most = ellipsis.Max();
        string Ell(int e) => new(Enumerable.Range(most - e, e).Select(i => (char)(0x100 + i)).ToArray());
        var expanded = terms.Select((t, k) => t.Replace("...", Ell(ellipsis[k]))).ToArray();
        string output;
        if (parts.Length == 2) output = parts[1].Replace("...", Ell(most));
        else
        {
            var once = string.Concat(expanded).GroupBy(ch => ch).Where(g => g.Count() == 1 && g.Key < 0x100)
                .Select(g => g.Key).OrderBy(ch => ch);
            output = Ell(most) + new string(once.ToArray());
        }
        var labels = expanded.SelectMany(t => t).Concat(output).Distinct().ToList();
        var sizes = new int[labels.Count];
        Array.Fill(sizes, 1);
        for (int k = 0; k < expanded.Length; k++)
        {
            var x = c.In(k);
            if (expanded[k].Length != x.Rank)
                throw c.Error($"Einsum operand {k} has {x.Rank} dims but '{terms[k]}' names {expanded[k].Length}");
            for (int p = 0; p < x.Rank; p++)
            {
                int l = labels.IndexOf(expanded[k][p]), d = x.Shape[p];
                if (sizes[l] == 1) sizes[l] = d;
                else if (d != 1 && d != sizes[l])
                    throw c.Error($"Einsum label '{expanded[k][p]}' is {sizes[l]} in one place and {d} in another");
            }
        }
        var strides = new int[expanded.Length][];
        for (int k = 0; k < expanded.Length; k++)
        {
            var x = c.In(k);
            strides[k] = new int[labels.Count];
            for (int p = x.Rank - 1, st = 1; p >= 0; st *= x.Shape[p], p--)
                if (x.Shape[p] != 1 || sizes[labels.IndexOf(expanded[k][p])] == 1)
                    strides[k][labels.IndexOf(expanded[k][p])] += st;
        }
        var outShape = output.Select(ch => labels.IndexOf(ch) is var l && l >= 0 ? sizes[l]
            : throw c.Error($"Einsum output label '{ch}' is in no operand")).ToArray();
        if (output.Distinct().Count() != output.Length) throw c.Error($"Einsum output '{parts[1]}' repeats a label");
        var outStrides = new int[labels.Count];
        for (int p = output.Length - 1, st = 1; p >= 0; st *= outShape[p], p--)
            outStrides[labels.IndexOf(output[p])] = st;
        return new Plan(sizes, strides, outStrides, outShape);
    }

    /// <summary>Visits every label assignment with the offsets it reads in each operand and the output.</summary>
    private static void Each(Plan p, Action<int[], int> visit)
    {
        int n = p.Sizes.Length, ops = p.Strides.Length;
        long total = p.Sizes.Aggregate(1L, (a, b) => a * b);
        var idx = new int[n];
        var off = new int[ops];
        int outOff = 0;
        for (long t = 0; t < total; t++)
        {
            visit(off, outOff);
            for (int l = n - 1; l >= 0; l--)
            {
                if (++idx[l] < p.Sizes[l])
                {
                    for (int k = 0; k < ops; k++) off[k] += p.Strides[k][l];
                    outOff += p.OutStrides[l];
                    break;
                }
                idx[l] = 0;
                for (int k = 0; k < ops; k++) off[k] -= p.Strides[k][l] * (p.Sizes[l] - 1);
                outOff -= p.OutStrides[l] * (p.Sizes[l] - 1);
            }
        }
    }

    public NdArray<T>[] Forward(OpCall<T> c)
    {
        var p = Prepare(c);
        var xs = Enumerable.Range(0, c.Inputs.Length).Select(k => c.In(k).R).ToArray();
        var y = Buffers<T>.New(NdArray<T>.Size(p.OutShape));
        Each(p, (off, o) =>
        {
            var v = T.One;
            for (int k = 0; k < xs.Length; k++) v *= xs[k][off[k]];
            y[o] += v;
        });
        return [new NdArray<T>(p.OutShape, y)];
    }

    public NdArray<T>?[] Backward(OpCall<T> c, NdArray<T>?[] gradOutputs, bool[] needed)
    {
        var r = new NdArray<T>?[c.Inputs.Length];
        if (gradOutputs[0] is not { } gy) return r;
        var p = Prepare(c);
        var xs = Enumerable.Range(0, c.Inputs.Length).Select(k => c.In(k).R).ToArray();
        var g = gy.R;
        for (int k = 0; k < xs.Length; k++)
        {
            if (!needed[k]) continue;
            var d = Buffers<T>.New(xs[k].Length);
            int kk = k;
            Each(p, (off, o) =>
            {
                var v = g[o];
                for (int j = 0; j < xs.Length; j++) if (j != kk) v *= xs[j][off[j]];
                d[off[kk]] += v;
            });
            r[k] = new NdArray<T>(c.In(k).Shape, d);
        }
        return r;
    }
}
