// Small transformer graphs written the way PyTorch/Hugging Face export them (opset 13), built in code so
// GraphIR-only tests can use them:
//   - Bert: input_ids, attention_mask, token_type_ids int64[batch, sequence]; word/position/type embeddings
//     by Gather; position ids from Shape -> Gather -> Range -> Unsqueeze; the additive mask (1 - mask) * -10000;
//     heads split by Reshape(Concat(Shape-derived batch and sequence, heads, head size)) and Transpose;
//     decomposed LayerNorm (ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add); Erf GELU; pooler Gather + Gemm
//     + Tanh. Outputs last_hidden_state [batch, sequence, hidden] and pooler_output [batch, hidden].
//   - Vit: a patch-embedding Conv, patches flattened (Reshape [0, hidden, -1]) and transposed, a cls token by Expand (to a
//     Shape-derived [batch, 1, hidden]) + Concat, learned positions, one pre-norm block, logits from the cls row.
// Weights are seeded random (these are graphs for shape, type and rewrite tests, not trained models).
using OnnxOpt.GraphIR;

namespace OnnxOpt.Tests;

public static class TransformerGraphs
{
    private sealed class Net(GraphBuilder b, int seed)
    {
        private int _seed = seed;
        public GraphBuilder B { get; } = b;

        public Value W(string name, params long[] dims)
        {
            var r = new Random(_seed++);
            var n = dims.Aggregate(1L, (x, y) => x * y);
            return B.Initializer(name, Enumerable.Range(0, (int)n).Select(_ => (float)(r.NextDouble() - 0.5) * 0.2f)
                .ToArray(), dims);
        }

        public Value I64(string name, params long[] v) => B.Initializer(name, v, v.Length);
        public Value Scalar(string name, float v) => B.Initializer(name, [v]);
        public Value N(string op, params Value[] inputs) => B.Node(op, inputs);
        public Value N(string op, Value[] inputs, params OnnxAttribute[] attrs) => B.Node(op, inputs, attrs);

        public Value Linear(Value x, string name, long cin, long cout) =>
            N("Add", N("MatMul", x, W(name + ".weight", cin, cout)), W(name + ".bias", cout));

        /// <summary>LayerNorm over the last axis, decomposed as torch exports it at opset 13.</summary>
        public Value LayerNorm(Value x, string name, long hidden)
        {
            var axes = OnnxAttribute.IntList("axes", -1);
            var mean = N("ReduceMean", [x], axes);
            var d = N("Sub", x, mean);
            var var = N("ReduceMean", [N("Pow", d, Scalar(name + ".two", 2f))], axes);
            var norm = N("Div", d, N("Sqrt", N("Add", var, Scalar(name + ".eps", 1e-12f))));
            return N("Add", N("Mul", norm, W(name + ".weight", hidden)), W(name + ".bias", hidden));
        }

        public Value Gelu(Value h, string name) =>
            N("Mul", N("Mul", h, N("Add", N("Erf", N("Div", h, Scalar(name + ".sqrt2", MathF.Sqrt(2f)))),
                Scalar(name + ".one", 1f))), Scalar(name + ".half", 0.5f));

        /// <summary>Dim i of x as a 1-element int64 vector (Shape -> Gather -> Unsqueeze).</summary>
        public Value DimOf(Value x, string name, long i) =>
            N("Unsqueeze", N("Gather", [N("Shape", x), B.Initializer(Tensor.FromInt64s(name, [], [i]))]),
                I64(name + ".axes", 0));

        /// <summary>Self-attention over x [B, S, hidden] with an optional additive mask [B, 1, 1, S].</summary>
        public Value Attention(Value x, string name, long hidden, long heads, Value? mask)
        {
            long size = hidden / heads;
            var b = DimOf(x, name + ".b", 0);
            var s = DimOf(x, name + ".s", 1);
            var split = N("Concat", [b, s, I64(name + ".heads", heads), I64(name + ".size", size)],
                OnnxAttribute.Int("axis", 0));
            Value Heads(string p, params long[] perm) =>
                N("Transpose", [N("Reshape", Linear(x, $"{name}.{p}", hidden, hidden), split)],
                    OnnxAttribute.IntList("perm", perm));
            var q = Heads("query", 0, 2, 1, 3);
            var k = Heads("key", 0, 2, 3, 1);
            var v = Heads("value", 0, 2, 1, 3);
            var scores = N("Div", N("MatMul", q, k), Scalar(name + ".scale", MathF.Sqrt(size)));
            if (mask is not null) scores = N("Add", scores, mask);
            var probs = N("Softmax", [scores], OnnxAttribute.Int("axis", -1));
            var ctx = N("Transpose", [N("MatMul", probs, v)], OnnxAttribute.IntList("perm", 0, 2, 1, 3));
            var merge = N("Concat", [b, s, I64(name + ".hidden", hidden)], OnnxAttribute.Int("axis", 0));
            return Linear(N("Reshape", ctx, merge), name + ".output", hidden, hidden);
        }

        public Value Mlp(Value x, string name, long hidden, long inner) =>
            Linear(Gelu(Linear(x, name + ".fc1", hidden, inner), name + ".gelu"), name + ".fc2", inner, hidden);
    }

    public const long BertVocab = 50, BertPositions = 64;

    public static Model Bert(long hidden = 32, long heads = 4, long layers = 2, long inner = 64, int seed = 1)
    {
        var b = new GraphBuilder("bert", opset: 13);
        var n = new Net(b, seed);
        var ids = b.Input("input_ids", DataType.Int64, "batch", "sequence");
        var mask = b.Input("attention_mask", DataType.Int64, "batch", "sequence");
        var types = b.Input("token_type_ids", DataType.Int64, "batch", "sequence");
        var seq = n.N("Gather", [n.N("Shape", ids), n.I64("pos.dim", 1)]);
        var zero = b.Initializer(Tensor.FromInt64s("pos.start", [], [0]));
        var one = b.Initializer(Tensor.FromInt64s("pos.delta", [], [1]));
        var positions = n.N("Unsqueeze", n.N("Range", zero, n.N("Squeeze", seq), one), n.I64("pos.axes", 0));
        var x = n.N("Add", n.N("Add", n.N("Gather", n.W("embeddings.word", BertVocab, hidden), ids),
            n.N("Gather", n.W("embeddings.position", BertPositions, hidden), positions)),
            n.N("Gather", n.W("embeddings.token_type", 2, hidden), types));
        x = n.LayerNorm(x, "embeddings.norm", hidden);
        var m = n.N("Cast", [n.N("Unsqueeze", mask, n.I64("mask.axes", 1, 2))], OnnxAttribute.Int("to", 1));
        var additive = n.N("Mul", n.N("Sub", n.Scalar("mask.one", 1f), m), n.Scalar("mask.big", -10000f));
        for (int l = 0; l < layers; l++)
        {
            var p = $"layer{l}";
            x = n.LayerNorm(n.N("Add", x, n.Attention(x, p + ".attention", hidden, heads, additive)), p + ".norm1",
                hidden);
            x = n.LayerNorm(n.N("Add", x, n.Mlp(x, p + ".mlp", hidden, inner)), p + ".norm2", hidden);
        }
        var first = n.N("Gather", [x, b.Initializer(Tensor.FromInt64s("pooler.index", [], [0]))],
            OnnxAttribute.Int("axis", 1));
        var pooled = n.N("Tanh", n.N("Gemm", [first, n.W("pooler.weight", hidden, hidden), n.W("pooler.bias", hidden)],
            OnnxAttribute.Int("transB", 1)));
        b.Output(b.NamedNode("Identity", [x], ["last_hidden_state"]).Output());
        b.Output(b.NamedNode("Identity", [pooled], ["pooler_output"]).Output());
        return b.Build();
    }

    public static Model Vit(long image = 16, long patch = 4, long hidden = 32, long heads = 4, long classes = 10,
        int seed = 2)
    {
        var b = new GraphBuilder("vit", opset: 13);
        var n = new Net(b, seed);
        var px = b.Input("pixel_values", DataType.Float, "batch", 1, image, image);
        var conv = n.N("Conv", [px, n.W("patch.weight", hidden, 1, patch, patch), n.W("patch.bias", hidden)],
            OnnxAttribute.IntList("kernel_shape", patch, patch), OnnxAttribute.IntList("strides", patch, patch));
        var tokens = n.N("Transpose", [n.N("Reshape", conv, n.I64("patch.flatten", 0, hidden, -1))],
            OnnxAttribute.IntList("perm", 0, 2, 1));
        var clsShape = n.N("Concat", [n.DimOf(px, "cls.b", 0), n.I64("cls.rest", 1, hidden)],
            OnnxAttribute.Int("axis", 0));
        var cls = n.N("Expand", n.W("cls_token", 1, 1, hidden), clsShape);
        var x = n.N("Add", n.N("Concat", [cls, tokens], OnnxAttribute.Int("axis", 1)),
            n.W("position_embeddings", 1, (image / patch) * (image / patch) + 1, hidden));
        x = n.N("Add", x, n.Attention(n.LayerNorm(x, "block.norm1", hidden), "block.attention", hidden, heads, null));
        x = n.N("Add", x, n.Mlp(n.LayerNorm(x, "block.norm2", hidden), "block.mlp", hidden, 2 * hidden));
        var first = n.N("Gather", [n.LayerNorm(x, "norm", hidden),
            b.Initializer(Tensor.FromInt64s("head.index", [], [0]))], OnnxAttribute.Int("axis", 1));
        b.Output(b.NamedNode("Gemm", [first, n.W("head.weight", classes, hidden), n.W("head.bias", classes)],
            ["logits"], OnnxAttribute.Int("transB", 1)).Output());
        return b.Build();
    }
}
