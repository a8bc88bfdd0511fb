// Where a model's run time goes in ONNX Runtime, per op type: ORT's profiler trace (a JSON array of Chrome trace
// events, one "X" event per kernel run named "<node>_kernel_time" with args.op_name, and one "model_run" event per
// run) summed per op type of the graph ORT actually ran (after its own fusions, so "Attention" or
// "DynamicQuantizeMatMul" appear as ORT ran them) and divided by the number of runs:
//   ms_per_run(op) = sum of op's kernel durations / runs,   share(op) = ms_per_run(op) / sum over ops.
// The remainder of a run (model_run minus the kernels) is ORT's own overhead: feeds, fences, allocation.
using System.Text.Json;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Runtime.Validation;

/// <summary>One op type's time: <paramref name="Nodes"/> distinct nodes of that type ran.</summary>
public sealed record OpTime(string OpType, int Nodes, double MsPerRun, double Share);

public sealed record OpProfile(int Runs, double RunMs, IReadOnlyList<OpTime> Ops)
{
    /// <summary>The kernels' time per run (the sum of <see cref="Ops"/>).</summary>
    public double KernelMs => Ops.Sum(o => o.MsPerRun);

    /// <summary>Reads an ORT profiler trace; op types in descending time, ties by name. The first
    /// <paramref name="skipRuns"/> runs (warm-up) and their kernels are left out.</summary>
    public static OpProfile Read(string traceFile, int skipRuns = 0)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(traceFile));
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
            throw new OnnxModelException($"{traceFile}: not an ONNX Runtime profile (a JSON array of events)");
        var micros = new Dictionary<string, double>(StringComparer.Ordinal);
        var nodes = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        int runs = 0;
        double runMicros = 0;
        // A run's kernels start at or after its model_run event's start.
        var starts = doc.RootElement.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.Object
                && e.TryGetProperty("name", out var n) && n.GetString() == "model_run"
                && e.TryGetProperty("ts", out var t) && t.ValueKind == JsonValueKind.Number)
            .Select(e => e.GetProperty("ts").GetDouble()).Order().ToList();
        var from = skipRuns <= 0 ? double.NegativeInfinity
            : skipRuns < starts.Count ? starts[skipRuns] : double.PositiveInfinity;
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("ts", out var ts)
                || ts.ValueKind != JsonValueKind.Number || ts.GetDouble() < from) continue;
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("name", out var n)
                || !e.TryGetProperty("dur", out var d) || d.ValueKind != JsonValueKind.Number) continue;
            var name = n.GetString() ?? "";
            if (name == "model_run")
            {
                runs++;
                runMicros += d.GetDouble();
                continue;
            }
            if (!name.EndsWith("_kernel_time", StringComparison.Ordinal)
                || !e.TryGetProperty("args", out var args) || !args.TryGetProperty("op_name", out var op)) continue;
            var type = op.GetString() ?? "?";
            micros[type] = micros.GetValueOrDefault(type) + d.GetDouble();
            if (!nodes.TryGetValue(type, out var set)) nodes[type] = set = new(StringComparer.Ordinal);
            set.Add(name);
        }
        return Of(runs, runMicros, micros, nodes);
    }

    private static OpProfile Of(int runs, double runMicros, Dictionary<string, double> micros,
        Dictionary<string, HashSet<string>> nodes)
    {
        var per = Math.Max(runs, 1);
        var total = micros.Values.Sum();
        var ops = micros.Select(kv => new OpTime(kv.Key, nodes[kv.Key].Count, kv.Value / per / 1000,
                total > 0 ? kv.Value / total : 0))
            .OrderByDescending(o => o.MsPerRun).ThenBy(o => o.OpType, StringComparer.Ordinal).ToList();
        return new OpProfile(runs, runMicros / per / 1000, ops);
    }
}
