// The ONNX Runtime C API function table (OrtApi, version 1..30 of the 1.30 binary). A slot is
// offsetof(OrtApi, f) / sizeof(void*); slots were checked against ORT's headers and by calling them
// (see shared docs/ort-c-api.md). Every call here returns OrtStatus* (null = success) unless noted.
// Only blittable types cross the boundary: enums as int, size_t as nuint, C strings as byte*.
using System.Runtime.InteropServices;

namespace OnnxOpt.Runtime.Native;

internal sealed unsafe class OrtApi(IntPtr* table)
{
    private readonly IntPtr* _t = table;

    public delegate* unmanaged<IntPtr, int> GetErrorCode => (delegate* unmanaged<IntPtr, int>)_t[1];
    public delegate* unmanaged<IntPtr, byte*> GetErrorMessage => (delegate* unmanaged<IntPtr, byte*>)_t[2];
    public delegate* unmanaged<int, byte*, IntPtr*, IntPtr> CreateEnv => (delegate* unmanaged<int, byte*, IntPtr*, IntPtr>)_t[3];
    public delegate* unmanaged<IntPtr, IntPtr, int, byte*, IntPtr*, IntPtr> CreateEnvWithCustomLogger =>
        (delegate* unmanaged<IntPtr, IntPtr, int, byte*, IntPtr*, IntPtr>)_t[4];
    public delegate* unmanaged<IntPtr, void*, nuint, IntPtr, IntPtr*, IntPtr> CreateSessionFromArray =>
        (delegate* unmanaged<IntPtr, void*, nuint, IntPtr, IntPtr*, IntPtr>)_t[8];
    public delegate* unmanaged<IntPtr, IntPtr, IntPtr*, IntPtr*, nuint, IntPtr*, nuint, IntPtr*, IntPtr> Run =>
        (delegate* unmanaged<IntPtr, IntPtr, IntPtr*, IntPtr*, nuint, IntPtr*, nuint, IntPtr*, IntPtr>)_t[9];
    public delegate* unmanaged<IntPtr*, IntPtr> CreateSessionOptions => (delegate* unmanaged<IntPtr*, IntPtr>)_t[10];
    public delegate* unmanaged<IntPtr, byte*, IntPtr> SetOptimizedModelFilePath => (delegate* unmanaged<IntPtr, byte*, IntPtr>)_t[11];
    public delegate* unmanaged<IntPtr, int, IntPtr> SetSessionLogSeverityLevel => (delegate* unmanaged<IntPtr, int, IntPtr>)_t[22];
    public delegate* unmanaged<IntPtr, int, IntPtr> SetSessionGraphOptimizationLevel => (delegate* unmanaged<IntPtr, int, IntPtr>)_t[23];
    public delegate* unmanaged<IntPtr, int, IntPtr> SetIntraOpNumThreads => (delegate* unmanaged<IntPtr, int, IntPtr>)_t[24];
    public delegate* unmanaged<IntPtr, int, IntPtr> SetInterOpNumThreads => (delegate* unmanaged<IntPtr, int, IntPtr>)_t[25];
    public delegate* unmanaged<IntPtr, nuint*, IntPtr> SessionGetInputCount => (delegate* unmanaged<IntPtr, nuint*, IntPtr>)_t[30];
    public delegate* unmanaged<IntPtr, nuint*, IntPtr> SessionGetOutputCount => (delegate* unmanaged<IntPtr, nuint*, IntPtr>)_t[31];
    public delegate* unmanaged<IntPtr, nuint, IntPtr*, IntPtr> SessionGetInputTypeInfo => (delegate* unmanaged<IntPtr, nuint, IntPtr*, IntPtr>)_t[33];
    public delegate* unmanaged<IntPtr, nuint, IntPtr*, IntPtr> SessionGetOutputTypeInfo => (delegate* unmanaged<IntPtr, nuint, IntPtr*, IntPtr>)_t[34];
    public delegate* unmanaged<IntPtr, nuint, IntPtr, byte**, IntPtr> SessionGetInputName => (delegate* unmanaged<IntPtr, nuint, IntPtr, byte**, IntPtr>)_t[36];
    public delegate* unmanaged<IntPtr, nuint, IntPtr, byte**, IntPtr> SessionGetOutputName => (delegate* unmanaged<IntPtr, nuint, IntPtr, byte**, IntPtr>)_t[37];
    public delegate* unmanaged<IntPtr, void*, nuint, long*, nuint, int, IntPtr*, IntPtr> CreateTensorWithDataAsOrtValue =>
        (delegate* unmanaged<IntPtr, void*, nuint, long*, nuint, int, IntPtr*, IntPtr>)_t[49];
    public delegate* unmanaged<IntPtr, int*, IntPtr> IsTensor => (delegate* unmanaged<IntPtr, int*, IntPtr>)_t[50];
    public delegate* unmanaged<IntPtr, void**, IntPtr> GetTensorMutableData => (delegate* unmanaged<IntPtr, void**, IntPtr>)_t[51];
    public delegate* unmanaged<IntPtr, IntPtr*, IntPtr> CastTypeInfoToTensorInfo => (delegate* unmanaged<IntPtr, IntPtr*, IntPtr>)_t[55];
    public delegate* unmanaged<IntPtr, int*, IntPtr> GetTensorElementType => (delegate* unmanaged<IntPtr, int*, IntPtr>)_t[60];
    public delegate* unmanaged<IntPtr, nuint*, IntPtr> GetDimensionsCount => (delegate* unmanaged<IntPtr, nuint*, IntPtr>)_t[61];
    public delegate* unmanaged<IntPtr, long*, nuint, IntPtr> GetDimensions => (delegate* unmanaged<IntPtr, long*, nuint, IntPtr>)_t[62];
    public delegate* unmanaged<IntPtr, byte**, nuint, IntPtr> GetSymbolicDimensions => (delegate* unmanaged<IntPtr, byte**, nuint, IntPtr>)_t[63];
    public delegate* unmanaged<IntPtr, IntPtr*, IntPtr> GetTensorTypeAndShape => (delegate* unmanaged<IntPtr, IntPtr*, IntPtr>)_t[65];
    public delegate* unmanaged<int, int, IntPtr*, IntPtr> CreateCpuMemoryInfo => (delegate* unmanaged<int, int, IntPtr*, IntPtr>)_t[69];
    public delegate* unmanaged<IntPtr, void*, IntPtr> AllocatorFree => (delegate* unmanaged<IntPtr, void*, IntPtr>)_t[76];
    public delegate* unmanaged<IntPtr*, IntPtr> GetAllocatorWithDefaultOptions => (delegate* unmanaged<IntPtr*, IntPtr>)_t[78];
    public delegate* unmanaged<IntPtr, void> ReleaseEnv => (delegate* unmanaged<IntPtr, void>)_t[92];
    public delegate* unmanaged<IntPtr, void> ReleaseStatus => (delegate* unmanaged<IntPtr, void>)_t[93];
    public delegate* unmanaged<IntPtr, void> ReleaseMemoryInfo => (delegate* unmanaged<IntPtr, void>)_t[94];
    public delegate* unmanaged<IntPtr, void> ReleaseSession => (delegate* unmanaged<IntPtr, void>)_t[95];
    public delegate* unmanaged<IntPtr, void> ReleaseValue => (delegate* unmanaged<IntPtr, void>)_t[96];
    public delegate* unmanaged<IntPtr, void> ReleaseTypeInfo => (delegate* unmanaged<IntPtr, void>)_t[98];
    public delegate* unmanaged<IntPtr, void> ReleaseTensorTypeAndShapeInfo => (delegate* unmanaged<IntPtr, void>)_t[99];
    public delegate* unmanaged<IntPtr, void> ReleaseSessionOptions => (delegate* unmanaged<IntPtr, void>)_t[100];
    public delegate* unmanaged<IntPtr, byte*, byte*, IntPtr> AddSessionConfigEntry => (delegate* unmanaged<IntPtr, byte*, byte*, IntPtr>)_t[130];
    public delegate* unmanaged<byte*> GetBuildInfoString => (delegate* unmanaged<byte*>)_t[254];

    /// <summary>Turns a non-null OrtStatus into an OrtException (copying the message first).</summary>
    public void Check(IntPtr status, string what)
    {
        if (status == IntPtr.Zero) return;
        var code = GetErrorCode(status);
        var msg = Marshal.PtrToStringUTF8((IntPtr)GetErrorMessage(status)) ?? "";
        ReleaseStatus(status);
        throw new OrtException(code, $"{what}: {OrtException.CodeName(code)}: {msg}");
    }
}

/// <summary>An error reported by ONNX Runtime, with ORT's error code and message.</summary>
public sealed class OrtException(int code, string message) : Exception(message)
{
    public int Code { get; } = code;

    public static string CodeName(int code) => code switch
    {
        1 => "FAIL", 2 => "INVALID_ARGUMENT", 3 => "NO_SUCHFILE", 4 => "NO_MODEL", 5 => "ENGINE_ERROR",
        6 => "RUNTIME_EXCEPTION", 7 => "INVALID_PROTOBUF", 8 => "MODEL_LOADED", 9 => "NOT_IMPLEMENTED",
        10 => "INVALID_GRAPH", 11 => "EP_FAIL", _ => $"ORT_ERROR_{code}",
    };
}
