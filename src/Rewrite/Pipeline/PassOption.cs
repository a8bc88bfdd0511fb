// A pass option, declared once: name, kind, default, description (and choices for enums). The CLI's
// `passes` listing, the pipeline-string parser, the JSON pipeline config and the reports all come
// from these declarations; an unknown key or an ill-typed value is an error naming the pass.
using System.Globalization;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Passes;

public enum OptionKind { Int, Double, Bool, Enum, String }

public sealed record PassOption(string Name, OptionKind Kind, object Default, string Description,
    IReadOnlyList<string>? Choices = null)
{
    /// <summary>Inclusive bounds of a numeric option (NaN: none), checked when a value is parsed.</summary>
    public double Min { get; init; } = double.NaN;
    public double Max { get; init; } = double.NaN;

    public static PassOption Int(string name, long dflt, string description) => new(name, OptionKind.Int, dflt,
        description);
    public static PassOption Double(string name, double dflt, string description) => new(name, OptionKind.Double,
        dflt, description);
    public static PassOption Bool(string name, bool dflt, string description) => new(name, OptionKind.Bool, dflt,
        description);
    public static PassOption Enum(string name, string dflt, string[] choices, string description) => new(name,
        OptionKind.Enum, dflt, description, choices);
    public static PassOption String(string name, string dflt, string description) => new(name, OptionKind.String,
        dflt, description);

    public object Parse(string pass, string text)
    {
        var v = ParseKind(pass, text);
        if (v is long or double && Convert.ToDouble(v, CultureInfo.InvariantCulture) is var x
            && ((!double.IsNaN(Min) && x < Min) || (!double.IsNaN(Max) && x > Max)))
            throw Bad(pass, text, (double.IsNaN(Min), double.IsNaN(Max)) switch
            {
                (false, false) => string.Create(CultureInfo.InvariantCulture, $"within {Min}..{Max}"),
                (false, true) => string.Create(CultureInfo.InvariantCulture, $"at least {Min}"),
                _ => string.Create(CultureInfo.InvariantCulture, $"at most {Max}"),
            });
        return v;
    }

    private object ParseKind(string pass, string text) => Kind switch
    {
        OptionKind.Int => long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture,
            out var i) ? i : throw Bad(pass, text, "an integer"),
        OptionKind.Double => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            && double.IsFinite(d) ? d : throw Bad(pass, text, "a number"),
        OptionKind.Bool =>
            text switch { "true" or "1" => true, "false" or "0" => false, _ => throw Bad(pass, text, "true or false") },
        OptionKind.Enum => Choices!.Contains(text) ? text : throw Bad(pass, text,
            "one of " + string.Join("|", Choices!)),
        OptionKind.String => text.IndexOfAny([',', '{', '}', '=']) < 0 ? text
            : throw Bad(pass, text, "a text without ',', '{', '}' or '='"),
        _ => throw new InvalidOperationException(),
    };

    private OnnxModelException Bad(string pass, string text, string what) =>
        new($"pass '{pass}': option '{Name}' = '{text}' is not {what}");

    public string Format(object v) => v switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        _ => v.ToString()!,
    };

    public string TypeName => Kind == OptionKind.Enum ? string.Join("|", Choices!) : Kind.ToString().ToLowerInvariant();
}

/// <summary>The option values of one pass in a pipeline (defaults filled in).</summary>
public sealed class PassOptions
{
    private readonly Dictionary<string, object> _values = new(StringComparer.Ordinal);

    public PassOptions(Pass pass, IEnumerable<KeyValuePair<string, string>>? given = null)
    {
        Pass = pass;
        foreach (var o in pass.Options) _values[o.Name] = o.Default;
        foreach (var (k, v) in given ?? [])
        {
            var spec = pass.Options.FirstOrDefault(o => o.Name == k) ?? throw new OnnxModelException(
                $"pass '{pass.Name}' has no option '{k}'" + (pass.Options.Count == 0 ? " (it takes none)" : $" (options: {string.Join(", ", pass.Options.Select(o => o.Name))})"));
            _values[k] = spec.Parse(pass.Name, v);
        }
    }

    public Pass Pass { get; }
    /// <summary>An option's value as parsed (long, double, bool or string).</summary>
    public object Value(string name) => _values[name];
    public long Int(string name) => (long)_values[name];
    public double Double(string name) => (double)_values[name];
    public bool Bool(string name) => (bool)_values[name];
    public string Enum(string name) => (string)_values[name];
    public string String(string name) => (string)_values[name];

    /// <summary>The options that differ from their defaults, in declaration order.</summary>
    public string Brief() => string.Join(",", Pass.Options.Where(o => !Equals(_values[o.Name], o.Default))
        .Select(o => $"{o.Name}={o.Format(_values[o.Name])}"));

    /// <summary>All options in declaration order, "k=v,k=v" (empty when the pass has none).</summary>
    public string Canonical() => string.Join(",", Pass.Options.Select(o => $"{o.Name}={o.Format(_values[o.Name])}"));
}
