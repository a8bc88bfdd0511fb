// onnxopt run MODEL (--data DIR | --random N) [-o OUT_DIR] [--outputs a,b]: runs the model in ONNX
// Runtime and saves each requested output (any intermediate value too) as OUT_DIR/<name>.npy,
// the batches stacked on axis 0.
using System.CommandLine;
using System.Text;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;
using OnnxOpt.Data;

namespace OnnxOpt.Cli;

public static class RunCommand
{
    public static Command Create(CliContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model file" };
        var output = new Option<string>("--output", "-o") { Description = "folder for the output .npy files", DefaultValueFactory = _ => "outputs" };
        var names = new Option<string?>("--outputs") { Description = "comma-separated values to save (graph outputs or intermediate values); default: all graph outputs" };
        var threads = new Option<int>("--threads") { Description = "intra-op threads", DefaultValueFactory = _ => 1 };
        var data = new DataOptions();
        var cmd = new Command("run", "Run a model in ONNX Runtime and save its outputs as .npy") { model, output, names, threads };
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var path = r.GetValue(model)!;
            var m = CliContext.LoadModel(path);
            var wanted = r.GetValue(names)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
            var graphOutputs = m.Graph.Outputs.Select(o => o.Name).ToHashSet();
            var extra = wanted?.Where(w => !graphOutputs.Contains(w)).ToList();
            using var session = InferenceSession.FromModel(m,
                new SessionSettings { IntraOpThreads = r.GetValue(threads) }, extra);
            wanted ??= session.Outputs.Select(o => o.Name).ToList();
            var ds = data.Load(r, session.Inputs, defaultRandom: 1);
            var parts = wanted.ToDictionary(w => w, _ => new List<Tensor>());
            foreach (var batch in ds.Batches(r.GetValue(data.Batch)))
            {
                var outs = RandomDimsHint.Wrap(ds, () => session.Run(batch.Inputs, wanted), "a run");
                for (int i = 0; i < wanted.Count; i++) parts[wanted[i]].Add(outs[i]);
            }
            var dir = r.GetValue(output)!;
            Directory.CreateDirectory(dir);
            foreach (var w in wanted)
            {
                var list = parts[w];
                if (list.Count == 0) continue;
                var t = list.Count == 1 || list[0].Dims.Length == 0 ? list[0] : TensorStacking.Stack(w, list);
                var file = Path.Combine(dir, SafeFileName(w) + ".npy");
                Npy.Write(file, t);
                ctx.Out.WriteLine($"{w}: {t.ElementType.Name()}[{string.Join(",", t.Dims)}] -> {file}");
            }
            ctx.Err.WriteLine($"ran {ds.Description} through {path}");
            return 0;
        });
        return cmd;
    }

    public static string SafeFileName(string name)
    {
        var sb = new StringBuilder();
        foreach (var c in name) sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_');
        return sb.ToString().TrimStart('.');
    }
}
