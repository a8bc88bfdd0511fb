// onnxopt prune IN -o OUT (--ratio R | --macs F) [--criterion l2|l1] [--scope global|local] [--round-to N]
//               [--eval DIR --max-agreement-drop X] [--bench] [--report R.json] [...optimize's options]
// Structured filter pruning: the library's Presets.Prune, i.e.
//   onnxopt optimize IN -o OUT --passes "canonicalize,fold-bn,prune{...}"
// with optimize's validation, atomic write and report. One flag per declared prune option.
using System.CommandLine;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class PruneCommand
{
    public static Command Create(CliContext ctx) => PresetCommands.Create(ctx, Presets.Prune,
        "Structured filter pruning over channel dependency groups (channels physically removed), validated in ORT");
}
