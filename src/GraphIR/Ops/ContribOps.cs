// ONNX Runtime's contrib ops that onnxopt writes (com.microsoft), so shapes and MACs survive quantization:
//   DynamicQuantizeMatMul(A float, B int8 [K, N], b_scale, b_zp, bias)        -> float MatMul(A, B)
//   MatMulIntegerToFloat(A uint8, B int8, a_scale, b_scale, a_zp, b_zp, bias) -> float MatMul(A, B)
//   MatMulNBits(A float [.., K], B packed, scales, zp, g_idx, bias; K, N)      -> float [.., N]
// and the standard DynamicQuantizeLinear(x) -> (uint8 y like x, float scale [], uint8 zero point []) that feeds
// MatMulIntegerToFloat. MACs as their float MatMul's: out elements x K (quantized ops are not Linear for pruning or
// folding).
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class ContribOps
{
    private const string Microsoft = "com.microsoft";

    private static OnnxType? FloatMatMul(Node n) =>
        T(DataType.Float, MatMulShape(ShapeOf(n.Input(0)), ShapeOf(n.Input(1))));

    private static OnnxType? NBits(Node n)
    {
        var a = ShapeOf(n.Input(0));
        var type = TypeOf(n.Input(0)) is var t && t != DataType.Undefined ? t : DataType.Float;
        if (a is null || n.Attr("N") is not { } nAttr) return T(type, null);
        return TD(type, a.Dims.Take(a.Rank - 1).Append(Dim.Of(nAttr.I)));
    }

    public static IEnumerable<OpInfo> All =>
    [
        new("DynamicQuantizeMatMul", Microsoft) { Infer = (n, c) => [FloatMatMul(n)], Macs = LinearOps.MatMulMacs },
        new("MatMulIntegerToFloat", Microsoft) { Infer = (n, c) => [FloatMatMul(n)], Macs = LinearOps.MatMulMacs },
        new("MatMulNBits", Microsoft) { Infer = (n, c) => [NBits(n)], Macs = LinearOps.MatMulMacs },
        new("DynamicQuantizeLinear", sinceVersion: 11)
        {
            Infer = (n, c) => [T(DataType.UInt8, ShapeOf(n.Input(0))), TD(DataType.Float, []),
                TD(DataType.UInt8, [])],
        },
    ];
}
