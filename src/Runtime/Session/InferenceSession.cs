// An ONNX Runtime session over a model (bytes or IR), on the official Microsoft.ML.OnnxRuntime API.
// Inputs and outputs are GraphIR Tensors (packed little-endian bytes): inputs are pinned and handed to
// ORT without a copy, outputs are copied out once, so data moves between the IR, .npy/.pb files and ORT
// without conversion. Any intermediate value can be read: the session is built over a copy of the model
// with those values appended to the graph outputs. With SessionSettings.ShareInitializersFrom (and ORT's
// rewrites off) large weights are handed to ORT over the IR's memory instead of being serialized: sessions
// over a model and its rewrite then share every unchanged weight with the IR, the way a large model is
// validated in about its own size. A session may be run from several threads at once;
// Dispose waits for runs in flight. ORT's errors become OrtException with one line saying what failed.
using System.Buffers;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;
using Ort = Microsoft.ML.OnnxRuntime;

namespace OnnxOpt.Runtime;

public enum GraphOptimization { Disabled = 0, Basic = 1, Extended = 2, All = 99 }

public sealed record SessionSettings
{
    public int IntraOpThreads { get; init; } = 1;
    public int InterOpThreads { get; init; } = 1;
    /// <summary>Run independent branches of the graph in parallel (InterOpThreads workers).</summary>
    public bool ParallelExecution { get; init; }
    public GraphOptimization Optimization { get; init; } = GraphOptimization.All;
    /// <summary>Where ORT writes the graph after its own optimizations (to see what it fused).</summary>
    public string? OptimizedModelPath { get; init; }
    /// <summary>Idle worker threads spin by default in ORT; off here so tests and benchmarks do not burn CPU.</summary>
    public bool AllowSpinning { get; init; }
    public OrtLogLevel LogLevel { get; init; } = OrtLogLevel.Warning;
    /// <summary>Symbolic dimensions fixed by name (ORT then plans memory for the fixed shape).</summary>
    public IReadOnlyDictionary<string, long> FreeDimensions { get; init; } = new Dictionary<string, long>();
    /// <summary>Further session config entries ("optimization.disable_specified_optimizers", ...).</summary>
    public IReadOnlyDictionary<string, string> ConfigEntries { get; init; } = new Dictionary<string, string>();
    /// <summary>In <see cref="InferenceSession.FromModel"/> with optimization Disabled: main-graph initializers
    /// of at least this many bytes are not serialized but handed to ORT over the IR's own memory (shared
    /// initializers, not prepacked), so the session holds no copy of them (null: every initializer is
    /// serialized). Ignored when ORT's graph rewrites run, since they read initializer data from the
    /// serialized model.</summary>
    public long? ShareInitializersFrom { get; init; }
    /// <summary>ORT's CPU arena and memory patterns (on by default): off, each run's intermediates are freed when
    /// it ends instead of staying reserved for the session's life (for one-off sessions over large models).</summary>
    public bool MemoryArena { get; init; } = true;
    /// <summary>ORT's profiler on: each run's kernel times go to a JSON trace whose name starts with this
    /// path (<see cref="InferenceSession.EndProfiling"/> closes it and returns its path;
    /// <see cref="Validation.OpProfile"/> reads it). It slows every run a little, so a timed benchmark profiles
    /// in a session of its own.</summary>
    public string? ProfilePrefix { get; init; }
    /// <summary>ORT's `session.set_denormal_as_zero`: flush-to-zero and denormals-as-zero on the threads that run
    /// the model. ORT applies it once per process, from the first session created, so every later session of the
    /// process runs as the first one asked.</summary>
    public bool DenormalsAsZero { get; init; }

    public override string ToString() =>
        $"intra-op threads {IntraOpThreads}, inter-op threads {InterOpThreads}, graph optimization {Optimization}";

    internal Ort.SessionOptions ToOrt()
    {
        var o = new Ort.SessionOptions();
        try
        {
            o.IntraOpNumThreads = IntraOpThreads;
            o.InterOpNumThreads = InterOpThreads;
            o.ExecutionMode = ParallelExecution ? Ort.ExecutionMode.ORT_PARALLEL : Ort.ExecutionMode.ORT_SEQUENTIAL;
            o.GraphOptimizationLevel = (Ort.GraphOptimizationLevel)(int)Optimization;
            o.LogSeverityLevel = (Ort.OrtLoggingLevel)LogLevel;
            o.EnableCpuMemArena = MemoryArena;
            o.EnableMemoryPattern = MemoryArena;
            o.AddSessionConfigEntry("session.intra_op.allow_spinning", AllowSpinning ? "1" : "0");
            o.AddSessionConfigEntry("session.inter_op.allow_spinning", AllowSpinning ? "1" : "0");
            if (OptimizedModelPath is { } p) o.OptimizedModelFilePath = Path.GetFullPath(p);
            if (ProfilePrefix is { } prefix)
            {
                // The prefix first: setting EnableProfiling hands ORT the prefix set at that moment.
                o.ProfileOutputPathPrefix = Path.GetFullPath(prefix);
                o.EnableProfiling = true;
            }
            foreach (var (name, value) in FreeDimensions.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                o.AddFreeDimensionOverrideByName(name, value);
            if (DenormalsAsZero) o.AddSessionConfigEntry("session.set_denormal_as_zero", "1");
            foreach (var (key, value) in ConfigEntries.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                o.AddSessionConfigEntry(key, value);
            return o;
        }
        catch
        {
            o.Dispose();
            throw;
        }
    }
}

public sealed class InferenceSession : IModelRunner
{
    private readonly Ort.InferenceSession _session;
    private readonly Dictionary<string, IoInfo> _inputsByName;
    private readonly ReaderWriterLockSlim _life = new(LockRecursionPolicy.NoRecursion);
    private bool _disposed;

    public IReadOnlyList<IoInfo> Inputs { get; }
    public IReadOnlyList<IoInfo> Outputs { get; }
    public SessionSettings Settings { get; }

    // Shared initializers' pins and OrtValues, released after the session.
    private readonly List<IDisposable> _keepAlive;

    private InferenceSession(Ort.InferenceSession session, SessionSettings settings,
        List<IDisposable>? keepAlive = null, IReadOnlyDictionary<string, ValueRange>? ranges = null)
    {
        _session = session;
        _keepAlive = keepAlive ?? [];
        Settings = settings;
        Inputs = session.InputNames.Select(n => Info(n, session.InputMetadata[n]) with
        {
            Range = ranges?.GetValueOrDefault(n),
        }).ToList();
        Outputs = session.OutputNames.Select(n => Info(n, session.OutputMetadata[n])).ToList();
        _inputsByName = Inputs.ToDictionary(i => i.Name);
    }

    /// <param name="ranges">The integer inputs' value ranges (InputRanges.Of the model's graph), given to
    /// <see cref="Inputs"/> so that random inputs fit the model.</param>
    public static InferenceSession FromBytes(byte[] model, SessionSettings? settings = null,
        IReadOnlyDictionary<string, ValueRange>? ranges = null)
    {
        settings ??= new SessionSettings();
        OrtEnvironment.EnsureLoaded();
        try
        {
            using var options = settings.ToOrt();
            return new InferenceSession(new Ort.InferenceSession(model, options), settings, null, ranges);
        }
        catch (Ort.OnnxRuntimeException e) { throw OrtException.From(e, "CreateSession"); }
    }

    /// <summary>A session over an IR model; <paramref name="extraOutputs"/> names intermediate values
    /// to return as well (the caller's model is not changed).</summary>
    public static InferenceSession FromModel(Model model, SessionSettings? settings = null,
        IEnumerable<string>? extraOutputs = null)
    {
        settings ??= new SessionSettings();
        var ranges = InputRanges.Of(model.Graph);
        var extra = extraOutputs?.ToList();
        if (extra is { Count: > 0 })
        {
            model = model.Clone();
            foreach (var name in extra)
            {
                var v = model.Graph.Find(name)
                    ?? throw new OnnxModelException($"no value named '{name}' in the main graph");
                if (!v.IsGraphOutput) model.Graph.AddOutput(v);
            }
        }
        if (settings.ShareInitializersFrom is not long min || settings.Optimization != GraphOptimization.Disabled)
            return FromBytes(OnnxExporter.ToBytes(model), settings, ranges);
        // ORT asks for at least 128 bytes of data in a tensor over user memory.
        var shared = model.Graph.Initializers.Where(v => !v.IsGraphInput).Select(v => v.Initializer!)
            .Where(t => t.Strings is null && t.ByteSize >= Math.Max(min, 128)).ToList();
        if (shared.Count == 0) return FromBytes(OnnxExporter.ToBytes(model), settings, ranges);
        return WithSharedInitializers(model, settings, shared, ranges);
    }

    // ORT checks that an external data file exists even when a shared initializer replaces its data, so the
    // references point at an empty file in a temporary folder that only lives while the session is created.
    private const string Placeholder = "onnxopt-shared-initializer";

    private static InferenceSession WithSharedInitializers(Model model, SessionSettings settings, List<Tensor> shared,
        IReadOnlyDictionary<string, ValueRange> ranges)
    {
        OrtEnvironment.EnsureLoaded();
        var set = shared.ToHashSet(ReferenceEqualityComparer.Instance);
        var bytes = OnnxExporter.ToBytesWithout(model, set.Contains, Placeholder);
        var dir = Directory.CreateTempSubdirectory("onnxopt-shared-");
        var keep = new List<IDisposable>(2 * shared.Count);
        try
        {
            File.Create(Path.Combine(dir.FullName, Placeholder)).Dispose();
            using var options = settings.ToOrt();
            options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", dir.FullName);
            // Prepacking would give each session a packed copy of every MatMul/Gemm/Conv weight.
            options.AddSessionConfigEntry("session.disable_prepacking", "1");
            foreach (var t in shared)
            {
                var data = t.RawData;
                var pin = data.Pin();
                keep.Add(pin);
                Ort.OrtValue value;
                unsafe
                {
                    value = Ort.OrtValue.CreateTensorValueWithData(Ort.OrtMemoryInfo.DefaultInstance,
                        (Ort.Tensors.TensorElementType)(int)t.ElementType, t.Dims, (IntPtr)pin.Pointer, data.Length);
                }
                keep.Add(value);
                options.AddInitializer(t.Name, value);
            }
            return new InferenceSession(new Ort.InferenceSession(bytes, options), settings, keep, ranges);
        }
        catch (Exception e)
        {
            foreach (var k in keep) k.Dispose();
            if (e is Ort.OnnxRuntimeException ort) throw OrtException.From(ort, "CreateSession");
            throw;
        }
        finally { dir.Delete(recursive: true); }
    }

    private static IoInfo Info(string name, Ort.NodeMetadata m)
    {
        if (!m.IsTensor) return new IoInfo(name, DataType.Undefined, null);
        var dims = m.Dimensions;
        var syms = m.SymbolicDimensions;
        var shape = new Shape(dims.Select((d, i) =>
        {
            if (d >= 0) return Dim.Of(d);
            var sym = i < syms.Length ? syms[i] : null;
            return string.IsNullOrEmpty(sym) ? Dim.Unknown : Dim.Symbol(sym);
        }));
        return new IoInfo(name, (DataType)(int)m.ElementDataType, shape);
    }

    /// <summary>Runs the model. Inputs by name; returns the requested outputs (default: all) in order,
    /// each a Tensor named after its output.</summary>
    public Tensor[] Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyList<string>? outputNames = null)
    {
        outputNames ??= Outputs.Select(o => o.Name).ToList();
        foreach (var i in Inputs)
            if (!inputs.ContainsKey(i.Name))
                throw new OnnxModelException($"model input '{i.Name}' ({i}) was not given");
        _life.EnterReadLock();
        var names = new List<string>(inputs.Count);
        var values = new List<Ort.OrtValue>(inputs.Count);
        var pins = new List<MemoryHandle>(inputs.Count);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var (name, t) in inputs)
            {
                Check(name, t);
                names.Add(name);
                var data = t.RawData.Length > 0 ? t.RawData : Dummy;
                var pin = data.Pin();
                pins.Add(pin);
                unsafe
                {
                    values.Add(Ort.OrtValue.CreateTensorValueWithData(Ort.OrtMemoryInfo.DefaultInstance,
                        (Ort.Tensors.TensorElementType)(int)t.ElementType, t.Dims, (IntPtr)pin.Pointer, t.RawData.Length));
                }
            }
            using var results = _session.Run(RunOptions, names, values, outputNames);
            var tensors = new Tensor[outputNames.Count];
            int k = 0;
            foreach (var r in results)
            {
                tensors[k] = ReadOutput(r, outputNames[k]);
                k++;
            }
            return tensors;
        }
        catch (Ort.OnnxRuntimeException e) { throw OrtException.From(e, "Run"); }
        finally
        {
            foreach (var v in values) v.Dispose();
            foreach (var p in pins) p.Dispose();
            _life.ExitReadLock();
        }
    }

    private void Check(string name, Tensor t)
    {
        if (!_inputsByName.TryGetValue(name, out var info))
            throw new OnnxModelException(
                $"the model has no input named '{name}' (inputs: {string.Join(", ", Inputs.Select(x => x.Name))})");
        if (info.ElementType != t.ElementType)
            throw new OnnxModelException($"input '{name}' expects {info.ElementType.Name()} but got {t.ElementType.Name()}");
        if (info.Shape is { } s && (s.Rank != t.Dims.Length || s.Dims.Where((d, j) => d.Value is long v
            && v != t.Dims[j]).Any()))
            throw new OnnxModelException($"input '{name}' expects shape {s} but got [{string.Join(",", t.Dims)}]");
        if (t.Strings is not null) throw new OnnxModelException($"input '{name}': string tensors are not supported");
    }

    private static readonly Ort.RunOptions RunOptions = new();
    private static readonly ReadOnlyMemory<byte> Dummy = new byte[8];

    private static Tensor ReadOutput(Ort.OrtValue value, string name)
    {
        if (!value.IsTensor)
            throw new OnnxModelException($"output '{name}' is not a tensor (sequences and maps are not supported)");
        var info = value.GetTensorTypeAndShape();
        var type = (DataType)(int)info.ElementDataType;
        if (type == DataType.String) throw new OnnxModelException($"output '{name}': string tensors are not supported");
        var dims = info.Shape;
        var bytes = new byte[type.ByteCount(dims.Aggregate(1L, (a, b) => a * b))];
        if (bytes.Length > 0) value.GetTensorMutableRawData()[..bytes.Length].CopyTo(bytes);
        return new Tensor(name, type, dims, bytes);
    }

    /// <summary>Closes the profiler's trace (sessions made with <see cref="SessionSettings.ProfilePrefix"/>)
    /// and returns the trace file's path.</summary>
    public string EndProfiling()
    {
        if (Settings.ProfilePrefix is null) throw new InvalidOperationException("the session was not profiling");
        _life.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _session.EndProfiling();
        }
        catch (Ort.OnnxRuntimeException e) { throw OrtException.From(e, "EndProfiling"); }
        finally { _life.ExitWriteLock(); }
    }

    public void Dispose()
    {
        _life.EnterWriteLock();
        try
        {
            if (_disposed) return;
            _disposed = true;
            _session.Dispose();
            foreach (var k in _keepAlive) k.Dispose();
        }
        finally { _life.ExitWriteLock(); }
    }
}
