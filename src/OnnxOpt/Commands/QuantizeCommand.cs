// onnxopt quantize IN -o OUT --calib DIR [--method minmax|percentile|entropy|mse] [--format qdq|qoperator]
//                  [--eval DIR --max-drop X] [--report R.json] [...optimize's options]
// Post-training int8 quantization: the library's Presets.Quantize, i.e.
//   onnxopt optimize IN -o OUT --passes "canonicalize,fold-bn,quantize{...}"
// (BatchNorm is folded first so every Conv quantizes as one group), with optimize's validation,
// atomic write and report. The options map one to one onto the quantize pass's declared options.
using System.CommandLine;
using OnnxOpt.Passes;

namespace OnnxOpt.Cli;

public static class QuantizeCommand
{
    public static Command Create(CliContext ctx) => PresetCommands.Create(ctx, Presets.Quantize,
        "Post-training int8 quantization (QDQ or QOperator) with calibration and an accuracy budget, validated in ORT",
        new Dictionary<string, string> { ["calibrate"] = "method" });
}
