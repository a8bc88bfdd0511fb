// onnxopt inspect MODEL [--json] [--weights]: opsets, inputs/outputs, op histogram, node/parameter counts,
// initializer and file bytes, MACs per op type, non-linear depth; with --weights, per float weight its
// distinct values, bits per weight and zeros, and the size `pack` would write (WeightStats).
using System.CommandLine;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Cli;

public static class InspectCommand
{
    public static Command Create(CliContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model file" };
        var json = new Option<bool>("--json") { Description = "print the summary as JSON" };
        var weights = new Option<bool>("--weights")
        {
            Description = "per weight: distinct values, bits per weight, zeros; and the packed size",
        };
        var dims = new Option<string[]>("--dim")
        {
            Description = "value of a symbolic dimension for shapes and MACs, e.g. --dim sequence=128 (repeatable)",
        };
        var cmd = new Command("inspect", "Summarize a model: I/O, op histogram, parameters, MACs, non-linear depth")
        {
            model, json, weights, dims,
        };
        cmd.SetAction(r =>
        {
            var path = r.GetValue(model)!;
            var m = CliContext.LoadModel(path);
            // A large model's weights are not read unless asked for (--weights): zeros are then not counted.
            var lazy = m.Graph.Initializers.Any(v => !v.Initializer!.IsLoaded);
            var stats = ModelStats.Compute(m, new FileInfo(path).Length, countZeros: !lazy || r.GetValue(weights),
                CliContext.ParseDims(r.GetValue(dims), m));
            if (lazy && !r.GetValue(weights))
                ctx.Err.WriteLine("note: zero weights not counted: a large model's weights are not read (--weights "
                    + "reads them)");
            if (!r.GetValue(weights))
            {
                ctx.Out.Write(r.GetValue(json) ? ModelStatsWriter.Json(stats) : ModelStatsWriter.Text(stats));
                return 0;
            }
            var ws = Passes.WeightStats.Of(m);
            var hasExternal = m.Graph.SelfAndSubgraphs().SelectMany(g => g.Initializers)
                .Any(v => v.Initializer!.External is not null);
            Passes.ModelArchive.Pack(hasExternal ? OnnxExporter.ToBytes(m) : FileKinds.ReadAllBytes(path, "model file"),
                out var pack, path);
            var c = System.Globalization.CultureInfo.InvariantCulture;
            if (r.GetValue(json))
            {
                var items = ws.Select(w => string.Format(c, "{{\"name\": {0}, \"dims\": \"{1}\", "
                    + "\"elements\": {2}, \"distinct\": {3}, \"bits_per_weight\": {4}, \"sparsity\": {5}}}",
                    System.Text.Json.JsonSerializer.Serialize(w.Name), w.Dims, w.Elements, w.Distinct,
                    w.BitsPerWeight, GraphIR.JsonNumbers.Meaningful(w.Sparsity)));
                var body = ModelStatsWriter.Json(stats).TrimEnd().TrimEnd('}').TrimEnd();
                ctx.Out.WriteLine(string.Format(c, "{0},\n  \"weights\": [{1}],\n  \"packed_bytes\": {2}\n}}",
                    body, string.Join(", ", items), pack.PackedBytes));
                return 0;
            }
            ctx.Out.Write(ModelStatsWriter.Text(stats));
            ctx.Out.WriteLine("weights (distinct values, bits per weight, zeros):");
            foreach (var w in ws)
                ctx.Out.WriteLine(string.Format(c,
                    "  {0,-40} {1,-16} {2,9:N0} elements {3,8:N0} distinct {4,2} bits {5,6:P1} zero",
                    w.Name, w.Dims, w.Elements, w.Distinct, w.BitsPerWeight, w.Sparsity));
            ctx.Out.WriteLine(string.Format(c, "packed (onnxopt pack): {0:N0} bytes ({1:F1}x smaller than the file), "
                + "{2} tensors Huffman-coded", pack.PackedBytes, (double)pack.InputBytes / pack.PackedBytes,
                pack.TensorsCoded));
            return 0;
        });
        return cmd;
    }
}
