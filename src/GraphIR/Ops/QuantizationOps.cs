// QuantizeLinear (output typed by its zero point, or output_dtype, else uint8) and DequantizeLinear (output
// typed by output_dtype, else its scale's type, else float); both keep the input's shape.
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class QuantizationOps
{
    private static OnnxType? Quantize(Node n)
    {
        var zp = n.Input(2);
        var type = zp is not null ? TypeOf(zp)
            : n.Attr("output_dtype") is { } od && od.I != 0 ? (DataType)od.I : DataType.UInt8;
        return T(type, ShapeOf(n.Input(0)));
    }

    private static OnnxType? Dequantize(Node n)
    {
        var type = n.Attr("output_dtype") is { } dd && dd.I != 0 ? (DataType)dd.I
            : TypeOf(n.Input(1)) is var st && st != DataType.Undefined ? st : DataType.Float;
        return T(type, ShapeOf(n.Input(0)));
    }

    public static IEnumerable<OpInfo> All =>
    [
        new("QuantizeLinear") { Infer = (n, c) => [Quantize(n)] },
        new("DequantizeLinear") { Infer = (n, c) => [Dequantize(n)] },
    ];
}
