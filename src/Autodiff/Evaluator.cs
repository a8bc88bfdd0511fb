// The reference evaluator: runs a model's main graph in T = double or float on our own kernels, and
// differentiates it in reverse mode.
//
//   var ev = new Evaluator<double>(model);
//   var trace = ev.Forward(inputs);                       // every value of the graph, kept for the VJPs
//   var grads = ev.Backward(trace, seeds, wrt);           // d(sum_o <seed_o, o>)/d(value) for each wrt value
//
// Forward visits nodes in the graph's topological order; initializers can be overridden by name (e.g.
// SynFlow's |W| * mask). Backward seeds output gradients, visits nodes in reverse order, and calls each
// op's vector-Jacobian product for the inputs that lie on a path from a requested value, summing
// contributions of values read several times. Gradient arrays are never mutated after they are made.
using System.Numerics;
using OnnxOpt.Autodiff.Ops;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Autodiff;

public sealed class Trace<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    internal Dictionary<Value, NdArray<T>> Values { get; } = new();
    internal Dictionary<Node, OpCall<T>> Calls { get; } = new();
    internal Graph Graph { get; init; } = null!;

    public NdArray<T> this[string name] => Graph.Find(name) is { } v && Values.TryGetValue(v, out var a) ? a
        : throw new KeyNotFoundException($"value '{name}' was not computed");

    public IReadOnlyList<NdArray<T>> Outputs => Graph.Outputs.Select(o => Values[o]).ToList();
}

public sealed class Evaluator<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Model _model;
    private readonly long _opset;
    private readonly Dictionary<Value, NdArray<T>> _initializers = new();

    public Evaluator(Model model)
    {
        _model = model;
        _opset = model.OpsetVersion("") ?? 1;
        foreach (var n in model.Graph.Nodes)
        {
            if (n.Subgraphs().Any()) throw new OnnxModelException($"node {n}: control flow (subgraphs) is not supported by the reference evaluator");
            if (Kernels<T>.Find(n) is null)
                throw new OnnxModelException($"node {n}: op '{(n.IsStandard ? "" : n.Domain + ".")}{n.OpType}' is not supported by the reference evaluator");
        }
    }

    public Graph Graph => _model.Graph;

    /// <summary>When set, milliseconds spent per "OpType" (forward) and "OpType'" (VJP) are added here.</summary>
    public Dictionary<string, double>? Profile { get; set; }

    private long Tick() => Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();

    private void Tock(long start, string key)
    {
        if (Profile is null) return;
        Profile[key] = Profile.GetValueOrDefault(key) + System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>The initializer's data as an array (converted once).</summary>
    public NdArray<T> Initializer(Value v)
    {
        if (!_initializers.TryGetValue(v, out var a)) _initializers[v] = a = NdArray<T>.FromTensor(v.Initializer!);
        return a;
    }

    /// <summary>When set, Forward and Backward take their arrays from this arena (training loops): everything they
    /// return stays valid until the arena's next Recycle().</summary>
    public Kernels.BufferArena<T>? Arena { get; set; }

    public Trace<T> Forward(IReadOnlyDictionary<string, NdArray<T>> inputs, IReadOnlyDictionary<string,
        NdArray<T>>? overrides = null)
    {
        using var scope = Arena?.Enter();
        var g = _model.Graph;
        var t = new Trace<T> { Graph = g };
        foreach (var v in g.Initializers)
            t.Values[v] = overrides is not null && overrides.TryGetValue(v.Name, out var o) ? o : Initializer(v);
        foreach (var i in g.Inputs)
        {
            if (inputs.TryGetValue(i.Name, out var a)) t.Values[i] = a;
            else if (!t.Values.ContainsKey(i)) throw new OnnxModelException($"input '{i.Name}' was not given");
        }
        foreach (var n in g.Nodes)
        {
            var call = new OpCall<T>
            {
                Node = n,
                Opset = _opset,
                Inputs = n.Inputs.Select(v => v is null ? null : t.Values.TryGetValue(v, out var a) ? a
                    : throw new OnnxModelException($"node {n}: input '{v.Name}' has no value")).ToArray(),
            };
            var t0 = Tick();
            NdArray<T>[] outs;
            // A kernel given an input of a type it cannot take (an integer weight of a Conv) names the node.
            try { outs = Kernels<T>.Find(n)!.Forward(call); }
            catch (InvalidOperationException e) { throw new OnnxModelException($"node {n}: {e.Message}"); }
            Tock(t0, n.OpType);
            call.Outputs = outs;
            t.Calls[n] = call;
            for (int k = 0; k < n.Outputs.Count; k++)
                if (n.Outputs[k] is { } ov)
                    t.Values[ov] = k < outs.Length ? outs[k] : throw new OnnxModelException($"node {n}: output {k} ('{ov.Name}') is not computed by the reference evaluator");
        }
        return t;
    }

    /// <summary>Gradients of sum_o &lt;seed_o, value_o&gt; with respect to each value named in <paramref name="wrt"/>
    /// (zeros where the value does not influence the seeded outputs).</summary>
    public Dictionary<string, NdArray<T>> Backward(Trace<T> trace, IReadOnlyDictionary<string, NdArray<T>> seeds,
        IEnumerable<string> wrt)
    {
        using var scope = Arena?.Enter();
        var g = _model.Graph;
        var targets = wrt.Select(n => g.Find(n) ?? throw new OnnxModelException($"no value named '{n}'")).ToList();
        // Values that depend on a requested value (only those need gradients).
        var live = new HashSet<Value>(targets);
        foreach (var n in g.Nodes)
            if (n.Inputs.Any(i => i is not null && live.Contains(i)))
                foreach (var o in n.Outputs) if (o is not null) live.Add(o);

        var grads = new Dictionary<Value, NdArray<T>>();
        foreach (var (name, seed) in seeds)
        {
            var v = g.Find(name) ?? throw new OnnxModelException($"no value named '{name}'");
            if (!seed.Shape.AsSpan().SequenceEqual(trace.Values[v].Shape)) throw new OnnxModelException($"seed for '{name}' has shape {seed}, value is {trace.Values[v]}");
            Accumulate(grads, v, seed);
        }
        var targetSet = targets.ToHashSet();
        for (int idx = g.Nodes.Count - 1; idx >= 0; idx--)
        {
            var n = g.Nodes[idx];
            var gout = n.Outputs.Select(o => o is not null && grads.TryGetValue(o, out var d) ? d : null).ToArray();
            if (gout.All(x => x is null)) continue;
            var needed = n.Inputs.Select(i => i is not null && live.Contains(i) && !trace.Values[i].IsInt).ToArray();
            if (needed.Any(x => x))
            {
                var call = trace.Calls[n];
                var t0 = Tick();
                var gin = Kernels<T>.Find(n)!.Backward(call, gout, needed);
                Tock(t0, n.OpType + "'");
                for (int k = 0; k < n.Inputs.Count; k++)
                    if (needed[k] && k < gin.Length && gin[k] is { } d)
                    {
                        if (!d.Shape.AsSpan().SequenceEqual(call.Inputs[k]!.Shape))
                            throw new InvalidOperationException($"node {n}: gradient of input {k} has shape {d}, input is {call.Inputs[k]}");
                        var t1 = Tick();
                        Accumulate(grads, n.Inputs[k]!, d);
                        Tock(t1, "accumulate");
                    }
            }
            foreach (var o in n.Outputs) if (o is not null && !targetSet.Contains(o)) grads.Remove(o);
        }
        return targets.ToDictionary(v => v.Name, v => grads.TryGetValue(v,
            out var d) ? d : new NdArray<T>(trace.Values[v].Shape, Kernels.Buffers<T>.New(trace.Values[v].Length)));
    }

    private static void Accumulate(Dictionary<Value, NdArray<T>> grads, Value v, NdArray<T> d)
    {
        if (!grads.TryGetValue(v, out var old)) { grads[v] = d; return; }
        var a = old.R; var b = d.R; var s = Kernels.Buffers<T>.New(a.Length);
        for (int i = 0; i < s.Length; i++) s[i] = a[i] + b[i];
        grads[v] = new NdArray<T>(old.Shape, s);
    }
}
