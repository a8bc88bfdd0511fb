#!/usr/bin/env bash
# Static and dynamic int8 of the pretrained arctic-embed-xs (issue 31; README "Static int8 of transformers"):
# the CNN defaults, MatMul/Gemm only with requantized outputs, the transformer defaults without and with
# SmoothQuant, and --mode dynamic. Calibration on 256 licence sentences, the pooled-embedding cosine on 233 held-out
# ones (sequence 32, then the same models on sequence-128 sentences), latency interleaved with fp32 (1 thread).
#   bash bench/transformers/int8.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build src/OnnxOpt -c Release -v q -nologo > /dev/null
O="dotnet src/OnnxOpt/bin/Release/net10.0/onnxopt.dll"
paths=$(dotnet run --project bench/OnnxOpt.Bench -c Release -- arctic)
model=$(echo "$paths" | awk '/^model/ {print $2}')
calib=$(echo "$paths" | awk '/^calib/ {print $2}')
eval=$(echo "$paths" | awk '/^eval/ {print $2}')
eval128=$(dotnet run --project bench/OnnxOpt.Bench -c Release -- arctic --sequence 128 | awk '/^eval/ {print $2}')
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cosine() { grep -o "cosine of the mean-pooled [^:]*: [0-9.]*" | sed 's/.*: //' || true; }
speed() { $O bench "$model" --vs "$1" --data "$2" --iters 60 2>&1 | grep -o "speed-up [0-9.]*x" || true; }
run() { # name, quantize flags
  $O quantize "$model" -o "$W/$1.onnx" --calib "$calib" --eval "$eval" --force ${2:-} > "$W/$1.log" 2>&1 || true
  echo "$1: cosine $(cosine < "$W/$1.log")"
}
run cnn-defaults "--transformer false --smooth off"
run matmul-requantized "--include MatMul;Gemm"
run transformer-no-smooth "--smooth off"
run transformer ""
$O quantize "$model" -o "$W/dynamic.onnx" --mode dynamic --eval "$eval" --force > "$W/dynamic.log" 2>&1 || true
echo "dynamic: cosine $(cosine < "$W/dynamic.log")"
for m in transformer dynamic; do
  c128=$($O validate "$model" "$W/$m.onnx" --data "$eval128" 2>&1 | cosine || true)
  echo "$m: seq 32 $(speed "$W/$m.onnx" "$eval"), seq 128 $(speed "$W/$m.onnx" "$eval128") (cosine $c128)"
done
