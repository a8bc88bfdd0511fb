// The weights saliency methods score and sparsify prunes: the weight tensor (an initializer read by
// that node alone, float, rank >= 2) of every Conv, ConvTranspose, Gemm and MatMul. Biases, norms and
// everything else are not prunable. Each weight knows which of its elements belong to which output
// channel ("filter"), for per-filter scores.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record PrunableWeight(Node Node, int InputIndex, Value Weight)
{
    public string Layer => Node.ToString();

    public long[] Dims => Weight.Initializer!.Dims;

    /// <summary>Output channels of the layer.</summary>
    public int Filters => Node.OpType switch
    {
        "Conv" => (int)Dims[0],
        "ConvTranspose" => (int)(Dims[1] * Node.GetInt("group", 1)),
        "Gemm" => (int)(Node.GetInt("transB", 0) != 0 ? Dims[0] : Dims[1]),
        _ => (int)Dims[^1],
    };

    /// <summary>The output channel each weight element feeds.</summary>
    public int[] FilterOf()
    {
        var n = checked((int)Weight.Initializer!.ElementCount);
        var r = new int[n];
        switch (Node.OpType)
        {
            case "Conv":
            case "Gemm" when Node.GetInt("transB", 0) != 0:
            {
                int per = n / (int)Dims[0];
                for (int i = 0; i < n; i++) r[i] = i / per;
                break;
            }
            case "ConvTranspose":
            {
                int cin = (int)Dims[0], mg = (int)Dims[1], k = n / (cin * mg), cg = cin / (int)Node.GetInt("group", 1);
                for (int i = 0; i < n; i++) { int c = i / (mg * k), j = i / k % mg; r[i] = c / cg * mg + j; }
                break;
            }
            default:
            {
                int cols = (int)Dims[^1];
                for (int i = 0; i < n; i++) r[i] = i % cols;
                break;
            }
        }
        return r;
    }

    public static List<PrunableWeight> Find(Graph g)
    {
        var r = new List<PrunableWeight>();
        foreach (var n in g.Nodes)
        {
            if (!n.IsStandard) continue;
            int index = n.OpType switch
            {
                "Conv" or "ConvTranspose" or "Gemm" => 1,
                "MatMul" => IsWeight(n.Input(1)) ? 1 : -1,
                _ => -1,
            };
            if (index < 0 || !IsWeight(n.Input(index))) continue;
            if (n.Input(index)!.Uses.Count != 1) continue;
            if (n.OpType is "Conv" or "ConvTranspose" && !ValidGroups(n, n.Input(index)!.Initializer!.Dims)) continue;
            r.Add(new PrunableWeight(n, index, n.Input(index)!));
        }
        return r;
    }

    /// <summary>A (transposed) conv's group divides its weight's channels (a malformed group=0 would divide by 0).
    /// </summary>
    internal static bool ValidGroups(Node n, long[] dims)
    {
        var g = n.GetInt("group", 1);
        return g >= 1 && dims.Length >= 3 && dims[0] % g == 0;
    }

    private static bool IsWeight(Value? v) =>
        v is { Initializer: { ElementType: DataType.Float } t, IsGraphInput: false } && t.Dims.Length >= 2;
}
