// A model: IR version, opset imports, producer info, metadata, the main graph and model-local
// functions. Parts onnxopt does not interpret (training info, device configurations, fields of a
// newer schema) are carried as opaque bytes and written back unchanged.
namespace OnnxOpt.GraphIR;

public sealed record OpsetImport(string Domain, long Version);

public sealed class Model
{
    /// <summary>IR version written by onnxopt for new models (ONNX IR 13 is current).</summary>
    public const long CurrentIrVersion = 13;

    public long IrVersion { get; set; } = 8;
    public List<OpsetImport> OpsetImports { get; } = new();
    public string? ProducerName { get; set; }
    public string? ProducerVersion { get; set; }
    public string? Domain { get; set; }
    public long? ModelVersion { get; set; }
    public string? DocString { get; set; }
    public List<KeyValuePair<string, string>> MetadataProps { get; } = new();
    /// <summary>The main graph (replaced through Rewriter.ReplaceGraph).</summary>
    public Graph Graph { get; internal set; } = new("main");
    public List<Function> Functions { get; } = new();
    /// <summary>Serialized TrainingInfoProto messages, kept verbatim.</summary>
    public List<byte[]> TrainingInfo { get; } = new();
    /// <summary>Serialized DeviceConfigurationProto messages, kept verbatim.</summary>
    public List<byte[]> Configuration { get; } = new();
    public byte[]? UnknownFields { get; set; }

    /// <summary>Opset version imported for a domain ("" and "ai.onnx" are the same), or null.</summary>
    public long? OpsetVersion(string domain = "")
    {
        foreach (var o in OpsetImports)
            if (o.Domain == domain || (IsDefaultDomain(o.Domain) && IsDefaultDomain(domain))) return o.Version;
        return null;
    }

    public static bool IsDefaultDomain(string d) => d is "" or "ai.onnx";

    /// <summary>A deep copy (no serialization): new graphs, values, nodes and attributes; tensor data shared.</summary>
    public Model Clone() => ModelCloner.Clone(this);
}

public sealed class Function
{
    public required string Name { get; set; }
    public string? Domain { get; set; }
    public string? Overload { get; set; }
    /// <summary>Body: inputs/outputs are the function's formal parameters (untyped), value_info kept.</summary>
    public required Graph Body { get; init; }
    public List<string> AttributeNames { get; } = new();
    public List<OnnxAttribute> AttributeDefaults { get; } = new();
    public List<OpsetImport> OpsetImports { get; } = new();
    public string? DocString { get; set; }
    public List<KeyValuePair<string, string>> MetadataProps { get; } = new();
    public byte[]? UnknownFields { get; set; }
}
