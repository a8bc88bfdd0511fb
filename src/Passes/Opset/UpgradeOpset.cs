// upgrade-opset{version=N}: moves a model's ai.onnx opset up to N (7 <= N <= 21), one opset at a time,
// through every change an operator went through on the way (OpsetAdapter: attributes that became inputs,
// renames, the Softmax axis semantics at 13, Upsample -> Resize, ...), in the main graph and its subgraphs.
// The IR version rises to the least the new opset needs. A node that cannot be moved is refused with its
// op and the reason, and nothing is written. Exact: the optimize driver checks the result in ONNX Runtime
// against the original. Downgrades are refused.
//   model @9: Upsample(x, scales), Slice(x){starts,ends}, Softmax(x){axis=1}
//   -> model @13: Resize(x, "", scales){asymmetric, floor}, Slice(x, starts, ends), Softmax(x){axis=1}
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public sealed record UpgradeOpsetOptions
{
    [Option("version", "the ai.onnx opset to reach (7..21); a model already there is left alone")]
    public long Version { get; init; } = 13;
}

public sealed class UpgradeOpset : Pass<UpgradeOpsetOptions>
{
    public const long Oldest = 7, Newest = 21;

    public override string Name => "upgrade-opset";
    public override string Summary => $"move the ai.onnx opset up to version N ({Oldest}..{Newest}), op by op";
    public override bool VisitsSubgraphs => true;

    /// <summary>Every adapter, one rule per (op, opset it moves to).</summary>
    public static IReadOnlyList<OpsetAdapter> Adapters { get; } =
        [.. AttributesToInputs.Adapters(), .. ResizeAdapters.Adapters(), .. SoftmaxAxis.Adapters(),
            .. ChangedOps.Adapters()];

    private static readonly Dictionary<(string Op, long Version), OpsetAdapter> Table =
        Adapters.ToDictionary(a => (a.Op, a.Version));

    /// <summary>The least IR version each opset needs (onnx's helper.VERSION_TABLE).</summary>
    public static long IrVersionFor(long opset) => opset switch
    {
        <= 8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        _ => 10,
    };

    public override void Run(PassContext ctx, UpgradeOpsetOptions o)
    {
        var to = o.Version;
        if (Upgrade(ctx, to) is var from && from != to) ctx.Stats.Notes.Add($"ai.onnx opset {from} -> {to}");
    }

    /// <summary>For a pass that needs opset <paramref name="version"/>: a model below it is upgraded first
    /// and the pass's report says so (as ONNX Runtime's quantizer does); one that cannot be is refused with
    /// the converter's reason.</summary>
    public static void Require(PassContext ctx, string pass, long version, string why)
    {
        var opset = ctx.Model.OpsetVersion("") ?? 0;
        if (opset >= version) return;
        try
        {
            Upgrade(ctx, version);
        }
        catch (OnnxModelException e)
        {
            throw new OnnxModelException($"{pass} needs opset {version} ({why}); the model is at opset {opset} and "
                + $"cannot be upgraded: {e.Message}");
        }
        ctx.Stats.Notes.Add($"upgraded the model from opset {opset} to {version} first ({why})");
    }

    /// <summary>Moves ctx's model up to <paramref name="target"/>; returns the opset it had (the same when
    /// nothing was to do).</summary>
    public static long Upgrade(PassContext ctx, long target)
    {
        var model = ctx.Model;
        if (target is < Oldest or > Newest)
            throw new OnnxModelException($"upgrade-opset: version {target} is outside {Oldest}..{Newest}");
        var from = model.OpsetVersion("")
            ?? throw new OnnxModelException("upgrade-opset: the model imports no ai.onnx opset");
        if (from > target)
            throw new OnnxModelException(
                $"upgrade-opset: the model is at opset {from}, above {target}; downgrades are not supported");
        if (from == target) return from;
        if (from < Oldest)
            throw new OnnxModelException(
                $"upgrade-opset: the model is at opset {from}; conversion starts at opset {Oldest}");
        ShapeInference.Run(model);
        var rc = new RuleContext(ctx);
        for (long v = from + 1; v <= target; v++)
        {
            var nodes = model.Graph.SelfAndSubgraphs().SelectMany(g => g.Nodes).Where(n => n.IsStandard).ToList();
            var due = nodes.Select(n => (Node: n, Adapter: Table.GetValueOrDefault((n.OpType, v))))
                .Where(p => p.Adapter is not null).ToList();
            foreach (var (n, a) in due)
                if (a!.Match(n, rc).Reason is { } why)
                    throw new OnnxModelException($"upgrade-opset: node {n} cannot move to opset {v}: {why}");
            foreach (var (n, a) in due) a!.Apply(n, n, rc);
            ctx.Rewriter.SetOpset("", v);
        }
        if (model.IrVersion < IrVersionFor(target)) ctx.Rewriter.SetIrVersion(IrVersionFor(target));
        ctx.Rewriter.Cleanup();
        ShapeInference.Refresh(model);
        return from;
    }
}
