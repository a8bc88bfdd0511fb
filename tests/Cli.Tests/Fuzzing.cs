// The fuzzing lane's generator: seeded mutations of small valid models (byte flips and truncation of the
// file; structural edits through the protobuf: dims zero, negative or huge, element types, attributes of
// the wrong type, opsets, IR versions, external data pointing anywhere, cycles, dangling and duplicate
// names, bad subgraphs, raw data of the wrong length) and of data folders (wrong shape, truncated,
// non-finite, empty, wrong type), run through every command in process. Each run must end with exit code
// 0, 1 or 2, print no stack trace, finish within its time limit, leave no output behind when it fails,
// and never turn a model ORT loads into an output ORT cannot load.
using Google.Protobuf;
using OnnxOpt.GraphIR.Protobuf;

namespace OnnxOpt.Tests;

public static class Fuzzing
{
    public sealed record Case(string Description, byte[] Model, string? DataDir);

    public static readonly string[] Seeds =
    [
        "ops/conv.onnx", "ops/gemm_matmul.onnx", "ops/batchnorm.onnx", "ops/activations.onnx", "ops/pooling.onnx",
        "ops/shapes.onnx", "ops/elementwise.onnx", "ops/shape_gather.onnx", "ops/qdq.onnx", "digits/mlp.onnx",
        "old_opset/digits_opset9.onnx",
    ];

    public static Case Make(Random rng, string tmp)
    {
        var seed = Seeds[rng.Next(Seeds.Length)];
        var bytes = File.ReadAllBytes(Paths.Model(seed));
        var what = new List<string> { seed };
        var kind = rng.Next(10);
        if (kind < 2)
        {
            bytes = (byte[])bytes.Clone();
            for (int i = 0, n = 1 + rng.Next(8); i < n; i++) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
            what.Add("byte flips");
        }
        else if (kind < 3)
        {
            bytes = bytes[..rng.Next(bytes.Length)];
            what.Add($"truncated to {bytes.Length}");
        }
        else
        {
            var m = ModelProto.Parser.ParseFrom(bytes);
            for (int i = 0, n = 1 + rng.Next(3); i < n; i++) what.Add(Mutate(m, rng));
            bytes = m.ToByteArray();
            if (rng.Next(6) == 0)
            {
                bytes[rng.Next(bytes.Length)] ^= 0x40;
                what.Add("then a byte flip");
            }
        }
        string? data = rng.Next(4) == 0 ? BadData(rng, tmp, what) : null;
        return new Case(string.Join(", ", what), bytes, data);
    }

    private static T Pick<T>(Random rng, IList<T> list) => list[rng.Next(list.Count)];

    private static string Mutate(ModelProto m, Random rng)
    {
        var g = m.Graph;
        var values = g.Input.Concat(g.Output).Concat(g.ValueInfo).Where(v => v.Type?.TensorType?.Shape is not null)
            .ToList();
        switch (rng.Next(13))
        {
            case 0 when values.Count > 0:
            {
                var v = Pick(rng, values);
                var dims = v.Type.TensorType.Shape.Dim;
                if (dims.Count == 0) return "no dims";
                var d = Pick(rng, dims);
                var value = Pick(rng, new long[] { 0, -1, -7, 1L << 40, long.MaxValue, 3 });
                d.DimValue = value;
                return $"dim of {v.Name} = {value}";
            }
            case 1:
            {
                var t = rng.Next(30);
                if (g.Initializer.Count > 0 && rng.Next(2) == 0) { Pick(rng, g.Initializer).DataType = t; return $"initializer type {t}"; }
                if (values.Count > 0) { Pick(rng, values).Type.TensorType.ElemType = t; return $"value type {t}"; }
                return "no type";
            }
            case 2 when g.Node.Any(n => n.Attribute.Count > 0):
            {
                var a = Pick(rng, g.Node.Where(n => n.Attribute.Count > 0).SelectMany(n => n.Attribute).ToList());
                a.Type = (AttributeProto.Types.AttributeType)Pick(rng, new[] { 1, 2, 3, 4, 5, 6, 7, 8, 0, 99 });
                return $"attribute {a.Name} typed {a.Type}";
            }
            case 3:
            {
                var v = Pick(rng, new long[] { 0, 1, 6, 7, 9, 12, 22, 25, 999, -3 });
                if (m.OpsetImport.Count > 0) m.OpsetImport[0].Version = v;
                return $"opset {v}";
            }
            case 4:
            {
                m.IrVersion = Pick(rng, new long[] { 0, 1, 2, 3, 11, 99, -1 });
                return $"ir_version {m.IrVersion}";
            }
            case 5 when g.Initializer.Count > 0:
            {
                var t = Pick(rng, g.Initializer);
                t.DataLocation = TensorProto.Types.DataLocation.External;
                t.ExternalData.Clear();
                var loc = Pick(rng, new[] { "../../etc/passwd", "/etc/passwd", "missing.bin", "", "a/../../b.bin" });
                t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = loc });
                if (rng.Next(2) == 0)
                    t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = rng.Next(-5, 1 << 20).ToString() });
                if (rng.Next(2) == 0)
                    t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = rng.Next(-5, 1 << 20).ToString() });
                return $"external data {t.Name} -> '{loc}'";
            }
            case 6 when g.Node.Count > 1:
            {
                int i = rng.Next(g.Node.Count - 1), j = rng.Next(i + 1, g.Node.Count);
                if (g.Node[i].Input.Count == 0 || g.Node[j].Output.Count == 0) return "no cycle";
                g.Node[i].Input[0] = g.Node[j].Output[0];
                return $"cycle {g.Node[i].Name}";
            }
            case 7 when g.Node.Count > 0:
            {
                var n = Pick(rng, g.Node);
                if (n.Input.Count == 0) return "no input";
                n.Input[rng.Next(n.Input.Count)] = "dangling_" + rng.Next(100);
                return $"dangling input of {n.Name}";
            }
            case 8 when g.Node.Count > 1:
            {
                var a = Pick(rng, g.Node);
                var b = Pick(rng, g.Node);
                if (a == b || a.Output.Count == 0 || b.Output.Count == 0) return "no duplicate";
                b.Output[0] = a.Output[0];
                return $"duplicate output {a.Output[0]}";
            }
            case 9:
            {
                var sub = new GraphProto { Name = "bad" };
                if (rng.Next(2) == 0) sub.Node.Add(new NodeProto { OpType = "Relu", Input = { "nowhere" }, Output = { "o" } });
                if (rng.Next(2) == 0) sub.Output.Add(new ValueInfoProto { Name = "o" });
                var cond = g.Input.Count > 0 ? g.Input[0].Name : "c";
                g.Node.Add(new NodeProto
                {
                    OpType = "If",
                    Input = { cond },
                    Output = { "if_out" },
                    Attribute =
                    {
                        new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = sub },
                        new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = sub.Clone() },
                    },
                });
                if (rng.Next(2) == 0) g.Output.Add(new ValueInfoProto { Name = "if_out" });
                return "bad subgraph";
            }
            case 10 when g.Initializer.Any(t => t.RawData.Length > 0):
            {
                var t = Pick(rng, g.Initializer.Where(t => t.RawData.Length > 0).ToList());
                var raw = t.RawData.ToByteArray();
                t.RawData = ByteString.CopyFrom(rng.Next(2) == 0 ? raw[..rng.Next(raw.Length)] : [.. raw, 1, 2, 3]);
                return $"raw data of {t.Name} {raw.Length} -> {t.RawData.Length} bytes";
            }
            case 11 when g.Node.Count > 0:
            {
                var n = Pick(rng, g.Node);
                n.OpType = Pick(rng, new[] { "NoSuchOp", "Conv", "Reshape", "", "Gemm", "Loop" });
                return $"op type {n.OpType}";
            }
            case 12 when g.Node.Count > 0:
            {
                var n = Pick(rng, g.Node);
                n.Domain = Pick(rng, new[] { "com.microsoft", "bogus.domain", "ai.onnx.ml" });
                return $"domain {n.Domain}";
            }
        }
        return "no edit";
    }

    /// <summary>A data folder with something wrong in it (or, sometimes, nothing wrong).</summary>
    private static string BadData(Random rng, string tmp, List<string> what)
    {
        var dir = Path.Combine(tmp, "data" + rng.Next(1 << 30));
        Directory.CreateDirectory(dir);
        var kind = rng.Next(6);
        var shape = Pick(rng, new[] { new long[] { 4, 3 }, new long[] { 2, 1, 16, 16 }, new long[] { 3, 64 }, new long[] { 0, 4 } });
        var n = shape.Aggregate(1L, (a, b) => a * b);
        var values = Enumerable.Range(0, (int)n).Select(i => kind == 2 && i == n / 2 ? float.NaN : (float)rng.NextDouble())
            .ToArray();
        var path = Path.Combine(dir, Pick(rng, new[] { "input.npy", "x.npy", "wrong.npy" }));
        if (kind != 4) OnnxOpt.Data.Npy.Write(path, OnnxOpt.GraphIR.Tensor.FromFloats("x", shape, values));
        if (kind == 1 && File.Exists(path)) File.WriteAllBytes(path, File.ReadAllBytes(path)[..rng.Next(1, 60)]);
        if (kind == 3) OnnxOpt.Data.Npy.Write(Path.Combine(dir, "labels.npy"),
            OnnxOpt.GraphIR.Tensor.FromInt64s("l", [shape[0]], Enumerable.Repeat(-3L, (int)shape[0]).ToArray()));
        what.Add($"data {Path.GetFileName(path)} {string.Join("x", shape)} kind {kind}");
        return dir;
    }
}
