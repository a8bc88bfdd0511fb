// Doubles in onnxopt's JSON, written as what they mean: 10 significant digits (0.40626, not
// 0.4062600000000001) and null for NaN and infinities. One definition for every report writer.
using System.Globalization;
using System.Text.Json;

namespace OnnxOpt.GraphIR;

public static class JsonNumbers
{
    public static double Meaningful(double d) =>
        double.Parse(d.ToString("G10", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>A named number, or null when it is not finite.</summary>
    public static void Write(Utf8JsonWriter w, string name, double d)
    {
        if (double.IsFinite(d)) w.WriteNumber(name, Meaningful(d));
        else w.WriteNull(name);
    }
}
