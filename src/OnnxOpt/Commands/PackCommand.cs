// onnxopt pack MODEL -o MODEL.onnxz [--json]      the Deep Compression archive (ModelArchive): clustered
//                                                 weights Huffman-coded, everything else unchanged
// onnxopt unpack MODEL.onnxz -o MODEL.onnx        a runnable ONNX again (a truncated or tampered archive is
//                                                 refused with one line and nothing is written)
// Both write atomically and never touch their input.
using System.Globalization;
using System.CommandLine;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class PackCommand
{
    public static Command Create(CliContext ctx)
    {
        var input = new Argument<string>("MODEL") { Description = "ONNX model file (clustered: cluster or optimize)" };
        var output = new Option<string>("--output", "-o")
        {
            Description = "archive to write (.onnxz)",
            Required = true,
        };
        var json = new Option<bool>("--json") { Description = "print the sizes as JSON" };
        var cmd = new Command("pack", "Store a clustered model as a Huffman-coded Deep Compression archive")
        {
            input, output, json,
        };
        cmd.SetAction(r =>
        {
            var (inPath, outPath) = (r.GetValue(input)!, r.GetValue(output)!);
            Distinct(inPath, outPath);
            var archive = ModelArchive.Pack(Read(inPath), out var rep, inPath);
            AtomicFile.Write(outPath, s => s.Write(archive));
            var c = CultureInfo.InvariantCulture;
            var restored = rep.BytesRestored ? "true" : "false";
            if (r.GetValue(json))
                ctx.Out.WriteLine(string.Format(c, "{{\"input_bytes\": {0}, \"zipped_bytes\": {1}, "
                    + "\"packed_bytes\": {2}, \"tensors_coded\": {3}, \"tensors_sparse\": {4}, "
                    + "\"coded_elements\": {5}, \"tensors_half\": {7}, \"bytes_restored\": {6}}}",
                    rep.InputBytes, rep.ZippedBytes, rep.PackedBytes, rep.TensorsCoded, rep.TensorsSparse,
                    rep.CodedElements, restored, rep.TensorsHalf));
            else
                ctx.Out.WriteLine(string.Format(c, "{0}: {1:N0} bytes, zipped {2:N0}, packed {3:N0} ({4:F1}x smaller); "
                    + "{5} tensors Huffman-coded ({6} as zero runs), {8} as fp16; unpack restores {7}", inPath,
                    rep.InputBytes,
                    rep.ZippedBytes, rep.PackedBytes, (double)rep.InputBytes / rep.PackedBytes, rep.TensorsCoded,
                    rep.TensorsSparse, rep.BytesRestored ? "the same bytes"
                        : "the same model as onnxopt writes it (other bytes)", rep.TensorsHalf));
            ctx.Err.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }

    public static Command CreateUnpack(CliContext ctx)
    {
        var input = new Argument<string>("ARCHIVE") { Description = ".onnxz archive written by pack" };
        var output = new Option<string>("--output", "-o") { Description = "ONNX model to write", Required = true };
        var cmd = new Command("unpack", "Restore the ONNX model of a pack archive") { input, output };
        cmd.SetAction(r =>
        {
            var (inPath, outPath) = (r.GetValue(input)!, r.GetValue(output)!);
            Distinct(inPath, outPath);
            var onnx = ModelArchive.Unpack(Read(inPath), inPath);
            AtomicFile.Write(outPath, s => s.Write(onnx));
            ctx.Err.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }

    private static void Distinct(string input, string output)
    {
        if (Path.GetFullPath(input) == Path.GetFullPath(output))
            throw new OnnxModelException($"{output}: output would overwrite the input; choose another path");
    }

    private static byte[] Read(string path) => File.Exists(path) ? File.ReadAllBytes(path)
        : throw new OnnxModelException($"{path}: file not found");
}
