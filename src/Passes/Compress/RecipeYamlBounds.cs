// Bounds a YAML recipe before it is deserialized: anchors and aliases let a few hundred KB of text stand for
// gigabytes ("billion laughs", or one long string repeated through aliases), which YamlDotNet would build in
// full. One pass over the parser's events keeps, for every open collection, the number of characters it
// expands to (a scalar counts its length, an alias the expanded size of its anchor, a closed collection the sum
// of its children), and refuses the document as soon as that sum passes the limit.
using OnnxOpt.GraphIR;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace OnnxOpt.Passes;

internal static class RecipeYamlBounds
{
    public static void Check(string text, long maxChars)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, long>();
        var open = new Stack<(string? Anchor, long Size)>();
        long total = 0;
        while (parser.MoveNext())
        {
            long add = 0;
            switch (parser.Current)
            {
                case Scalar sc:
                    add = sc.Value.Length + 1;
                    if (!sc.Anchor.IsEmpty) anchors[sc.Anchor.Value] = add;
                    break;
                case AnchorAlias alias:
                    add = anchors.GetValueOrDefault(alias.Value.Value, 1);
                    break;
                case MappingStart ms:
                    open.Push((ms.Anchor.IsEmpty ? null : ms.Anchor.Value, 1));
                    continue;
                case SequenceStart ss:
                    open.Push((ss.Anchor.IsEmpty ? null : ss.Anchor.Value, 1));
                    continue;
                case MappingEnd or SequenceEnd when open.Count > 0:
                {
                    var (anchor, size) = open.Pop();
                    if (anchor is not null) anchors[anchor] = size;
                    add = size;
                    break;
                }
                default:
                    continue;
            }
            if (open.Count > 0)
            {
                var (a, s) = open.Pop();
                open.Push((a, s + add));
                if (s + add > maxChars) Refuse(maxChars);
            }
            else
            {
                total += add;
                if (total > maxChars) Refuse(maxChars);
            }
        }
    }

    private static void Refuse(long maxChars) => throw new OnnxModelException(
        $"recipe expands to more than {maxChars:N0} characters (through YAML aliases); write it out without them");
}
