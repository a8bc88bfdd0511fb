// A ResNet-18-shaped model (He et al. 2016; torchvision's layout) with seeded random weights, for
// benchmarks where speed, not accuracy, is measured: conv 7x7/2 + BN + ReLU, max-pool 3x3/2, four
// stages of two basic blocks (64, 128, 256, 512 channels; 1x1/2 projection shortcuts), global average
// pool, fc 1000. 11.7 M parameters, 1.8 G MACs at 224x224.
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Data;

namespace OnnxOpt.Bench;

public static class ResNet18
{
    public static Model Build(int size = 224, ulong seed = 1)
    {
        var rng = new SplitMix64(seed);
        var b = new GraphBuilder("resnet18");
        int k = 0;
        float[] Normal(long n, double std) => Enumerable.Range(0, (int)n).Select(_ => (float)(rng.NextGaussian() * std)).ToArray();
        Value ConvBn(Value x, long cin, long cout, int kernel, int stride, bool relu)
        {
            var name = $"conv{k++}";
            var w = b.Initializer(name + ".w", Normal(cout * cin * kernel * kernel, Math.Sqrt(2.0 / (cin * kernel * kernel))), cout, cin, kernel, kernel);
            var pad = kernel / 2;
            var c = b.Node("Conv", [x, w], OnnxAttribute.IntList("kernel_shape", kernel, kernel), OnnxAttribute.IntList("strides", stride, stride),
                OnnxAttribute.IntList("pads", pad, pad, pad, pad));
            var gamma = b.Initializer(name + ".bn.scale", Normal(cout, 0.1).Select(v => 1 + v).ToArray(), cout);
            var beta = b.Initializer(name + ".bn.bias", Normal(cout, 0.1), cout);
            var mean = b.Initializer(name + ".bn.mean", Normal(cout, 0.1), cout);
            var var = b.Initializer(name + ".bn.var", Normal(cout, 0.1).Select(v => 1 + Math.Abs(v)).ToArray(), cout);
            var y = b.Node("BatchNormalization", [c, gamma, beta, mean, var]);
            return relu ? b.Node("Relu", [y]) : y;
        }
        var x = b.Input("input", DataType.Float, "N", 3, size, size);
        var h = ConvBn(x, 3, 64, 7, 2, true);
        h = b.Node("MaxPool", [h], OnnxAttribute.IntList("kernel_shape", 3, 3), OnnxAttribute.IntList("strides", 2, 2), OnnxAttribute.IntList("pads", 1, 1, 1, 1));
        long cin = 64;
        foreach (var (cout, stride) in new[] { (64L, 1), (128L, 2), (256L, 2), (512L, 2) })
            for (int blk = 0; blk < 2; blk++)
            {
                int s = blk == 0 ? stride : 1;
                var branch = ConvBn(ConvBn(h, cin, cout, 3, s, true), cout, cout, 3, 1, false);
                var shortcut = s != 1 || cin != cout ? ConvBn(h, cin, cout, 1, s, false) : h;
                h = b.Node("Relu", [b.Node("Add", [branch, shortcut])]);
                cin = cout;
            }
        var f = b.Node("Flatten", [b.Node("GlobalAveragePool", [h])]);
        var fc = b.Initializer("fc.w", Normal(1000 * 512, Math.Sqrt(1.0 / 512)), 1000, 512);
        b.Output(b.Node("Gemm", [f, fc, b.Initializer("fc.b", new float[1000], 1000)], OnnxAttribute.Int("transB", 1)));
        return b.Build();
    }
}
