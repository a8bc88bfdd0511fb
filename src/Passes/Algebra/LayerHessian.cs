// The input second moment of a linear layer on calibration data: H = sum over sampled input rows x of x x^T, the
// Hessian (up to a factor 2) of the layer-wise reconstruction error ||W x - W' x||^2 that AdaRound, GPTQ and
// layer-wise OBS minimize over a changed weight W':
//   ||(W - W') x||^2 summed over rows = sum over output channels o of d_o^T H d_o,  d_o = W_o - W'_o
// Rows: a Conv's input patches at sampled output positions, one H per group (K = Cin/G * kh * kw, zeros where
// padding reads outside the image); a Gemm's or MatMul's input rows (every leading axis flattened, K = the last).
// Every layer's rows are gathered in one streaming pass over the calibration data: at most max-rows per layer, the
// same number from each sample at seeded positions. H is accumulated in float64 (DenseKernels, 64 rows at a time).
// The layer's weight is seen as rows [output channel][K] (Rows / FromRows convert from and to its layout).
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed class LayerHessian
{
    private LayerHessian(LinearOp op, int groups, int k)
    {
        Op = op; Groups = groups; K = k;
        H = Enumerable.Range(0, groups).Select(_ => new double[k * k]).ToArray();
    }

    public LinearOp Op { get; }
    /// <summary>Groups of output channels that read the same inputs (a Conv's groups; 1 otherwise).</summary>
    public int Groups { get; }
    /// <summary>Inputs per output channel (the length of a weight row).</summary>
    public int K { get; }
    /// <summary>Per group, sum x x^T over the sampled rows (K x K, full and symmetric).</summary>
    public double[][] H { get; }
    public long SampledRows { get; private set; }
    public int RowsPerGroup => Op.OutChannels / Groups;

    /// <summary>Why a layer has no Hessian here (null: it can).</summary>
    public static string? WhyNot(LinearOp op)
    {
        var n = op.Node;
        return n.OpType switch
        {
            "ConvTranspose" => "ConvTranspose: its inputs per output vary with the stride",
            "Conv" when op.WeightDims.Length != 4 => "only 2-D convs",
            "Conv" when (n.GetString("auto_pad") ?? "NOTSET") is not ("NOTSET" or "VALID") => "auto_pad SAME",
            "Gemm" when n.GetInt("transA", 0) != 0 => "Gemm with transA",
            _ => null,
        };
    }

    /// <summary>The weight as rows [output channel][K].</summary>
    public double[] Rows()
    {
        var w = Op.Weight;
        if (Op.Node.OpType == "Conv" || Op.OutAxis == 0) return w.Select(v => (double)v).ToArray();
        int n = Op.OutChannels;
        var r = new double[w.Length];
        for (int a = 0; a < K; a++) for (int o = 0; o < n; o++) r[o * K + a] = w[a * n + o];
        return r;
    }

    /// <summary>Rows [output channel][K] back in the weight's own layout.</summary>
    public float[] FromRows(IReadOnlyList<double> rows)
    {
        if (Op.Node.OpType == "Conv" || Op.OutAxis == 0) return rows.Select(v => (float)v).ToArray();
        int n = Op.OutChannels;
        var w = new float[rows.Count];
        for (int a = 0; a < K; a++) for (int o = 0; o < n; o++) w[a * n + o] = (float)rows[o * K + a];
        return w;
    }

    /// <summary>sum over output channels of d_o^T H d_o for a weight change d given as rows.</summary>
    public double Error(ReadOnlySpan<double> d)
    {
        double total = 0;
        var g = new double[K];
        for (int o = 0; o < Op.OutChannels; o++)
        {
            var h = H[o / RowsPerGroup];
            var row = d.Slice(o * K, K);
            Array.Clear(g);
            for (int a = 0; a < K; a++) if (row[a] != 0) DenseKernels.Axpy(row[a], h.AsSpan(a * K, K), g);
            total += DenseKernels.Dot(row, g);
        }
        return total;
    }

    /// <summary>H of every layer that has one, from one pass over the calibration data, with the reasons for the
    /// rest.</summary>
    public static (Dictionary<Node, LayerHessian> Layers, List<(Node Node, string Reason)> Refused) Collect(
        Model model, CalibrationSource calib, IEnumerable<LinearOp> layers, int maxRows, string label)
    {
        var result = new Dictionary<Node, LayerHessian>();
        var refused = new List<(Node, string)>();
        foreach (var op in layers)
        {
            if (WhyNot(op) is { } why) { refused.Add((op.Node, why)); continue; }
            bool conv = op.Node.OpType == "Conv";
            int k = conv ? (int)(op.WeightDims[1] * op.WeightDims[2] * op.WeightDims[3]) : op.InChannels;
            result[op.Node] = new LayerHessian(op, conv ? op.Groups : 1, k);
        }
        if (result.Count == 0) return (result, refused);
        var inputs = result.Keys.Select(n => n.Input(0)!.Name).Distinct().ToList();
        int count = Math.Max(1, calib.DataFor(IoInfo.InputsOf(model.Graph)).SampleCount);
        int perSample = Math.Max(1, maxRows / count);
        var pending = result.Values.ToDictionary(l => l, l => new Pending(l));
        int seen = 0;
        calib.Stream(model, inputs, (_, outs) =>
        {
            var byName = inputs.Select((name, i) => (name, outs[i])).ToDictionary(t => t.name, t => t.Item2);
            int n = (int)outs[0].Dims[0];
            Parallel.ForEach(result.Values, l =>
            {
                var x = byName[l.Op.Node.Input(0)!.Name];
                var data = x.ToFloatArray();
                for (int s = 0; s < n; s++) l.AddSample(x.Dims, data, s, seen + s, perSample, pending[l]);
            });
            seen += n;
        }, label);
        foreach (var (l, p) in pending) p.Flush();
        foreach (var l in result.Values) l.Symmetrize();
        return (result, refused);
    }

    /// <summary>Rows waiting to be added to H, per group, transposed (K x up to 64).</summary>
    private sealed class Pending(LayerHessian l)
    {
        private readonly double[][] _xt = Enumerable.Range(0, l.Groups).Select(_ => new double[l.K * Block]).ToArray();
        private int _count;
        private const int Block = 64;

        public void Add(int group, int row, int a, double v) => _xt[group][a * Block + row] = v;
        public int Next => _count;

        public void Commit()
        {
            if (++_count == Block) Flush();
        }

        public void Flush()
        {
            if (_count == 0) return;
            for (int g = 0; g < l.Groups; g++)
            {
                if (l.K >= 32) DenseKernels.AddGram(l.H[g], l.K, 0, l.K, _xt[g], Block, 1);
                else AddSmallGram(l.H[g], l.K, _xt[g]);
                Array.Clear(_xt[g]);
            }
            l.SampledRows += _count;
            _count = 0;
        }

        private static void AddSmallGram(double[] h, int k, double[] xt)
        {
            for (int a = 0; a < k; a++)
                for (int b = 0; b <= a; b++)
                    h[a * k + b] += DenseKernels.Dot(xt.AsSpan(a * Block, Block), xt.AsSpan(b * Block, Block));
        }
    }

    private void AddSample(long[] dims, float[] data, int s, int sampleIndex, int perSample, Pending p)
    {
        var rng = new SplitMix64((ulong)sampleIndex * 0x9E3779B97F4A7C15UL + 11);
        if (Op.Node.OpType != "Conv")
        {
            long perRow = dims[^1];
            long rowsPer = data.Length / Math.Max(1, dims[0]) / Math.Max(1, perRow);
            for (int r = 0; r < Math.Min(perSample, rowsPer); r++)
            {
                long row = rowsPer <= perSample ? r : (long)(rng.Next() % (ulong)rowsPer);
                long off = (s * rowsPer + row) * perRow;
                int slot = p.Next;
                for (int a = 0; a < K; a++) p.Add(0, slot, a, data[off + a]);
                p.Commit();
            }
            return;
        }
        var n = Op.Node;
        int c = (int)dims[1], h = (int)dims[2], w = (int)dims[3];
        int kh = (int)Op.WeightDims[2], kw = (int)Op.WeightDims[3], cg = (int)Op.WeightDims[1];
        var strides = n.GetInts("strides") ?? [1, 1];
        var dil = n.GetInts("dilations") ?? [1, 1];
        var pads = n.GetInts("pads") ?? [0, 0, 0, 0];
        int outH = (int)((h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) / strides[0] + 1);
        int outW = (int)((w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) / strides[1] + 1);
        int plane = Math.Max(0, outH * outW);
        for (int r = 0; r < Math.Min(perSample, plane); r++)
        {
            int pos = plane <= perSample ? r : (int)(rng.Next() % (ulong)plane);
            int oy = pos / outW, ox = pos % outW;
            int slot = p.Next;
            for (int g = 0; g < Groups; g++)
            {
                int a = 0;
                for (int ci = 0; ci < cg; ci++)
                {
                    long chan = ((long)s * c + g * cg + ci) * h;
                    for (int i = 0; i < kh; i++)
                    {
                        int iy = (int)(oy * strides[0] - pads[0] + i * dil[0]);
                        for (int j = 0; j < kw; j++, a++)
                        {
                            int ix = (int)(ox * strides[1] - pads[1] + j * dil[1]);
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w) p.Add(g, slot, a, data[(chan + iy) * w + ix]);
                        }
                    }
                }
            }
            p.Commit();
        }
    }

    private void Symmetrize()
    {
        foreach (var h in H)
            for (int a = 0; a < K; a++)
                for (int b = a + 1; b < K; b++) h[a * K + b] = h[b * K + a];
    }
}
