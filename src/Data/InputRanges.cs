// The values an integer input can take, read from how the model uses it, so that random inputs fit the model.
//
//   input_ids [batch, seq] -> Gather(word_embeddings [30522, 384], ids)    => [0, 30522)  "rows of word_embeddings"
//   token_type_ids         -> Gather(type_embeddings [2, 384], ids)        => [0, 2)
//   attention_mask         -> Unsqueeze -> Cast -> Sub(1, m) -> Mul(-10000) => {0, 1}, a mask
//
// An input is followed forward through ops that move or re-type its values without changing them (Cast to an
// integer, Unsqueeze, Squeeze, Reshape, Flatten, Expand, Slice, Transpose, Identity, Concat, Tile, the data of a
// Gather). Where it reaches the indices of a Gather, GatherElements or the depth of OneHot, the table's row count
// bounds it (the smallest bound over all uses wins; ONNX Runtime's GatherBlockQuantized counts as a Gather).
// An input that reaches 1 - m, a Cast to bool or float, Where's condition, Not/And/Or, or whose name says "mask",
// is a mask: 0/1. Anything else keeps the default range [0, 4).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Data;

/// <summary>The half-open range [Lo, Hi) random values of an integer input are drawn from; a mask is drawn as a
/// prefix of ones along its last axis (at least one) followed by zeros, like a padded batch.</summary>
public sealed record ValueRange(long Lo, long Hi, bool IsMask, string Reason)
{
    public static readonly ValueRange Default = new(0, 4, false, "default");

    public override string ToString() => IsMask ? $"mask 0/1 ({Reason})" : $"[{Lo}, {Hi}) ({Reason})";

    /// <summary>Parses "LO:HI" (half-open, as --int-range NAME=LO:HI takes it).</summary>
    public static ValueRange Parse(string name, string text)
    {
        var p = text.Split(':');
        if (p.Length != 2 || !long.TryParse(p[0], out var lo) || !long.TryParse(p[1], out var hi) || hi <= lo)
            throw new OnnxModelException($"--int-range {name}={text}: expected LO:HI with LO < HI (HI excluded)");
        return new ValueRange(lo, hi, false, "given");
    }
}

public static class InputRanges
{
    private static readonly HashSet<string> Moves =
    [
        "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Expand", "Slice", "Transpose", "Identity", "Concat", "Tile",
    ];

    private static bool IsInteger(DataType t) => t is DataType.Int64 or DataType.Int32 or DataType.Int16
        or DataType.Int8 or DataType.UInt8 or DataType.UInt16 or DataType.UInt32 or DataType.UInt64;

    /// <summary>The range of every integer or bool graph input that is not an initializer.</summary>
    public static IReadOnlyDictionary<string, ValueRange> Of(Graph g)
    {
        var result = new Dictionary<string, ValueRange>();
        foreach (var input in g.Inputs.Where(v => !v.IsInitializer))
        {
            if (input.ElementType == DataType.Bool) { result[input.Name] = new(0, 2, true, "bool"); continue; }
            if (!IsInteger(input.ElementType)) continue;
            result[input.Name] = Follow(input);
        }
        return result;
    }

    private static ValueRange Follow(Value input)
    {
        long? rows = null;
        string? table = null;
        bool mask = input.Name.Contains("mask", StringComparison.OrdinalIgnoreCase);
        var seen = new HashSet<Value>();
        var work = new Stack<Value>();
        work.Push(input);
        void Push(Node n)
        {
            if (n.Outputs.Count > 0 && n.Outputs[0] is { } o) work.Push(o);
        }
        while (work.Count > 0)
        {
            var v = work.Pop();
            if (!seen.Add(v) || seen.Count > 256) continue;
            foreach (var (n, k) in v.Uses)
            {
                // ONNX Runtime's quantized embedding lookup indexes rows as Gather does.
                if (n is { Domain: "com.microsoft", OpType: "GatherBlockQuantized" } && k == 1)
                {
                    if (RowsOf(n, (int)n.GetInt("gather_axis", 0)) is long q && (rows is null || q < rows))
                        (rows, table) = (q, n.Inputs[0]?.Name);
                    continue;
                }
                if (n.Domain is not ("" or "ai.onnx")) continue;
                switch (n.OpType)
                {
                    case "Gather" or "GatherElements" when k == 1:
                        if (RowsOf(n) is long r && (rows is null || r < rows)) { rows = r; table = n.Inputs[0]?.Name; }
                        break;
                    case "Gather" when k == 0:
                        Push(n);
                        break;
                    case "OneHot" when k == 0:
                        if (ConstScalar(n.Inputs[1]) is long depth && (rows is null || depth < rows))
                        {
                            rows = depth; table = $"OneHot depth of {n.Name}";
                        }
                        break;
                    case "Cast":
                        var to = (DataType)n.GetInt("to", 0);
                        if (IsInteger(to)) Push(n);
                        else if (to == DataType.Bool) mask = true;
                        else
                        {
                            // A float copy used as 1 - m or m * x is a mask; follow it one step further.
                            foreach (var (m, j) in n.Outputs[0]?.Uses ?? [])
                                if (m.OpType is "Sub" && j == 1 && ConstScalarF(m.Inputs[0]) == 1
                                    || m.OpType is "Mul" or "Where") mask = true;
                        }
                        break;
                    case "Sub" when k == 1 && ConstScalar(n.Inputs[0]) == 1:
                    case "Not" or "And" or "Or" or "Xor":
                    case "Where" when k == 0:
                        mask = true;
                        break;
                    default:
                        if (Moves.Contains(n.OpType) && (k == 0 || n.OpType == "Concat")) Push(n);
                        break;
                }
            }
        }
        if (rows is long hi && hi > 0) return new ValueRange(0, hi, false, $"rows of {table}");
        if (mask) return new ValueRange(0, 2, true, "used as a mask");
        return ValueRange.Default;
    }

    private static long? RowsOf(Node gather, int? gatherAxis = null)
    {
        var data = gather.Inputs[0];
        if (data is null) return null;
        var axis = gatherAxis ?? gather.GetInt("axis", 0);
        long[]? dims = data.Initializer?.Dims
            ?? (data.Producer is { OpType: "Constant" } c ? c.GetTensor("value")?.Dims : null)
            ?? data.Shape?.Dims.Select(d => d.Value ?? -1).ToArray();
        if (dims is null || dims.Length == 0) return null;
        if (axis < 0) axis += dims.Length;
        return axis >= 0 && axis < dims.Length && dims[axis] > 0 ? dims[axis] : null;
    }

    private static Tensor? ConstTensor(Value? v) => v?.Initializer
        ?? (v?.Producer is { OpType: "Constant" } c ? c.GetTensor("value") : null);

    private static long? ConstScalar(Value? v) => ConstTensor(v) is { ElementCount: 1 } t
        && !t.ElementType.IsFloatingPoint() ? t.ToInt64Array()[0] : ConstScalarF(v) is double d ? (long)d : null;

    private static double? ConstScalarF(Value? v) => ConstTensor(v) is { ElementCount: 1 } t
        && t.ElementType.IsFloatingPoint() ? t.ToDoubleArray()[0] : null;
}
