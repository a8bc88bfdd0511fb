// A run on random inputs whose symbolic dims were set to 1, or whose integer inputs were drawn from a range the
// model does not take, can fail in ONNX Runtime for a reason that has
// nothing to do with the model (a Reshape to [N, 8, 64] needs N*512 elements; an attention mask needs
// seq > 1). Such a failure is reported as what to give instead of ORT's raw message:
//   "validation on random inputs failed in ONNX Runtime with the symbolic dims seq, N set to 1; give their
//    values with --dim seq=V --dim N=V (ORT: <first line>)"
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Runtime.Validation;

public static class RandomDimsHint
{
    public static T Wrap<T>(DataSet data, Func<T> run, string what = "validation")
    {
        try
        {
            return run();
        }
        catch (OrtException e) when (data.DefaultedDims.Count > 0 || data.IntegerRanges.Count > 0)
        {
            var first = e.Message.Split('\n')[0].Trim();
            var parts = new List<string>();
            if (data.DefaultedDims.Count > 0)
            {
                var names = string.Join(", ", data.DefaultedDims);
                var flags = string.Join(" ", data.DefaultedDims.Select(d => $"--dim {d}=V"));
                parts.Add($"the symbolic dims {names} set to 1 (give their values with {flags})");
            }
            if (data.IntegerRanges.Count > 0)
                parts.Add("integer inputs drawn from " + string.Join(", ", data.IntegerRanges.Select(kv =>
                    $"{kv.Key} {kv.Value}")) + " (set one with --int-range NAME=LO:HI, or give --data)");
            throw new OnnxModelException($"{what} on random inputs failed in ONNX Runtime with "
                + string.Join(" and ", parts) + $" (ORT: {first})");
        }
    }
}
