// onnxopt-bench: benchmarks that print their figures (README "Figures").
//   resnet18 OUT.onnx [--size 224]              write the ResNet-18-sized model
//   synflow [--rounds 100] [--size 224]         SynFlow on it: one round, then N rounds; time and peak memory
using System.Diagnostics;
using System.Globalization;
using OnnxOpt.Bench;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

string Opt(string name, string dflt) { var i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : dflt; }
var c = CultureInfo.InvariantCulture;
switch (args.FirstOrDefault())
{
    case "resnet18":
    {
        var m = ResNet18.Build(int.Parse(Opt("--size", "224"), c));
        OnnxExporter.Save(m, args[1]);
        var s = ModelStats.Compute(m);
        Console.WriteLine(string.Create(c, $"wrote {args[1]}: {s.ParameterCount:N0} parameters, {s.TotalMacs:N0} MACs per sample"));
        return 0;
    }
    case "synflow":
    {
        int size = int.Parse(Opt("--size", "224"), c), rounds = int.Parse(Opt("--rounds", "100"), c);
        var m = ResNet18.Build(size);
        Console.WriteLine(string.Create(c, $"ResNet-18-sized model at {size}x{size}: {ModelStats.Compute(m).ParameterCount:N0} parameters; {Environment.ProcessorCount} threads; float64"));
        foreach (var n in new[] { 1, rounds })
        {
            var sw = Stopwatch.StartNew();
            var r = Saliency.Score(m, new SaliencyOptions { Iterations = n, Density = 0.1 });
            sw.Stop();
            Console.WriteLine(string.Create(c, $"synflow {n,3} round(s): {sw.Elapsed.TotalSeconds,8:F2} s total, {r.MsPerRound,8:F0} ms per round (forward + backward + threshold), R = {r.R:G4}, density {(double)r.Kept / r.Weights:G3}, layer collapse: {(r.LayerCollapse ? "yes" : "none")}"));
        }
        Console.WriteLine(string.Create(c, $"peak working set: {Process.GetCurrentProcess().PeakWorkingSet64 / (1 << 20):N0} MB"));
        return 0;
    }
    default:
        Console.Error.WriteLine("usage: onnxopt-bench resnet18 OUT.onnx [--size 224] | synflow [--rounds 100] [--size 224]");
        return 2;
}
