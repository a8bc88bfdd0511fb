// The models every round-trip test runs over: the ONNX backend test data (Debian's
// libonnx-testdata, installed by .ci/run) and every model committed under testmodels/.
namespace OnnxOpt.Tests;

public static class ModelCorpus
{
    public static bool HasOnnxTestData => Directory.Exists(Paths.OnnxTestData);

    public static IEnumerable<string> OnnxBackendModels() => HasOnnxTestData
        ? Directory.EnumerateFiles(Paths.OnnxTestData, "model.onnx", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
        : [];

    public static IEnumerable<string> TestModels() => Directory.Exists(Paths.TestModels)
        ? Directory.EnumerateFiles(Paths.TestModels, "*.onnx", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
        : [];

    public static IEnumerable<string> All() => OnnxBackendModels().Concat(TestModels());
}

/// <summary>A fact that is skipped (with the reason) when the ONNX backend test data is absent.</summary>
public sealed class OnnxTestDataFactAttribute : FactAttribute
{
    public OnnxTestDataFactAttribute()
    {
        if (!ModelCorpus.HasOnnxTestData) Skip = $"{Paths.OnnxTestData} not present (apt-get install libonnx-testdata)";
    }
}
