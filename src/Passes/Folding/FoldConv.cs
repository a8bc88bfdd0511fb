// fold-conv: merges linear chains into one op (ConvAlgebra has the formulas).
//   Conv -> Conv              one Conv (any stride/dilation; grouped convs expanded to dense, two depthwise
//                             convs stay depthwise); exact when conv2 has no padding, or conv1 is 1x1
//                             unpadded (then plus an Add of a constant [O,H,W] border bias map);
//                             otherwise only with allow-border-error=true (error measured and reported)
//   x + Conv(x)               Dirac term: W[c, c, centre] += 1 (stride 1, same-size output), exact
//   Gemm -> Gemm, MatMul -> MatMul   one op with the weight product (and folded bias)
// Only direct producer -> consumer pairs fold, so a non-linear op, a multiplicative gate (x * s(x)) or a
// value read elsewhere (fan-out) always stops a fold. A cost model decides whether a fold pays:
// objective=macs (MACs per sample must not grow), params (weights must not grow), latency (the model
// with and without the fold is timed in ONNX Runtime, 1 thread) or depth (fold wherever allowed).
// Main graph only (the rules are not run inside If/Loop/Scan bodies).
// Structure: each fold kind is a rule whose match is pure (it only looks and computes): it returns a FoldPlan
// (the fold's figures, the report it will make, and the edit as a function of a model and a rewriter) or a
// Refusal. The pass decides (FoldSession): refusals are recorded once per pair, the cost model (the latency
// objective's ORT timing included) judges every plan, Gemm/MatMul folds as much as Conv ones, and only then is
// the edit applied and reported. Shapes are re-inferred for the nodes a fold inserted, not the whole model.
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Data;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public sealed record FoldConvOptions
{
    [Option("objective", "what a fold must not make worse: MACs, weight count, ORT latency (measured), or "
        + "nothing (depth: fold wherever allowed)", Choices = ["macs", "params", "latency", "depth"])]
    public string Objective { get; init; } = "macs";
    [Option("allow-border-error", "also fold Conv->Conv where conv2's zero padding makes the fold approximate")]
    public bool AllowBorderError { get; init; }
    [Option("max-kernel", "largest folded kernel side to produce", Min = 1)]
    public long MaxKernel { get; init; } = 15;
}

public sealed class FoldConv : Pass<FoldConvOptions>
{
    public override string Name => "fold-conv";
    public override string Summary =>
        "merge Conv->Conv (exact border handling), residual x+conv(x), Gemm->Gemm and MatMul->MatMul chains "
        + "where the cost model says it pays";

    /// <summary>Border folds of padded convs are approximate: allowed only by allow-border-error.</summary>
    public override bool IsExact(FoldConvOptions options) => !options.AllowBorderError;

    public override void Run(PassContext ctx, FoldConvOptions o)
    {
        var before = o.AllowBorderError ? OnnxExporter.ToBytes(ctx.Model) : null;
        var session = new FoldSession(ctx, o);
        var rules = Rules(session, o);
        ShapeInference.Run(ctx.Model);
        new GreedyRewriteDriver(rules)
        {
            CleanupAfterRewrite = true,
            AfterRewrite = touched => ShapeInference.InferNodes(ctx.Model, touched),
            MaxIterations = 100,
        }.Run(new RuleContext(ctx));
        if (session.Approximate && before is not null) MeasureError(ctx, before);
    }

    /// <summary>The pass's rules for one run: each fold kind's pure match, decided by the run's session (the cost
    /// model, the pairs it kept).</summary>
    public static IReadOnlyList<RewriteRule> Rules(PassContext ctx, FoldConvOptions o) =>
        Rules(new FoldSession(ctx, o), o);

    private static RewriteRule[] Rules(FoldSession session, FoldConvOptions o) =>
    [
        new FoldRule("fold-conv-conv", "Conv", n => MatchConvConv(n, o, session.Kept), session),
        new FoldRule("fold-residual-dirac", "Add", MatchDirac, session),
        new FoldRule("fold-gemm-gemm", "Gemm", MatchGemmGemm, session),
        new FoldRule("fold-matmul-matmul", "MatMul", MatchMatMulMatMul, session),
    ];

    /// <summary>What a match found: a fold to judge and apply, or a refusal to record.</summary>
    private abstract record Candidate;

    /// <summary>A fold planned by a pure match: its figures, what it reports once applied, and the edit (on
    /// the pass's model, or on a trial copy for the latency objective; it returns the new node, or null).</summary>
    private sealed record FoldPlan(string Label, string Kind, long MacsBefore, long MacsAfter, long ParamsBefore,
        long ParamsAfter, Func<Model, Rewriter, Node?> Edit) : Candidate
    {
        /// <summary>The pair a refusal by the cost model is remembered by (null: not remembered).</summary>
        public (Node, Node)? Pair { get; init; }
        /// <summary>Folds that never add work (the Dirac term): the cost model is not asked.</summary>
        public bool AlwaysPays { get; init; }
        public bool Exact { get; init; } = true;
        /// <summary>Counters the fold adds when applied.</summary>
        public IReadOnlyList<CounterKey> Counters { get; init; } = [];
        public required FoldDecision Folded { get; init; }
    }

    /// <summary>A pair the match refused: a counter ("refused: " + Key) and a decision, once per pair.</summary>
    private sealed record Refusal(string Label, string Key, string? Detail = null) : Candidate;

    /// <summary>The pass's side of the rules in one run: it records refusals, runs the cost model and applies.
    /// Pairs the cost model refused are not offered again (a new producer is a new pair).</summary>
    private sealed class FoldSession(PassContext ctx, FoldConvOptions o)
    {
        public HashSet<(Node, Node)> Kept { get; } = new();
        public bool Approximate { get; private set; }

        /// <summary>Null when the fold was applied, else the reason it was not.</summary>
        public string? Decide(Candidate candidate)
        {
            if (candidate is Refusal r)
            {
                if (ctx.Stats.Once(r.Label))
                {
                    ctx.Stats.Count(Counters.FoldConv.Refused(r.Key));
                    ctx.Stats.Decide(new FoldDecision(r.Label, null, "refused") { Reason = r.Detail ?? r.Key });
                }
                return r.Key;
            }
            var p = (FoldPlan)candidate;
            if (!p.AlwaysPays && !Pays(p))
            {
                if (ctx.Stats.Once(p.Label))
                    ctx.Stats.Decide(new FoldDecision(p.Label, p.Kind, "kept")
                    {
                        Reason = "cost model",
                        MacsBefore = p.MacsBefore,
                        MacsAfter = p.MacsAfter,
                        ParamsBefore = p.ParamsBefore,
                        ParamsAfter = p.ParamsAfter,
                    });
                ctx.Stats.Count(Counters.FoldConv.DoesNotPay);
                if (p.Pair is { } pair) Kept.Add(pair);
                return "cost model";
            }
            p.Edit(ctx.Model, ctx.Rewriter);
            if (!p.Exact) Approximate = true;
            foreach (var c in p.Counters) ctx.Stats.Count(c);
            ctx.Stats.Decide(p.Folded);
            return null;
        }

        private bool Pays(FoldPlan p) => o.Objective switch
        {
            "params" => p.ParamsAfter <= p.ParamsBefore,
            "depth" => true,
            "latency" => FasterInOrt(p),
            _ => p.MacsAfter <= p.MacsBefore,
        };

        /// <summary>The model with and without the fold, timed in ORT (1 thread); the timing is reported.</summary>
        private bool FasterInOrt(FoldPlan p)
        {
            var trial = ctx.Model.Clone();
            var rw = new Rewriter(trial);
            p.Edit(trial, rw);
            rw.RemoveDeadNodes(trial.Graph);
            rw.RemoveUnusedInitializers(trial.Graph);
            rw.Finish();
            var bench = Benchmark.Run(OnnxExporter.ToBytes(ctx.Model), OnnxExporter.ToBytes(trial),
                new BenchOptions { Warmup = 5, Iterations = 40 });
            ctx.Stats.Decide(new FoldTiming(p.Label, bench.Model.MedianMs, bench.Other!.MedianMs));
            return bench.Other.MedianMs < bench.Model.MedianMs;
        }
    }

    /// <summary>One fold kind as a rule: its name, its root op, its pure match, and the session that decides.</summary>
    private sealed class FoldRule(string name, string root, Func<Node, RuleMatch<Candidate>> match,
        FoldSession session) : RewriteRule
    {
        public override string Name => name;
        public override IReadOnlyList<string> RootOps { get; } = [root];

        public override bool Matches(Node n, RuleContext c) => match(n).Succeeded;

        internal override string? TryRewrite(Node n, RuleContext c)
        {
            var m = match(n);
            return m.Succeeded ? session.Decide(m.Value!) : m.Reason ?? "no match";
        }
    }

    /// <summary>Plans a Conv -> Conv fold (pure: reads the graph and <paramref name="kept"/>, writes
    /// nothing).</summary>
    private static RuleMatch<Candidate> MatchConvConv(Node conv2, FoldConvOptions o, HashSet<(Node, Node)> kept)
    {
        var h = conv2.Input(0);
        if (h is null || h.Uses.Count != 1 || h.IsGraphOutput)
        {
            if (h?.Producer is { OpType: "Conv" } p0)
                return new Refusal($"{p0} -> {conv2}", Refusals.FanOut,
                    "intermediate value is read elsewhere (fan-out)");
            return new NoMatch("input not produced by a conv read only here");
        }
        var (conv1, carriedMap) = FirstConv(conv2, h);
        if (conv1 is null) return new NoMatch("input not produced by a conv");
        var label = $"{conv1} -> {conv2}";
        if (kept.Contains((conv1, conv2))) return new NoMatch("cost model");
        var w1t = Rewriter.ConstantOf(conv1.Input(1)); var w2t = Rewriter.ConstantOf(conv2.Input(1));
        if (w1t is not { ElementType: DataType.Float }
            || w2t is not { ElementType: DataType.Float }) return new Refusal(label, Refusals.WeightsNotConstant);
        var c1 = ConvSpec.Of(conv1, w1t.Dims); var c2 = ConvSpec.Of(conv2, w2t.Dims);
        if (c1 is null || c2 is null) return new Refusal(label, Refusals.NotConv2D);
        if (carriedMap is not null && !(c2.Kernel.All(k => k == 1) && c2.Unpadded)) return new Refusal(label,
            Refusals.BiasMapNotCarried);
        var b1 = conv1.Input(2) is null ? new float[w1t.Dims[0]] : FoldBatchNorm.Floats(conv1.Input(2));
        var b2 = conv2.Input(2) is null ? new float[w2t.Dims[0]] : FoldBatchNorm.Floats(conv2.Input(2));
        if (b1 is null || b2 is null) return new Refusal(label, Refusals.BiasNotConstant);
        var x = conv1.Input(0)!;
        var y = conv2.Output();
        if (x.Shape is not { Rank: 4 } xs || h.Shape is not { Rank: 4 } hs || y.Shape is not { Rank: 4 } ys ||
            !xs.Dims.Skip(2).All(d => d.IsKnown) || !hs.Dims.Skip(2).All(d => d.IsKnown)
                || !ys.Dims.Skip(2).All(d => d.IsKnown))
            return new Refusal(label, Refusals.DynamicSpatial);

        int m = (int)w1t.Dims[0], cin = (int)(w1t.Dims[1] * c1.Groups), outC = (int)w2t.Dims[0];
        bool exact = c2.Unpadded;
        bool biasMap = carriedMap is not null;
        if (!exact && c1.Kernel.All(k => k == 1) && c1.Unpadded) { exact = true; biasMap = b1.Any(v => v != 0); }
        if (!exact && !o.AllowBorderError)
            return new Refusal(label, Refusals.PaddedBorder, "conv2 pads its input and conv1 is not 1x1: "
                + "the fold would be wrong at the border (allow-border-error=true accepts it)");

        var s = new[] { c1.Strides[0] * c2.Strides[0], c1.Strides[1] * c2.Strides[1] };
        var pb = new[] { c1.PadsBegin[0] + c1.Strides[0] * c2.PadsBegin[0],
            c1.PadsBegin[1] + c1.Strides[1] * c2.PadsBegin[1] };
        var pe = new[] { c1.PadsEnd[0] + c1.Strides[0] * c2.PadsEnd[0], c1.PadsEnd[1] + c1.Strides[1] * c2.PadsEnd[1] };
        var kh = ConvAlgebra.FoldedKernel(c1.Kernel[0], c1.Dilations[0], c1.Strides[0], c2.Kernel[0], c2.Dilations[0]);
        var kw = ConvAlgebra.FoldedKernel(c1.Kernel[1], c1.Dilations[1], c1.Strides[1], c2.Kernel[1], c2.Dilations[1]);
        if (Math.Max(kh, kw) > o.MaxKernel)
            return new Refusal(label, Refusals.KernelTooLarge, $"folded kernel {kh}x{kw} exceeds max-kernel");
        var (yh, yw) = ((int)ys[2].Value!.Value, (int)ys[3].Value!.Value);
        if (!FitsOutput([(int)xs[2].Value!.Value, (int)xs[3].Value!.Value], [kh, kw], s, pb, pe, [yh, yw]))
            return new Refusal(label, Refusals.OutputSize);

        var (w, groups, w2Dense) = FoldedWeights(w1t, c1, w2t, c2, m, cin, outC);
        var b = ConvAlgebra.FoldBias(b1, b2, w2Dense, outC, m, c2.Kernel[0] * c2.Kernel[1]);
        var macsBefore = (ModelStats.Macs(conv1, out _) ?? 0) + (ModelStats.Macs(conv2, out _) ?? 0);
        var macsAfter = (long)outC * yh * yw * (cin / groups) * kh * kw + (biasMap ? (long)outC * yh * yw : 0);
        var paramsBefore = w1t.ElementCount + w2t.ElementCount;
        var paramsAfter = (long)w.Length + (biasMap ? outC * yh * yw : 0);

        var map = !biasMap ? null : carriedMap is not null
            ? ConvAlgebra.PushMapThrough1x1(carriedMap, w2Dense, outC, m, (int)hs[2].Value!.Value,
                (int)hs[3].Value!.Value, c2.Strides, yh, yw)
            : ConvAlgebra.BorderBiasMap(b1, w2Dense, outC, m, c2, (int)hs[2].Value!.Value, (int)hs[3].Value!.Value,
                yh, yw);
        var fold = new ConvConvFold(x.Name, y.Name, [outC, cin / groups, kh, kw], s, pb, pe, groups, w, b, map,
            yh, yw);

        var what = $"{conv1} + {conv2}";
        // A pair that does not pay on its own may be the first step of a chain that does (the
        // expand -> depthwise -> project block): look one conv ahead.
        var counters = new List<CounterKey>
        {
            exact ? (biasMap ? Counters.FoldConv.ConvConvBiasMap : Counters.FoldConv.ConvConvExact)
                : Counters.FoldConv.ConvConvApproximate,
        };
        if (o.Objective is "macs" or "params" && macsAfter > macsBefore
            && ChainPays(y, kh, kw, s, cin, biasMap, macsBefore))
        {
            macsAfter = macsBefore;
            paramsAfter = paramsBefore;
            counters.Add(Counters.FoldConv.FirstOfPayingChain);
        }
        return new FoldPlan(what, "conv-conv", macsBefore, macsAfter, paramsBefore, paramsAfter, fold.Apply)
        {
            Pair = (conv1, conv2),
            Exact = exact,
            Counters = counters,
            Folded = new FoldDecision(what, "conv-conv", "folded")
            {
                Exact = exact,
                BorderBiasMap = biasMap,
                Kernel = $"{kh}x{kw}",
                Stride = $"{s[0]}x{s[1]}",
                Groups = groups,
                MacsBefore = macsBefore,
                MacsAfter = macsAfter,
                ParamsBefore = paramsBefore,
                ParamsAfter = paramsAfter,
            },
        };
    }

    /// <summary>The folded kernel of conv1 then conv2 (depthwise pairs stay depthwise: groups = m; others become
    /// one dense conv), and conv2's weights as a dense [outC, m, k] matrix (the bias fold and border map read it).
    /// </summary>
    private static (float[] W, int Groups, float[] W2Dense) FoldedWeights(Tensor w1t, ConvSpec c1, Tensor w2t,
        ConvSpec c2, int m, int cin, int outC)
    {
        bool depthwise = c1.Groups == m && m == cin && w1t.Dims[1] == 1 && c2.Groups == outC && outC == m
            && w2t.Dims[1] == 1;
        var w1 = w1t.ToFloatArray(); var w2 = w2t.ToFloatArray();
        var w2Dense = ConvAlgebra.Dense(w2, outC, (int)w2t.Dims[1], c2.Groups, c2.Kernel[0] * c2.Kernel[1]);
        if (depthwise) return (ConvAlgebra.FoldDepthwise(w1, c1, w2, c2, m, out _, out _), m, w2Dense);
        var w1Dense = ConvAlgebra.Dense(w1, m, (int)w1t.Dims[1], c1.Groups, c1.Kernel[0] * c1.Kernel[1]);
        return (ConvAlgebra.FoldDense(w1Dense, m, cin, c1, w2Dense, outC, c2, out _, out _), 1, w2Dense);
    }

    /// <summary>A planned Conv -> Conv fold: the folded conv (weights [outC, cin/groups, kh, kw], strides, pads,
    /// groups) from x to y, plus the border bias map added after it when the fold needs one to be exact.</summary>
    private sealed record ConvConvFold(string X, string Y, long[] WeightDims, int[] Strides, int[] PadsBegin,
        int[] PadsEnd, int Groups, float[] W, float[] B, float[]? BorderMap, int Yh, int Yw)
    {
        /// <summary>The edit, on the pass's model or on a trial copy: the folded conv (and map) replaces y.</summary>
        public Node Apply(Model target, Rewriter rw)
        {
            var g = target.Graph;
            var tx = g.Lookup(X)!; var ty = g.Lookup(Y)!;
            var (outC, kh, kw) = (WeightDims[0], WeightDims[2], WeightDims[3]);
            var wv = rw.Constant(g, Y + "_folded_W", Tensor.FromFloats("", WeightDims, W));
            var bv = rw.Constant(g, Y + "_folded_B", Tensor.FromFloats("", [outC], B));
            var node = rw.Insert(g, "Conv", [tx, wv, bv], Y + "_folded", 1,
                OnnxAttribute.IntList("kernel_shape", kh, kw), OnnxAttribute.IntList("strides", Strides[0], Strides[1]),
                OnnxAttribute.IntList("pads", PadsBegin[0], PadsBegin[1], PadsEnd[0], PadsEnd[1]),
                OnnxAttribute.IntList("dilations", 1, 1), OnnxAttribute.Int("group", Groups));
            var result = node.Output();
            if (BorderMap is { } map)
            {
                var mv = rw.Constant(g, Y + "_border_bias", Tensor.FromFloats("", [outC, Yh, Yw], map));
                result = rw.Insert(g, "Add", [result, mv], Y + "_folded_exact").Output();
            }
            rw.SetType(result, ty.Type);
            rw.Replace(ty, result);
            return node;
        }
    }

    /// <summary>The first conv of a pair: conv2's input's producer, or a conv behind the constant border bias map an
    /// earlier fold added (that map is carried through a 1x1 conv2); (null, null) when neither.</summary>
    private static (Node? Conv1, float[]? CarriedMap) FirstConv(Node conv2, Value h)
    {
        if (h.Producer is { OpType: "Conv", IsStandard: true } pc && pc.Graph == conv2.Graph) return (pc, null);
        if (h.Producer is not { OpType: "Add", IsStandard: true } add) return (null, null);
        for (int side = 0; side < 2; side++)
            if (add.Input(side) is { Producer: { OpType: "Conv", IsStandard: true } pc2 } inner && inner.Uses.Count == 1
                && !inner.IsGraphOutput
                && Rewriter.ConstantOf(add.Input(1 - side)) is { ElementType: DataType.Float } mt
                && mt.Dims.Length == 3 && inner.Shape is { Rank: 4 } ishape && mt.Dims[0] == ishape[1].Value
                && mt.Dims[1] == ishape[2].Value && mt.Dims[2] == ishape[3].Value)
                return (pc2, mt.ToFloatArray());
        return (null, null);
    }

    /// <summary>Whether the folded conv produces exactly conv2's output size (input x, kernel k, strides s, pads
    /// pb/pe, wanted y per spatial axis); end padding is trimmed in place where floor() would add rows.</summary>
    private static bool FitsOutput(int[] x, int[] k, int[] s, int[] pb, int[] pe, int[] y)
    {
        for (int ax = 0; ax < 2; ax++)
        {
            var got = (x[ax] + pb[ax] + pe[ax] - k[ax]) / s[ax] + 1;
            while (got > y[ax] && pe[ax] > 0) { pe[ax]--; got = (x[ax] + pb[ax] + pe[ax] - k[ax]) / s[ax] + 1; }
            if (got != y[ax]) return false;
        }
        return true;
    }

    /// <summary>A pair that does not pay on its own may be the first step of a chain that does (the expand ->
    /// depthwise -> project block): whether folding the unpadded conv that alone reads y too costs no more MACs
    /// than the three convs.</summary>
    private static bool ChainPays(Value y, int kh, int kw, int[] s, int cin, bool biasMap, long macsBefore)
    {
        if (y.Uses.Count != 1 || y.IsGraphOutput || y.Uses[0].Node is not { OpType: "Conv", IsStandard: true } conv3
            || conv3.Input(0) != y || Rewriter.ConstantOf(conv3.Input(1)) is not { Dims.Length: 4 } w3t
            || ConvSpec.Of(conv3, w3t.Dims) is not { Unpadded: true } c3 || conv3.Output().Shape is not { Rank: 4 } zs
            || !zs.Dims.Skip(2).All(d => d.IsKnown))
            return false;
        var k3h = ConvAlgebra.FoldedKernel(kh, 1, s[0], c3.Kernel[0], c3.Dilations[0]);
        var k3w = ConvAlgebra.FoldedKernel(kw, 1, s[1], c3.Kernel[1], c3.Dilations[1]);
        var plane = zs[2].Value!.Value * zs[3].Value!.Value;
        var chainAfter = w3t.Dims[0] * plane * cin * k3h * k3w + (biasMap ? w3t.Dims[0] * plane : 0);
        return chainAfter <= macsBefore + (ModelStats.Macs(conv3, out _) ?? 0);
    }

    /// <summary>Why a conv pair is refused: the counter ("refused: " + key) and the rule's failure reason.</summary>
    public static class Refusals
    {
        public const string FanOut = "intermediate value is read elsewhere";
        public const string WeightsNotConstant = "weights not constant float";
        public const string NotConv2D = "not a 2-D convolution with explicit padding";
        public const string BiasMapNotCarried = "a border bias map can only be carried through a 1x1 unpadded conv";
        public const string BiasNotConstant = "bias not constant";
        public const string DynamicSpatial = "spatial sizes not static";
        public const string PaddedBorder = "conv2 pads its input and conv1 is not 1x1";
        public const string KernelTooLarge = "folded kernel exceeds max-kernel";
        public const string OutputSize = "folded output size does not match";
    }

    private static RuleMatch<Candidate> MatchDirac(Node add)
    {
        for (int side = 0; side < 2; side++)
        {
            var x = add.Input(side); var f = add.Input(1 - side);
            if (x is null || f is null) continue;
            Value convOut = f; Node? constAdd = null;
            if (f.Producer is { OpType: "Add", IsStandard: true } ca && f.Uses.Count == 1 && !f.IsGraphOutput)
            {
                var cIdx = Rewriter.ConstantOf(ca.Input(0)) is not null ? 0 : Rewriter.ConstantOf(ca.Input(1)) is not null ? 1 : -1;
                if (cIdx >= 0 && ca.Input(1 - cIdx) is { } inner) { constAdd = ca; convOut = inner; }
            }
            if (convOut.Producer is not { OpType: "Conv", IsStandard: true } conv || conv.Input(0) != x || convOut.Uses.Count != 1 || convOut.IsGraphOutput) continue;
            var wt = Rewriter.ConstantOf(conv.Input(1));
            if (wt is not { ElementType: DataType.Float, Dims.Length: 4 }) continue;
            var spec = ConvSpec.Of(conv, wt.Dims);
            if (spec is null || spec.Strides.Any(v => v != 1) || x.Shape is not { } xs || convOut.Shape is not { } ys
                || !xs.Equals(ys)) continue;
            var cout = (int)wt.Dims[0]; var perGroup = (int)wt.Dims[1];
            var cin = perGroup * spec.Groups;
            if (cin != cout) continue;
            var centre = new int[2];
            bool ok = true;
            for (int ax = 0; ax < 2; ax++)
            {
                if (spec.PadsBegin[ax] % spec.Dilations[ax] != 0) { ok = false; break; }
                centre[ax] = spec.PadsBegin[ax] / spec.Dilations[ax];
                if (centre[ax] >= spec.Kernel[ax]) ok = false;
            }
            var y = add.Output();
            var result = constAdd?.Output() ?? convOut;
            if (!ok || !Rewriter.CanReplace(y, result)) continue;
            var label = $"{add}: x + {conv}";
            return new FoldPlan(label, "residual-dirac", 0, 0, 0, 0,
                (m, rw) => ApplyDirac(m, rw, add, conv, wt, spec, centre, convOut, result))
            {
                AlwaysPays = true,
                Counters = [Counters.FoldConv.Residual],
                Folded = new FoldDecision(label, "residual-dirac", "folded") { Exact = true },
            };
        }
        return new NoMatch("not x + conv(x) with a same-size, stride-1 conv");
    }

    private static Node? ApplyDirac(Model target, Rewriter rw, Node add, Node conv, Tensor wt, ConvSpec spec,
        int[] centre, Value convOut, Value result)
    {
        // On a trial copy, the same nodes and values by name.
        if (target.Graph != add.Graph)
        {
            var g = target.Graph;
            add = g.Nodes.First(n => n.Outputs.Count > 0 && n.Outputs[0]?.Name == add.Output().Name);
            conv = g.Lookup(conv.Output().Name)!.Producer!;
            convOut = g.Lookup(convOut.Name)!;
            result = g.Lookup(result.Name)!;
        }
        var y = add.Output();
        var cout = (int)wt.Dims[0]; var perGroup = (int)wt.Dims[1];
        var w = wt.ToFloatArray();
        var (kh, kw) = (spec.Kernel[0], spec.Kernel[1]);
        var outPerGroup = cout / spec.Groups;
        for (int c = 0; c < cout; c++)
        {
            var local = c - (c / outPerGroup) * perGroup;
            w[((c * perGroup + local) * kh + centre[0]) * kw + centre[1]] += 1f;
        }
        FoldBatchNorm.SetWeight(rw, conv, 1, wt.Dims, w, convOut.Name + "_W");
        rw.SetType(result, y.Type ?? result.Type);
        rw.Replace(y, result);
        rw.Erase(add);
        return null;
    }

    /// <summary>y = alpha op(A) op(B) + beta C as (B as [K,N], c as [N] incl. beta) when constant.</summary>
    private static (float[] B, int K, int N, float[] C, float Alpha)? GemmParts(Node g)
    {
        var bt = Rewriter.ConstantOf(g.Input(1));
        if (bt is not { ElementType: DataType.Float, Dims.Length: 2 }) return null;
        var b = bt.ToFloatArray();
        int k = (int)bt.Dims[0], n = (int)bt.Dims[1];
        if (g.OpType == "Gemm" && g.GetInt("transB", 0) != 0) { b = ConvAlgebra.Transpose(b, k, n); (k, n) = (n, k); }
        var c = new float[n];
        if (g.OpType == "Gemm" && g.Input(2) is { } cv)
        {
            if (Rewriter.ConstantOf(cv) is not { ElementType: DataType.Float } ct || ct.ElementCount != n
                && ct.ElementCount != 1) return null;
            var cd = ct.ToFloatArray();
            var beta = g.GetFloat("beta", 1f);
            for (int j = 0; j < n; j++) c[j] = beta * (cd.Length == 1 ? cd[0] : cd[j]);
        }
        return (b, k, n, c, g.OpType == "Gemm" ? g.GetFloat("alpha", 1f) : 1f);
    }

    /// <summary>A fold of two matrix products with the same rows: MACs are rows * (K N1 + N1 N2) before and
    /// rows * K N2 after (rows per sample from the first product's MACs, 1 when its shapes are unknown), weights
    /// K N1 + N1 N2 and K N2.</summary>
    private static FoldPlan MatrixPlan(string kind, Node first, Node second, int k, int n1, int n2,
        Func<Model, Rewriter, Node?> edit)
    {
        var label = $"{first} -> {second}";
        long rows = ModelStats.Macs(first, out _) is long m1 && m1 > 0 ? m1 / ((long)k * n1) : 1;
        long paramsBefore = (long)k * n1 + (long)n1 * n2, paramsAfter = (long)k * n2;
        return new FoldPlan(label, kind, rows * paramsBefore, rows * paramsAfter, paramsBefore, paramsAfter, edit)
        {
            Pair = (first, second),
            Counters = [Counters.FoldConv.Folded(kind)],
            Folded = new FoldDecision(label, kind, "folded")
            {
                Exact = true,
                MacsBefore = rows * paramsBefore,
                MacsAfter = rows * paramsAfter,
                ParamsBefore = paramsBefore,
                ParamsAfter = paramsAfter,
            },
        };
    }

    private static RuleMatch<Candidate> MatchGemmGemm(Node g2)
    {
        var h = g2.Input(0);
        if (h?.Producer is not { OpType: "Gemm", IsStandard: true } g1 || h.Uses.Count != 1 || h.IsGraphOutput)
            return new NoMatch("input not produced by a Gemm read only here");
        if (g2.GetInt("transA", 0) != 0) return new NoMatch("transA");
        if (GemmParts(g1) is not { } p1 || GemmParts(g2) is not { } p2
            || p1.N != p2.K) return new NoMatch("weights not constant float matrices");
        // y may be a graph output: the folded Gemm's fresh output takes it over (Rewriter.Replace), so no
        // CanReplace check is needed before the node exists.
        var (x, y) = (g1.Input(0)!.Name, g2.Output().Name);
        // y = a2 (a1 A B1 + c1) B2 + c2 = (a1 a2) A (B1 B2) + (a2 c1 B2 + c2)
        var b = ConvAlgebra.MatMul(p1.B, p2.B, p1.K, p1.N, p2.N);
        var cb = ConvAlgebra.MatMul(p1.C, p2.B, 1, p1.N, p2.N);
        var c = Enumerable.Range(0, p2.N).Select(j => p2.Alpha * cb[j] + p2.C[j]).ToArray();
        var (alpha, transA) = (p1.Alpha * p2.Alpha, g1.GetInt("transA", 0));
        return MatrixPlan("gemm-gemm", g1, g2, p1.K, p1.N, p2.N, (target, rw) =>
        {
            var gr = target.Graph;
            var ty = gr.Lookup(y)!;
            var node = rw.Insert(gr, "Gemm", [gr.Lookup(x),
                    rw.Constant(gr, y + "_folded_B", Tensor.FromFloats("", [p1.K, p2.N], b)),
                    rw.Constant(gr, y + "_folded_C", Tensor.FromFloats("", [p2.N], c))], y + "_folded", 1,
                OnnxAttribute.Float("alpha", alpha), OnnxAttribute.Int("transA", transA));
            rw.SetType(node.Output(), ty.Type);
            rw.Replace(ty, node.Output());
            return node;
        });
    }

    private static RuleMatch<Candidate> MatchMatMulMatMul(Node m2)
    {
        var h = m2.Input(0);
        // A bias Add between the two (a transformer's fc1 + b1 after its activation became the identity):
        //   (x W1 + b1) W2 = x (W1 W2) + b1 W2
        float[]? b1 = null;
        if (h?.Producer is { OpType: "Add", IsStandard: true } add && h.Uses.Count == 1 && !h.IsGraphOutput
            && add.Inputs.FirstOrDefault(i => Rewriter.ConstantOf(i) is null) is { } inner
            && add.Inputs.FirstOrDefault(i => Rewriter.ConstantOf(i) is not null) is { } bv
            && Rewriter.ConstantOf(bv) is { ElementType: DataType.Float } bt && inner.Producer?.OpType == "MatMul"
            && bt.Dims.Take(bt.Dims.Length - 1).All(d => d == 1))
        {
            b1 = bt.ToFloatArray();
            h = inner;
        }
        if (h?.Producer is not { OpType: "MatMul", IsStandard: true } m1 || h.Uses.Count != 1 || h.IsGraphOutput)
            return new NoMatch("input not produced by a MatMul read only here");
        if (GemmParts(m1) is not { } p1 || GemmParts(m2) is not { } p2
            || p1.N != p2.K) return new NoMatch("weights not constant float matrices");
        if (b1 is not null && b1.Length != p1.N) return new NoMatch("the bias between them is not one per column");
        var (x, y) = (m1.Input(0)!.Name, m2.Output().Name);
        var folded = ConvAlgebra.MatMul(p1.B, p2.B, p1.K, p1.N, p2.N);
        var bias = b1 is null ? null : ConvAlgebra.MatMul(b1, p2.B, 1, p1.N, p2.N);
        return MatrixPlan("matmul-matmul", m1, m2, p1.K, p1.N, p2.N, (target, rw) =>
        {
            var gr = target.Graph;
            var ty = gr.Lookup(y)!;
            var weight = rw.Constant(gr, y + "_folded_B", Tensor.FromFloats("", [p1.K, p2.N], folded));
            var node = rw.Insert(gr, "MatMul", [gr.Lookup(x), weight], y + "_folded");
            rw.SetType(node.Output(), ty.Type);
            var result = node;
            if (bias is not null)
            {
                var c = rw.Constant(gr, y + "_folded_C", Tensor.FromFloats("", [p2.N], bias));
                result = rw.Insert(gr, "Add", [node.Output(), c], y + "_folded_biased");
                rw.SetType(result.Output(), ty.Type);
            }
            rw.Replace(ty, result.Output());
            return result;
        });
    }

    /// <summary>For approximate (border) folds: the measured error of the pass on calibration data
    /// (or 8 seeded random samples).</summary>
    private static void MeasureError(PassContext ctx, byte[] before)
    {
        using var a = InferenceSession.FromBytes(before,
            new SessionSettings { Optimization = GraphOptimization.Disabled });
        using var b = InferenceSession.FromModel(ctx.Model,
            new SessionSettings { Optimization = GraphOptimization.Disabled });
        var data = ctx.Calibration?.DataFor(a.Inputs) ?? DataSet.Random(a.Inputs, 8, 1);
        var r = Validator.Compare(a, b, data);
        foreach (var out_ in r.Outputs)
            ctx.Stats.Decide(new BorderError(out_.Name, out_.MaxAbsError, out_.Cosine, out_.Top1Agreement));
    }
}
