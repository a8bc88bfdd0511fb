// compress's search state: the candidates evaluated so far, the models behind them, the time each stage took and
// what was cut, with the three steps Compressor.Run drives: Evaluate (validate in ORT against the input, time it
// interleaved, size it as .onnx and packed), Try (one candidate step on a state, under the time budget) and Sweep
// (the beam over the recipe's stages, every state x every candidate; a step already tried on a state is reused).
// Result chooses the best candidate within the budget (never one over it) and marks the Pareto set.
using System.Diagnostics;
using System.Globalization;
using OnnxOpt.GraphIR;
using OnnxOpt.Runtime;
using OnnxOpt.Runtime.Validation;

namespace OnnxOpt.Passes;

public static partial class Compressor
{
    private sealed class Search : IDisposable
    {
        private readonly Model _input;
        private readonly CompressOptions _o;
        private readonly Recipe _recipe;
        private readonly TextWriter _log;
        private readonly byte[] _originalBytes;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly Dictionary<string, double> _stageSeconds = new(StringComparer.Ordinal);
        private readonly SessionSettings _evalSettings = new() { Optimization = GraphOptimization.All };
        private readonly InferenceSession _reference;
        private readonly List<CompressCandidate> _all = new();
        private readonly Dictionary<int, State> _states = new();
        private readonly List<string> _skipped = new();
        private readonly Dictionary<int, (ValidationReport V, BenchReport B)> _validations = new();
        // (parent state, step) -> the candidate it made (-1: failed or cut), so the second sweep reuses the first's.
        private readonly Dictionary<(int, string), int> _tried = new();
        private readonly CompressCandidate _c0;
        private string _dropMetric = "accuracy";
        private double? _referenceAccuracy;
        // A transformer's sequence length as the held-out data has it: MACs (and --target macs) count the
        // attention products and every per-token product, not only the terms without a symbolic dim.
        private readonly Dictionary<string, long>? _dims;

        public Search(Model input, CompressOptions o)
        {
            _input = input;
            Deadline = o.TimeBudgetMinutes is { } minutes ? DateTime.UtcNow.AddMinutes(minutes) : null;
            _recipe = (o.Recipe ?? Recipe.Auto("size", 1)).Normalize();
            _log = o.Log ?? TextWriter.Null;
            _originalBytes = OnnxExporter.ToBytes(input);
            // Latency is timed on the user's held-out inputs (their first batch), not on random ones.
            _o = o with
            {
                Bench = o.Bench with
                {
                    Inputs = o.Bench.Inputs ?? Optimizer.BenchInputs(o.Evaluation, input, o.Bench.Batch),
                },
            };
            _reference = InferenceSession.FromBytes(_originalBytes, _evalSettings);
            _dims = o.Evaluation.SymbolicDims(input);
            _c0 = Evaluate(null, "input", "", "", input, _originalBytes, 0);
            _states[_c0.Id] = new State(_c0, input, _originalBytes, []);
        }

        /// <summary>When training passes stop and no candidate starts (null: no time budget).</summary>
        public DateTime? Deadline { get; }

        public void Dispose() => _reference.Dispose();

        private CompressCandidate Evaluate(int? parent, string stage, string step, string pipeline, Model m,
            byte[] bytes, double seconds)
        {
            using var cand = InferenceSession.FromBytes(bytes, _evalSettings);
            var v = Validator.Compare(_reference, cand, _o.Evaluation.DataFor(_reference.Inputs),
                new ValidationOptions { Metric = _o.Metric });
            var drop = Fidelity.DropOf(v);
            var upper = v.Primary?.UpperDrop(_o.Confidence) ?? drop.Points;
            // The input against itself is a drop of 0; anything else (NaN or infinite outputs) leaves no budget to
            // judge candidates by, so the search stops before it starts.
            if (parent is null && !(drop.Points <= _recipe.MaxDrop + 1e-9))
                throw new OnnxModelException($"compress: the input model does not meet the budget against itself "
                    + $"({drop.MetricName} drop {drop.Points.ToString(CultureInfo.InvariantCulture)}; NaN or infinite "
                    + "outputs?)");
            _dropMetric = drop.MetricName;
            _referenceAccuracy = v.ReferenceAccuracy * 100;
            var bench = Benchmark.Run(_originalBytes, bytes, _o.Bench);
            var stats = ModelStats.Compute(m, bytes.LongLength, dims: _dims);
            var packed = ModelArchive.Pack(bytes, out _);
            var c = new CompressCandidate(_all.Count, parent, stage, step, pipeline)
            {
                Accuracy = v.CandidateAccuracy * 100,
                Drop = Math.Round(drop.Points, 6),
                DropUpper = Math.Round(upper, 6),
                LatencyMs = bench.Other!.MedianMs,
                ReferenceLatencyMs = bench.Model.MedianMs,
                Bytes = bytes.LongLength,
                PackedBytes = packed.LongLength,
                Macs = stats.TotalMacs,
                Parameters = stats.ParameterCount,
                NonLinearDepth = stats.NonLinearDepth,
                WithinBudget = upper <= _recipe.MaxDrop + 1e-9,
                Seconds = Math.Round(seconds, 3),
            };
            _validations[c.Id] = (v, bench);
            _all.Add(c);
            var bound = _o.Confidence > 0
                ? FormattableString.Invariant($" (<= {c.DropUpper:F2} at {_o.Confidence * 100:G3}%)") : "";
            _log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"compress: #{c.Id} [{stage}] {(step.Length == 0 ? "input" : Pipeline.Brief(step))}: {_dropMetric} "
                    + $"drop {c.Drop:F2}{bound}, "
                + $"{c.LatencyMs:F3} ms (input {c.ReferenceLatencyMs:F3}), {c.PackedBytes:N0} B packed, "
                + $"{c.Macs:N0} MACs{(c.WithinBudget ? "" : " - over budget")} ({seconds:F1} s)"));
            return c;
        }

        /// <summary>One pass of the beam over the recipe's stages (cheapOnly: the steps of at most CheapSteps
        /// training steps).</summary>
        public void Sweep(bool cheapOnly)
        {
            var beam = new List<int> { _c0.Id };
            foreach (var stage in _recipe.Stages)
            {
                var next = new List<int>();
                // Under a deadline the cheapest candidates of a stage run first (fewest training steps).
                var steps = stage.Candidates.Where(st => !cheapOnly || TrainingSteps(st) <= CheapSteps).ToList();
                if (Deadline is not null) steps = [.. steps.OrderBy(TrainingSteps)];
                foreach (var sid in beam)
                    foreach (var step in steps)
                    {
                        if (step.Length == 0) { next.Add(sid); continue; }
                        if (_tried.TryGetValue((sid, step), out var seen))
                        {
                            if (seen >= 0 && _all[seen].WithinBudget) next.Add(Successor(sid, seen));
                            continue;
                        }
                        if (Try(stage, _states[sid], step) is { } id)
                        {
                            _tried[(sid, step)] = id;
                            if (id >= 0 && _all[id].WithinBudget) next.Add(Successor(sid, id));
                        }
                    }
                beam = next.Distinct().OrderBy(id => Objective(_recipe.Target, _all[id])).ThenBy(id => _all[id].Drop)
                    .ThenBy(id => id).Take(_recipe.Beam).ToList();
            }
        }

        // A step that left the model byte for byte as it was (linearize with nothing to linearize, a prune with
        // nothing to cut) goes on as its parent, so the next stages do not run twice on the same model.
        private int Successor(int parent, int id) =>
            _states[id].Bytes.AsSpan().SequenceEqual(_states[parent].Bytes) ? parent : id;

        /// <summary>Whether a step may start on a state: null, or the line saying why it was cut (time spent, or
        /// would not finish in the time left).</summary>
        private string? Cut(RecipeStage stage, int sid, string step)
        {
            if (_o.TimeBudgetMinutes is { } tb && _clock.Elapsed.TotalMinutes >= tb)
                return $"[{stage.Name}] {Pipeline.Brief(step)} after #{sid}: time budget of "
                    + $"{tb.ToString(CultureInfo.InvariantCulture)} min spent";
            if (Deadline is { } end && _stageSeconds.TryGetValue(stage.Name, out var took)
                && (end - DateTime.UtcNow).TotalSeconds < took)
                return string.Create(CultureInfo.InvariantCulture, $"[{stage.Name}] "
                    + $"{Pipeline.Brief(step)} after #{sid}: would not finish (the last one took {took:F0} s, "
                    + $"{(end - DateTime.UtcNow).TotalSeconds:F0} s left)");
            return null;
        }

        // One candidate step on a state: its candidate's id, -1 when it failed, null when it was cut (time, no
        // change possible) and may be tried again.
        private int? Try(RecipeStage stage, State parent, string step)
        {
            var sid = parent.Candidate.Id;
            if (Cut(stage, sid, step) is { } cut)
            {
                if (!_skipped.Contains(cut)) _skipped.Add(cut);
                return null;
            }
            if (WhyNoChange(step, parent.Model) is { } why)
            {
                var line = $"[{stage.Name}] {Pipeline.Brief(step)}: cannot change the model: {why}";
                if (!_skipped.Contains(line)) _skipped.Add(line);
                _log.WriteLine($"compress: {line}");
                return -1;
            }
            var sw = Stopwatch.StartNew();
            var pipeline = parent.Candidate.Pipeline.Length == 0 ? step : parent.Candidate.Pipeline + "," + step;
            try
            {
                var model = parent.Model.Clone();
                var ctx = PassContexts.Create(model, _o.Calibration, _log, _o.Evaluation, _o.Metric);
                (ctx.Original, ctx.Deadline) = (_input, Deadline);
                var runs = PipelineRunner.Run(model, Pipeline.Parse(step), ctx);
                Verifier.Verify(model);
                var bytes = OnnxExporter.ToBytes(model);
                var c = Evaluate(sid, stage.Name, step, pipeline, model, bytes, sw.Elapsed.TotalSeconds);
                _stageSeconds[stage.Name] = sw.Elapsed.TotalSeconds;
                foreach (var note in runs.SelectMany(r => r.Stats.Notes)
                    .Where(n => n.Contains("stopped at the deadline", StringComparison.Ordinal)))
                    _skipped.Add($"[{stage.Name}] #{c.Id}: {note}");
                _states[c.Id] = new State(c, model, bytes, [.. parent.Runs, .. runs]);
                return c.Id;
            }
            // A defect in one candidate's passes (InvalidOperation, NotSupported, ...) fails that candidate,
            // with its message in the report, instead of the whole search.
            catch (Exception e) when (e is OnnxModelException or OrtException or InvalidOperationException
                or NotSupportedException or ArgumentException or IndexOutOfRangeException)
            {
                var c = new CompressCandidate(_all.Count, sid, stage.Name, step, pipeline)
                {
                    Error = (e is OnnxModelException or OrtException ? ""
                        : $"internal error ({e.GetType().Name}): ") + e.Message.ReplaceLineEndings(" "),
                    Seconds = Math.Round(sw.Elapsed.TotalSeconds, 3),
                    Drop = double.PositiveInfinity,
                };
                _all.Add(c);
                _log.WriteLine($"compress: #{c.Id} [{stage.Name}] {Pipeline.Brief(step)}: failed: {c.Error}");
                return -1;
            }
        }

        /// <summary>The best candidate within the budget, its model, bytes, archive and the report.</summary>
        public CompressResult Result(string? inputPath, string? outputPath)
        {
            MarkPareto(_all);
            // The input itself is candidate 0 and normally within any budget; a model whose own outputs do not
            // compare with themselves (NaN) leaves nothing to choose.
            var chosen = _all.Where(c => c.WithinBudget && c.Error is null).OrderBy(c => Objective(_recipe.Target, c))
                .ThenBy(c => c.Drop).ThenBy(c => c.Id).FirstOrDefault() ?? throw new OnnxModelException(
                    $"compress: no candidate met the budget, not even the input model (its drop against itself: "
                    + $"{_all[0].Drop.ToString(CultureInfo.InvariantCulture)}; NaN or infinite outputs?)");
            chosen.Chosen = true;
            var best = _states[chosen.Id];
            var (validation, latency) = _validations[chosen.Id];
            var report = new CompressReport
            {
                Input = inputPath,
                Output = outputPath,
                Target = _recipe.Target,
                MaxDrop = _recipe.MaxDrop,
                Confidence = _o.Confidence,
                Recipe = _recipe,
                DropMetric = _dropMetric,
                ReferenceAccuracy = _referenceAccuracy,
                Candidates = _all,
                Chosen = chosen.Id,
                Skipped = _skipped,
                SearchSeconds = Math.Round(_clock.Elapsed.TotalSeconds, 3),
                Before = ModelStats.Compute(_input, _originalBytes.LongLength),
                After = ModelStats.Compute(best.Model, best.Bytes.LongLength),
                Passes = best.Runs,
                Validation = validation,
                Latency = latency,
            };
            return new CompressResult(best.Model, best.Bytes, ModelArchive.Pack(best.Bytes, out _), report);
        }
    }
}
