// Every command that runs a model works on the BERT-style exports: random integer inputs fit the tables they
// index, bench takes --data and --dim, and a failure on generated inputs says which ranges were used.
namespace OnnxOpt.Tests;

public class TransformerCliTests
{
    private static readonly string Bert = Cli.Model("transformers/bert_op13.onnx");
    private static readonly string BertData = Cli.Model("transformers/bert_data");

    [Fact]
    public void BenchRunsABertStyleModelOnRandomInputsAtAGivenSequence()
    {
        var r = Cli.Run("bench", Bert, "--iters", "3", "--warmup", "1", "--dim", "sequence=16");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("sequence=16", r.Out);
        Assert.Contains("inputs: random", r.Out);
    }

    [Fact]
    public void BenchTimesTheFirstBatchOfADataFolder()
    {
        var r = Cli.Run("bench", Bert, "--vs", Cli.Model("transformers/bert_op11.onnx"), "--iters", "3",
            "--warmup", "1", "--data", BertData, "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("\"inputs\": \"data\"", r.Out);
        Assert.Contains("speedup", r.Out);
    }

    [Fact]
    public void BenchRefusesADimTheModelDoesNotHave()
    {
        var r = Cli.Run("bench", Bert, "--dim", "seq=8");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("no symbolic dim 'seq' (its dims: batch, sequence)", r.Err);
    }

    [Fact]
    public void ValidateAndRunDrawIdsTheModelTakes()
    {
        var r = Cli.Run("validate", Bert, Bert, "--random", "3", "--dim", "sequence=12", "--dim", "batch=2");
        Assert.True(r.ExitCode == 0, r.Err);
        var dir = Paths.TempDir();
        r = Cli.Run("run", Bert, "--random", "1", "--dim", "sequence=5", "-o", dir);
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.True(File.Exists(Path.Combine(dir, "last_hidden_state.npy")));
    }

    [Fact]
    public void AFailureOnGeneratedInputsNamesTheRangesUsed()
    {
        var r = Cli.Run("validate", Bert, Bert, "--random", "2", "--dim", "sequence=8",
            "--int-range", "token_type_ids=0:5");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("token_type_ids [0, 5) (given)", r.Err);
        Assert.Contains("input_ids [0, 1000) (rows of", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
    }

    [Fact]
    public void OptimizeValidatesAndBenchesOnTheUsersData()
    {
        var dir = Paths.TempDir();
        var o = Path.Combine(dir, "o.onnx");
        var report = Path.Combine(dir, "r.json");
        var r = Cli.Run("optimize", Bert, "-o", o, "--passes", "canonicalize", "--eval", BertData, "--bench",
            "--report", report);
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("latency", File.ReadAllText(report));
    }

    [Fact]
    public void OptimizeWithoutPassesSpecializesToTheGivenDimsAndFusesValidated()
    {
        var dir = Paths.TempDir();
        var o = Path.Combine(dir, "o.onnx");
        var r = Cli.Run("optimize", Bert, "-o", o, "--dim", "batch=1", "--dim", "sequence=32", "--opset", "20");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("fix-dims{dims=batch:1;sequence:32}", r.Err);
        Assert.Contains("nodes 266 -> ", r.Err);
        Assert.Contains("validation on 10 seeded random input sets", r.Err);
        Assert.Contains("latency (ORT, 1 thread): ", r.Err);   // a specialized model is always timed
        var m = OnnxOpt.GraphIR.OnnxImporter.Load(o);
        Assert.Equal("[1,32]", m.Graph.Inputs[0].Shape!.ToString().Replace(" ", ""));
        Assert.Contains(m.Graph.Nodes, n => n.OpType == "LayerNormalization");
        Assert.DoesNotContain(m.Graph.Nodes, n => n.OpType == "Shape");
    }

    [Fact]
    public void OptimizeWithoutDimsKeepsTheSymbolicDims()
    {
        var dir = Paths.TempDir();
        var o = Path.Combine(dir, "o.onnx");
        var r = Cli.Run("optimize", Bert, "-o", o);
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("matches of fuse-layernorm not fused", r.Err);
        // The MACs as a function of the sequence, before and after (the exact clean-up keeps them).
        Assert.Contains("MACs 256 sequence^2 + 98,304 sequence + 4,096 -> 256 sequence^2 + 98,304 sequence + 4,096,",
            r.Err + r.Out);
        var m = OnnxOpt.GraphIR.OnnxImporter.Load(o);
        Assert.Equal("sequence", m.Graph.Inputs[0].Shape!.Dims[1].Param);
        Assert.Equal(2, Cli.Run("optimize", Bert, "-o", o, "--opset", "99").ExitCode);
    }

    [Fact]
    public void ValidateJudgesByTheMeasureAskedFor()
    {
        var eval = Cli.Model("transformers/bert_eval");
        var r = Cli.Run("validate", Bert, Cli.Model("transformers/bert_op11.onnx"), "--data", eval, "--metric",
            "agreement", "--max-drop", "0.5");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("measure: neighbour agreement of the mean-pooled last_hidden_state (masked by attention_mask)",
            r.Out);
        r = Cli.Run("validate", Bert, Bert, "--data", eval, "--metric-output", "pooler_output", "--json");
        Assert.Contains("\"description\": \"top-1 agreement of pooler_output\"", r.Out);
        r = Cli.Run("validate", Bert, Bert, "--data", eval, "--pool", "mean", "--metric", "accuracy");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--metric accuracy needs labels", r.Err);
    }

    [Fact]
    public void InspectShowsLayersHeadsHiddenAndEmbeddingShares()
    {
        var r = Cli.Run("inspect", Bert);
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("transformer: 2 attention layers, 4 heads, hidden 64, sequence dims sequence", r.Out);
        Assert.Contains("embedding word.weight: 1,000 x 64, 256,000 bytes (35.5% of the file)", r.Out);
        Assert.Contains("MACs:        256 sequence^2 + 98,304 sequence + 4,096 per sample", r.Out);
        r = Cli.Run("inspect", Bert, "--dim", "sequence=32");
        Assert.Contains($"MACs:        {256 * 32 * 32 + 98_304 * 32 + 4_096:N0} per sample", r.Out);
    }

    [Fact]
    public void ScoreRunsSynFlowFromTheEmbeddingsOfATokenModelAndExplainsTheAttentionCollapse()
    {
        var r = Cli.Run("score", Bert, "--iterations", "5", "--input-shape", "input_ids=1x8",
            "--input-shape", "attention_mask=1x8", "--input-shape", "token_type_ids=1x8");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("'/layers.0/inter/MatMul' (MatMul)", r.Out);
        Assert.Contains("note: 4 attention query/key projections collapse under SynFlow", r.Err);
        Assert.Equal(0, Cli.Run("score", Bert, "--method", "magnitude").ExitCode);
    }

    [Fact]
    public void QuantizeDynamicNeedsNoCalibrationAndIsJudgedOnThePooledEmbedding()
    {
        var dir = Paths.TempDir();
        var o = Path.Combine(dir, "q.onnx");
        var r = Cli.Run("quantize", Bert, "-o", o, "--mode", "dynamic", "--eval", Cli.Model("transformers/bert_eval"));
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("budget measure: cosine of the mean-pooled last_hidden_state", r.Err);
        Assert.Contains(OnnxOpt.GraphIR.OnnxImporter.Load(o).Graph.Nodes, n => n.OpType == "DynamicQuantizeMatMul");
        // No --mode and no --calib: the transformer goes dynamic by itself, and says so.
        var plain = Path.Combine(dir, "plain.onnx");
        r = Cli.Run("quantize", Bert, "-o", plain);
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("note: no calibration data: dynamic int8 for this transformer", r.Err);
        Assert.Equal(File.ReadAllBytes(o), File.ReadAllBytes(plain));
    }
}
