// Weight-only quantization and GPTQ: MatMulNBits decodes in ORT to exactly the weights it claims (4 and 8 bits, every
// block size, odd block counts and partial blocks, with and without zero points); GPTQ equals a brute-force layer-wise
// OBS on a tiny layer; on a trained layer it lowers the output error against round-to-nearest on held-out inputs;
// static int8 with rounding=gptq stores integers next to the nearest ones.
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using static OnnxOpt.Tests.PassTestKit;

namespace OnnxOpt.Tests;

public class WeightOnlyQuantizeTests
{
    private static Model MatMul(int k, int n, string op = "MatMul")
    {
        var b = new GraphBuilder("mm");
        var x = b.Input("x", DataType.Float, "N", 3, k);
        var y = op == "MatMul" ? b.Node("MatMul", [x, W(b, "w", 1, k, n)])
            : b.Node("Gemm", [b.Node("Reshape", [x, b.Initializer("shape", [-1L, k], 2)]), W(b, "w", 1, n, k),
                W(b, "c", 2, n)], OnnxAttribute.Int("transB", 1), OnnxAttribute.Float("alpha", 0.5f));
        b.Output(y);
        return b.Build();
    }

    [Theory]
    [InlineData(96, 4, 32, false)]   // 3 blocks: a row's zero points end on an empty high nibble
    [InlineData(96, 4, 32, true)]
    [InlineData(40, 4, 16, false)]   // a partial last block
    [InlineData(200, 4, 64, false)]
    [InlineData(72, 4, 128, true)]
    [InlineData(96, 8, 32, false)]
    [InlineData(130, 8, 128, true)]
    public void MatMulNBitsDecodesInOrtToTheWeightsItClaims(int k, int bits, int block, bool symmetric)
    {
        var m = MatMul(k, 10);
        var sym = symmetric ? "true" : "false";
        var (q, runs) = Run(m, $"quantize{{mode=weight-only,bits={bits},block={block},symmetric={sym},accuracy-level=0}}");
        var mm = q.Graph.Nodes.Single(n => n.OpType == "MatMulNBits");
        Assert.Equal(symmetric ? 3 : 4, mm.Inputs.Count);
        // The weight the op claims: decode its tensors as the spec says, then a float MatMul over them must agree.
        var w = new MatMulNBitsWeight(Rewriter.ConstantOf(mm.Input(1))!.ToInt64Array().Select(v => (byte)v).ToArray(),
            Rewriter.ConstantOf(mm.Input(2))!.ToFloatArray(), symmetric ? null
                : Rewriter.ConstantOf(mm.Input(3))!.ToInt64Array().Select(v => (byte)v).ToArray(), k, 10, bits, block);
        var b = new GraphBuilder("decoded");
        var x = b.Input("x", DataType.Float, "N", 3, k);
        b.Output(b.Node("MatMul", [x, b.Initializer("w", w.Decode(), k, 10)]));
        AssertEquivalent(b.Build(), q);
        // And every decoded weight is within half a step of the original (the grid holds it).
        var original = Rewriter.ConstantOf(m.Graph.Nodes.Single().Input(1))!.ToFloatArray();
        var decoded = w.Decode();
        int blocks = (k + block - 1) / block;
        for (int i = 0; i < original.Length; i++)
            Assert.True(Math.Abs(original[i] - decoded[i]) <= w.Scales[i % 10 * blocks + i / 10 / block] * 0.5001,
                $"element {i}");
        Assert.Equal(1, Counter(runs, Counters.Quantize.WeightOnly(bits, "MatMul")));
    }

    [Fact]
    public void AGemmWithTransBAlphaAndBiasRunsAsMatMulNBitsPlusTheBias()
    {
        var m = MatMul(64, 12, "Gemm");
        var (q, _) = Run(m, "quantize{mode=weight-only,bits=8,accuracy-level=0}");
        Assert.Equal(1, Count(q, "MatMulNBits"));
        var settings = new SessionSettings { Optimization = GraphOptimization.Disabled };
        using var a = InferenceSession.FromModel(m, settings);
        using var c = InferenceSession.FromModel(q, settings);
        var sqnr = Runtime.Validation.Validator.Compare(a, c, DataSet.Random(a.Inputs, 8, 3)).Outputs.Single().SqnrDb;
        Assert.True(sqnr > 35, $"8-bit weights: output SQNR {sqnr:F1} dB");
    }

    /// <summary>Layer-wise OBS by the book: quantize column i, then move the columns after it by
    /// -(e / [H_F^-1]_ii) [H_F^-1]_(i, F), with the inverse of H restricted to the remaining columns F.</summary>
    private static int[] BruteForceObs(double[] w, double[] h, int k, double scale, int qmax)
    {
        w = (double[])w.Clone();
        var q = new int[k];
        for (int i = 0; i < k; i++)
        {
            int f = k - i;
            var inv = ObsReference.RestrictedInverse(h, k, i);
            q[i] = (int)Math.Clamp(Math.Round(w[i] / scale, MidpointRounding.ToEven), -qmax, qmax);
            var e = w[i] - q[i] * scale;
            for (int j = 1; j < f; j++) w[i + j] -= e / inv[0] * inv[j];
        }
        return q;
    }

    [Fact]
    public void GptqIsLayerWiseObsOnATinyLayer()
    {
        const int k = 7, qmax = 7;
        var x = Rand(3, 40 * k, 1f);
        var h = new double[k * k];
        for (int r = 0; r < 40; r++)
            for (int a = 0; a < k; a++)
                for (int b = 0; b < k; b++)
                    h[a * k + b] += (x[r * k + a] + 0.6 * x[r * k + (a + 1) % k]) * (x[r * k + b]
                        + 0.6 * x[r * k + (b + 1) % k]);
        var w = Rand(4, 2 * k, 1f).Select(v => (double)v).ToArray();
        var scales = new[] { 0.13f, 0.11f };
        // GPTQ dampens H by 1% of its mean diagonal: give the brute force the same H.
        var damped = (double[])h.Clone();
        var mean = Enumerable.Range(0, k).Average(i => h[i * k + i]);
        for (int i = 0; i < k; i++) damped[i * k + i] += 0.01 * mean;
        var grid = new RowScaleGrid(scales, qmax, k);
        Assert.True(Gptq.Run((double[])w.Clone(), 2, 0, k, h, grid, block: 3));
        for (int r = 0; r < 2; r++)
            Assert.Equal(BruteForceObs(w[(r * k)..((r + 1) * k)], damped, k, scales[r], qmax),
                grid.Values[(r * k)..((r + 1) * k)]);
    }

    [Fact]
    public void GptqLowersATrainedLayersErrorOnHeldOutInputs()
    {
        var dir = Paths.Model(Path.Combine("digits", "data_mlp"));
        var m = OnnxImporter.Load(Paths.Model(Path.Combine("digits", "mlp.onnx")));
        // The second layer (128 -> 64) sees trained, correlated activations.
        var layer = LinearOp.Of(m.Graph.Nodes.Where(n => n.OpType is "Gemm" or "MatMul").ElementAt(1))!;
        LayerHessian H(string split) => LayerHessian.Collect(m, CalibrationSource.FromFolder(Path.Combine(dir, split)),
            [layer], 1 << 20, "t").Layers.Values.Single();
        var (calib, test) = (H("calib"), H("test"));
        var rows = calib.Rows();
        int k = calib.K, n = layer.OutChannels;
        var nearest = new BlockGrid(n, k, 4, 32, false);
        var rtn = rows.Select((v, i) =>
        {
            nearest.Begin(i / k, i % k, rows.AsSpan(i, k - i % k));
            return nearest.Quantize(i / k, i % k, v) - v;
        }).ToArray();
        var grid = new BlockGrid(n, k, 4, 32, false);
        var gptq = (double[])rows.Clone();
        Assert.True(Gptq.Run(gptq, n, 0, k, calib.H[0], grid));
        var d = gptq.Select((v, i) => v - rows[i]).ToArray();
        var (before, after) = (test.Error(rtn), test.Error(d));
        Assert.True(after < 0.8 * before, $"held-out layer error {before:G4} -> {after:G4}");
    }

    [Fact]
    public void StaticInt8WithGptqStoresIntegersNextToTheNearestOnes()
    {
        var dir = Paths.Model(Path.Combine("digits", "data"));
        var m = OnnxImporter.Load(Paths.Model(Path.Combine("digits", "vgg.onnx")));
        var calib = CalibrationSource.FromFolder(Path.Combine(dir, "calib"));
        var (_, runs) = Run(m, "canonicalize,fold-bn,quantize{rounding=gptq,reduce-range=false}", calib);
        var layers = runs.SelectMany(r => r.Stats.Decisions).OfType<RoundedLayer>().ToList();
        Assert.NotEmpty(layers);
        Assert.All(layers, l => Assert.True(l.ErrorLearned <= l.ErrorNearest));
        Assert.Contains(layers, l => l.Decision == "learned" && l.ErrorLearned < 0.9 * l.ErrorNearest);
    }
}
