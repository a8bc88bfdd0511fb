// Broadcasting as contiguous runs, for the element-wise kernels. The output splits into Outer blocks of
// Inner elements, Inner the longest suffix of output axes on which each operand is either full (its dims
// are the output's) or constant (its dims are 1): within a block an operand is a contiguous run or one
// value, and a small per-block map (Broadcast.Map over the outer axes only) gives where its run starts.
//   same shapes            [N,C,H,W] + [N,C,H,W]  -> 1 block of N*C*H*W, both runs
//   a scalar               [N,C,H,W] * []         -> 1 block, a run and a value
//   per channel            [N,C,H,W] + [1,C,1,1]  -> N*C blocks of H*W, a run and a value
//   a trailing vector      [N,K] + [K]            -> N blocks of K, both runs (b's blocks all start at 0)
// Long blocks are cut into pieces of at most PieceElements so that one large block still runs in parallel.
using System.Numerics;

namespace OnnxOpt.Autodiff.Kernels;

internal sealed class BroadcastBlocks
{
    private const int PieceElements = 1 << 14;

    public int Outer { get; }
    public int Inner { get; }
    public int Size => Outer * Inner;
    /// <summary>Per operand: whether it is a run in each block (else one value).</summary>
    public bool[] Full { get; }
    /// <summary>Per operand, per block: the offset of its run or value.</summary>
    public int[][] Offsets { get; }
    /// <summary>Pieces per block (a block of Inner elements is cut into this many runs).</summary>
    public int Pieces { get; }
    public int PieceLength => (Inner + Pieces - 1) / Pieces;

    public BroadcastBlocks(int[] outShape, params int[][] operands)
    {
        int rank = outShape.Length;
        var padded = operands.Select(s => Enumerable.Repeat(1, rank - s.Length).Concat(s).ToArray()).ToArray();
        // Per operand, the kind of the suffix so far: 0 undecided (only size-1 axes), 1 full, 2 constant.
        var kind = new int[operands.Length];
        int split = rank;
        for (int ax = rank - 1; ax >= 0; ax--)
        {
            if (outShape[ax] == 1) { split = ax; continue; }
            bool fits = true;
            var next = (int[])kind.Clone();
            for (int k = 0; k < operands.Length; k++)
            {
                int want = padded[k][ax] == outShape[ax] ? 1 : 2;
                if (next[k] != 0 && next[k] != want) { fits = false; break; }
                next[k] = want;
            }
            if (!fits) break;
            kind = next;
            split = ax;
        }
        Inner = NdArrayShape.Size(outShape.AsSpan(split));
        var outer = outShape[..split];
        Outer = NdArrayShape.Size(outer);
        Full = kind.Select(k => k == 1).ToArray();
        Offsets = new int[operands.Length][];
        for (int k = 0; k < operands.Length; k++)
        {
            int scale = Full[k] ? Inner : 1;
            var map = Broadcast.Map(outer, padded[k][..split]);
            for (int i = 0; i < map.Length; i++) map[i] *= scale;
            Offsets[k] = map;
        }
        Pieces = Math.Max(1, (Inner + PieceElements - 1) / PieceElements);
    }

    /// <summary>Runs body(block, start within the block, length) over every piece, in parallel when the output is
    /// large enough to pay for it.</summary>
    public void ForPieces(Action<int, int, int> body, bool parallel = true)
    {
        int total = Outer * Pieces, len = PieceLength;
        void Range(int lo, int hi)
        {
            for (int q = lo; q < hi; q++)
            {
                int o = q / Pieces, s = q % Pieces * len;
                body(o, s, Math.Min(len, Inner - s));
            }
        }
        if (parallel && Size >= 1 << 16) Parallelism.ForRanges(total, Range);
        else Range(0, total);
    }
}

/// <summary>Vectorized runs of the four arithmetic ops: run op run, run op value, value op run.</summary>
internal static class Runs<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static void Apply(int op, ReadOnlySpan<T> x, T xs, bool xRun, ReadOnlySpan<T> y, T ys, bool yRun, Span<T> r)
    {
        int v = Vector<T>.Count, i = 0, n = r.Length;
        if (xRun && yRun)
        {
            for (; i + v <= n; i += v)
                Op(op, new Vector<T>(x[i..]), new Vector<T>(y[i..])).CopyTo(r[i..]);
            for (; i < n; i++) r[i] = Op(op, x[i], y[i]);
        }
        else if (xRun)
        {
            var b = new Vector<T>(ys);
            for (; i + v <= n; i += v) Op(op, new Vector<T>(x[i..]), b).CopyTo(r[i..]);
            for (; i < n; i++) r[i] = Op(op, x[i], ys);
        }
        else if (yRun)
        {
            var a = new Vector<T>(xs);
            for (; i + v <= n; i += v) Op(op, a, new Vector<T>(y[i..])).CopyTo(r[i..]);
            for (; i < n; i++) r[i] = Op(op, xs, y[i]);
        }
        else r.Fill(Op(op, xs, ys));
    }

    private static Vector<T> Op(int op, Vector<T> a, Vector<T> b) => op switch
    {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        _ => a / b,
    };

    private static T Op(int op, T a, T b) => op switch
    {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        _ => a / b,
    };

    /// <summary>d += s * g over a run.</summary>
    public static void AddScaled(Span<T> d, ReadOnlySpan<T> g, T s)
    {
        int v = Vector<T>.Count, i = 0;
        var sv = new Vector<T>(s);
        for (; i + v <= d.Length; i += v) (new Vector<T>(d[i..]) + sv * new Vector<T>(g[i..])).CopyTo(d[i..]);
        for (; i < d.Length; i++) d[i] += s * g[i];
    }

    /// <summary>The sum of a run (what a value broadcast over it receives).</summary>
    public static T Sum(ReadOnlySpan<T> g)
    {
        int v = Vector<T>.Count, i = 0;
        var acc = Vector<T>.Zero;
        for (; i + v <= g.Length; i += v) acc += new Vector<T>(g[i..]);
        T s = Vector.Sum(acc);
        for (; i < g.Length; i++) s += g[i];
        return s;
    }

    /// <summary>sum g * y over a run (y a run or one value).</summary>
    public static T Dot(ReadOnlySpan<T> g, ReadOnlySpan<T> y, T ys, bool yRun)
    {
        if (!yRun) return ys * Sum(g);
        int v = Vector<T>.Count, i = 0;
        var acc = Vector<T>.Zero;
        for (; i + v <= g.Length; i += v) acc += new Vector<T>(g[i..]) * new Vector<T>(y[i..]);
        T s = Vector.Sum(acc);
        for (; i < g.Length; i++) s += g[i] * y[i];
        return s;
    }

    /// <summary>d += g * y (y a run or one value).</summary>
    public static void AddProduct(Span<T> d, ReadOnlySpan<T> g, ReadOnlySpan<T> y, T ys, bool yRun)
    {
        if (!yRun) { AddScaled(d, g, ys); return; }
        int v = Vector<T>.Count, i = 0;
        for (; i + v <= d.Length; i += v)
            (new Vector<T>(d[i..]) + new Vector<T>(g[i..]) * new Vector<T>(y[i..])).CopyTo(d[i..]);
        for (; i < d.Length; i++) d[i] += g[i] * y[i];
    }
}
