// The attacks an independent test of the build reproduced (issue 34), one test each: outputs that are devices,
// FIFOs, folders or links; external data through a linked folder, from a FIFO, from wherever unpack runs;
// archive bombs; hostile .npy headers and recipes; signals while writing; archive signatures.
using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using OnnxOpt.GraphIR;
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.Tests;

public class HardeningTests
{
    private static readonly string Conv = Paths.Model("ops/conv.onnx");

    private static void MkFifo(string path) => Assert.Equal(0, Cli.Exec("mkfifo", "/", path).Code);

    private static string Save(ModelProto m, string dir, string name = "m.onnx")
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, m.ToByteArray());
        return path;
    }

    /// <summary>conv.onnx with its w1 initializer moved to external data at <paramref name="location"/>.</summary>
    private static ModelProto ExternalW1(string location, string? offset = null)
    {
        var m = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Conv));
        var t = m.Graph.Initializer.First(i => i.Name == "w1");
        t.ClearRawData();
        t.FloatData.Clear();
        t.DataLocation = TensorProto.Types.DataLocation.External;
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        if (offset is not null) t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset });
        return m;
    }

    private static void AssertRefused(CliResult r, string message, string? outDir = null)
    {
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Err}");
        Assert.Contains(message, r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
        Assert.DoesNotContain("   at ", r.Err);
        if (outDir is not null) Assert.Empty(Directory.GetFiles(outDir, "o.onnx*"));
    }

    // ---- 1. -o on a special file, a folder, a link

    [Fact]
    public void ACharacterDeviceOutputIsWrittenThroughNotReplaced()
    {
        var r = Cli.Run("convert", Conv, "-o", "/dev/null");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Equal(FileKind.CharDevice, FileKinds.Of("/dev/null"));
        Assert.Empty(Directory.GetFiles("/dev", ".null.*"));
    }

    [Fact]
    public void AFifoOutputIsWrittenThroughToItsReader()
    {
        var dir = Paths.TempDir();
        var fifo = Path.Combine(dir, "pipe.onnx");
        MkFifo(fifo);
        var reader = Task.Run(() => File.ReadAllBytes(fifo));
        var r = Cli.Run("convert", Conv, "-o", fifo);
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.True(reader.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(FileKind.Fifo, FileKinds.Of(fifo));
        var m = OnnxOpt.GraphIR.OnnxImporter.Parse(reader.Result);
        Assert.Equal(3, m.Graph.Nodes.Count);
        Assert.Single(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void AFolderOutputIsRefused()
    {
        var dir = Paths.TempDir();
        AssertRefused(Cli.Run("convert", Conv, "-o", dir), "is a folder");
        Assert.True(Directory.Exists(dir));
    }

    [Fact]
    public void ALinkOutputWritesTheFileItNamesAndStaysALink()
    {
        var dir = Paths.TempDir();
        var link = Path.Combine(dir, "latest.onnx");
        File.CreateSymbolicLink(link, "v1.onnx");
        Assert.Equal(0, Cli.Run("convert", Conv, "-o", link).ExitCode);
        Assert.Equal(FileKind.Link, FileKinds.Of(link, followLinks: false));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "v1.onnx")), File.ReadAllBytes(link));
    }

    // ---- 2. and 7. external data: a linked folder, a FIFO, bad offsets

    [Fact]
    public void ExternalDataThroughALinkedFolderIsRefused()
    {
        var parent = Paths.TempDir();
        var secret = Path.Combine(parent, "secret");
        Directory.CreateDirectory(secret);
        File.WriteAllBytes(Path.Combine(secret, "w.bin"), new byte[8 * 4 * 3 * 3 * 4]);
        var dir = Path.Combine(parent, "model");
        Directory.CreateDirectory(dir);
        Directory.CreateSymbolicLink(Path.Combine(dir, "etc"), secret);
        var path = Save(ExternalW1("etc/w.bin"), dir);
        var outDir = Paths.TempDir();
        AssertRefused(Cli.Run("convert", path, "-o", Path.Combine(outDir, "o.onnx")), "link that escapes", outDir);
    }

    [Fact]
    public void ExternalDataThroughALinkInsideTheFolderIsRead()
    {
        var dir = Paths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "weights"));
        File.WriteAllBytes(Path.Combine(dir, "weights", "w.bin"), new byte[8 * 4 * 3 * 3 * 4]);
        Directory.CreateSymbolicLink(Path.Combine(dir, "current"), Path.Combine(dir, "weights"));
        var path = Save(ExternalW1("current/w.bin"), dir);
        var r = Cli.Run("convert", path, "-o", Path.Combine(dir, "o.onnx"));
        Assert.True(r.ExitCode == 0, r.Err);
    }

    [Fact]
    public void AFifoAsExternalDataIsRefusedWithoutWaiting()
    {
        var dir = Paths.TempDir();
        MkFifo(Path.Combine(dir, "w.bin"));
        var path = Save(ExternalW1("w.bin"), dir);
        var run = Task.Run(() => Cli.Run("convert", path, "-o", Path.Combine(dir, "o.onnx")));
        Assert.True(run.Wait(TimeSpan.FromSeconds(60)), "convert waited on the FIFO");
        AssertRefused(run.Result, "is a FIFO");
    }

    [Theory]
    [InlineData("abc", "offset 'abc' is not a non-negative integer")]
    [InlineData("-8", "offset '-8' is not a non-negative integer")]
    [InlineData("9223372036854775800", "is too short")]
    public void BadExternalOffsetsNameTheTensor(string offset, string message)
    {
        var dir = Paths.TempDir();
        File.WriteAllBytes(Path.Combine(dir, "w.bin"), new byte[8 * 4 * 3 * 3 * 4]);
        var path = Save(ExternalW1("w.bin", offset), dir);
        var r = Cli.Run("convert", path, "-o", Path.Combine(dir, "o.onnx"));
        AssertRefused(r, message);
        Assert.Contains("'w1'", r.Err);
    }

    [Fact]
    public void ADimsOverflowIsReportedAsOneNotAsZeroBytes()
    {
        var m = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Conv));
        var t = m.Graph.Initializer.First(i => i.Name == "b1");
        t.Dims.Clear();
        t.Dims.Add([1L << 40, 1L << 40]);
        var r = Cli.Run("inspect", Save(m, Paths.TempDir()));
        AssertRefused(r, "overflows 64 bits");
        Assert.Contains("'b1'", r.Err);
    }

    // ---- 3. and 4. archives: external data, bombs

    /// <summary>A version-2 archive of <paramref name="skeleton"/> and raw record bytes (the fuzz lane's builder).
    /// </summary>
    private static byte[] Archive(byte[] skeleton, int records, Action<BinaryWriter> writeRecords) =>
        Fuzzing.Payload(skeleton, false, records, writeRecords);

    [Fact]
    public void AnArchiveNamingExternalDataIsRefusedWhereverUnpackRuns()
    {
        var dir = Paths.TempDir();
        var archive = Path.Combine(dir, "m.onnxz");
        File.WriteAllBytes(archive, Archive(ExternalW1("secret.bin").ToByteArray(), 0, _ => { }));
        // A file of that name where the tests run, as the attack had it.
        File.WriteAllBytes(Path.Combine(Directory.GetCurrentDirectory(), "secret.bin"), new byte[8 * 4 * 3 * 3 * 4]);
        try
        {
            AssertRefused(Cli.Run("unpack", archive, "-o", Path.Combine(dir, "o.onnx")), "external data", dir);
        }
        finally { File.Delete(Path.Combine(Directory.GetCurrentDirectory(), "secret.bin")); }
    }

    [Fact]
    public void PackStoresExternalDataInsideTheArchive()
    {
        var dir = Paths.TempDir();
        var ext = Path.Combine(dir, "ext.onnx");
        Assert.Equal(0, Cli.Run("convert", Conv, "-o", ext, "--external-data", "0").ExitCode);
        Assert.True(File.Exists(ext + ".data"));
        Assert.Equal(0, Cli.Run("pack", ext, "-o", Path.Combine(dir, "m.onnxz")).ExitCode);
        File.Delete(ext + ".data");
        var back = Path.Combine(dir, "back.onnx");
        var r = Cli.Run("unpack", Path.Combine(dir, "m.onnxz"), "-o", back);
        Assert.True(r.ExitCode == 0, r.Err);
        var original = OnnxImporter.Load(Conv).Graph.Find("w1")!.Initializer!.RawData.ToArray();
        Assert.Equal(original, OnnxImporter.Load(back).Graph.Find("w1")!.Initializer!.RawData.ToArray());
    }

    [Fact]
    public void ACodedTensorDeclaringAGigabyteIsRefusedBeforeItIsAllocated()
    {
        var dir = Paths.TempDir();
        var archive = Path.Combine(dir, "bomb.onnxz");
        File.WriteAllBytes(archive, Archive(File.ReadAllBytes(Conv), 1, w =>
        {
            w.Write("w1");
            w.Write((byte)0); // coded
            w.Write7BitEncodedInt(1);
            w.Write7BitEncodedInt64(1L << 28); // 2^28 floats: 1 GiB
            w.Write((byte)4);
            w.Write(new byte[16]);
        }));
        Assert.True(new FileInfo(archive).Length < 4096);
        var before = GC.GetTotalAllocatedBytes();
        AssertRefused(Cli.Run("unpack", archive, "-o", Path.Combine(dir, "o.onnx")), "would pass", dir);
        Assert.True(GC.GetTotalAllocatedBytes() - before < 64L << 20);
    }

    [Fact]
    public void AHugeRunCountIsRefusedNotRunOutOfMemory()
    {
        var dir = Paths.TempDir();
        var archive = Path.Combine(dir, "runs.onnxz");
        File.WriteAllBytes(archive, Archive(File.ReadAllBytes(Conv), 1, w =>
        {
            w.Write("b1");
            w.Write((byte)0);
            w.Write7BitEncodedInt(1);
            w.Write7BitEncodedInt64(8);
            w.Write((byte)4);
            w.Write((byte)0); // one codebook
            w.Write((byte)0); // raw
            w.Write7BitEncodedInt(1);
            w.Write(new byte[4]); // the value 0
            w.Write((byte)1); // sparse
            w.Write7BitEncodedInt(0);
            w.Write7BitEncodedInt(int.MaxValue); // runs
        }));
        AssertRefused(Cli.Run("unpack", archive, "-o", Path.Combine(dir, "o.onnx")), "bad sparse counts", dir);
    }

    [Fact]
    public void AnInflatedSkeletonPastMaxSizeIsRefused()
    {
        var dir = Paths.TempDir();
        var model = Path.Combine(dir, "m.onnx");
        File.Copy(Paths.Model("digits/mlp.onnx"), model);
        Assert.Equal(0, Cli.Run("pack", model, "-o", Path.Combine(dir, "m.onnxz")).ExitCode);
        AssertRefused(Cli.Run("unpack", Path.Combine(dir, "m.onnxz"), "-o", Path.Combine(dir, "o.onnx"),
            "--max-size", "4K"), "4,096 bytes");
        Assert.False(File.Exists(Path.Combine(dir, "o.onnx")));
        Assert.Equal(0, Cli.Run("unpack", Path.Combine(dir, "m.onnxz"), "-o", Path.Combine(dir, "o.onnx"),
            "--max-size", "10M").ExitCode);
        AssertRefused(Cli.Run("unpack", Path.Combine(dir, "m.onnxz"), "-o", Path.Combine(dir, "p.onnx"),
            "--max-size", "lots"), "is not a size");
    }

    // ---- 11. signatures

    [Fact]
    public void SignedArchivesVerifyAndTamperedOnesDoNot()
    {
        var dir = Paths.TempDir();
        var model = Path.Combine(dir, "m.onnx");
        File.Copy(Paths.Model("digits/mlp.onnx"), model);
        var key = Path.Combine(dir, "key");
        File.WriteAllBytes(key, RandomNumberGenerator.GetBytes(32));
        var other = Path.Combine(dir, "other");
        File.WriteAllBytes(other, RandomNumberGenerator.GetBytes(32));
        var signed = Path.Combine(dir, "s.onnxz");
        var plain = Path.Combine(dir, "p.onnxz");
        Assert.Equal(0, Cli.Run("pack", model, "-o", signed, "--sign", key).ExitCode);
        Assert.Equal(0, Cli.Run("pack", model, "-o", plain).ExitCode);
        string Out(string n) => Path.Combine(dir, n);
        Assert.Equal(0, Cli.Run("unpack", signed, "-o", Out("a.onnx"), "--verify", key).ExitCode);
        Assert.Equal(0, Cli.Run("unpack", signed, "-o", Out("b.onnx")).ExitCode);
        Assert.Equal(0, Cli.Run("unpack", plain, "-o", Out("g.onnx")).ExitCode);
        Assert.Equal(File.ReadAllBytes(Out("g.onnx")), File.ReadAllBytes(Out("a.onnx")));
        AssertRefused(Cli.Run("unpack", signed, "-o", Out("c.onnx"), "--verify", other), "does not match the key");
        AssertRefused(Cli.Run("unpack", plain, "-o", Out("d.onnx"), "--verify", key), "not signed");
        // A flipped byte with the SHA-256 recomputed passes the checksum but not the signature.
        var bytes = File.ReadAllBytes(signed);
        var body = bytes[..^40];
        body[40] ^= 1;
        var length = BitConverter.ToInt64(body, 8);
        var rehashed = body[..(16 + (int)length)].Concat(SHA256.HashData(body.AsSpan(0, 16 + (int)length))).ToArray();
        var tampered = Path.Combine(dir, "t.onnxz");
        File.WriteAllBytes(tampered, [.. rehashed, .. bytes[^40..]]);
        AssertRefused(Cli.Run("unpack", tampered, "-o", Out("e.onnx"), "--verify", key), "does not match the key");
        File.WriteAllBytes(Out("short"), new byte[8]);
        AssertRefused(Cli.Run("pack", model, "-o", Out("f.onnxz"), "--sign", Out("short")), "at least 16");
        Assert.False(File.Exists(Out("c.onnx")) || File.Exists(Out("e.onnx")) || File.Exists(Out("f.onnxz")));
    }

    // ---- 5. and 6. crashes and silent acceptance

    [Fact]
    public void ScoreOnAnInitializerDeclaringATrillionElementsWithoutDataNamesIt()
    {
        var m = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Conv));
        var t = m.Graph.Initializer.First(i => i.Name == "b1");
        t.ClearRawData();
        t.FloatData.Clear();
        t.Dims.Clear();
        t.Dims.Add(1L << 40);
        var r = Cli.Run("score", Save(m, Paths.TempDir()), "--iterations", "1");
        Assert.InRange(r.ExitCode, 1, 2);
        Assert.Contains("b1", r.Err);
        Assert.DoesNotContain("   at ", r.Err);
    }

    [Fact]
    public void AConvWithGroupZeroIsNotAGroupAndDoesNotCrash()
    {
        var m = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Conv));
        foreach (var n in m.Graph.Node)
            n.Attribute.Add(new AttributeProto { Name = "group", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
        var dir = Paths.TempDir();
        var path = Save(m, dir);
        foreach (var args in new[] { new[] { "groups", path }, ["prune", path, "-o", Path.Combine(dir, "o.onnx"),
            "--calib-random", "4", "--ratio", "0.25"], ["score", path, "--iterations", "1"] })
        {
            var r = Cli.Run(args);
            Assert.True(r.ExitCode is >= 0 and <= 2, $"{args[0]}: exit {r.ExitCode}");
            Assert.DoesNotContain("   at ", r.Err);
            Assert.DoesNotContain("DivideByZero", r.Err);
        }
    }

    private static string NpyWithShape(string dir, string shape, string name = "x.npy")
    {
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({shape}), }}";
        header = header.PadRight(118) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.AddRange([1, 0]);
        bytes.AddRange(BitConverter.GetBytes((ushort)header.Length));
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        bytes.AddRange(new byte[4 * 4 * 9 * 9 * 4]);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, name), bytes.ToArray());
        return dir;
    }

    [Theory]
    [InlineData("-1, 4, 9, 9", "dimension '-1'")]
    [InlineData("99999999999999999999, 4, 9, 9", "not a non-negative 64-bit integer")]
    [InlineData("4611686018427387904, 4, 9, 9", "more bytes than 64 bits count")]
    [InlineData("4, four, 9, 9", "dimension 'four'")]
    public void NpyShapesThatCannotBeAreRefusedNamingTheFile(string shape, string message)
    {
        var dir = Paths.TempDir();
        var data = NpyWithShape(Path.Combine(dir, "data"), shape);
        foreach (var args in new[] { new[] { "quantize", Conv, "-o", Path.Combine(dir, "q.onnx"), "--calib", data },
            ["validate", Conv, Conv, "--data", data], ["run", Conv, "--data", data, "-o", Path.Combine(dir, "outs")] })
        {
            var r = Cli.Run(args);
            AssertRefused(r, message);
            Assert.Contains("x.npy", r.Err);
        }
        Assert.False(File.Exists(Path.Combine(dir, "q.onnx")));
    }

    [Fact]
    public void AFifoInADataFolderIsRefusedWithoutWaiting()
    {
        var dir = Paths.TempDir();
        MkFifo(Path.Combine(dir, "x.npy"));
        var run = Task.Run(() => Cli.Run("run", Conv, "--data", dir, "-o", Path.Combine(dir, "outs")));
        Assert.True(run.Wait(TimeSpan.FromSeconds(60)), "run waited on the FIFO");
        AssertRefused(run.Result, "is a FIFO");
    }

    // ---- 8. recipes

    private static CliResult Compress(string recipe, string ext = ".yaml")
    {
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "r" + ext);
        File.WriteAllText(path, recipe);
        return Cli.Run("compress", Paths.Model("digits/mlp.onnx"), "-o", Path.Combine(dir, "o.onnx"), "--recipe", path,
            "--calib", Paths.Model("digits/data_mlp"));
    }

    [Fact]
    public void ARecipeThatExpandsThroughAliasesIsRefusedQuickly()
    {
        var sb = new StringBuilder("x: &a \"" + new string('z', 4000) + "\"\ny: &b [");
        sb.Append(string.Join(", ", Enumerable.Repeat("*a", 300)));
        sb.Append("]\nstages:\n  - candidates: [");
        sb.Append(string.Join(", ", Enumerable.Repeat("*b", 300)));
        sb.Append("]\n");
        var clock = Stopwatch.StartNew();
        AssertRefused(Compress(sb.ToString()), "through YAML aliases");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{clock.Elapsed}");
    }

    [Theory]
    [InlineData("beam: 1e20\nstages:\n  - candidates: [canonicalize]\n", "line 1 ('beam: 1e20')")]
    [InlineData("max_drop: 1e400\nstages:\n  - candidates: [canonicalize]\n", "finite number of points")]
    [InlineData("target: fastest\nstages:\n  - candidates: [canonicalize]\n", "target 'fastest'")]
    public void RecipeValuesThatCannotBeNameTheirKey(string recipe, string message) =>
        AssertRefused(Compress(recipe), message);

    [Fact]
    public void ALargeRecipeIsRefusedAndHugeValuesAreNotEchoed()
    {
        var r = Compress("target: " + new string('q', 2 << 20) + "\n");
        AssertRefused(r, "larger than");
        Assert.True(r.Err.Length < 400);
        r = Compress("target: " + new string('q', 5000) + "\nstages:\n  - candidates: [canonicalize]\n");
        AssertRefused(r, "is not latency, size or macs");
        Assert.True(r.Err.Length < 400);
        r = Compress("{\"beam\": 1e20, \"stages\": []}", ".json");
        AssertRefused(r, "key 'beam'");
    }

    // ---- 9. signals and stale temporary files

    [Fact]
    public void StaleTemporaryFilesOfDeadProcessesAreSwept()
    {
        var dir = Paths.TempDir();
        var stale = Path.Combine(dir, ".o.onnx.2147483000.tmp");
        var live = Path.Combine(dir, $".o.onnx.{Environment.ProcessId + 0}.tmp.keep");
        File.WriteAllBytes(stale, new byte[100]);
        File.WriteAllBytes(live, new byte[100]);
        Assert.Equal(0, Cli.Run("convert", Conv, "-o", Path.Combine(dir, "o.onnx")).ExitCode);
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(live));
    }

    [Fact]
    public void SigtermWhileWritingLeavesNoTemporaryFile()
    {
        var dir = Paths.TempDir();
        // A model whose write takes long enough to be interrupted: 192 MB of weights.
        var m = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Conv));
        var big = new TensorProto { Name = "big", DataType = 1, Dims = { 48L << 20 } };
        big.RawData = ByteString.CopyFrom(new byte[192 << 20]);
        m.Graph.Initializer.Add(big);
        m.Graph.Output.Add(new ValueInfoProto { Name = "big" });
        var input = Save(m, dir, "big.onnx");
        var outDir = Path.Combine(dir, "out");
        Directory.CreateDirectory(outDir);
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "onnxopt.dll"), "convert", input, "-o",
                Path.Combine(outDir, "o.onnx") }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var clock = Stopwatch.StartNew();
            bool seen = false;
            while (!p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                if (Directory.GetFiles(outDir, "*.tmp").Length > 0) { seen = true; break; }
                Thread.Sleep(2);
            }
            if (!seen) { p.WaitForExit(); File.Delete(Path.Combine(outDir, "o.onnx")); continue; }
            Assert.Equal(0, Cli.Exec("kill", "/", "-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)).Code);
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)));
            Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));
            if (p.ExitCode != 0) Assert.False(File.Exists(Path.Combine(outDir, "o.onnx")));
            return;
        }
        Assert.Fail("the write finished before SIGTERM could be sent, three times");
    }
}
