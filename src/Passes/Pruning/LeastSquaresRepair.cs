// prune{recover=lstsq}: repair without labels or training (He et al. 2017, ThiNet, AIMET's weight
// reconstruction). Layer by layer in network order, every consumer of a pruned group is refitted so that
// on calibration data its output matches the ORIGINAL model's output of the same layer, from what the
// PRUNED model (with the layers before it already refitted) feeds it:
//   rows   x = [patch of the pruned input at an output position (Conv: Cin' * kh * kw values), 1]
//          y = the original layer's output at that position, at the output channels the layer kept
//          (a MatMul on [batch, sequence.., C]: every (sample, token) is a position, channels on the last axis)
//   fit    [W | b] = argmin sum ||W x - y||^2 + lambda ||W||^2,  lambda = ridge * trace(X'X) / K,
//          solved from the normal equations (X'X + lambda I) w = X'y by a blocked Cholesky, in float64
//          (DenseKernels: X'X and X'y accumulated 64 rows at a time, vectorized, on every core).
// Memory is bounded: at most max-rows sampled positions per layer (the same seeded positions in both
// models), accumulated into K x K and K x Cout sums. Each layer's SQNR on those rows is reported
// before and after the fit.
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class LeastSquaresRepair
{
    /// <summary>Refits <paramref name="layers"/> of <paramref name="pruned"/> in place, in order, against
    /// <paramref name="original"/>.</summary>
    /// <param name="keptOutputs">For layers whose own output channels were pruned too: which original channels they
    /// kept.</param>
    public static List<LayerRefit> Run(Model original, Model pruned, Rewriter rw, IReadOnlyList<Node> layers,
        IReadOnlyDictionary<Node, int[]> keptOutputs, CalibrationSource calib, int maxRows, double ridge)
    {
        var result = new List<LayerRefit>();
        foreach (var layer in layers)
        {
            if (LinearOp.Of(layer) is not { } op) continue;
            if (layer.OpType == "Conv" ? op.Groups != 1 : layer.OpType is not ("Gemm" or "MatMul")) continue;
            if (layer.OpType == "Gemm" && layer.GetInt("transA", 0) != 0) continue;
            var kept = keptOutputs.GetValueOrDefault(layer) ?? Enumerable.Range(0, op.OutChannels).ToArray();
            var fit = Fit(original, pruned, layer, op, kept, calib, maxRows, ridge);
            if (fit is null) continue;
            var (w, b, before, after) = fit.Value;
            op.Write(rw, op.WeightDims, ToLayout(op, w), b);
            result.Add(new LayerRefit(layer.ToString(), before, after));
        }
        return result;
    }

    // The solved weight is [Cout, K] row-major: Conv's own layout, Gemm's with transB; else transposed.
    private static float[] ToLayout(LinearOp op, double[] w)
    {
        var cout = op.OutChannels;
        var k = w.Length / cout;
        if (op.OutAxis == 0) return w.Select(v => (float)v).ToArray();
        var t = new float[w.Length];
        for (int o = 0; o < cout; o++) for (int i = 0; i < k; i++) t[i * cout + o] = (float)w[o * k + i];
        return t;
    }

    /// <summary>How a layer reads its input: a Conv's kernel, strides, dilations and pads (1x1 with no padding for
    /// Gemm/MatMul); K = the regressor length (every input feature of an output position, plus 1 for the bias).
    /// </summary>
    private sealed record Geometry(bool Conv, int Cin, int Cout, int Kh, int Kw, long[] Strides, long[] Dil,
        long[] Pads)
    {
        public int K => Cin * Kh * Kw + 1;

        public static Geometry? Of(Node layer, LinearOp op)
        {
            bool conv = layer.OpType == "Conv";
            if (conv && (layer.GetString("auto_pad") ?? "NOTSET") is not ("NOTSET" or "VALID")) return null;
            if (conv && op.WeightDims.Length != 4) return null;
            return new Geometry(conv, op.InChannels, op.OutChannels, conv ? (int)op.WeightDims[2] : 1,
                conv ? (int)op.WeightDims[3] : 1, conv ? layer.GetInts("strides") ?? [1, 1] : [1, 1],
                conv ? layer.GetInts("dilations") ?? [1, 1] : [1, 1], conv ? layer.GetInts("pads") ?? [0, 0, 0, 0]
                    : [0, 0, 0, 0]);
        }

        /// <summary>The regressor row of output position p (width outW) of sample s in x (the layer's input).
        /// </summary>
        public double[] Row(float[] data, int s, int p, int outW, int h, int wdt)
        {
            var row = new double[K];
            int oy = p / outW, ox = p % outW, k = 0;
            if (!Conv)
                for (int c = 0; c < Cin; c++) row[c] = data[((long)s * outW + p) * Cin + c];
            else
                for (int c = 0; c < Cin; c++)
                    for (int i = 0; i < Kh; i++)
                        for (int j = 0; j < Kw; j++, k++)
                        {
                            int iy = (int)(oy * Strides[0] - Pads[0] + i * Dil[0]);
                            int ix = (int)(ox * Strides[1] - Pads[1] + j * Dil[1]);
                            row[k] = iy < 0 || iy >= h || ix < 0
                                || ix >= wdt ? 0 : data[(((long)s * Cin + c) * h + iy) * wdt + ix];
                        }
            row[K - 1] = 1;
            return row;
        }
    }

    /// <summary>The original layer's output rows (kept channels) at seeded positions, the positions, and the output
    /// width (positions are y * width + x).</summary>
    private static (List<(int Sample, int Pos)> Positions, List<float[]> Ys, int OutW) TargetRows(Model original,
        string yName, Geometry g, int[] kept, CalibrationSource calib, int maxRows)
    {
        var positions = new List<(int Sample, int Pos)>();
        var ys = new List<float[]>();
        int samples = 0, outH = 1, outW = 1, perSample = 0;
        calib.Stream(original, [yName], (_, outs) =>
        {
            var y = outs[0];
            var n = (int)y.Dims[0];
            // Conv: [N, C, H, W]; Gemm/MatMul: [N, tokens.., C] (positions = the tokens, channels last).
            var origCout = (int)(g.Conv ? y.Dims[1] : y.Dims[^1]);
            if (g.Conv) { outH = (int)y.Dims[2]; outW = (int)y.Dims[3]; }
            else outW = (int)(y.ElementCount / Math.Max(1, (long)n * origCout));
            var plane = outH * outW;
            if (perSample == 0) perSample = Math.Max(1, maxRows / Math.Max(1, CalibCount(calib, original)));
            var data = y.ToFloatArray();
            for (int s = 0; s < n; s++, samples++)
            {
                var rng = new SplitMix64((ulong)samples * 0x9E3779B97F4A7C15UL + 7);
                for (int r = 0; r < Math.Min(perSample, plane); r++)
                {
                    var p = (int)(rng.Next() % (ulong)plane);
                    positions.Add((samples, p));
                    var row = new float[g.Cout];
                    for (int o = 0; o < g.Cout; o++)
                        row[o] = g.Conv ? data[((long)s * origCout + kept[o]) * plane + p]
                            : data[((long)s * plane + p) * origCout + kept[o]];
                    ys.Add(row);
                }
            }
        });
        return (positions, ys, outW);
    }

    /// <summary>The pruned model's regressor rows at the same positions, and the normal equations X'X and X'Y in
    /// float64, accumulated a block of rows at a time (transposed, so each Gram entry is one contiguous dot
    /// product).</summary>
    private static (List<double[]> Rows, double[] Ata, double[] Aty) NormalEquations(Model pruned, string xName,
        Geometry g, List<(int Sample, int Pos)> positions, List<float[]> ys, int outW, CalibrationSource calib)
    {
        int K = g.K, cout = g.Cout;
        var ata = new double[K * K];
        var aty = new double[K * cout];
        var rows = new List<double[]>(positions.Count);
        var pending = new List<int>();
        void Flush()
        {
            if (pending.Count == 0) return;
            int len = pending.Count;
            var xt = new double[K * len];
            var yt = new double[cout * len];
            for (int r = 0; r < len; r++)
            {
                var row = rows[pending[r]];
                var yrow = ys[pending[r]];
                for (int a = 0; a < K; a++) xt[a * len + r] = row[a];
                for (int o = 0; o < cout; o++) yt[o * len + r] = yrow[o];
            }
            DenseKernels.AddGram(ata, K, 0, K, xt, len, 1);
            DenseKernels.AddCross(aty, cout, xt, K, yt, cout, len);
            pending.Clear();
        }
        int seen = 0, next = 0;
        calib.Stream(pruned, [xName], (_, outs) =>
        {
            var x = outs[0];
            var n = (int)x.Dims[0];
            int h = g.Conv ? (int)x.Dims[2] : 1, wdt = g.Conv ? (int)x.Dims[3] : 1;
            var data = x.ToFloatArray();
            for (int s = 0; s < n; s++, seen++)
                while (next < positions.Count && positions[next].Sample == seen)
                {
                    rows.Add(g.Row(data, s, positions[next].Pos, outW, h, wdt));
                    pending.Add(next);
                    if (pending.Count == 64) Flush();
                    next++;
                }
        });
        Flush();
        return (rows, ata, aty);
    }

    /// <summary>The SQNR of the layer's output on the sampled rows with these weights ([cout, K-1]) and biases.
    /// </summary>
    private static double Sqnr(List<double[]> rows, List<float[]> ys, int K, int cout, double[] weights,
        Func<int, double> b)
    {
        var sig = new double[rows.Count];
        var err = new double[rows.Count];
        Parallel.For(0, rows.Count, r =>
        {
            var x = rows[r].AsSpan(0, K - 1);
            for (int o = 0; o < cout; o++)
            {
                double pred = b(o) + DenseKernels.Dot(weights.AsSpan(o * (K - 1), K - 1), x);
                sig[r] += ys[r][o] * (double)ys[r][o];
                err[r] += (pred - ys[r][o]) * (pred - ys[r][o]);
            }
        });
        return Runtime.Validation.Fidelity.SqnrDb(sig.Sum(), err.Sum());
    }

    private static (double[] W, float[] B, double Before, double After)? Fit(Model original, Model pruned, Node layer,
        LinearOp op, int[] kept, CalibrationSource calib, int maxRows, double ridge)
    {
        var yName = layer.Output().Name;
        if (original.Graph.Find(yName) is null || Geometry.Of(layer, op) is not { } g) return null;
        // Pass 1 (original): the target rows at seeded positions; pass 2 (pruned): the regressors there.
        var (positions, ys, outW) = TargetRows(original, yName, g, kept, calib, maxRows);
        if (positions.Count == 0) return null;
        var (rows, ata, aty) = NormalEquations(pruned, layer.Input(0)!.Name, g, positions, ys, outW, calib);
        int K = g.K, cout = g.Cout;
        double trace = 0;
        for (int a = 0; a < K; a++) trace += ata[a * K + a];
        var lambda = ridge * trace / K + 1e-12;
        for (int a = 0; a < K - 1; a++) ata[a * K + a] += lambda; // the bias column is not shrunk
        ata[(K - 1) * K + K - 1] += 1e-9;
        if (!DenseKernels.CholeskySolve(ata, aty, K, cout)) return null;
        var w = new double[cout * (K - 1)];
        var bias = new float[cout];
        for (int o = 0; o < cout; o++)
        {
            for (int a = 0; a < K - 1; a++) w[o * (K - 1) + a] = aty[a * cout + o];
            bias[o] = (float)aty[(K - 1) * cout + o];
        }
        // SQNR of the layer's output on the sampled rows, with the weights it had and with the fit.
        var old = op.Weight;
        var oldW = new double[cout * (K - 1)];
        for (int o = 0; o < cout; o++)
            for (int a = 0; a < K - 1; a++)
                oldW[o * (K - 1) + a] = op.OutAxis == 0 ? old[o * (K - 1) + a] : old[a * cout + o];
        return (w, bias, Sqnr(rows, ys, K, cout, oldW, o => op.Bias[o]), Sqnr(rows, ys, K, cout, w, o => bias[o]));
    }

    private static int CalibCount(CalibrationSource calib, Model m) =>
        calib.DataFor(IoInfo.InputsOf(m.Graph)).SampleCount;
}

/// <summary>One refitted layer: its output's SQNR against the original on the sampled rows, before and after.</summary>
public sealed record LayerRefit(string Layer, double SqnrDbBefore, double SqnrDbAfter) : Decision;
