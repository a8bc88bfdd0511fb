// onnxopt-bench rewrite-scale: how load, inspect, convert, dump and the rule driver grow with graph size.
//   - chains of Relu nodes (x -> Relu -> Relu -> ... -> y, float[1,4]) of 8,000 to 1,000,000 nodes: write the
//     file, then time import, verify + shape inference + statistics (what inspect does), text dump, export
//     and write (what convert does), and report the peak working set;
//   - chains of 1,000 to 64,000 nodes alternating Relu and Identity: canonicalize's no-op rules (run through
//     the greedy driver) remove the Identity half; time of the driver alone and its rewrites.
// Linear growth is what the house issue asks: 64,000 nodes within 10x the time of 8,000, the 1M chain within
// 30 s, 4,000 rewrites on 8,000 nodes under 1 s.
using System.Diagnostics;
using System.Globalization;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;

namespace OnnxOpt.Bench;

internal static class RewriteScale
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>x -> op(0) -> op(1) -> ... -> y; op(i) names each node's op type.</summary>
    public static Model Chain(int nodes, Func<int, string> op)
    {
        var b = new GraphBuilder("chain");
        var v = b.Input("x", DataType.Float, 1, 4);
        for (int i = 0; i < nodes; i++) v = b.Node(op(i), [v]);
        b.Output(v);
        return b.Build();
    }

    public static int Run(int[] loadSizes, int[] ruleSizes)
    {
        var dir = Directory.CreateTempSubdirectory("onnxopt-scale").FullName;
        try
        {
            Console.WriteLine("load / inspect / dump / convert of Relu chains (seconds; peak working set)");
            Console.WriteLine("   nodes   file MB   import  inspect     dump   export   peak MB");
            foreach (var n in loadSizes) LoadRow(dir, n);
            Console.WriteLine();
            Console.WriteLine("canonicalize's no-op rules on Relu/Identity chains (half the nodes rewritten)");
            Console.WriteLine("   nodes  rewrites  driver s  per rewrite us");
            foreach (var n in ruleSizes) RuleRow(n);
        }
        finally { Directory.Delete(dir, true); }
        return 0;
    }

    private static void LoadRow(string dir, int n)
    {
        var path = Path.Combine(dir, $"chain{n}.onnx");
        OnnxExporter.Save(Chain(n, _ => "Relu"), path);
        GC.Collect();
        var sw = Stopwatch.StartNew();
        var m = OnnxImporter.Load(path);
        var import = sw.Elapsed.TotalSeconds;
        sw.Restart();
        Verifier.Verify(m);
        ShapeInference.Run(m);
        var stats = ModelStats.Compute(m);
        var inspect = sw.Elapsed.TotalSeconds;
        sw.Restart();
        AtomicFile.WriteText(path + ".txt", w => TextPrinter.Print(m, w));     // what dump -o does
        var dump = sw.Elapsed.TotalSeconds;
        sw.Restart();
        OnnxExporter.Save(m, path + ".out");
        var export = sw.Elapsed.TotalSeconds;
        if (stats.NodeCount != n || new FileInfo(path + ".txt").Length == 0)
            throw new InvalidOperationException("chain lost nodes");
        Console.WriteLine(string.Create(C, $"{n,8:N0} {new FileInfo(path).Length / 1e6,9:F1} {import,8:F2} {inspect,8:F2} "
            + $"{dump,8:F2} {export,8:F2} {Process.GetCurrentProcess().PeakWorkingSet64 / (1 << 20),9:N0}"));
        File.Delete(path);
        File.Delete(path + ".out");
        File.Delete(path + ".txt");
    }

    private static void RuleRow(int n)
    {
        var m = Chain(n, i => i % 2 == 0 ? "Relu" : "Identity");
        var ctx = new PassContext(m);
        var sw = Stopwatch.StartNew();
        var r = new GreedyRewriteDriver(NoOpRule.All) { MaxIterations = 1 }.Run(new RuleContext(ctx));
        var s = sw.Elapsed.TotalSeconds;
        if (m.Graph.Nodes.Count != n - n / 2) throw new InvalidOperationException("the driver missed an Identity");
        Verifier.Verify(m);
        Console.WriteLine(string.Create(C, $"{n,8:N0} {r.Rewrites,9:N0} {s,9:F3} {s * 1e6 / Math.Max(1, r.Rewrites),15:F1}"));
    }
}
