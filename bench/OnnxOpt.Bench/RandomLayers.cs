// Seeded random layers for the benchmark models: He-normal conv weights and a BatchNormalization with
// statistics near identity, so activations keep a realistic scale through deep stacks.
using OnnxOpt.GraphIR;
using OnnxOpt.Data;

namespace OnnxOpt.Bench;

public sealed class RandomLayers(GraphBuilder b, ulong seed)
{
    private readonly SplitMix64 _rng = new(seed);
    private int _k;

    public float[] Normal(long n, double std) => Enumerable.Range(0, (int)n).Select(_ => (float)(_rng.NextGaussian() * std)).ToArray();

    /// <summary>Conv (k x k, stride, groups, "same" padding, no bias) + BatchNormalization.</summary>
    public Value ConvBn(Value x, long cin, long cout, int kernel, int stride, int group = 1)
    {
        var name = $"conv{_k++}";
        var fanIn = cin / group * kernel * kernel;
        var w = b.Initializer(name + ".w", Normal(cout * fanIn, Math.Sqrt(2.0 / fanIn)), cout, cin / group, kernel, kernel);
        var pad = kernel / 2;
        var c = b.Node("Conv", [x, w], OnnxAttribute.IntList("kernel_shape", kernel, kernel), OnnxAttribute.IntList("strides", stride, stride),
            OnnxAttribute.IntList("pads", pad, pad, pad, pad), OnnxAttribute.Int("group", group));
        return b.Node("BatchNormalization", [c, b.Initializer(name + ".bn.scale", Normal(cout, 0.1).Select(v => 1 + v).ToArray(), cout),
            b.Initializer(name + ".bn.bias", Normal(cout, 0.1), cout), b.Initializer(name + ".bn.mean", Normal(cout, 0.1), cout),
            b.Initializer(name + ".bn.var", Normal(cout, 0.1).Select(v => 1 + Math.Abs(v)).ToArray(), cout)]);
    }

    /// <summary>Global average pool, flatten, fc to 1000 classes.</summary>
    public Value Classifier(Value h, long channels)
    {
        var f = b.Node("Flatten", [b.Node("GlobalAveragePool", [h])]);
        var fc = b.Initializer("fc.w", Normal(1000 * channels, Math.Sqrt(1.0 / channels)), 1000, channels);
        return b.Node("Gemm", [f, fc, b.Initializer("fc.b", new float[1000], 1000)], OnnxAttribute.Int("transB", 1));
    }
}
