// Which initializers train (params=): every float weight and bias of the ops that compute with learned
// tensors, only the biases, or initializers named one by one. Layer Folding's slopes and cluster's
// codebooks are made by their passes (they know the structure); `codebooks` here rebuilds shared-weight
// parameters from a clustered model's float weights: a tensor (or each output channel) with at most 256
// distinct values trains its distinct values with the assignments fixed.
//   Conv/ConvTranspose: W (input 1), B (2)   Gemm: A, B (0, 1), C (2)   MatMul: either operand
//   Batch/Layer/Instance/GroupNormalization: scale, bias (1, 2)   PRelu: slope (1)
//   Add/Sub/Mul next to a trained op's output (bias or scale vectors of more than one element)
using OnnxOpt.GraphIR;

namespace OnnxOpt.Training;

public static class ParameterSelection
{
    public static readonly string[] Kinds = ["all", "biases", "codebooks"];

    /// <summary>Parameters for a spec: "all", "biases", "codebooks", or initializer names separated by ';'.</summary>
    /// <param name="keepZeros">true: every weight's exact zeros are held at zero after each step (the mask of a
    /// sparsified model survives training); auto: in weights at least 5% zero; false: none.</param>
    public static List<Parameter> Select(Model model, string spec, ISet<string>? exclude = null,
        string keepZeros = "false")
    {
        var g = model.Graph;
        var found = new List<Parameter>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        bool Take(Value v) => v.Initializer is { ElementType: DataType.Float } && v.Initializer.ElementCount > 0
            && !(exclude?.Contains(v.Name) ?? false) && seen.Add(v.Name);
        DirectParameter Direct(Value v, bool decays, bool weight)
        {
            var mask = weight ? ZeroMask(v, keepZeros) : null;
            return new DirectParameter(v) { Decays = decays, Constrain = mask, HeldZeros = mask?.Count ?? 0 };
        }
        switch (spec)
        {
            case "all":
            case "biases":
                foreach (var n in g.Nodes)
                    foreach (var (v, bias) in Trainable(n))
                        if ((spec == "all" || bias) && Take(v))
                            found.Add(Direct(v, !bias && v.Initializer!.Dims.Length > 1, !bias));
                break;
            case "codebooks":
                foreach (var n in g.Nodes)
                    foreach (var (v, bias) in Trainable(n))
                        if (!bias && v.Initializer!.Dims.Length > 1 && !(exclude?.Contains(v.Name) ?? false)
                            && Shared(v) is { } p && seen.Add(v.Name))
                            found.Add(p);
                break;
            default:
                foreach (var name in spec.Split(';',
                    StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var v = g.Find(name);
                    if (v?.Initializer is null)
                        throw new OnnxModelException($"params: '{name}' is not an initializer of the model");
                    if (v.Initializer.ElementType != DataType.Float)
                        throw new OnnxModelException($"params: initializer '{name}' is "
                            + $"{v.Initializer.ElementType.Name()}, "
                            + "only float initializers train");
                    if (Take(v)) found.Add(Direct(v, v.Initializer.Dims.Length > 1, v.Initializer.Dims.Length > 1));
                }
                break;
        }
        return found;
    }

    /// <summary>The projection that puts a weight's exact zeros back after each step, or null (none to keep).
    /// </summary>
    public static ZeroMask? ZeroMask(Value v, string mode)
    {
        if (mode == "false" || v.Initializer!.Dims.Length < 2) return null;
        var w = v.Initializer.ToFloatArray();
        var zeros = Enumerable.Range(0, w.Length).Where(i => w[i] == 0).ToArray();
        if (zeros.Length == 0 || mode == "auto" && zeros.Length < 0.05 * w.Length) return null;
        return new ZeroMask(zeros);
    }

    /// <summary>The float initializer inputs of a node that are learned tensors, and whether each is a bias.</summary>
    public static IEnumerable<(Value Value, bool Bias)> Trainable(Node n)
    {
        IEnumerable<(int Index, bool Bias)> slots = n.OpType switch
        {
            "Conv" or "ConvTranspose" => [(1, false), (2, true)],
            "Gemm" => [(0, false), (1, false), (2, true)],
            "MatMul" => [(0, false), (1, false)],
            "BatchNormalization" or "LayerNormalization" or "InstanceNormalization" or "GroupNormalization" =>
                [(1, false), (2, true)],
            "PRelu" => [(1, false)],
            "Add" or "Sub" => [(0, true), (1, true)],
            "Mul" => [(0, false), (1, false)],
            _ => [],
        };
        foreach (var (i, bias) in slots)
        {
            if (!n.IsStandard || i >= n.Inputs.Count || n.Inputs[i] is not { Initializer: not null } v) continue;
            if (n.OpType is "Add" or "Sub" or "Mul")
            {
                var other = n.Inputs.FirstOrDefault(o => o is not null && o != v);
                if (v.Initializer.ElementCount <= 1 || other?.Producer is not { } p || !Learned(p)) continue;
            }
            yield return (v, bias);
        }
    }

    private static bool Learned(Node p) => p.OpType is "Conv" or "ConvTranspose" or "Gemm" or "MatMul"
        or "BatchNormalization";

    /// <summary>A codebook parameter for a weight with at most 256 distinct values per tensor or per output
    /// channel.</summary>
    public static CodebookParameter? Shared(Value v)
    {
        var w = v.Initializer!.ToFloatArray();
        int slices = checked((int)v.Initializer.Dims[0]);
        foreach (var perChannel in new[] { false, true })
        {
            int n = perChannel ? slices : 1, per = w.Length / n;
            var book = new List<float>();
            var index = new int[w.Length];
            bool ok = true;
            for (int s = 0; s < n && ok; s++)
            {
                var distinct = new Dictionary<float, int>();
                for (int i = s * per; i < (s + 1) * per; i++)
                {
                    if (!distinct.TryGetValue(w[i], out var k))
                    {
                        if (distinct.Count == 256) { ok = false; break; }
                        distinct[w[i]] = k = book.Count;
                        book.Add(w[i]);
                    }
                    index[i] = k;
                }
            }
            if (ok && book.Count < w.Length / 2) return new CodebookParameter(v, book.ToArray(), index);
        }
        return null;
    }
}

/// <summary>The positions of a weight that stay zero through training (a constraint after each step).</summary>
public sealed class ZeroMask(int[] zeros)
{
    public int Count => zeros.Length;

    public void Apply(float[] values)
    {
        foreach (var i in zeros) values[i] = 0;
    }

    public static implicit operator Action<float[]>?(ZeroMask? m) => m is null ? null : m.Apply;
}
