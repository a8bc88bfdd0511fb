// Training runs the evaluator in float, whose kernels take other paths than the double ones the finite-difference
// checks cover (blocked GEMM micro-tiles, packed panels past a size, direct depthwise loops, parallel chunks). On
// shapes large enough to take those paths, float gradients must equal the double ones to float accuracy.
using OnnxOpt.Autodiff;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public class FloatGradientTests
{
    private static Model Head()
    {
        // The text detector's head: 3x3 conv over 96 channels, ReLU, two 2x2 stride-2 transposed convs, sigmoid.
        var b = new GraphBuilder("head", 13);
        var x = b.Input("x", DataType.Float, 2, 96, 40, 32);
        var rng = new Random(3);
        float[] W(int n, double s) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * s))
            .ToArray();
        var c = b.Node("Conv", [x, b.Initializer("w0", W(24 * 96 * 9, 0.05), 24, 96, 3, 3),
            b.Initializer("b0", W(24, 0.1), 24)], OnnxAttribute.IntList("pads", [1, 1, 1, 1]));
        var r = b.Node("Relu", [c]);
        var t1 = b.Node("ConvTranspose", [r, b.Initializer("w1", W(24 * 24 * 4, 0.2), 24, 24, 2, 2)],
            OnnxAttribute.IntList("strides", [2, 2]), OnnxAttribute.IntList("kernel_shape", [2, 2]));
        var r1 = b.Node("Relu", [t1]);
        var t2 = b.Node("ConvTranspose", [r1, b.Initializer("w2", W(24 * 4, 0.2), 24, 1, 2, 2)],
            OnnxAttribute.IntList("strides", [2, 2]), OnnxAttribute.IntList("kernel_shape", [2, 2]));
        b.Output(b.Node("Sigmoid", [t2]));
        return b.Build();
    }

    private static Model Single(string op, long[] x, long[] w, params OnnxAttribute[] attrs)
    {
        var b = new GraphBuilder(op.ToLowerInvariant(), 13);
        var rng = new Random(5);
        var wv = Enumerable.Range(0, (int)w.Aggregate(1L, (p, d) => p * d))
            .Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        b.Output(b.Node(op, [b.Input("x", DataType.Float, x.Cast<object>().ToArray()), b.Initializer("w", wv, w)],
            attrs));
        return b.Build();
    }

    public static TheoryData<string> Cases() => new(["head", "conv3x3-96", "convtranspose-k2s2", "depthwise-s2"]);

    private static Model Case(string name) => name switch
    {
        "head" => Head(),
        "conv3x3-96" => Single("Conv", [2, 96, 40, 32], [48, 96, 3, 3], OnnxAttribute.IntList("pads", [1, 1, 1, 1])),
        "convtranspose-k2s2" => Single("ConvTranspose", [2, 48, 40, 32], [48, 24, 2, 2],
            OnnxAttribute.IntList("strides", [2, 2])),
        "depthwise-s2" => Single("Conv", [2, 64, 40, 32], [64, 1, 3, 3], OnnxAttribute.Int("group", 64),
            OnnxAttribute.IntList("strides", [2, 2]), OnnxAttribute.IntList("pads", [1, 1, 1, 1])),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void FloatGradientsEqualDoubleOnesOnLargeShapes(string name)
    {
        var m = Case(name);
        var g = m.Graph;
        var x = g.Inputs.Single(i => !i.IsInitializer);
        var shape = x.Shape!.ToArray().Select(d => (int)d).ToArray();
        var rng = new SplitMix64(9);
        var xs = Enumerable.Range(0, NdArray<double>.Size(shape)).Select(_ => rng.NextGaussian()).ToArray();
        var wrt = g.Initializers.Select(v => v.Name).Append(x.Name).ToList();
        Dictionary<string, double[]> Gradients<T>() where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
        {
            var ev = new Evaluator<T>(m);
            var inputs = new Dictionary<string, NdArray<T>>
            {
                [x.Name] = new(shape, xs.Select(T.CreateChecked).ToArray()),
            };
            var trace = ev.Forward(inputs);
            var seedRng = new SplitMix64(21);
            var seeds = g.Outputs.ToDictionary(o => o.Name, o =>
            {
                var s = trace[o.Name].Shape;
                return new NdArray<T>(s, Enumerable.Range(0, NdArray<T>.Size(s))
                    .Select(_ => T.CreateChecked(seedRng.NextGaussian())).ToArray());
            });
            return ev.Backward(trace, seeds, wrt).ToDictionary(kv => kv.Key,
                kv => kv.Value.R.ToArray().Select(double.CreateChecked).ToArray());
        }
        var (f, d) = (Gradients<float>(), Gradients<double>());
        foreach (var name2 in wrt)
        {
            double err = 0, norm = 0;
            for (int i = 0; i < d[name2].Length; i++)
            {
                err += Math.Pow(f[name2][i] - d[name2][i], 2);
                norm += d[name2][i] * d[name2][i];
            }
            Assert.True(norm > 0, $"{name}: d/d{name2} is zero");
            Assert.True(Math.Sqrt(err / norm) < 1e-3, $"{name}: d/d{name2} float vs double relative error "
                + $"{Math.Sqrt(err / norm):E2}");
        }
    }
}
