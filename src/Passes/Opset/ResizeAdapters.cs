// Upsampling across its renames, and the old image-scaling op:
//   Upsample(x){scales}            @7-8  ->  Upsample(x, scales)                         @9
//   Upsample(x, scales)            @9    ->  Resize(x, scales)                           @10
//   Resize(x, scales)              @10   ->  Resize(x, roi=[], scales){coordinate_transformation_mode=asymmetric,
//                                            nearest_mode=floor (upsampling) | ceil (downsampling)}  @11
//   ImageScaler(x){scale,bias}     (experimental, gone at 10) ->  Add(Mul(x, scale), bias[1,C,1,1])
// Opset 10's Resize (and Upsample) map output pixel i to input coordinate i / scale, and its nearest
// pixel is floor of that when upsampling and ceil when downsampling (ONNX Runtime's "simple" mode); at 11
// the same is spelled with the attributes above. Mixed up- and down-scaling per axis has no single
// nearest_mode and is refused, as are scales that are not constant (nearest mode only).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class ResizeAdapters
{
    public static IEnumerable<OpsetAdapter> Adapters()
    {
        yield return new("Upsample", 9, (n, s) =>
        {
            s.Rewriter.SetInput(n, 1, s.Floats(n, "scales", n.GetFloats("scales")!));
            s.Rewriter.RemoveAttr(n, "scales");
        }, (n, _) => n.GetFloats("scales") is null ? "Upsample before opset 9 needs its scales attribute" : null);
        yield return new("Upsample", 10, (n, s) =>
        {
            s.Rewriter.SetOpType(n, "Resize");
            if (n.GetString("mode") is "bilinear") s.Rewriter.SetAttr(n, OnnxAttribute.String("mode", "linear"));
        });
        yield return new("Resize", 11, (n, s) =>
        {
            var scales = n.Input(1);
            s.Rewriter.SetInput(n, 1, s.Floats(n, "roi", []));
            s.Rewriter.SetInput(n, 2, scales);
            s.Rewriter.SetAttr(n, OnnxAttribute.String("coordinate_transformation_mode", "asymmetric"));
            if ((n.GetString("mode") ?? "nearest") == "nearest")
            {
                var down = Rewriter.ConstantOf(scales)!.ToFloatArray().Any(f => f < 1);
                s.Rewriter.SetAttr(n, OnnxAttribute.String("nearest_mode", down ? "ceil" : "floor"));
            }
        }, (n, _) =>
        {
            if ((n.GetString("mode") ?? "nearest") != "nearest") return null;
            if (Rewriter.ConstantOf(n.Input(1)) is not { } t)
                return "opset 10's nearest Resize with scales computed at run time has no opset 11 spelling";
            var f = t.ToFloatArray();
            return f.Any(x => x < 1) && f.Any(x => x > 1)
                ? "opset 10's nearest Resize that enlarges one axis and shrinks another has no opset 11 spelling"
                : null;
        });
        yield return new("ImageScaler", 10, ImageScaler, (n, _) => OpsetStep.Rank(n.Input(0)) is null or >= 2
            && OpsetStep.ElementType(n.Input(0)) is DataType.Float or null ? null
            : "ImageScaler needs a float input of rank 2 or more");
    }

    private static void ImageScaler(Node n, OpsetStep s)
    {
        var x = n.Input(0)!;
        var scale = n.GetFloat("scale", 1);
        var bias = n.GetFloats("bias") ?? [];
        var rank = OpsetStep.Rank(x) ?? 4;
        var g = n.Graph;
        var mul = s.Rewriter.Insert(g, "Mul", [x, s.Scalar(n, "scale", DataType.Float, scale)], OpsetStep.BaseName(n));
        var dims = new long[rank];
        Array.Fill(dims, 1L);
        dims[1] = bias.Length;
        var b = s.Rewriter.Constant(g, $"{OpsetStep.BaseName(n)}_bias", Tensor.FromFloats("", dims, bias));
        var add = s.Rewriter.Insert(g, "Add", [mul.Output(), b], OpsetStep.BaseName(n));
        s.Rewriter.Replace(n.Output(), add.Output());
        s.Rewriter.Erase(n);
    }
}
