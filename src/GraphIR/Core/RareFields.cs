// The fields of a node or value that few set (doc strings, metadata_props, unknown protobuf fields, a node's
// overload), held in one object allocated on the first non-null write: a million-node graph would otherwise
// carry three or four empty references per node and value.
namespace OnnxOpt.GraphIR;

internal sealed class RareFields
{
    public string? Overload;
    public string? DocString;
    public List<KeyValuePair<string, string>>? MetadataProps;
    public byte[]? UnknownFields;

    /// <summary>Sets a field, allocating the holder only for a non-null value.</summary>
    public static void Set<T>(ref RareFields? rare, T? value, Action<RareFields, T?> set) where T : class
    {
        if (value is null && rare is null) return;
        set(rare ??= new RareFields(), value);
    }
}
