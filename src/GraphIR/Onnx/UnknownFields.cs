// Access to protobuf fields this schema does not know (from newer ONNX versions), so that the
// importer can keep them as bytes on the IR object and the exporter can write them back.
using Google.Protobuf;

namespace OnnxOpt.GraphIR.Protobuf;

internal interface IHasUnknownFields
{
    UnknownFieldSet? Unknown { get; }
}

internal sealed partial class ModelProto : IHasUnknownFields { UnknownFieldSet? IHasUnknownFields.Unknown => _unknownFields; }
internal sealed partial class GraphProto : IHasUnknownFields { UnknownFieldSet? IHasUnknownFields.Unknown => _unknownFields; }
internal sealed partial class NodeProto : IHasUnknownFields { UnknownFieldSet? IHasUnknownFields.Unknown => _unknownFields; }
internal sealed partial class AttributeProto : IHasUnknownFields { UnknownFieldSet? IHasUnknownFields.Unknown => _unknownFields; }
internal sealed partial class TensorProto : IHasUnknownFields { UnknownFieldSet? IHasUnknownFields.Unknown => _unknownFields; }
internal sealed partial class SparseTensorProto : IHasUnknownFields { UnknownFieldSet? IHasUnknownFields.Unknown => _unknownFields; }
internal sealed partial class ValueInfoProto : IHasUnknownFields { UnknownFieldSet? IHasUnknownFields.Unknown => _unknownFields; }
internal sealed partial class FunctionProto : IHasUnknownFields { UnknownFieldSet? IHasUnknownFields.Unknown => _unknownFields; }

internal static class UnknownFieldBytes
{
    public static byte[]? Get(IHasUnknownFields m)
    {
        var set = m.Unknown;
        if (set is null) return null;
        var size = set.CalculateSize();
        if (size == 0) return null;
        var buf = new byte[size];
        var cos = new CodedOutputStream(buf);
        set.WriteTo(cos);
        cos.Flush();
        return buf;
    }

    public static void Put(IMessage m, byte[]? bytes)
    {
        if (bytes is { Length: > 0 }) m.MergeFrom(bytes);
    }
}
