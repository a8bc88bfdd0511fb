// cluster: weight sharing (Deep Compression's trained quantization, without the training): every weight of
// a Conv/ConvTranspose/Gemm/MatMul (at least min-elements of them) is replaced by one of K shared values.
//   K = clusters, or 2^bits, or per layer the fewest bits (1..8) whose weight SQNR
//       10 log10(sum w^2 / sum (w - c(w))^2) reaches min-sqnr (so layers get different bit counts);
//   centroids by exact 1-D k-means (KMeans1D), per tensor or per output channel, optionally weighted:
//       magnitude |w|; fisher: the mean squared gradient of the outputs along random-sign probes
//       (r . dy/dw)^2, whose expectation is sum_o (dy_o/dw)^2, the Gauss-Newton (Fisher) diagonal of the
//       output distance to the original (SqueezeLLM's weighting, without labels); synflow: |w dR/dw|;
//   zero stays an exact centroid of its own when at least 5% of a tensor is zero (sparse, after pruning
//   or sparsify; keep-zero=auto), so sparsity survives;
//   train-steps: the centroids train by distillation, assignments fixed (train-rest: with the biases and the
//   weights left unclustered);
//   storage (format=): float weights with K distinct values, or codes and codebooks ORT decodes at load
//   (ClusterStorage: lut, lut4), or for MatMul/Gemm weights a 4-bit grid per block run by MatMulNBits
//   (BlockGrid4: int4; the other weights are then stored as float).
//   before: W (float[64,32,3,3], 18,432 distinct)   after (bits=4): W with 16 distinct values
// Approximate: validate on held-out data.
using OnnxOpt.Autodiff;
using OnnxOpt.Calibration;
using OnnxOpt.Data;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

/// <summary>One clustered weight: its size, the clusters per slice and bits, distinct values before and after,
/// the weight SQNR, and how it is stored.</summary>
public sealed record WeightClustered(string Weight, string Layer, long Elements, int Clusters, int Bits,
    long DistinctBefore, long DistinctAfter, double SqnrDb, bool PerChannel, bool ZeroKept, string Format)
    : Decision;

public sealed record ClusterOptions
{
    [Option("bits", "codes of this many bits: 2^bits clusters (1..8; ignored with clusters or min-sqnr)", Min = 1,
        Max = 8)]
    public long Bits { get; init; } = 4;
    [Option("clusters", "number of clusters per tensor or channel (-1: from bits)", Min = -1)]
    public long Clusters { get; init; } = -1;
    [Option("min-sqnr", "per layer, the fewest bits (1..8) whose weight SQNR reaches this many dB (-1: off)")]
    public double MinSqnr { get; init; } = -1;
    [Option("per-channel", "one codebook per output channel instead of per tensor")]
    public bool PerChannel { get; init; }
    [Option("weighting", "k-means weights: none, |w|, Fisher diagonal of the outputs on calibration data, or "
        + "SynFlow |w dR/dw|", Choices = ["none", "magnitude", "fisher", "synflow"])]
    public string Weighting { get; init; } = "none";
    [Option("keep-zero", "zero as its own exact centroid: auto when at least 5% of the tensor is zero",
        Choices = ["auto", "true", "false"])]
    public string KeepZero { get; init; } = "auto";
    [Option("min-elements", "tensors with fewer elements are left alone", Min = 0)]
    public long MinElements { get; init; } = 256;
    [Option("int4-accuracy-level", "format=int4: MatMulNBits accuracy_level (0: float compute from the grid; 4: "
        + "int8 compute, fastest)", Min = 0, Max = 4)]
    public long Int4AccuracyLevel { get; init; } = 4;
    [Option("exclude", "node names, weight names or op types never clustered (';'-separated)")]
    public string Exclude { get; init; } = "";
    [Option("train-steps", "train the centroids (int4: the block scales) this many distillation steps on the "
        + "calibration data, assignments fixed (Deep Compression's trained quantization; 0: off)", Min = 0)]
    public long TrainSteps { get; init; }
    [Option("train-lr", "learning rate of the centroid training (Adam)", Min = 0)]
    public double TrainLr { get; init; } = 1e-4;
    [Option("train-rest", "with train-steps: the float parameters left unclustered (biases, small or excluded "
        + "weights) train with the centroids")]
    public bool TrainRest { get; init; } = true;
    [Option("format", "float: K distinct float values; lut: uint8 codes -> Cast -> Gather(codebook); lut4: two "
        + "4-bit codes per byte (K <= 16), unpacked with Div/Mod; int4: MatMul/Gemm weights on an evenly spaced "
        + "16-level grid per block of 32, run as com.microsoft MatMulNBits (others as float)",
        Choices = ["float", "lut", "lut4", "int4"])]
    public string Format { get; init; } = "float";
}

public sealed class Cluster : Pass<ClusterOptions>
{
    public override string Name => "cluster";
    public override string Summary =>
        "weight sharing by exact 1-D k-means (per tensor or channel, optional saliency weighting), stored as "
        + "float, or codes + codebook that ORT decodes at load";
    public override bool IsExact(ClusterOptions options) => false;

    public override DataNeeds Needs(ClusterOptions options) =>
        options.Weighting == "fisher" || options.TrainSteps > 0 ? DataNeeds.Calibration : DataNeeds.None;
    public override bool NeedsTeacher(ClusterOptions options) => options.TrainSteps > 0;

    public override void Run(PassContext ctx, ClusterOptions o)
    {
        UpgradeOpset.Require(ctx, Name, 13, "the opset onnxopt's compression passes share");
        var (bits, clusters) = ((int)o.Bits, (int)o.Clusters);
        if (clusters < 0 && o.MinSqnr < 0 && bits is < 1 or > 8)
            throw new OnnxModelException($"cluster: bits={bits} must be in 1..8");
        if (clusters == 0 || clusters > 65_536)
            throw new OnnxModelException($"cluster: clusters={clusters} must be in 1..65536");
        var exclude = o.Exclude.Split(';', StringSplitOptions.RemoveEmptyEntries
            | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        var weights = PrunableWeight.Find(ctx.Model.Graph)
            .Where(p => p.Weight.Initializer!.ElementCount >= o.MinElements)
            .Where(p => !exclude.Contains(p.Node.Name ?? "") && !exclude.Contains(p.Node.OpType)
                && !exclude.Contains(p.Weight.Name))
            .ToList();
        var saliency = o.Weighting switch
        {
            "fisher" => Fisher(ctx.Model, weights, ctx.RequireCalibration(Name)),
            "synflow" => Saliency.Score(ctx.Model, new SaliencyOptions { Iterations = 1, Density = 1 }).Scores,
            _ => null,
        };
        var plans = weights.Select(p => PlanOf(ctx, o, p, saliency)).ToList();
        if (o.TrainSteps > 0 && plans.Count > 0) TrainCentroids(ctx, o, plans);
        Store(ctx, o, plans);
        if (weights.Count == 0) ctx.Stats.Notes.Add("cluster: no weight tensor to cluster");
        ctx.Rewriter.Cleanup();
    }

    /// <summary>One weight's clustering as the options ask: the int4 grid, a fixed number of clusters or bits, or
    /// the fewest bits that reach min-sqnr.</summary>
    private static Plan PlanOf(PassContext ctx, ClusterOptions o, PrunableWeight p,
        IReadOnlyDictionary<string, double[]>? saliency)
    {
        var (bits, clusters, minSqnr, format) = ((int)o.Bits, (int)o.Clusters, o.MinSqnr, o.Format);
        var w = p.Weight.Initializer!.ToFloatArray();
        if (format == "int4" && BlockGrid4.Applies(p))
        {
            return new Plan(p, w, 16, false, Grid: BlockGrid4.Fit(p));
        }
        double[]? weighting = o.Weighting switch
        {
            "magnitude" => w.Select(v => (double)Math.Abs(v)).ToArray(),
            "fisher" or "synflow" => saliency!.GetValueOrDefault(p.Weight.Name),
            _ => null,
        };
        var zeros = w.Count(v => v == 0);
        var keepZero = o.KeepZero switch
        {
            "true" => true,
            "false" => false,
            _ => zeros >= 0.05 * w.Length,
        };
        var slices = o.PerChannel ? p.FilterOf() : new int[w.Length];
        (float[] Values, int[] Codes, double[][] Books) result;
        if (clusters > 0) result = Apply(w, weighting, slices, clusters, keepZero);
        else if (minSqnr < 0) result = Apply(w, weighting, slices, 1 << bits, keepZero);
        else
        {
            // The fewest bits reaching min-sqnr; 8 bits when none does.
            int b = 1;
            while (true)
            {
                result = Apply(w, weighting, slices, 1 << b, keepZero);
                if (b == 8 || Sqnr(w, result.Values) >= minSqnr) break;
                b++;
            }
            if (Sqnr(w, result.Values) < minSqnr)
            {
                var reached = Sqnr(w, result.Values);
                ctx.Stats.Notes.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"cluster: {p.Weight.Name} reaches {reached:F1} dB at 8 bits (min-sqnr {minSqnr})"));
            }
        }
        return new Plan(p, w, result.Books.Max(b => b.Length), keepZero, result, Slices: slices);
    }

    /// <summary>Writes each plan's weights (codebook storage or the int4 grid) and its decision.</summary>
    private static void Store(PassContext ctx, ClusterOptions o, List<Plan> plans)
    {
        var format = o.Format;
        var storage = new ClusterStorage(ctx.Rewriter, ctx.Model.Graph);
        foreach (var plan in plans)
        {
            var (p, w) = (plan.Weight, plan.Original);
            if (plan.Grid is { } grid)
            {
                BlockGrid4.Store(ctx.Rewriter, ctx.Model.Graph, p, grid.B, grid.Scales, grid.Zeros, grid.K, grid.N,
                    (int)o.Int4AccuracyLevel);
                ctx.Stats.Decide(new WeightClustered(p.Weight.Name, p.Layer, w.Length, 16, 4, w.Distinct().LongCount(),
                    grid.Values.Distinct().LongCount(), Sqnr(w, grid.Values), false, false, "int4"));
                ctx.Stats.Count(Counters.Cluster.WeightsClustered);
                continue;
            }
            var result = plan.Result!.Value;
            var used = plan.Clusters;
            var codeBits = Math.Max(1, (int)Math.Ceiling(Math.Log2(Math.Max(2, used))));
            var stored = storage.Store(p, result.Values, result.Codes, result.Books, plan.Slices!,
                format == "int4" ? "float" : format);
            ctx.Stats.Decide(new WeightClustered(p.Weight.Name, p.Layer, w.Length, used, codeBits,
                w.Distinct().LongCount(), result.Values.Distinct().LongCount(), Sqnr(w, result.Values),
                o.PerChannel, plan.KeepZero, stored));
            ctx.Stats.Count(Counters.Cluster.WeightsClustered);
        }
    }

    /// <summary>One weight's clustering: k-means codes and codebooks per slice, or the int4 grid.</summary>
    private sealed record Plan(PrunableWeight Weight, float[] Original, int Clusters, bool KeepZero,
        (float[] Values, int[] Codes, double[][] Books)? Result = null, int[]? Slices = null,
        (float[] Values, byte[] B, float[] Scales, byte[] Zeros, int K, int N)? Grid = null)
    {
        public (float[] Values, int[] Codes, double[][] Books)? Result { get; set; } = Result;
        public (float[] Values, byte[] B, float[] Scales, byte[] Zeros, int K, int N)? Grid { get; set; } = Grid;
    }

    /// <summary>train-steps: Deep Compression's trained centroids. Assignments stay; every codebook entry (or int4
    /// block scale) trains by distillation toward the pipeline's input, its gradient the sum of its members';
    /// with train-rest the unclustered float parameters (biases, small weights) train with them.</summary>
    private static void TrainCentroids(PassContext ctx, ClusterOptions o, List<Plan> plans)
    {
        var parameters = new List<OnnxOpt.Training.Parameter>();
        foreach (var plan in plans)
        {
            var v = plan.Weight.Weight;
            if (plan.Grid is { } grid)
            {
                var (block, q) = BlockGrid4.Members(plan.Weight, grid.Values, grid.Scales, grid.K, grid.N);
                ctx.Rewriter.SetInitializer(v, Tensor.FromFloats(v.Name, v.Initializer!.Dims, grid.Values));
                parameters.Add(new OnnxOpt.Training.GridParameter(v, grid.Scales.ToArray(), block, q));
                continue;
            }
            var r = plan.Result!.Value;
            var offsets = new int[r.Books.Length];
            for (int s = 1; s < offsets.Length; s++) offsets[s] = offsets[s - 1] + r.Books[s - 1].Length;
            var index = new int[r.Codes.Length];
            for (int i = 0; i < index.Length; i++) index[i] = offsets[plan.Slices![i]] + r.Codes[i];
            ctx.Rewriter.SetInitializer(v, Tensor.FromFloats(v.Name, v.Initializer!.Dims, r.Values));
            parameters.Add(new OnnxOpt.Training.CodebookParameter(v,
                r.Books.SelectMany(b => b.Select(x => (float)x)).ToArray(), index));
        }
        // The rest (biases, weights too small to cluster) trains alongside and is written back as it ends.
        var rest = o.TrainRest ? OnnxOpt.Training.ParameterSelection.Select(ctx.Model, "all",
            plans.Select(p => p.Weight.Weight.Name).ToHashSet(StringComparer.Ordinal)) : [];
        parameters.AddRange(rest);
        var settings = new OnnxOpt.Training.TrainSettings
        {
            Steps = checked((int)o.TrainSteps),
            LearningRate = o.TrainLr,
            EvalEvery = 0,
        };
        Recovery.Train(ctx, "cluster: centroids", parameters, settings, writeBack: false);
        OnnxOpt.Training.Trainer.WriteBack(ctx.Model, rest, ctx.Rewriter.SetInitializer);
        for (int k = 0; k < plans.Count; k++)
        {
            var plan = plans[k];
            var trained = parameters[k].Values;
            var values = new Dictionary<string, Autodiff.NdArray<float>>();
            parameters[k].Materialize(values);
            var w = values[plan.Weight.Weight.Name].R.ToArray();
            if (plan.Grid is { } grid) plan.Grid = grid with { Values = w, Scales = trained.ToArray() };
            else
            {
                var r = plan.Result!.Value;
                var books = new double[r.Books.Length][];
                for (int s = 0, at = 0; s < books.Length; at += r.Books[s].Length, s++)
                    books[s] = trained.Skip(at).Take(r.Books[s].Length).Select(x => (double)x).ToArray();
                plan.Result = (w, r.Codes, books);
            }
        }
    }

    internal static double Sqnr(float[] w, float[] c)
    {
        double s = 0, e = 0;
        for (int i = 0; i < w.Length; i++)
        {
            s += (double)w[i] * w[i];
            e += ((double)w[i] - c[i]) * ((double)w[i] - c[i]);
        }
        return Runtime.Validation.Fidelity.SqnrDb(s, e);
    }

    /// <summary>k-means per slice: the clustered values, each value's code in its slice's codebook, and the
    /// codebooks (slice order).</summary>
    private static (float[] Values, int[] Codes, double[][] Books) Apply(float[] w, double[]? weighting,
        int[] slices, int k, bool keepZero)
    {
        int count = slices.Length == 0 ? 0 : slices.Max() + 1;
        var members = new List<int>[count];
        for (int c = 0; c < count; c++) members[c] = new List<int>();
        for (int i = 0; i < w.Length; i++) members[slices[i]].Add(i);
        var values = new float[w.Length];
        var codes = new int[w.Length];
        var books = new double[count][];
        for (int c = 0; c < count; c++)
        {
            var idx = members[c];
            var r = KMeans1D.Cluster(idx.Select(i => w[i]).ToArray(), k,
                weighting is null ? null : idx.Select(i => weighting[i]).ToArray(), keepZero);
            books[c] = r.Centroids.Select(x => (double)(float)x).ToArray();
            for (int j = 0; j < idx.Count; j++)
            {
                codes[idx[j]] = r.Assignment[j];
                values[idx[j]] = (float)r.Centroids[r.Assignment[j]];
            }
        }
        return (values, codes, books);
    }

    /// <summary>weighting=fisher: per weight, the mean over calibration samples and random-sign probes r of
    /// (d(r . y)/dw)^2 (our float32 autodiff; up to 128 samples, 4 probes).</summary>
    private static Dictionary<string, double[]> Fisher(Model model, List<PrunableWeight> weights,
        CalibrationSource calib)
    {
        var ev = new Evaluator<float>(model);
        var outputs = model.Graph.Outputs.Where(o => o.ElementType.IsFloatingPoint()).Select(o => o.Name).ToList();
        if (outputs.Count == 0) throw new OnnxModelException("cluster weighting=fisher needs a float graph output");
        var names = weights.Select(p => p.Weight.Name).ToList();
        var sums = weights.ToDictionary(p => p.Weight.Name, p => new double[p.Weight.Initializer!.ElementCount]);
        var rng = new Random(23);
        int seen = 0;
        // Batches of one: the gradient of a batch is the sum over its samples, and the square is per sample.
        foreach (var batch in calib.DataFor(IoInfo.InputsOf(model.Graph)).Batches(1))
        {
            if (seen >= RandomProbes.Samples) break;
            var trace = ev.Forward(batch.Inputs.ToDictionary(kv => kv.Key,
                kv => NdArray<float>.FromTensor(kv.Value)));
            for (int probe = 0; probe < RandomProbes.Probes; probe++)
            {
                var seeds = RandomProbes.Seeds(trace, outputs, rng);
                var grads = ev.Backward(trace, seeds, names);
                foreach (var name in names)
                {
                    var g = grads[name].R;
                    var sum = sums[name];
                    for (int i = 0; i < sum.Length; i++) sum[i] += (double)g[i] * g[i];
                }
            }
            seen++;
        }
        return sums;
    }
}
