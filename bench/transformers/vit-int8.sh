#!/usr/bin/env bash
# int8 of the Fashion-MNIST ViT (testmodels/fashion/vit.onnx, DeiT-Tiny's width: 192, 3 heads, 4 blocks, 50 tokens;
# issue 31's "int8 faster than fp32 on a ViT", beside the 64-wide digits test ViT that is too small to gain):
# quantize as a user would (200 unlabeled calibration images; the default picks static int8 with the transformer
# rules and SmoothQuant), then --mode dynamic (no data); accuracy on the 10,000 test images (onnxopt-bench
# fashion-test), latency interleaved with fp32 in three runs (ORT, 1 thread, batch 1).
#   bash bench/transformers/vit-int8.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build src/OnnxOpt -c Release -v q -nologo > /dev/null
dotnet build bench/OnnxOpt.Bench -c Release -v q -nologo > /dev/null
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cp -r src/OnnxOpt/bin/Release/net10.0 $W/cli
O="dotnet $W/cli/onnxopt.dll"
M=testmodels/fashion/vit.onnx
D=testmodels/fashion/data
dotnet bench/OnnxOpt.Bench/bin/Release/net10.0/onnxopt-bench.dll fashion-test $W/test > /dev/null
$O quantize $M -o $W/static.onnx --calib $D/calib 2>&1 | grep -E "^note|^validation|^budget|^wrote" || true
$O quantize $M -o $W/dynamic.onnx --mode dynamic 2>&1 | grep -E "^note|^wrote" || true
for m in static dynamic; do
  acc=$($O validate $M $W/$m.onnx --data $W/test 2>&1 | grep "^measure" | grep -o "[0-9.]*% -> [0-9.]*%" || true)
  echo "$m: test accuracy $acc"
  for run in 1 2 3; do
    $O bench $M --vs $W/$m.onnx --data $W/test --iters 300 | grep -E "^95%|^speed-up" | tr '\n' ' '
    echo
  done
done
