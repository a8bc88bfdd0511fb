// Element types of ONNX tensors (TensorProto.DataType), with their text names and storage sizes.
// Sub-byte types (int4/uint4/float4e2m1: 2 per byte; int2/uint2: 4 per byte) are stored packed,
// low bits first, as the ONNX specification requires for raw_data.
namespace OnnxOpt.GraphIR;

public enum DataType
{
    Undefined = 0, Float = 1, UInt8 = 2, Int8 = 3, UInt16 = 4, Int16 = 5, Int32 = 6, Int64 = 7,
    String = 8, Bool = 9, Float16 = 10, Double = 11, UInt32 = 12, UInt64 = 13, Complex64 = 14,
    Complex128 = 15, BFloat16 = 16, Float8E4M3FN = 17, Float8E4M3FNUZ = 18, Float8E5M2 = 19,
    Float8E5M2FNUZ = 20, UInt4 = 21, Int4 = 22, Float4E2M1 = 23, Float8E8M0 = 24, UInt2 = 25, Int2 = 26,
}

public static class DataTypes
{
    private static readonly Dictionary<DataType, string> Names = new()
    {
        [DataType.Undefined] = "undefined",
        [DataType.Float] = "float",
        [DataType.UInt8] = "uint8",
        [DataType.Int8] = "int8",
        [DataType.UInt16] = "uint16",
        [DataType.Int16] = "int16",
        [DataType.Int32] = "int32",
        [DataType.Int64] = "int64",
        [DataType.String] = "string",
        [DataType.Bool] = "bool",
        [DataType.Float16] = "float16",
        [DataType.Double] = "double",
        [DataType.UInt32] = "uint32",
        [DataType.UInt64] = "uint64",
        [DataType.Complex64] = "complex64",
        [DataType.Complex128] = "complex128",
        [DataType.BFloat16] = "bfloat16",
        [DataType.Float8E4M3FN] = "float8e4m3fn",
        [DataType.Float8E4M3FNUZ] = "float8e4m3fnuz",
        [DataType.Float8E5M2] = "float8e5m2",
        [DataType.Float8E5M2FNUZ] = "float8e5m2fnuz",
        [DataType.UInt4] = "uint4",
        [DataType.Int4] = "int4",
        [DataType.Float4E2M1] = "float4e2m1",
        [DataType.Float8E8M0] = "float8e8m0",
        [DataType.UInt2] = "uint2",
        [DataType.Int2] = "int2",
    };

    private static readonly Dictionary<string, DataType> ByName =
        Names.ToDictionary(kv => kv.Value, kv => kv.Key, StringComparer.Ordinal);

    public static bool IsKnown(int code) => code >= 0 && code <= (int)DataType.Int2;

    public static string Name(this DataType t) =>
        Names.TryGetValue(t, out var n) ? n : $"dtype{(int)t}";

    public static bool TryParse(string name, out DataType t)
    {
        if (ByName.TryGetValue(name, out t)) return true;
        if (name.StartsWith("dtype", StringComparison.Ordinal) && int.TryParse(name.AsSpan(5), out var code))
        {
            t = (DataType)code;
            return true;
        }
        return false;
    }

    /// <summary>Bits one element occupies in packed raw storage (0 for strings/undefined).</summary>
    public static int BitWidth(this DataType t) => t switch
    {
        DataType.Float or DataType.Int32 or DataType.UInt32 => 32,
        DataType.Double or DataType.Int64 or DataType.UInt64 or DataType.Complex64 => 64,
        DataType.Complex128 => 128,
        DataType.Float16 or DataType.BFloat16 or DataType.Int16 or DataType.UInt16 => 16,
        DataType.UInt8 or DataType.Int8 or DataType.Bool or DataType.Float8E4M3FN or DataType.Float8E4M3FNUZ
            or DataType.Float8E5M2 or DataType.Float8E5M2FNUZ or DataType.Float8E8M0 => 8,
        DataType.UInt4 or DataType.Int4 or DataType.Float4E2M1 => 4,
        DataType.UInt2 or DataType.Int2 => 2,
        _ => 0,
    };

    /// <summary>Bytes needed to store <paramref name="count"/> elements packed.</summary>
    public static long ByteCount(this DataType t, long count) => (count * t.BitWidth() + 7) / 8;

    public static bool IsFloatingPoint(this DataType t) => t is DataType.Float or DataType.Double
        or DataType.Float16 or DataType.BFloat16 or DataType.Float8E4M3FN or DataType.Float8E4M3FNUZ
        or DataType.Float8E5M2 or DataType.Float8E5M2FNUZ or DataType.Float4E2M1 or DataType.Float8E8M0;
}
