// A MobileNetV2-1.0-shaped model (Sandler et al. 2018; torchvision's layout) with seeded random weights,
// for latency benchmarks: stem conv 3x3/2 (32) + BN + ReLU6, 17 inverted-residual blocks
// (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1)
// (1x1 expand + ReLU6, depthwise 3x3 + ReLU6, 1x1 project; residual add when stride 1 and same width),
// conv 1x1 (1280) + ReLU6, global average pool, fc 1000. 3.5 M parameters, 0.3 G MACs at 224x224.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Bench;

public static class MobileNetV2
{
    public static Model Build(int size = 224, ulong seed = 2)
    {
        var b = new GraphBuilder("mobilenetv2");
        var l = new RandomLayers(b, seed);
        var six = b.Initializer("six", [6f]);
        var zero = b.Initializer("zero", [0f]);
        Value ConvBn(Value x, long cin, long cout, int kernel, int stride, int group, bool relu6)
        {
            var y = l.ConvBn(x, cin, cout, kernel, stride, group);
            return relu6 ? b.Node("Clip", [y, zero, six]) : y;
        }
        var x = b.Input("input", DataType.Float, "N", 3, size, size);
        var h = ConvBn(x, 3, 32, 3, 2, 1, true);
        long cin = 32;
        foreach (var (t, c, n, s) in new[] { (1, 16L, 1, 1), (6, 24L, 2, 2), (6, 32L, 3, 2), (6, 64L, 4, 2), (6, 96L, 3, 1), (6, 160L, 3, 2), (6, 320L, 1, 1) })
            for (int i = 0; i < n; i++)
            {
                int stride = i == 0 ? s : 1;
                long hidden = cin * t;
                var y = t == 1 ? h : ConvBn(h, cin, hidden, 1, 1, 1, true);
                y = ConvBn(y, hidden, hidden, 3, stride, (int)hidden, true);
                y = ConvBn(y, hidden, c, 1, 1, 1, false);
                h = stride == 1 && cin == c ? b.Node("Add", [h, y]) : y;
                cin = c;
            }
        h = ConvBn(h, cin, 1280, 1, 1, 1, true);
        b.Output(l.Classifier(h, 1280));
        return b.Build();
    }
}
