// Sample data for running a model, from a folder or seeded random numbers.
// Folder conventions:
//  - NumPy: one "<input name>.npy" per model input, N samples stacked on axis 0 (a single-input model
//    may use any one .npy file); optional "labels.npy" (integer class ids, length N). If an array has
//    one axis more than the model input, axis 0 is a sample axis and each sample is fed alone.
//  - ONNX backend test layout: "test_data_set_*/input_K.pb" (or input_K.pb directly), one run each,
//    with "output_K.pb" as expected outputs.
// Batches come out in file order, so every run sees the same samples in the same order. Samples are
// read (or generated) batch by batch, so memory does not grow with the number of samples.
using OnnxOpt.GraphIR;

namespace OnnxOpt.Data;

public sealed record Batch(IReadOnlyDictionary<string, Tensor> Inputs, long[]? Labels,
    IReadOnlyList<Tensor>? ExpectedOutputs = null);

public sealed class DataSet
{
    private readonly Func<int, IEnumerable<Batch>> _batches;

    private DataSet(string description, int samples, bool hasLabels, Func<int, IEnumerable<Batch>> batches)
    {
        Description = description; SampleCount = samples; HasLabels = hasLabels; _batches = batches;
    }

    public string Description { get; }
    public int SampleCount { get; }
    public bool HasLabels { get; }

    /// <summary>Batches of at most <paramref name="batchSize"/> samples (inputs with a static batch dim
    /// use that size instead).</summary>
    public IEnumerable<Batch> Batches(int batchSize = 32) => _batches(batchSize);

    /// <summary>Samples skipped so far for holding NaN or infinity (FromFolder with skipNonFinite); counted as
    /// the batches stream.</summary>
    public int SkippedNonFinite { get; private set; }
    /// <summary>Symbolic dims random inputs set to 1 because no value was given (a failure in the runtime
    /// may need them: --dim NAME=V).</summary>
    public IReadOnlyList<string> DefaultedDims { get; private init; } = [];

    /// <param name="skipNonFinite">Drop samples holding NaN or infinity (counted in SkippedNonFinite) instead of
    /// refusing the data at the first one.</param>
    public static DataSet FromFolder(string dir, IReadOnlyList<IoInfo> inputs, bool skipNonFinite = false)
    {
        if (!Directory.Exists(dir)) throw new OnnxModelException($"data folder '{dir}' not found");
        var sets = Directory.GetDirectories(dir, "test_data_set_*").Order(StringComparer.Ordinal).ToList();
        if (sets.Count > 0 || File.Exists(Path.Combine(dir, "input_0.pb")))
            return FromPbSets(sets.Count > 0 ? sets : [dir], inputs, dir);
        return FromNpy(dir, inputs, skipNonFinite);
    }

    /// <summary>The index of the first sample (axis 0) of a float tensor holding NaN or infinity, else -1.</summary>
    public static long FirstNonFiniteSample(Tensor t)
    {
        if (!t.ElementType.IsFloatingPoint() || t.ElementCount == 0) return -1;
        var per = t.Dims.Length == 0 ? 1 : Math.Max(1, t.ElementCount / Math.Max(1, t.Dims[0]));
        // Scanned in place for float and double (every batch passes through here); other types converted.
        long bad = t.ElementType switch
        {
            DataType.Float => FirstNonFinite(t.Span<float>()),
            DataType.Double => FirstNonFinite(t.Span<double>()),
            _ => FirstNonFinite<float>(t.ToFloatArray()),
        };
        return bad < 0 ? -1 : bad / per;
    }

    private static long FirstNonFinite<T>(ReadOnlySpan<T> v) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        for (int i = 0; i < v.Length; i++) if (!T.IsFinite(v[i])) return i;
        return -1;
    }

    private static DataSet FromPbSets(List<string> sets, IReadOnlyList<IoInfo> inputs, string dir)
    {
        var batches = new List<Batch>();
        foreach (var set in sets)
        {
            var feed = new Dictionary<string, Tensor>();
            for (int k = 0; k < inputs.Count; k++)
            {
                var p = Path.Combine(set, $"input_{k}.pb");
                if (!File.Exists(p))
                    throw new OnnxModelException($"{set}: input_{k}.pb missing for model input '{inputs[k].Name}'");
                feed[inputs[k].Name] = OnnxImporter.ParseTensor(FileKinds.ReadAllBytes(p, "tensor file"), p)
                    .WithName(inputs[k].Name);
            }
            var expected = new List<Tensor>();
            for (int k = 0; File.Exists(Path.Combine(set, $"output_{k}.pb")); k++)
            {
                var op = Path.Combine(set, $"output_{k}.pb");
                expected.Add(OnnxImporter.ParseTensor(FileKinds.ReadAllBytes(op, "tensor file"), op));
            }
            batches.Add(new Batch(feed, null, expected));
        }
        return new DataSet($"{dir} ({batches.Count} ONNX test data sets)", batches.Count, false, _ => batches);
    }

    private static DataSet FromNpy(string dir, IReadOnlyList<IoInfo> inputs, bool skipNonFinite)
    {
        var data = OpenInputs(dir, inputs);
        var (stacked, n) = SampleLayout(dir, inputs, data);
        var labels = ReadLabels(dir, n);
        var total = (int)(n ?? 0);
        if (total == 0) throw new OnnxModelException($"data folder '{dir}' holds no samples");
        DataSet? set = null;
        IEnumerable<Batch> Make(int batchSize)
        {
            var fixedBatch = inputs.Select(i => !stacked[i.Name] && i.Shape is { } s
                && s[0].Value is long b ? (long?)b : null).FirstOrDefault(b => b is not null);
            var step = stacked.Values.Any(x => x) ? 1 : (int)(fixedBatch ?? batchSize);
            if (step <= 0) step = 1;
            for (int start = 0; start < total; start += step)
            {
                var count = Math.Min(step, total - start);
                var feed = new Dictionary<string, Tensor>();
                foreach (var i in inputs)
                {
                    var t = data[i.Name];
                    if (stacked[i.Name])
                    {
                        var row = t.Rows(start, 1);
                        feed[i.Name] = new Tensor(i.Name, t.ElementType, t.Dims[1..], row.RawData);
                    }
                    else
                    {
                        var per = fixedBatch ?? 1;
                        feed[i.Name] = t.Rows(start * per, count * per, i.Name);
                    }
                }
                var batchLabels = labels?[start..(start + count)];
                // Rows of axis 0 are samples unless samples are stacked on an extra axis or the batch is fixed.
                bool rowsAreSamples = !stacked.Values.Any(x => x) && fixedBatch is null;
                var badInput = inputs.FirstOrDefault(i => FirstNonFiniteSample(feed[i.Name]) >= 0);
                if (badInput is not null)
                {
                    var bad = start + (rowsAreSamples ? FirstNonFiniteSample(feed[badInput.Name]) : 0);
                    if (!skipNonFinite)
                        throw new OnnxModelException($"{data[badInput.Name].Path}: sample {bad} holds NaN or infinity "
                            + "(remove it, or give --skip-nonfinite to drop such samples)");
                    var keep = rowsAreSamples ? Enumerable.Range(0, count).Where(k => inputs.All(i =>
                        FirstNonFiniteSample(Rows(feed[i.Name], k, 1)) < 0)).ToList() : [];
                    set!.SkippedNonFinite += count - keep.Count;
                    if (keep.Count == 0) continue;
                    var kept = feed;
                    feed = inputs.ToDictionary(i => i.Name,
                        i => Stack(keep.Select(k => Rows(kept[i.Name], k, 1)).ToList()));
                    batchLabels = batchLabels is null ? null : keep.Select(k => batchLabels[k]).ToArray();
                }
                yield return new Batch(feed, batchLabels);
            }
        }
        return set = new DataSet($"{dir} ({total} samples{(labels is null ? "" : ", with labels")})", total,
            labels is not null, Make);
    }

    /// <summary>The .npy file of each model input (NAME.npy, or the folder's only data file for a one-input
    /// model), of the input's element type.</summary>
    private static Dictionary<string, NpyFile> OpenInputs(string dir, IReadOnlyList<IoInfo> inputs)
    {
        var files = Directory.GetFiles(dir, "*.npy").Order(StringComparer.Ordinal).ToList();
        var data = new Dictionary<string, NpyFile>();
        foreach (var i in inputs)
        {
            var p = Path.Combine(dir, i.Name + ".npy");
            if (!File.Exists(p))
            {
                var candidates = files.Where(f => Path.GetFileName(f) != "labels.npy").ToList();
                if (inputs.Count == 1 && candidates.Count == 1) p = candidates[0];
                else throw new OnnxModelException($"data folder '{dir}' has no '{i.Name}.npy' for model input '{i.Name}'" +
                    (candidates.Count > 0 ? $" (found {string.Join(", ", candidates.Select(Path.GetFileName))})" : ""));
            }
            var t = Npy.Open(p, i.Name);
            if (t.ElementType != i.ElementType)
                throw new OnnxModelException($"{p}: holds {t.ElementType.Name()} but model input '{i.Name}' is {i.ElementType.Name()}");
            data[i.Name] = t;
        }
        return data;
    }

    /// <summary>Per input, whether its samples are stacked on an extra leading axis (one model batch per row),
    /// and the number of samples every input holds (refusing shapes the model's inputs do not take).</summary>
    private static (Dictionary<string, bool> Stacked, long? Samples) SampleLayout(string dir,
        IReadOnlyList<IoInfo> inputs, Dictionary<string, NpyFile> data)
    {
        var stacked = new Dictionary<string, bool>();
        long? n = null;
        foreach (var i in inputs)
        {
            var t = data[i.Name];
            var rank = i.Shape?.Rank ?? t.Dims.Length;
            bool extraAxis = t.Dims.Length == rank + 1;
            if (!extraAxis && t.Dims.Length != rank)
                throw new OnnxModelException($"{i.Name}.npy has shape [{string.Join(",", t.Dims)}] but model input is {i}");
            if (t.Dims.Length == 0)
                throw new OnnxModelException($"{i.Name}.npy is a scalar; it must hold samples on axis 0");
            stacked[i.Name] = extraAxis;
            var count = t.Dims[0];
            if (!extraAxis && i.Shape is { } s && s[0].Value is long b && b > 0) count /= b;
            if (n is not null && n != count)
                throw new OnnxModelException(
                    $"data folder '{dir}': inputs hold different sample counts ({n} and {count} for '{i.Name}')");
            n = count;
            if (i.Shape is { } shape)
                for (int d = 1; d < shape.Rank; d++)
                {
                    var actual = t.Dims[d + (extraAxis ? 1 : 0)];
                    if (shape[d].Value is long want && want != actual)
                        throw new OnnxModelException($"{i.Name}.npy has shape [{string.Join(",", t.Dims)}] but model input is {i}");
                }
        }
        return (stacked, n);
    }

    /// <summary>labels.npy, if the folder has one: one non-negative integer class id per sample.</summary>
    private static long[]? ReadLabels(string dir, long? n)
    {
        long[]? labels = null;
        var lp = Path.Combine(dir, "labels.npy");
        if (File.Exists(lp))
        {
            var lt = Npy.Open(lp).ReadAll();
            if (lt.ElementType is not (DataType.Int64 or DataType.Int32 or DataType.UInt8 or DataType.Int8 or DataType.Int16))
                throw new OnnxModelException($"{lp}: labels must be integer class ids, got {lt.ElementType.Name()}");
            labels = lt.ToInt64Array();
            if (labels.Length != n) throw new OnnxModelException($"{lp}: {labels.Length} labels for {n} samples");
            var negative = Array.FindIndex(labels, l => l < 0);
            if (negative >= 0)
                throw new OnnxModelException($"{lp}: label {labels[negative]} at index {negative} is negative");
        }
        return labels;
    }

    /// <summary>The samples whose index (in this set's order) <paramref name="keep"/> accepts, in order: each
    /// batch of this set yields the rows it keeps (batches may be smaller than asked).</summary>
    public DataSet Where(Func<int, bool> keep, string description)
    {
        int count = Enumerable.Range(0, SampleCount).Count(keep);
        IEnumerable<Batch> Make(int batchSize)
        {
            int index = 0;
            foreach (var b in _batches(batchSize))
            {
                int n = (int)(b.Inputs.Values.FirstOrDefault()?.Dims.FirstOrDefault(1) ?? 1);
                var rows = Enumerable.Range(0, n).Where(i => keep(index + i)).ToList();
                index += n;
                if (rows.Count == 0) continue;
                if (rows.Count == n) { yield return b; continue; }
                Tensor Take(Tensor t) => t.Dims.Length > 0 && t.Dims[0] == n
                    ? Stack(rows.Select(r => Rows(t, r, 1)).ToList()) : t;
                yield return new Batch(b.Inputs.ToDictionary(kv => kv.Key, kv => Take(kv.Value)),
                    b.Labels is null ? null : rows.Select(r => b.Labels[r]).ToArray(),
                    b.ExpectedOutputs?.Select(Take).ToList());
            }
        }
        return new DataSet(description, count, HasLabels, Make);
    }

    /// <summary>Samples already in memory: one tensor per input, N samples stacked on axis 0, optional
    /// labels (length N). Batches are slices along axis 0, in order.</summary>
    public static DataSet FromTensors(IReadOnlyDictionary<string, Tensor> inputs, long[]? labels = null,
        string? description = null)
    {
        if (inputs.Count == 0) throw new OnnxModelException("a data set needs at least one input tensor");
        var n = inputs.Values.First().Dims.FirstOrDefault(1);
        foreach (var (name, t) in inputs)
            if (t.ElementType.BitWidth() < 8 || t.Strings is not null)
                throw new OnnxModelException(
                    $"input '{name}': {t.ElementType.Name()} samples cannot be batched in memory");
            else if (t.Dims.Length == 0 || t.Dims[0] != n)
                throw new OnnxModelException(
                    $"input '{name}': {t.Dims.FirstOrDefault()} samples on axis 0, expected {n} like the others");
        if (labels is not null
            && labels.Length != n) throw new OnnxModelException($"{labels.Length} labels for {n} samples");
        IEnumerable<Batch> Make(int batchSize)
        {
            for (long start = 0; start < n; start += batchSize)
            {
                var count = Math.Min(batchSize, n - start);
                var feed = inputs.ToDictionary(kv => kv.Key, kv => Rows(kv.Value, start, count));
                yield return new Batch(feed, labels?[(int)start..(int)(start + count)]);
            }
        }
        var what = description ?? $"{n} samples in memory";
        return new DataSet($"{what}{(labels is null ? "" : ", with labels")}", (int)n, labels is not null, Make);
    }

    /// <summary>Tensors of the same type and trailing dims, one after another along axis 0.</summary>
    private static Tensor Stack(List<Tensor> parts)
    {
        var dims = parts[0].Dims.ToArray();
        dims[0] = parts.Sum(p => p.Dims[0]);
        var bytes = new byte[parts.Sum(p => (long)p.RawData.Length)];
        long at = 0;
        foreach (var p in parts)
        {
            p.RawData.Span.CopyTo(bytes.AsSpan((int)at));
            at += p.RawData.Length;
        }
        return new Tensor(parts[0].Name, parts[0].ElementType, dims, bytes);
    }

    /// <summary>Rows [start, start + count) of a tensor along axis 0.</summary>
    private static Tensor Rows(Tensor t, long start, long count)
    {
        var row = t.ElementType.ByteCount(t.Dims.Skip(1).Aggregate(1L, (a, b) => a * b));
        var dims = t.Dims.ToArray();
        dims[0] = count;
        return new Tensor(t.Name, t.ElementType, dims, t.RawData.Slice((int)(start * row),
            (int)(count * row)).ToArray());
    }

    /// <summary>Seeded random inputs: <paramref name="count"/> runs; symbolic dims take the value in
    /// <paramref name="dims"/> or 1. Floats ~ N(0,1); bools 0/1; integers uniform in the input's range: the one
    /// in <paramref name="ranges"/>, else the one the model's use gives it (<see cref="IoInfo.Range"/>, from
    /// <see cref="InputRanges"/>), else [0,4). A mask is a prefix of ones along its last axis.</summary>
    public static DataSet Random(IReadOnlyList<IoInfo> inputs, int count, ulong seed, IReadOnlyDictionary<string,
        long>? dims = null, IReadOnlyDictionary<string, ValueRange>? ranges = null)
    {
        foreach (var i in inputs)
            if (i.ElementType is not (DataType.Float or DataType.Double or DataType.Float16 or DataType.Int64
                or DataType.Int32 or DataType.Bool or DataType.UInt8 or DataType.Int8))
                throw new OnnxModelException($"input '{i.Name}': random {i.ElementType.Name()} data is not "
                    + "supported; give a data folder");
        if (ranges is not null)
            foreach (var name in ranges.Keys.Where(n => inputs.All(i => i.Name != n)))
                throw new OnnxModelException($"--int-range {name}: the model has no input '{name}' (inputs: "
                    + string.Join(", ", inputs.Select(i => i.Name)) + ")");
        var used = inputs.Where(i => i.ElementType is DataType.Int64 or DataType.Int32 or DataType.UInt8
            or DataType.Int8).ToDictionary(i => i.Name, i => ranges?.GetValueOrDefault(i.Name) ?? i.Range
            ?? ValueRange.Default);
        IEnumerable<Batch> Make()
        {
            var rng = new SplitMix64(seed);
            for (int k = 0; k < count; k++)
            {
                var feed = new Dictionary<string, Tensor>();
                foreach (var i in inputs)
                {
                    var shape = (i.Shape?.Dims ?? []).Select(d => d.Value ?? (d.Param is not null
                        && dims?.TryGetValue(d.Param, out var v) == true ? v : 1)).ToArray();
                    feed[i.Name] = RandomTensor(i.Name, i.ElementType, shape, rng, used.GetValueOrDefault(i.Name));
                }
                yield return new Batch(feed, null);
            }
        }
        var defaulted = inputs.SelectMany(i => i.Shape?.Dims ?? []).Where(d => d.Value is null && d.Param is not null
            && dims?.ContainsKey(d.Param) != true).Select(d => d.Param!).Distinct().ToList();
        return new DataSet($"{count} seeded random input sets (seed {seed})", count, false, _ => Make())
        {
            DefaultedDims = defaulted,
            IntegerRanges = used,
        };
    }

    /// <summary>For random inputs, the range each integer input was drawn from (said when a run fails).</summary>
    public IReadOnlyDictionary<string, ValueRange> IntegerRanges { get; private init; } =
        new Dictionary<string, ValueRange>();

    private static Tensor RandomTensor(string name, DataType t, long[] shape, SplitMix64 rng, ValueRange? range)
    {
        var count = shape.Aggregate(1.0, (a, b) => a * b);
        if (count * Math.Max(1, t.BitWidth() / 8) > Array.MaxLength)
            throw new OnnxModelException($"input '{name}': a random sample of shape [{string.Join(",", shape)}] is "
                + "larger than one array can hold; give its dims (--dim) or a data folder");
        var n = (int)count;
        var bytes = new byte[t.ByteCount(n)];
        var span = bytes.AsSpan();
        var r = range ?? ValueRange.Default;
        var width = (ulong)(r.Hi - r.Lo);
        var row = shape.Length == 0 ? 1 : (int)Math.Max(1, shape[^1]);
        int ones = 0;
        for (int j = 0; j < n; j++)
        {
            long Int()
            {
                if (!r.IsMask) return r.Lo + (long)(rng.Next() % width);
                if (j % row == 0) ones = 1 + (int)(rng.Next() % (ulong)row);
                return j % row < ones ? 1 : 0;
            }
            switch (t)
            {
                case DataType.Float: BitConverter.TryWriteBytes(span[(j * 4)..], (float)rng.NextGaussian()); break;
                case DataType.Double: BitConverter.TryWriteBytes(span[(j * 8)..], rng.NextGaussian()); break;
                case DataType.Float16: BitConverter.TryWriteBytes(span[(j * 2)..], (Half)rng.NextGaussian()); break;
                case DataType.Int64: BitConverter.TryWriteBytes(span[(j * 8)..], Int()); break;
                case DataType.Int32: BitConverter.TryWriteBytes(span[(j * 4)..], (int)Int()); break;
                case DataType.Bool: span[j] = (byte)(rng.Next() & 1); break;
                case DataType.UInt8: case DataType.Int8: span[j] = (byte)Int(); break;
                default:
                    throw new OnnxModelException($"input '{name}': random {t.Name()} data is not supported; "
                        + "give a data folder");
            }
        }
        return new Tensor(name, t, shape, bytes);
    }
}

/// <summary>A small deterministic generator (SplitMix64), the same on every platform and .NET version.</summary>
public sealed class SplitMix64(ulong seed)
{
    private ulong _s = seed;

    public ulong Next()
    {
        var z = _s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    public double NextGaussian()
    {
        var u1 = 1.0 - NextDouble();
        var u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
