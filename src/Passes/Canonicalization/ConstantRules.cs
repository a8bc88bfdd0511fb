// canonicalize's constants-to-initializers rules: a value computed from nothing becomes an initializer that
// takes over its name (the node, its output renamed "<name>_folded" and read by nothing, is erased), so constant
// folding and every pass that reads weights see one kind of constant.
//   y = Constant{value=t} (or value_float(s), value_int(s))   ->  initializer y = t
//   y = Shape(x){start,end}, x's shape fully known            ->  initializer y = int64[dims[start:end]]
// Left alone: external-data tensors, sparse and string values, and graph outputs (the model's interface).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>Constant node -> initializer.</summary>
public sealed class ConstantToInitializerRule : RewriteRule<Tensor>
{
    public override string Name => "constant-to-initializer";
    public override IReadOnlyList<string> RootOps { get; } = ["Constant"];

    public override RuleMatch<Tensor> Match(Node n, RuleContext ctx)
    {
        if (n.Output().IsGraphOutput) return new NoMatch("its output is a graph output");
        var t = n.GetTensor("value")
            ?? (n.Attr("value_float") is { } vf ? Tensor.FromFloats("", [], [vf.F]) : null)
            ?? (n.Attr("value_floats") is { } vfs ? Tensor.FromFloats("", [vfs.Floats!.Length], vfs.Floats) : null)
            ?? (n.Attr("value_int") is { } vi ? Tensor.FromInt64s("", [], [vi.I]) : null)
            ?? (n.Attr("value_ints") is { } vis ? Tensor.FromInt64s("", [vis.Ints!.Length], vis.Ints) : null);
        if (t is null) return new NoMatch("a sparse or string value");
        if (t.External is not null) return new NoMatch("its tensor is in external data");
        return t;
    }

    public override void Apply(Node n, Tensor t, RuleContext ctx)
    {
        Swap(n.Graph, ctx.Rewriter, n.Output(), t);
        ctx.Rewriter.Erase(n);
    }

    /// <summary>Replaces a node output by an initializer that takes over its name.</summary>
    internal static void Swap(Graph g, Rewriter rw, Value y, Tensor t)
    {
        var name = y.Name;
        rw.Rename(y, name + "_folded");
        var c = rw.Constant(g, name, t);
        rw.Replace(y, c);
    }
}

/// <summary>Shape of a value whose shape is fully known -> initializer.</summary>
public sealed class StaticShapeRule : RewriteRule<Tensor>
{
    public override string Name => "static-shape-to-initializer";
    public override IReadOnlyList<string> RootOps { get; } = ["Shape"];

    public override RuleMatch<Tensor> Match(Node n, RuleContext ctx)
    {
        if (n.Input(0)?.Shape is not { IsFullyKnown: true } s) return new NoMatch("the input's shape is not static");
        if (n.Output().IsGraphOutput) return new NoMatch("its output is a graph output");
        var dims = s.ToArray();
        var start = (int)n.GetInt("start", 0);
        var end = (int)n.GetInt("end", dims.Length);
        if (start < 0) start += dims.Length;
        if (end < 0) end += dims.Length;
        start = Math.Clamp(start, 0, dims.Length);
        end = Math.Clamp(end, start, dims.Length);
        return Tensor.FromInt64s("", [end - start], dims.AsSpan(start, end - start));
    }

    public override void Apply(Node n, Tensor t, RuleContext ctx)
    {
        ConstantToInitializerRule.Swap(n.Graph, ctx.Rewriter, n.Output(), t);
        ctx.Rewriter.Erase(n);
    }
}
