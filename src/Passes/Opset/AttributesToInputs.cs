// Attributes that became inputs (so that they can be computed at run time), one adapter per op and step:
//   Slice{starts,ends,axes}  -> Slice(x, starts, ends[, axes])        at 10
//   TopK{k}                  -> TopK(x, [k])                          at 10
//   Clip{min,max}            -> Clip(x[, min][, max]), scalars of x's type          at 11
//   Pad{pads,value}          -> Pad(x, pads[, value]), value of x's type            at 11
//   Dropout{ratio}           -> Dropout(x, ratio)                     at 12
//   Squeeze/Unsqueeze{axes}  -> Squeeze/Unsqueeze(x[, axes])          at 13
//   Split{split}             -> Split(x[, split])                     at 13
//   ReduceSum{axes}          -> ReduceSum(x[, axes])                  at 13 (the other Reduce* at 18)
// An omitted attribute becomes an omitted input, which means the same default.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public static class AttributesToInputs
{
    public static readonly string[] Reduce18 =
    [
        "ReduceMax", "ReduceMin", "ReduceMean", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
        "ReduceLogSumExp", "ReduceSumSquare",
    ];

    public static IEnumerable<OpsetAdapter> Adapters()
    {
        yield return new("Slice", 10, (n, s) =>
        {
            var starts = n.GetInts("starts")!;
            s.Rewriter.SetInput(n, 1, s.Int64s(n, "starts", starts));
            s.Rewriter.SetInput(n, 2, s.Int64s(n, "ends", n.GetInts("ends")!));
            s.IntsToInput(n, "axes", 3);
            s.Rewriter.RemoveAttr(n, "starts");
            s.Rewriter.RemoveAttr(n, "ends");
        }, (n, _) => n.GetInts("starts") is null || n.GetInts("ends") is null
            ? "Slice before opset 10 needs its starts and ends attributes" : null);
        yield return new("TopK", 10, (n, s) =>
        {
            s.Rewriter.SetInput(n, 1, s.Int64s(n, "k", [n.GetInt("k", 0)]));
            s.Rewriter.RemoveAttr(n, "k");
        }, (n, _) => n.Attr("k") is null ? "TopK before opset 10 needs its k attribute" : null);
        yield return new("Clip", 11, (n, s) =>
        {
            // The type is needed (and known: the check below) only when a bound is given.
            DataType Type() => OpsetStep.ElementType(n.Input(0))!.Value;
            if (n.Attr("min") is { } lo) s.Rewriter.SetInput(n, 1, s.Scalar(n, "min", Type(), lo.F));
            if (n.Attr("max") is { } hi) s.Rewriter.SetInput(n, 2, s.Scalar(n, "max", Type(), hi.F));
            s.Rewriter.RemoveAttr(n, "min");
            s.Rewriter.RemoveAttr(n, "max");
        }, (n, _) => n.Attr("min") is null && n.Attr("max") is null ? null : OpsetStep.NeedsType(n, "min and max"));
        yield return new("Pad", 11, (n, s) =>
        {
            s.IntsToInput(n, "pads", 1);
            var value = n.GetFloat("value", 0);
            if (value != 0)
                s.Rewriter.SetInput(n, 2, s.Scalar(n, "value", OpsetStep.ElementType(n.Input(0))!.Value, value));
            s.Rewriter.RemoveAttr(n, "value");
        }, (n, _) => n.GetInts("pads") is null ? "Pad before opset 11 needs its pads attribute"
            : n.GetFloat("value", 0) != 0 ? OpsetStep.NeedsType(n, "the pad value") : null);
        yield return new("Dropout", 12, (n, s) =>
        {
            if (n.Attr("ratio") is { } r) s.Rewriter.SetInput(n, 1, s.Scalar(n, "ratio", DataType.Float, r.F));
            s.Rewriter.RemoveAttr(n, "ratio");
        });
        yield return new("Squeeze", 13, (n, s) => s.IntsToInput(n, "axes", 1));
        yield return new("Unsqueeze", 13, (n, s) => s.IntsToInput(n, "axes", 1),
            (n, _) => n.GetInts("axes") is null ? "Unsqueeze before opset 13 needs its axes attribute" : null);
        yield return new("Split", 13, (n, s) => s.IntsToInput(n, "split", 1));
        yield return new("ReduceSum", 13, (n, s) => s.IntsToInput(n, "axes", 1));
        foreach (var op in Reduce18) yield return new(op, 18, (n, s) => s.IntsToInput(n, "axes", 1));
        // Split without sizes at 18 must say how many outputs it has.
        yield return new("Split", 18, (n, s) =>
        {
            if (n.Input(1) is null) s.Rewriter.SetAttr(n, OnnxAttribute.Int("num_outputs", n.Outputs.Count));
        });
    }
}
