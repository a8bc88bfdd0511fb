// The other ai.onnx changes an upgrade crosses: renames, attributes dropped or respelled, outputs and
// parameter layouts that changed.
//   BatchNormalization{spatial=1}   @8  -> BatchNormalization   @9   (spatial=0 is refused)
//   BatchNormalization(...) -> Y, mean, var, saved...   @13 -> BatchNormalization -> Y   @14 (unused extras)
//   DynamicSlice (experimental)        -> Slice             @10
//   Scatter                            -> ScatterElements   @11
//   GridSample{mode=bilinear|bicubic}  -> {mode=linear|cubic}   @20
//   GroupNormalization(x, s[G], b[G])  -> GroupNormalization(x, s[C], b[C]), each group's value repeated
//                                         C/G times   @21
// Experimental ops with no standard form (Affine, Crop, ...) and Scan-8's batch layout are refused.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class ChangedOps
{
    private static readonly string[] Experimental =
        ["Affine", "Crop", "ParametricSoftplus", "ScaledTanh", "GivenTensorFill", "ConstantFill", "GRUUnit", "Scale"];

    public static IEnumerable<OpsetAdapter> Adapters()
    {
        yield return new("BatchNormalization", 9, (n, s) => s.Rewriter.RemoveAttr(n, "spatial"),
            (n, _) => n.GetInt("spatial", 1) == 0 ? "spatial=0 (statistics per element) has no opset 9 form" : null);
        yield return new("BatchNormalization", 14, (n, s) =>
        {
            if (n.Outputs.Count > 1) s.Recreate(n, n.OpType, n.Inputs, n.Attributes);
        }, (n, _) => n.Outputs.Skip(1).Any(o => o is not null && (o.Uses.Count > 0 || o.IsGraphOutput))
            ? "its training statistics outputs are used; opset 14 computes them only in training mode" : null);
        yield return new("Scan", 9, (_, _) => { }, (_, _) =>
            "Scan before opset 9 has a batch axis and sequence lengths; no conversion");
        yield return new("DynamicSlice", 10, (n, s) => s.Rewriter.SetOpType(n, "Slice"));
        foreach (var op in Experimental)
            yield return new(op, 10, (_, _) => { }, (_, _) => "an experimental op that left ONNX at opset 10, "
                + "with no standard replacement");
        yield return new("Scatter", 11, (n, s) => s.Rewriter.SetOpType(n, "ScatterElements"));
        yield return new("GridSample", 20, (n, s) =>
        {
            var mode = n.GetString("mode") ?? "bilinear";
            s.Rewriter.SetAttr(n, OnnxAttribute.String("mode", mode switch
            {
                "bilinear" => "linear",
                "bicubic" => "cubic",
                _ => mode
            }));
        });
        yield return new("GroupNormalization", 21, GroupNorm21, (n, _) =>
            Rewriter.ConstantOf(n.Input(1)) is null || Rewriter.ConstantOf(n.Input(2)) is null
                ? "per-group scale and bias computed at run time cannot be widened to channels"
                : Channels(n) is null ? $"the channel count of '{n.Input(0)?.Name}' is unknown" : null);
    }

    private static long? Channels(Node n) =>
        n.Input(0)?.Type?.Shape is { Dims.Count: >= 2 } sh && sh.Dims[1].Value is { } c ? c : null;

    private static void GroupNorm21(Node n, OpsetStep s)
    {
        var c = Channels(n)!.Value;
        for (int i = 1; i <= 2; i++)
        {
            var per = Rewriter.ConstantOf(n.Input(i))!.ToFloatArray();
            var wide = new float[c];
            for (long ch = 0; ch < c; ch++) wide[ch] = per[ch / (c / per.Length)];
            s.Rewriter.SetInput(n, i, s.Floats(n, i == 1 ? "scale" : "bias", wide));
        }
    }
}
