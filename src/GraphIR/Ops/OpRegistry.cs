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
    // Read on every node by shape inference, statistics and the evaluator, so lookups take no lock: the table
    // is replaced whole (copy on write) by the rare Register, and each entry's versions are an immutable array.
    private static readonly Lock Gate = new();
    private static Dictionary<(string Domain, string Op), OpInfo[]> _table = Build([], Shipped());

    private static IEnumerable<OpInfo> Shipped() =>
    [
        .. ActivationOps.All, .. BinaryOps.All, .. LinearOps.All, .. PoolingOps.All, .. NormalizationOps.All,
        .. LayoutOps.All, .. ShapeOps.All, .. ReduceOps.All, .. QuantizationOps.All, .. ControlFlowOps.All,
        .. RandomOps.All, .. ContribOps.All,
    ];

    /// <summary>Adds an op (or a newer version of one: same domain and type, higher SinceVersion). Registering
    /// the same (domain, op, since-version) twice replaces the entry.</summary>
    public static void Register(OpInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        lock (Gate) Volatile.Write(ref _table, Build(Volatile.Read(ref _table), [info]));
    }

    private static Dictionary<(string Domain, string Op), OpInfo[]> Build(
        Dictionary<(string Domain, string Op), OpInfo[]> from, IEnumerable<OpInfo> added)
    {
        var table = new Dictionary<(string Domain, string Op), OpInfo[]>(from);
        foreach (var info in added)
        {
            var key = (info.Domain, info.OpType);
            table[key] = [.. table.GetValueOrDefault(key, []).Where(v => v.SinceVersion != info.SinceVersion)
                .Append(info).OrderBy(v => v.SinceVersion)];
        }
        return table;
    }

    /// <summary>The entry for an op at an opset (null: unknown op, or every version is newer).</summary>
    public static OpInfo? Find(string domain, string opType, long opset = long.MaxValue)
    {
        var d = Model.IsDefaultDomain(domain) ? "" : domain;
        if (!Volatile.Read(ref _table).TryGetValue((d, opType), out var versions)) return null;
        for (int i = versions.Length - 1; i >= 0; i--) if (versions[i].SinceVersion <= opset) return versions[i];
        return null;
    }

    /// <summary>The entry for a node at its model's opset (long.MaxValue: the newest entry).</summary>
    public static OpInfo? Find(Node n, long opset = long.MaxValue) => Find(n.Domain, n.OpType, opset);

    /// <summary>Every entry, ordered by domain, op type and version.</summary>
    public static IReadOnlyList<OpInfo> All
    {
        get
        {
            return Volatile.Read(ref _table).OrderBy(kv => kv.Key.Domain, StringComparer.Ordinal)
                .ThenBy(kv => kv.Key.Op, StringComparer.Ordinal).SelectMany(kv => kv.Value).ToList();
        }
    }
}
