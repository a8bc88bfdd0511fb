// Random generators: never constant-folded (the Random trait). RandomNormal/RandomUniform take their shape
// and dtype (default float) from attributes; the *Like forms and Bernoulli take the input's shape and, without
// a dtype, its type; Multinomial gives [batch, sample_size] of int32 unless dtype says otherwise.
using static OnnxOpt.GraphIR.ShapeContext;

namespace OnnxOpt.GraphIR;

internal static class RandomOps
{
    private static DataType DType(Node n, DataType dflt) => n.Attr("dtype") is { } d ? (DataType)d.I : dflt;

    private static OnnxType? Like(Node n) => T(DType(n, TypeOf(n.Input(0))), ShapeOf(n.Input(0)));

    private static OnnxType? Multinomial(Node n)
    {
        var xs = ShapeOf(n.Input(0));
        var type = DType(n, DataType.Int32);
        return xs is { Rank: 2 } ? TD(type, [xs[0], Dim.Of(n.GetInt("sample_size", 1))]) : T(type, null);
    }

    public static IEnumerable<OpInfo> All =>
    [
        new("RandomNormal")
        {
            Traits = OpTrait.Random,
            Infer = (n, c) => [T(DType(n, DataType.Float), n.GetInts("shape") is { } s ? Shape.Of(s) : null)],
        },
        new("RandomUniform")
        {
            Traits = OpTrait.Random,
            Infer = (n, c) => [T(DType(n, DataType.Float), n.GetInts("shape") is { } s ? Shape.Of(s) : null)],
        },
        new("RandomNormalLike") { Traits = OpTrait.Random, Infer = (n, c) => [Like(n)] },
        new("RandomUniformLike") { Traits = OpTrait.Random, Infer = (n, c) => [Like(n)] },
        new("Bernoulli") { Traits = OpTrait.Random, Infer = (n, c) => [Like(n)] },
        new("Multinomial") { Traits = OpTrait.Random, Infer = (n, c) => [Multinomial(n)] },
    ];
}
