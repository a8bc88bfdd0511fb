// An ONNX Runtime session over a model (bytes or IR). Inputs and outputs are GraphIR Tensors (packed
// little-endian bytes), so data moves between the IR, .npy/.pb files and ORT without conversion.
// Any intermediate value can be read: the session is built over a copy of the model with those
// values appended to the graph outputs. A session may be run from several threads at once.
using System.Buffers;
using System.Runtime.InteropServices;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime.Native;

namespace OnnxOpt.Runtime;

public enum GraphOptimization { Disabled = 0, Basic = 1, Extended = 2, All = 99 }

public sealed record SessionSettings
{
    public int IntraOpThreads { get; init; } = 1;
    public int InterOpThreads { get; init; } = 1;
    public GraphOptimization Optimization { get; init; } = GraphOptimization.All;
    /// <summary>Where ORT writes the graph after its own optimizations (to see what it fused).</summary>
    public string? OptimizedModelPath { get; init; }
    /// <summary>Idle worker threads spin by default in ORT; off here so tests and benchmarks do not burn CPU.</summary>
    public bool AllowSpinning { get; init; }
    public OrtLogLevel LogLevel { get; init; } = OrtLogLevel.Warning;

    public override string ToString() =>
        $"intra-op threads {IntraOpThreads}, inter-op threads {InterOpThreads}, graph optimization {Optimization}";
}

/// <summary>A model input or output as ORT sees it: element type and shape (symbols kept).</summary>
public sealed record IoInfo(string Name, DataType ElementType, Shape? Shape)
{
    public override string ToString() => $"{Name}: {ModelStats.TypeText(OnnxType.Tensor(ElementType, Shape))}";
}

public sealed unsafe class InferenceSession : IDisposable
{
    private readonly SessionHandle _handle;
    private readonly Dictionary<string, IoInfo> _inputsByName;

    public IReadOnlyList<IoInfo> Inputs { get; }
    public IReadOnlyList<IoInfo> Outputs { get; }
    public SessionSettings Settings { get; }

    private InferenceSession(SessionHandle h, SessionSettings s)
    {
        _handle = h;
        Settings = s;
        Inputs = ReadIo(isInput: true);
        Outputs = ReadIo(isInput: false);
        _inputsByName = Inputs.ToDictionary(i => i.Name);
    }

    public static InferenceSession FromBytes(ReadOnlySpan<byte> model, SessionSettings? settings = null)
    {
        settings ??= new SessionSettings();
        var api = OrtLibrary.Api;
        IntPtr opts;
        api.Check(api.CreateSessionOptions(&opts), "CreateSessionOptions");
        try
        {
            api.Check(api.SetIntraOpNumThreads(opts, settings.IntraOpThreads), "SetIntraOpNumThreads");
            api.Check(api.SetInterOpNumThreads(opts, settings.InterOpThreads), "SetInterOpNumThreads");
            api.Check(api.SetSessionGraphOptimizationLevel(opts, (int)settings.Optimization), "SetSessionGraphOptimizationLevel");
            api.Check(api.SetSessionLogSeverityLevel(opts, (int)settings.LogLevel), "SetSessionLogSeverityLevel");
            AddConfig(api, opts, "session.intra_op.allow_spinning", settings.AllowSpinning ? "1" : "0");
            AddConfig(api, opts, "session.inter_op.allow_spinning", settings.AllowSpinning ? "1" : "0");
            if (settings.OptimizedModelPath is { } p)
            {
                var pz = OrtLibrary.Utf8(Path.GetFullPath(p));
                try { api.Check(api.SetOptimizedModelFilePath(opts, (byte*)pz), "SetOptimizedModelFilePath"); }
                finally { Marshal.FreeCoTaskMem(pz); }
            }
            IntPtr session;
            fixed (byte* data = model)
                api.Check(api.CreateSessionFromArray(OrtLibrary.Env, data, (nuint)model.Length, opts, &session), "CreateSession");
            return new InferenceSession(new SessionHandle(session), settings);
        }
        finally { api.ReleaseSessionOptions(opts); }
    }

    /// <summary>A session over an IR model; <paramref name="extraOutputs"/> names intermediate values
    /// to return as well (the caller's model is not changed).</summary>
    public static InferenceSession FromModel(Model model, SessionSettings? settings = null, IEnumerable<string>? extraOutputs = null)
    {
        var bytes = OnnxExporter.ToBytes(model);
        var extra = extraOutputs?.ToList();
        if (extra is { Count: > 0 })
        {
            var copy = OnnxImporter.Parse(bytes);
            foreach (var name in extra)
            {
                var v = copy.Graph.Find(name) ?? throw new OnnxModelException($"no value named '{name}' in the main graph");
                if (!copy.Graph.Outputs.Contains(v)) copy.Graph.Outputs.Add(v);
            }
            bytes = OnnxExporter.ToBytes(copy);
        }
        return FromBytes(bytes, settings);
    }

    private static void AddConfig(OrtApi api, IntPtr opts, string key, string value)
    {
        var k = OrtLibrary.Utf8(key);
        var v = OrtLibrary.Utf8(value);
        try { api.Check(api.AddSessionConfigEntry(opts, (byte*)k, (byte*)v), "AddSessionConfigEntry"); }
        finally { Marshal.FreeCoTaskMem(k); Marshal.FreeCoTaskMem(v); }
    }

    private List<IoInfo> ReadIo(bool isInput)
    {
        var api = OrtLibrary.Api;
        var s = _handle.DangerousGetHandle();
        nuint count;
        api.Check(isInput ? api.SessionGetInputCount(s, &count) : api.SessionGetOutputCount(s, &count), "SessionGetCount");
        IntPtr alloc;
        api.Check(api.GetAllocatorWithDefaultOptions(&alloc), "GetAllocator");
        var list = new List<IoInfo>();
        for (nuint i = 0; i < count; i++)
        {
            byte* namePtr;
            api.Check(isInput ? api.SessionGetInputName(s, i, alloc, &namePtr) : api.SessionGetOutputName(s, i, alloc, &namePtr), "SessionGetName");
            var name = Marshal.PtrToStringUTF8((IntPtr)namePtr) ?? "";
            api.Check(api.AllocatorFree(alloc, namePtr), "AllocatorFree");
            IntPtr typeInfo;
            api.Check(isInput ? api.SessionGetInputTypeInfo(s, i, &typeInfo) : api.SessionGetOutputTypeInfo(s, i, &typeInfo), "SessionGetTypeInfo");
            try
            {
                IntPtr tinfo;
                api.Check(api.CastTypeInfoToTensorInfo(typeInfo, &tinfo), "CastTypeInfoToTensorInfo");
                if (tinfo == IntPtr.Zero) { list.Add(new IoInfo(name, DataType.Undefined, null)); continue; }
                var (type, shape) = ReadTypeAndShape(api, tinfo, symbolic: true);
                list.Add(new IoInfo(name, type, shape));
            }
            finally { api.ReleaseTypeInfo(typeInfo); }
        }
        return list;
    }

    private static (DataType, Shape) ReadTypeAndShape(OrtApi api, IntPtr tinfo, bool symbolic)
    {
        int et;
        api.Check(api.GetTensorElementType(tinfo, &et), "GetTensorElementType");
        nuint rank;
        api.Check(api.GetDimensionsCount(tinfo, &rank), "GetDimensionsCount");
        var dims = new long[(int)rank];
        var syms = new IntPtr[(int)rank];
        fixed (long* d = dims) api.Check(api.GetDimensions(tinfo, d, rank), "GetDimensions");
        if (symbolic && rank > 0)
            fixed (IntPtr* p = syms) api.Check(api.GetSymbolicDimensions(tinfo, (byte**)p, rank), "GetSymbolicDimensions");
        var shape = new Shape(dims.Select((d, i) =>
        {
            if (d >= 0) return Dim.Of(d);
            var sym = syms[i] == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(syms[i]);
            return string.IsNullOrEmpty(sym) ? Dim.Unknown : Dim.Symbol(sym);
        }));
        return ((DataType)et, shape);
    }

    /// <summary>Runs the model. Inputs by name; returns the requested outputs (default: all) in order,
    /// each a Tensor named after its output.</summary>
    public Tensor[] Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string>? outputNames = null)
    {
        var api = OrtLibrary.Api;
        outputNames ??= Outputs.Select(o => o.Name).ToList();
        foreach (var i in Inputs)
            if (!inputs.ContainsKey(i.Name)) throw new OnnxModelException($"model input '{i.Name}' ({i}) was not given");
        var n = inputs.Count;
        var names = new IntPtr[n];
        var values = new IntPtr[n];
        var pins = new MemoryHandle[n];
        var outNames = new IntPtr[outputNames.Count];
        var outValues = new IntPtr[outputNames.Count];
        bool addRef = false;
        try
        {
            _handle.DangerousAddRef(ref addRef);
            int k = 0;
            foreach (var (name, t) in inputs)
            {
                if (!_inputsByName.TryGetValue(name, out var info))
                    throw new OnnxModelException($"the model has no input named '{name}' (inputs: {string.Join(", ", Inputs.Select(x => x.Name))})");
                if (info.ElementType != t.ElementType)
                    throw new OnnxModelException($"input '{name}' expects {info.ElementType.Name()} but got {t.ElementType.Name()}");
                if (info.Shape is { } s && (s.Rank != t.Dims.Length || s.Dims.Where((d, j) => d.Value is long v && v != t.Dims[j]).Any()))
                    throw new OnnxModelException($"input '{name}' expects shape {s} but got [{string.Join(",", t.Dims)}]");
                if (t.Strings is not null) throw new OnnxModelException($"input '{name}': string tensors are not supported");
                names[k] = OrtLibrary.Utf8(name);
                var data = t.RawData.Length > 0 ? t.RawData : Dummy;
                pins[k] = data.Pin();
                IntPtr value;
                fixed (long* shape = t.Dims)
                    api.Check(api.CreateTensorWithDataAsOrtValue(OrtLibrary.CpuMemoryInfo, pins[k].Pointer, (nuint)t.RawData.Length,
                        shape, (nuint)t.Dims.Length, (int)t.ElementType, &value), $"input '{name}'");
                values[k] = value;
                k++;
            }
            for (int i = 0; i < outputNames.Count; i++) outNames[i] = OrtLibrary.Utf8(outputNames[i]);
            fixed (IntPtr* inN = names, inV = values, oN = outNames, oV = outValues)
                api.Check(api.Run(_handle.DangerousGetHandle(), IntPtr.Zero, inN, inV, (nuint)n, oN, (nuint)outNames.Length, oV), "Run");
            var results = new Tensor[outputNames.Count];
            for (int i = 0; i < results.Length; i++) results[i] = ReadOutput(api, outValues[i], outputNames[i]);
            return results;
        }
        finally
        {
            foreach (var v in values) if (v != IntPtr.Zero) api.ReleaseValue(v);
            foreach (var v in outValues) if (v != IntPtr.Zero) api.ReleaseValue(v);
            foreach (var p in pins) p.Dispose();
            foreach (var p in names) if (p != IntPtr.Zero) Marshal.FreeCoTaskMem(p);
            foreach (var p in outNames) if (p != IntPtr.Zero) Marshal.FreeCoTaskMem(p);
            if (addRef) _handle.DangerousRelease();
        }
    }

    private static readonly ReadOnlyMemory<byte> Dummy = new byte[8];

    private static Tensor ReadOutput(OrtApi api, IntPtr value, string name)
    {
        int isTensor;
        api.Check(api.IsTensor(value, &isTensor), "IsTensor");
        if (isTensor == 0) throw new OnnxModelException($"output '{name}' is not a tensor (sequences and maps are not supported)");
        IntPtr tinfo;
        api.Check(api.GetTensorTypeAndShape(value, &tinfo), "GetTensorTypeAndShape");
        DataType type;
        Shape shape;
        try { (type, shape) = ReadTypeAndShape(api, tinfo, symbolic: false); }
        finally { api.ReleaseTensorTypeAndShapeInfo(tinfo); }
        if (type == DataType.String) throw new OnnxModelException($"output '{name}': string tensors are not supported");
        var dims = shape.ToArray();
        var bytes = new byte[type.ByteCount(dims.Aggregate(1L, (a, b) => a * b))];
        if (bytes.Length > 0)
        {
            void* p;
            api.Check(api.GetTensorMutableData(value, &p), "GetTensorMutableData");
            new ReadOnlySpan<byte>(p, bytes.Length).CopyTo(bytes);
        }
        return new Tensor(name, type, dims, bytes);
    }

    public void Dispose() => _handle.Dispose();

    private sealed class SessionHandle(IntPtr h) : SafeHandle(h, ownsHandle: true)
    {
        public override bool IsInvalid => handle == IntPtr.Zero;
        protected override bool ReleaseHandle()
        {
            OrtLibrary.Api.ReleaseSession(handle);
            return true;
        }
    }
}
