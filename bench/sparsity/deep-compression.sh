#!/usr/bin/env bash
# The Deep Compression loop on the trained digits nets (issue 33): structured pruning to half the MACs, distillation,
# layer-wise OBS sparsity (zeros kept from then on), distillation, clustering with trained centroids, fp16 codebooks,
# then `pack`. No --eval: the driver holds part of the 200 calibration images out for its checks; accuracy on the 500
# test images, which nothing selected on. Ratio = the fp32 file over the archive.
#   bash bench/sparsity/deep-compression.sh [density=0.5] [allocation=uniform] [bits=4] [nets="vgg resnet"]
set -euo pipefail
cd "$(dirname "$0")/../.."
DENSITY=${1:-0.5}; ALLOC=${2:-uniform}; BITS=${3:-4}; NETS=${4:-vgg resnet}
dotnet build src/OnnxOpt -c Release -v q -nologo > /dev/null
O="dotnet src/OnnxOpt/bin/Release/net10.0/onnxopt.dll"
D=testmodels/digits/data
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for net in $NETS; do
  $O optimize "testmodels/digits/$net.onnx" -o "$T/$net.onnx" --calib $D/calib --force --passes \
    "canonicalize,fold-bn,prune{macs=0.5,min-speedup=0},distill{steps=1000},sparsify{method=obs,density=$DENSITY,allocation=$ALLOC},distill{steps=1000},cluster{bits=$BITS,min-elements=64,train-steps=200},round-fp16,strip" \
    > /dev/null 2>&1 || true
  $O pack "$T/$net.onnx" -o "$T/$net.onnxz" > /dev/null 2>&1
  fp32=$(stat -c %s "testmodels/digits/$net.onnx"); z=$(stat -c %s "$T/$net.onnxz")
  acc=$($O validate "testmodels/digits/$net.onnx" "$T/$net.onnx" --data $D/test 2>&1 | grep "^measure" \
    | grep -o "[0-9.]*% -> [0-9.]*%" || true)
  echo "$net density=$DENSITY allocation=$ALLOC bits=$BITS: $fp32 B -> $z B ($(awk "BEGIN{printf \"%.1f\", $fp32 / $z}")x), accuracy $acc"
done
