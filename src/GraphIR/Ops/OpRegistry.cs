// The one table of operators: every OpInfo onnxopt ships (one file per op family lists them) and those a
// library user registers. Lookup is by (domain, op type) and the model's opset for that domain: the entry with
// the highest SinceVersion not above it. ShapeInference, OpTraits, ModelStats' MACs, dependency groups and the
// quantizer all read it; the autodiff evaluator attaches its kernels to its entries.
//   OpRegistry.Register(new OpInfo("MyGelu", "com.example")
//   {
//       Traits = OpTrait.ElementWise | OpTrait.NonLinear,
//       Infer = (n, c) => [c.SameAsInput(n)],
//       Channels = ChannelMapping.ElementWise,
//   });
namespace OnnxOpt.GraphIR;

public static class OpRegistry
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<(string Domain, string Op), List<OpInfo>> Table = new();

    static OpRegistry()
    {
        foreach (var family in new[]
                 {
                     ActivationOps.All, BinaryOps.All, LinearOps.All, PoolingOps.All, NormalizationOps.All,
                     LayoutOps.All, ShapeOps.All, ReduceOps.All, QuantizationOps.All, ControlFlowOps.All,
                     RandomOps.All,
                 })
            foreach (var info in family) Add(info);
    }

    /// <summary>Adds an op (or a newer version of one: same domain and type, higher SinceVersion). Registering
    /// the same (domain, op, since-version) twice replaces the entry.</summary>
    public static void Register(OpInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        lock (Gate) Add(info);
    }

    private static void Add(OpInfo info)
    {
        var key = (info.Domain, info.OpType);
        if (!Table.TryGetValue(key, out var versions)) Table[key] = versions = new List<OpInfo>();
        versions.RemoveAll(v => v.SinceVersion == info.SinceVersion);
        versions.Add(info);
        versions.Sort((a, b) => a.SinceVersion.CompareTo(b.SinceVersion));
    }

    /// <summary>The entry for an op at an opset (null: unknown op, or every version is newer).</summary>
    public static OpInfo? Find(string domain, string opType, long opset = long.MaxValue)
    {
        var d = Model.IsDefaultDomain(domain) ? "" : domain;
        lock (Gate)
        {
            if (!Table.TryGetValue((d, opType), out var versions)) return null;
            for (int i = versions.Count - 1; i >= 0; i--) if (versions[i].SinceVersion <= opset) return versions[i];
            return null;
        }
    }

    /// <summary>The entry for a node at its model's opset (long.MaxValue: the newest entry).</summary>
    public static OpInfo? Find(Node n, long opset = long.MaxValue) => Find(n.Domain, n.OpType, opset);

    /// <summary>Every entry, ordered by domain, op type and version.</summary>
    public static IReadOnlyList<OpInfo> All
    {
        get
        {
            lock (Gate)
            {
                return Table.OrderBy(kv => kv.Key.Domain, StringComparer.Ordinal)
                    .ThenBy(kv => kv.Key.Op, StringComparer.Ordinal).SelectMany(kv => kv.Value).ToList();
            }
        }
    }
}
