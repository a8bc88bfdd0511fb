// A pass whose options are a typed record, declared once: each property with an [Option] attribute is an
// option (its name, help and range from the attribute, its default from the record's initializer, its kind
// from the property's type: long/int -> int, double -> double, bool -> bool, string with Choices -> enum,
// string -> string). The PassOption list that pipeline strings, `onnxopt passes`, reports and JSON configs
// use is generated from the record, and Run receives the record, bound and range-checked: no string lookups.
//   public sealed record StripOptions
//   {
//       [Option("docs", "remove doc strings")] public bool Docs { get; init; } = true;
//   }
//   public sealed class Strip : Pass<StripOptions> { ... public override void Run(PassContext c, StripOptions o) }
// A property marked [OptionGroup] holds a record of options shared by several passes (the training options):
// its options are declared in place, with the defaults the pass's initializer gives that record (which must
// create a new instance), minus the keys the attribute omits.
using System.Reflection;

namespace OnnxOpt.Passes;

/// <summary>Declares a pass option on a property of the pass's options record.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class OptionAttribute(string name, string description) : Attribute
{
    public string Name { get; } = name;
    public string Description { get; } = description;
    /// <summary>The allowed values of a string option (makes it an enum).</summary>
    public string[]? Choices { get; init; }
    /// <summary>Inclusive bounds of a numeric option (NaN: none).</summary>
    public double Min { get; init; } = double.NaN;
    public double Max { get; init; } = double.NaN;
}

/// <summary>The options record of a pass that takes none.</summary>
public sealed record NoOptions;

/// <summary>Declares a property whose record's options belong to this pass too (a group shared by passes).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class OptionGroupAttribute : Attribute
{
    /// <summary>Keys of the group this pass does not take (their record values stay the defaults).</summary>
    public string[] Omit { get; init; } = [];
}

public abstract class Pass<TOptions> : Pass where TOptions : class, new()
{
    // Each option: the property holding its group (null: on the record itself), its property and declaration.
    private static readonly (PropertyInfo? Group, PropertyInfo Property, PassOption Option)[] Declared = Declare();

    public sealed override IReadOnlyList<PassOption> Options { get; } = Declared.Select(d => d.Option).ToList();

    public sealed override void Run(PassContext ctx, PassOptions options) => Run(ctx, Bind(options));
    public abstract void Run(PassContext ctx, TOptions options);

    public sealed override bool IsExact(PassOptions options) => IsExact(Bind(options));
    public virtual bool IsExact(TOptions options) => true;

    public sealed override DataNeeds Needs(PassOptions options) => Needs(Bind(options));
    public virtual DataNeeds Needs(TOptions options) => DataNeeds.None;
    public sealed override string? WithoutCalibration(PassOptions options) => WithoutCalibration(Bind(options));
    public virtual string? WithoutCalibration(TOptions options) => null;

    public sealed override bool NeedsTeacher(PassOptions options) => NeedsTeacher(Bind(options));
    public virtual bool NeedsTeacher(TOptions options) => false;

    public sealed override string? WhyNoChange(GraphIR.Model model, PassOptions options) =>
        WhyNoChange(model, Bind(options));
    public virtual string? WhyNoChange(GraphIR.Model model, TOptions options) => null;

    /// <summary>The typed record of a pipeline step's (parsed, range-checked) options.</summary>
    public static TOptions Bind(PassOptions options)
    {
        var record = new TOptions();
        foreach (var (group, p, o) in Declared)
        {
            var v = options.Value(o.Name);
            var owner = group is null ? record : group.GetValue(record)!;
            p.SetValue(owner, p.PropertyType == typeof(int) ? Convert.ToInt32(v, System.Globalization.CultureInfo
                .InvariantCulture) : v);
        }
        return record;
    }

    private static (PropertyInfo?, PropertyInfo, PassOption)[] Declare()
    {
        var list = new List<(PropertyInfo?, PropertyInfo, PassOption)>();
        var defaults = new TOptions();
        foreach (var p in typeof(TOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetCustomAttribute<OptionGroupAttribute>() is { } g)
            {
                var groupDefaults = p.GetValue(defaults) ?? throw new InvalidOperationException(
                    $"{typeof(TOptions).Name}.{p.Name}: an option group needs an initializer");
                if (ReferenceEquals(groupDefaults, p.GetValue(new TOptions())))
                    throw new InvalidOperationException(
                        $"{typeof(TOptions).Name}.{p.Name}: the group's initializer must create a new record");
                foreach (var q in p.PropertyType.GetProperties(BindingFlags.Public | BindingFlags.Instance))
                    if (q.GetCustomAttribute<OptionAttribute>() is { } qa && !g.Omit.Contains(qa.Name))
                        list.Add((p, q, OptionOf(q, qa, q.GetValue(groupDefaults))));
                continue;
            }
            if (p.GetCustomAttribute<OptionAttribute>() is { } a)
                list.Add((null, p, OptionOf(p, a, p.GetValue(defaults))));
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, p, o) in list)
            if (!names.Add(o.Name))
                throw new InvalidOperationException($"{typeof(TOptions).Name}: option '{o.Name}' is declared twice");
        return [.. list];
    }

    private static PassOption OptionOf(PropertyInfo p, OptionAttribute a, object? d)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        var option = p.PropertyType switch
        {
            var t when t == typeof(long) || t == typeof(int) => PassOption.Int(a.Name, Convert.ToInt64(d, c),
                a.Description),
            var t when t == typeof(double) => PassOption.Double(a.Name, (double)d!, a.Description),
            var t when t == typeof(bool) => PassOption.Bool(a.Name, (bool)d!, a.Description),
            var t when t == typeof(string) && a.Choices is { } choices => PassOption.Enum(a.Name, (string)d!,
                choices, a.Description),
            var t when t == typeof(string) => PassOption.String(a.Name, (string)d!, a.Description),
            _ => throw new InvalidOperationException(
                $"{p.DeclaringType?.Name}.{p.Name}: option type {p.PropertyType.Name} is not supported"),
        };
        return option with { Min = a.Min, Max = a.Max };
    }
}
