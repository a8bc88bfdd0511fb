// An error reported by ONNX Runtime, as one line: what onnxopt was doing, ORT's error code and its
// message. The official package throws OnnxRuntimeException with "[ErrorCode:Name] message"; this
// keeps the code as a number (ORT's C API OrtErrorCode) and a stable upper-case name.
using System.Text.RegularExpressions;
using Ort = Microsoft.ML.OnnxRuntime;

namespace OnnxOpt.Runtime;

public sealed partial class OrtException(int code, string message, Exception? inner = null) : Exception(message, inner)
{
    public int Code { get; } = code;

    public static string CodeName(int code) => code switch
    {
        1 => "FAIL",
        2 => "INVALID_ARGUMENT",
        3 => "NO_SUCHFILE",
        4 => "NO_MODEL",
        5 => "ENGINE_ERROR",
        6 => "RUNTIME_EXCEPTION",
        7 => "INVALID_PROTOBUF",
        8 => "MODEL_LOADED",
        9 => "NOT_IMPLEMENTED",
        10 => "INVALID_GRAPH",
        11 => "EP_FAIL",
        _ => $"ORT_ERROR_{code}",
    };

    /// <summary>Our exception for ORT's, prefixed with what was being done ("CreateSession", "Run", ...).</summary>
    internal static OrtException From(Ort.OnnxRuntimeException e, string what)
    {
        var m = Prefix().Match(e.Message);
        int code = m.Success ? Array.IndexOf(Names, m.Groups[1].Value) : -1;
        if (code < 1) code = 1;
        var text = m.Success ? e.Message[m.Length..] : e.Message;
        return new OrtException(code, $"{what}: {CodeName(code)}: {text.Trim()}", e);
    }

    // The names the C# package prints, at ORT's OrtErrorCode numbers (its own enum is internal).
    private static readonly string[] Names =
    [
        "Ok", "Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError", "RuntimeException",
        "InvalidProtobuf", "ModelLoaded", "NotImplemented", "InvalidGraph", "EPFail",
    ];

    [GeneratedRegex(@"^\[ErrorCode:(\w+)\]\s*")]
    private static partial Regex Prefix();
}
