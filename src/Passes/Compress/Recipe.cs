// A compress recipe: the target, the accuracy budget, the beam width and the stages of the search, each a list
// of candidate pipelines ("" = skip the stage). YAML or JSON, the same fields:
//   target: size            # latency | size | macs
//   max_drop: 1             # points of accuracy (with labels) or top-1 agreement, against the input model
//   beam: 2                 # states kept after each stage
//   stages:
//     - name: clean-up
//       candidates: ["canonicalize,fold-bn"]
//     - name: prune
//       candidates: ["", "prune{macs=0.5,criterion=taylor,min-speedup=0},distill{steps=500}"]
// Normalize() spells every pipeline out (every option), and the normalized recipe, written as JSON or YAML,
// parses back to itself; the report records it. Auto() is the built-in recipe for a target.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using OnnxOpt.GraphIR;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace OnnxOpt.Passes;

public sealed record RecipeStage
{
    public string Name { get; init; } = "";
    public List<string> Candidates { get; init; } = [];
}

public sealed record Recipe
{
    public static readonly string[] Targets = ["latency", "size", "macs"];

    public string Target { get; init; } = "size";
    public double MaxDrop { get; init; } = 1;
    public int Beam { get; init; } = 2;
    public List<RecipeStage> Stages { get; init; } = [];

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>A recipe file is a few hundred bytes; larger files (and YAML whose aliases expand past it) are
    /// refused before they are deserialized.</summary>
    public const int MaxBytes = 1 << 20;

    /// <summary>Reads a recipe file (.json, else YAML), naming the file in any error.</summary>
    public static Recipe Load(string path)
    {
        var text = FileKinds.ReadAllText(path, "recipe", MaxBytes);
        try { return Parse(text, path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)); }
        catch (OnnxModelException e) { throw new OnnxModelException($"{path}: {e.Message}"); }
    }

    public static Recipe Parse(string text, bool json)
    {
        if (text.Length > MaxBytes)
            throw new OnnxModelException($"recipe of {text.Length:N0} characters is larger than {MaxBytes:N0}");
        Recipe? r;
        try
        {
            if (!json) RecipeYamlBounds.Check(text, MaxBytes);
            r = json ? JsonSerializer.Deserialize<Recipe>(text, Json)
                : new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build()
                    .Deserialize<Recipe>(text);
        }
        catch (JsonException e)
        {
            var at = e.Path is { Length: > 0 } p ? $"key '{Shown(p.TrimStart('$', '.'))}'" : $"line {e.LineNumber + 1}";
            throw new OnnxModelException($"recipe is not valid JSON at {at}: {Shown(FirstSentence(e.Message), 160)}");
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            var line = text.Split('\n').ElementAtOrDefault((int)e.Start.Line - 1)?.Trim() ?? "";
            var why = e.InnerException?.Message ?? e.Message;
            throw new OnnxModelException($"recipe is not valid YAML at line {e.Start.Line} ('{Shown(line)}'): "
                + Shown(FirstSentence(why), 160));
        }
        return (r ?? throw new OnnxModelException("recipe is empty")).Normalize();
    }

    private static string FirstSentence(string message) => message.ReplaceLineEndings(" ").Split(". ")[0].TrimEnd('.');

    /// <summary>At most <paramref name="max"/> characters of a value echoed in a message.</summary>
    internal static string Shown(string value, int max = 60) => value.Length <= max ? value : value[..max] + "...";

    /// <summary>Checked, with every pipeline spelled out.</summary>
    public Recipe Normalize()
    {
        if (!Targets.Contains(Target)) throw new OnnxModelException($"recipe target '{Shown(Target)}' is not latency, "
            + $"size or macs");
        if (!(MaxDrop >= 0) || !double.IsFinite(MaxDrop))
            throw new OnnxModelException($"recipe max_drop {MaxDrop.ToString(CultureInfo.InvariantCulture)} must be a "
                + "finite number of points, 0 or more");
        if (Beam < 1) throw new OnnxModelException($"recipe beam {Beam} must be 1 or more");
        if (Stages.Count == 0) throw new OnnxModelException("recipe has no stages");
        return this with
        {
            Stages = Stages.Select((s, i) => new RecipeStage
            {
                Name = string.IsNullOrWhiteSpace(s.Name) ? $"stage-{i + 1}" : s.Name,
                Candidates = s.Candidates.Count == 0
                    ? throw new OnnxModelException($"recipe stage '{Shown(s.Name)}' has no candidates")
                    : s.Candidates.Select(c => string.IsNullOrWhiteSpace(c) ? "" : Candidate(s.Name, c)).ToList(),
            }).ToList(),
        };
    }

    private static string Candidate(string stage, string pipeline)
    {
        try { return Pipeline.Parse(pipeline).ToString(); }
        catch (OnnxModelException e)
        {
            throw new OnnxModelException($"recipe stage '{Shown(stage)}', candidate '{Shown(pipeline)}': "
                + Shown(e.Message, 200));
        }
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public string ToYaml() => new SerializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance)
        .Build().Serialize(this);

    public bool SameAs(Recipe o) => Target == o.Target && MaxDrop == o.MaxDrop && Beam == o.Beam
        && Stages.Count == o.Stages.Count && Stages.Zip(o.Stages).All(p => p.First.Name == p.Second.Name
            && p.First.Candidates.SequenceEqual(p.Second.Candidates));

    /// <summary>The built-in search for a target: exact clean-up, Layer Folding (post-training or trained),
    /// pruning with repair and distillation (channels; for transformers also attention heads, MLP neurons and residual
    /// branches), then int8 (latency) or clustering with trained centroids (size,
    /// then strip: names and annotations the deployed model does not need, with or without the weights rounded
    /// to fp16 values, which the archive stores in half the bytes).</summary>
    public static Recipe Auto(string target, double maxDrop)
    {
        var half = (maxDrop / 2).ToString("R", CultureInfo.InvariantCulture);
        var fold = target == "latency" ? "canonicalize,fold-conv{objective=latency}" : "canonicalize,fold-conv";
        var finish = target switch
        {
            "latency" => new List<string> { "", "quantize" },
            // Mixed bits: 3 on the largest tensors (most of the codes), then 4 on the rest.
            "size" => ["cluster{bits=4,min-elements=64,train-steps=200}", "cluster{bits=3,train-steps=200}",
                "cluster{bits=3,min-elements=64,train-steps=200}", "cluster{bits=4,per-channel=true,train-steps=200}",
                "cluster{bits=3,min-elements=4096,train-steps=200},cluster{bits=4,min-elements=64,train-steps=200}",
                "cluster{bits=3,min-elements=2048,train-steps=200},cluster{bits=4,min-elements=64,train-steps=200}",
                // Fisher-weighted k-means keeps the compact nets' sensitive weights (MobileNetV2-style: 3 bits on the
                // 1x1 convs of 1024+ weights, 4 on the rest at 1.0 against 1.2 points unweighted).
                "cluster{bits=3,min-elements=1024,weighting=fisher,train-steps=200},"
                    + "cluster{bits=4,min-elements=64,weighting=fisher,train-steps=200}",
                "cluster{bits=3,min-elements=64,weighting=fisher,train-steps=200}"],
            _ => [""],
        };
        return new Recipe
        {
            Target = target,
            MaxDrop = maxDrop,
            Beam = 2,
            Stages =
            [
                // The exact clean-up of optimize's default pipeline (fuse: hard-swish, and LayerNorm/GELU at their
                // opsets; ORT fuses none of the hard-swishes itself).
                new() { Name = "clean-up", Candidates = ["canonicalize,fold-bn,fuse"] },
                new()
                {
                    Name = "layer-folding",
                    Candidates = ["", $"linearize{{max-agreement-drop={half}}},{fold}",
                        $"linearize{{mode=train,steps=300,finetune-steps=300,max-agreement-drop={half}}},{fold}"],
                },
                new()
                {
                    Name = "pruning",
                    Candidates = ["", "prune{macs=0.7,criterion=taylor,min-speedup=0},distill{steps=1000,eval-every=0}",
                        "prune{macs=0.5,criterion=taylor,min-speedup=0},distill{steps=1000,eval-every=0}",
                        "prune{macs=0.5,criterion=l2,min-speedup=0},distill{steps=1000,eval-every=0}",
                        // Transformers (skipped without attention): heads, then MLP neurons, and whole residual
                        // branches; distillation's loss follows the output (auto).
                        "prune{unit=head,ratio=0.5,criterion=damage,sensitivity-samples=64,min-speedup=0},"
                            + "prune{ratio=0.5,criterion=taylor,min-speedup=0},distill{steps=1000,eval-every=0}",
                        "prune{unit=block,ratio=0.34,min-speedup=0},"
                            + "prune{unit=head,ratio=0.4,criterion=damage,sensitivity-samples=64,min-speedup=0},"
                            + "prune{ratio=0.4,criterion=taylor,min-speedup=0},distill{steps=1000,eval-every=0}"],
                },
                new() { Name = target == "latency" ? "int8" : target == "size" ? "clustering" : "finish",
                    Candidates = finish },
                .. (target == "size"
                    ? new[] { new RecipeStage { Name = "strip", Candidates = ["strip", "round-fp16,strip"] } } : []),
            ],
        }.Normalize();
    }
}
