#!/usr/bin/env bash
# Unstructured and 2:4 sparsity on the trained digits nets (issue 33's table): one shot with magnitude, SynFlow,
# Optimal Brain Damage (obd) and layer-wise Optimal Brain Surgeon (obs) at densities 0.5 / 0.2 / 0.1 (per layer,
# scope=local for magnitude, synflow and obd), then with distillation on the 200 unlabeled calibration images
# (zeros kept, no selection on the test images: eval-every=0). Accuracy on the 500 held-out test images.
#   bash bench/sparsity/run.sh [--erk | --iterative]
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build src/OnnxOpt -c Release -v q -nologo > /dev/null
O="dotnet src/OnnxOpt/bin/Release/net10.0/onnxopt.dll"
D=testmodels/digits/data
acc() { # model, pipeline -> accuracy on the test images after the pipeline
  $O optimize "testmodels/digits/$1.onnx" -o /tmp/onnxopt-sparsity.onnx --passes "canonicalize,fold-bn,$2" \
    --calib $D/calib --eval $D/test --force 2>&1 | grep -o "accuracy [0-9.]*% -> [0-9.]*%" | sed 's/.*-> //' || true
}
held() { # model, pipeline -> test accuracy, no selection on the test images
  $O optimize "testmodels/digits/$1.onnx" -o /tmp/onnxopt-sparsity.onnx --passes "canonicalize,fold-bn,$2" \
    --calib $D/calib --force > /dev/null 2>&1 || true
  $O validate "testmodels/digits/$1.onnx" /tmp/onnxopt-sparsity.onnx --data $D/test 2>&1 | grep "^measure" \
    | grep -o "[0-9.]*% -> [0-9.]*%" | sed 's/.*-> //' || true
}
# Density 0.1 shared between layers by the Erdos-Renyi-Kernel rule (allocation=erk: stems, depthwise kernels and
# classifiers denser, the same weights kept in total): one shot + distill, and 3 rounds (600 steps each, no --eval:
# the rounds' selection on 50 held-out calibration images), magnitude against OBS.
if [ "${1:-}" = "--erk" ]; then
  for net in vgg resnet mobilenetv2; do
    for m in "magnitude,scope=local" obs; do
      echo "$net $m erk 0.1: +distill $(acc $net "sparsify{method=$m,density=0.1,allocation=erk},distill{eval-every=0}")" \
        "3 rounds $(held $net "sparsify{method=$m,density=0.1,allocation=erk,rounds=3,round-steps=600}")"
    done
  done
  exit 0
fi
[ "${1:-}" = "--iterative" ] || for net in vgg resnet mobilenetv2; do
  echo "== $net: fp32 $(acc $net canonicalize) (one shot below)"
  for d in 0.5 0.2 0.1; do
    row="density $d:"
    for m in magnitude synflow obd; do row="$row $m $(acc $net "sparsify{method=$m,density=$d,scope=local}")"; done
    row="$row obs $(acc $net "sparsify{method=obs,density=$d}")"
    echo "$row"
  done
  echo "== $net (with distillation, 1000 steps)"
  for d in 0.1; do
    echo "density $d: magnitude $(acc $net "sparsify{method=magnitude,density=$d,scope=local},distill{eval-every=0}")" \
      "obs $(acc $net "sparsify{method=obs,density=$d},distill{eval-every=0}")"
  done
  echo "2:4: obs $(acc $net "sparsify{method=obs,pattern=2:4}")" \
    "obs+distill $(acc $net "sparsify{method=obs,pattern=2:4},distill{eval-every=0}")" \
    "obs+distill{steps=3000,features=blocks} $(acc $net \
      "sparsify{method=obs,pattern=2:4},distill{eval-every=0,steps=3000,features=blocks}")"
done

# Iterative pruning (3 rounds, 300 distillation steps each) against one shot + 900 steps, at density 0.2. Without
# --eval the driver holds 50 of the calibration images out for the rounds' selection; accuracy on the test images.
for net in vgg resnet; do
  echo "== $net, density 0.2: one shot + distill{steps=900} / 3 rounds / 3 rounds, rewind=original"
  for m in "magnitude,scope=local" obs; do
    echo "$m: $(held $net "sparsify{method=$m,density=0.2},distill{steps=900}")" \
      "$(held $net "sparsify{method=$m,density=0.2,rounds=3}")" \
      "$(held $net "sparsify{method=$m,density=0.2,rounds=3,rewind=original}")"
  done
done
