// A ResNet-18-shaped model (He et al. 2016; torchvision's layout) with seeded random weights, for
// benchmarks where speed, not accuracy, is measured: conv 7x7/2 + BN + ReLU, max-pool 3x3/2, four
// stages of two basic blocks (64, 128, 256, 512 channels; 1x1/2 projection shortcuts), global average
// pool, fc 1000. 11.7 M parameters, 1.8 G MACs at 224x224.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Bench;

public static class ResNet18
{
    public static Model Build(int size = 224, ulong seed = 1)
    {
        var b = new GraphBuilder("resnet18");
        var l = new RandomLayers(b, seed);
        Value ConvBn(Value x, long cin, long cout, int kernel, int stride, bool relu)
        {
            var y = l.ConvBn(x, cin, cout, kernel, stride);
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
        b.Output(l.Classifier(h, cin));
        return b.Build();
    }
}
