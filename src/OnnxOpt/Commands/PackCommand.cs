// onnxopt pack MODEL -o MODEL.onnxz [--json] [--sign KEY]
//     the Deep Compression archive (ModelArchive): clustered weights Huffman-coded, everything else unchanged;
//     a model with external data has it stored inside the archive; --sign appends an HMAC-SHA256 under the key
//     file's bytes
// onnxopt unpack MODEL.onnxz -o MODEL.onnx [--verify KEY] [--max-size SIZE]
//     a runnable ONNX again (a truncated, corrupted, oversized or, with --verify, unsigned or wrongly signed
//     archive is refused with one line and nothing is written)
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
        var sign = new Option<string?>("--sign")
        {
            Description = "append an HMAC-SHA256 signature keyed by this file's bytes (at least 16)",
            HelpName = "KEY",
        };
        var cmd = new Command("pack", "Store a clustered model as a Huffman-coded Deep Compression archive")
        {
            input, output, json, sign,
        };
        cmd.SetAction(r =>
        {
            var (inPath, outPath) = (r.GetValue(input)!, r.GetValue(output)!);
            Distinct(inPath, outPath);
            var key = r.GetValue(sign) is { } kp ? FileKinds.ReadAllBytes(kp, "key file", 1 << 16) : null;
            var archive = ModelArchive.Pack(ModelBytes(inPath), out var rep, inPath, key);
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
        var verify = new Option<string?>("--verify")
        {
            Description = "require an HMAC-SHA256 signature made with this key file (pack --sign)",
            HelpName = "KEY",
        };
        var maxSize = new Option<string?>("--max-size")
        {
            Description = "largest model to restore, bytes with an optional K, M or G "
                + "(default: 100x the archive, at least 256M)",
            HelpName = "SIZE",
        };
        var cmd = new Command("unpack", "Restore the ONNX model of a pack archive") { input, output, verify, maxSize };
        cmd.SetAction(r =>
        {
            var (inPath, outPath) = (r.GetValue(input)!, r.GetValue(output)!);
            Distinct(inPath, outPath);
            var limits = new ArchiveLimits
            {
                MaxBytes = r.GetValue(maxSize) is { } ms ? ParseSize(ms) : null,
                VerifyKey = r.GetValue(verify) is { } kp ? FileKinds.ReadAllBytes(kp, "key file", 1 << 16) : null,
            };
            var onnx = ModelArchive.Unpack(Read(inPath), inPath, limits);
            AtomicFile.Write(outPath, s => s.Write(onnx));
            ctx.Err.WriteLine($"wrote {outPath}");
            return 0;
        });
        return cmd;
    }

    private static void Distinct(string input, string output) => CliContext.CheckOutput(input, output);

    private static byte[] Read(string path) => FileKinds.ReadAllBytes(path, "file");

    /// <summary>The model's bytes; a model with external data is loaded from its folder and written out whole,
    /// so the archive holds its weights.</summary>
    private static byte[] ModelBytes(string path)
    {
        var bytes = Read(path);
        var m = OnnxImporter.Load(path);
        return m.Graph.SelfAndSubgraphs().SelectMany(g => g.Initializers).Any(v => v.Initializer!.External is not null)
            ? OnnxExporter.ToBytes(m) : bytes;
    }

    /// <summary>"1048576", "512K", "300M", "2G" (powers of 1024).</summary>
    internal static long ParseSize(string text)
    {
        var t = text.Trim();
        long unit = 1;
        if (t.Length > 0 && char.ToUpperInvariant(t[^1]) is 'K' or 'M' or 'G')
        {
            unit = char.ToUpperInvariant(t[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, _ => 1L << 30 };
            t = t[..^1];
        }
        if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0
            || n > long.MaxValue / unit)
            throw new OnnxModelException($"--max-size '{text}' is not a size (bytes, or a number with K, M or G)");
        return n * unit;
    }
}
