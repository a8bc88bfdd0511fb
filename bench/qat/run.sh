#!/usr/bin/env bash
# Quantization-aware training (issue 33): per-tensor int8 and 4-bit weights (W4A8) on the trained digits and
# Fashion-MNIST nets, round-to-nearest, AdaRound and QAT (quantize{train-steps}) side by side. 200 unlabeled
# calibration images are the only training data (no --eval: optimize holds 50 of them out); accuracy is measured on
# the held-out images (digits: the 500 of testmodels/digits/data/test; Fashion-MNIST: the 10,000 of the test split,
# written by onnxopt-bench fashion-test from Debian's dataset-fashion-mnist).
#   bash bench/qat/run.sh [digits] [fashion] [vgg] [resnet] [mobilenetv2] [steps=500] [lr=3e-4]   (default: all)
# (the CLI is copied first, so building while it runs does not change it)
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build src/OnnxOpt -c Release -v q -nologo > /dev/null
dotnet build bench/OnnxOpt.Bench -c Release -v q -nologo > /dev/null
W=$(mktemp -d)
cp -r src/OnnxOpt/bin/Release/net10.0 $W/cli
O="dotnet $W/cli/onnxopt.dll"
ARGS="$*"
STEPS=$(echo "$ARGS" | grep -o "steps=[0-9]*" | cut -d= -f2 || true); STEPS=${STEPS:-500}
LR=$(echo "$ARGS" | grep -o "lr=[0-9.e-]*" | cut -d= -f2 || true); LR=${LR:-3e-4}
SETS=$(for s in digits fashion; do if [[ $ARGS == *$s* ]]; then echo $s; fi; done)
[ -n "$SETS" ] || SETS="digits fashion"
NETS=$(for n in vgg resnet mobilenetv2; do if [[ $ARGS == *$n* ]]; then echo $n; fi; done)
[ -n "$NETS" ] || NETS="vgg resnet mobilenetv2"

for set in $SETS; do
  if [ $set = fashion ]; then
    T=$W/fashion-test
    dotnet bench/OnnxOpt.Bench/bin/Release/net10.0/onnxopt-bench.dll fashion-test $T > /dev/null
  else
    T=testmodels/digits/data/test
  fi
  for net in $NETS; do
    M=testmodels/$set/$net.onnx
    acc() { { $O validate $M "$1" --data $T 2>&1 || true; } | grep "^measure" | grep -o "[0-9.]*% -> [0-9.]*%.*" \
      || echo "(failed)"; }
    q() { # name quantize-options
      local t0=$SECONDS
      $O optimize $M -o $W/$1.onnx --calib testmodels/$set/data/calib --force \
        --passes "canonicalize,fold-bn,quantize{$2}" > /dev/null 2>&1 || true
      printf "%-8s %-12s %-24s %s  (%d s)\n" $set $net $1 "$(acc $W/$1.onnx)" $((SECONDS - t0))
    }
    q int8-pt-rtn "per-channel=false"
    q int8-pt-qat "per-channel=false,train-steps=$STEPS,train-lr=$LR"
    q w4a8-rtn "weight-bits=4"
    q w4a8-adaround "weight-bits=4,rounding=adaround"
    q w4a8-qat "weight-bits=4,train-steps=$STEPS,train-lr=$LR"
  done
done
rm -rf "$W"
