// onnxopt cluster IN -o OUT (--bits B | --clusters K | --min-sqnr DB) [--per-channel] [--weighting ...]
//                 [--format float|lut|lut4|int4] [--calib DIR] [--eval DIR --max-agreement-drop X] [--report R.json]
// Weight clustering: the library's Presets.Cluster, i.e.
//   onnxopt optimize IN -o OUT --passes "canonicalize,fold-bn,cluster{...}"
// with optimize's validation, atomic write and report. One flag per declared cluster option.
using System.CommandLine;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class ClusterCommand
{
    public static Command Create(CliContext ctx) => PresetCommands.Create(ctx, Presets.Cluster,
        "Weight sharing by exact k-means (Deep Compression; --train-steps trains the centroids), validated in ORT");
}
