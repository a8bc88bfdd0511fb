#!/usr/bin/env bash
# The Fashion-MNIST benchmarks (issue 36): the VGG-, ResNet- and MobileNetV2-style nets of testmodels/fashion
# (testmodels/train_fashion.py), 200 unlabeled calibration images (testmodels/fashion/data/calib) as the only
# training data, figures on the 10,000 images of the test split (onnxopt-bench fashion-test writes them from
# Debian's dataset-fashion-mnist). Without --eval, optimize holds 50 of the 200 out for budgets, distillation's
# selection and validation (never judged on the samples it trains on); compress needs --eval and gets the 500
# held-out training-split images (testmodels/fashion/data/heldout), never the test split.
#   bash bench/fashion/run.sh [prune] [recover] [fold] [cluster] [compress] [vgg] [resnet] [mobilenetv2]
# (default: all but recover, the slow comparison of distillation's feature terms, step counts and block-wise
# reconstruction after the same prune)
# (the CLI is copied first, so building while it runs does not change it)
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build src/OnnxOpt -c Release -v q -nologo > /dev/null
dotnet build bench/OnnxOpt.Bench -c Release -v q -nologo > /dev/null
D=testmodels/fashion/data
W=$(mktemp -d)
cp -r src/OnnxOpt/bin/Release/net10.0 $W/cli
O="dotnet $W/cli/onnxopt.dll"
T=$W/test
dotnet bench/OnnxOpt.Bench/bin/Release/net10.0/onnxopt-bench.dll fashion-test $T > /dev/null
JOBS="$*"
[[ $JOBS == *prune* || $JOBS == *recover* || $JOBS == *fold* || $JOBS == *cluster* || $JOBS == *compress* ]] \
  || JOBS="$JOBS prune fold cluster compress"
NETS=$(for n in vgg resnet mobilenetv2; do if [[ $JOBS == *$n* ]]; then echo $n; fi; done)
[ -n "$NETS" ] || NETS="vgg resnet mobilenetv2"

test_acc() { # original candidate -> "a% -> b%" on the 10,000 test images
  { $O validate "$1" "$2" --data $T 2>&1 || true; } | grep "^measure" | grep -o "[0-9.]*% -> [0-9.]*%" || echo "(failed)"
}
opt() { # name net passes -> one line: test accuracy, MACs, non-linear depth, wall time
  local t0=$SECONDS
  local out
  out=$($O optimize testmodels/fashion/$2.onnx -o $W/$1.onnx --calib $D/calib --force --passes "$3" 2>&1 || true)
  local macs depth
  macs=$(echo "$out" | grep -o "MACs [0-9,]* -> [0-9,]*" | head -1 || true)
  depth=$(echo "$out" | grep -o "non-linear depth [0-9]* -> [0-9]*" | head -1 || true)
  printf "%-12s %-28s test %s  %s  %s  (%d s)\n" "$2" "$1" "$(test_acc testmodels/fashion/$2.onnx $W/$1.onnx)" \
    "$macs" "$depth" $((SECONDS - t0))
}
speed() { # three interleaved timings, input first (speed-up = input / candidate)
  for r in 1 2 3; do $O bench "$1" --vs "$2" --iters 300 2>&1 | grep -E "^speed-up" || true; done
}

for net in $NETS; do
  echo "== $net: fp32 $(test_acc testmodels/fashion/$net.onnx testmodels/fashion/$net.onnx | sed 's/ ->.*//')"
  macs=0.5; [ $net = mobilenetv2 ] && macs=0.7
  P="canonicalize,fold-bn,prune{macs=$macs,min-speedup=0}"
  if [[ $JOBS == *prune* ]]; then
    opt prune-$macs $net "$P"
    opt prune-distill $net "$P,distill"
    speed testmodels/fashion/$net.onnx $W/prune-distill.onnx
    opt prune-distill-flip $net "$P,distill{flip=true}"
  fi
  if [[ $JOBS == *recover* ]]; then
    for d in "" "features=blocks" "steps=3000" "features=blocks,steps=3000" "features=blocks,block-steps=300" \
      "features=blocks,steps=3000,flip=true,block-steps=300"; do
      opt "distill{$d}" $net "$P,distill{$d}"
    done
  fi
  if [[ $JOBS == *fold* ]]; then
    opt layer-folding $net "canonicalize,fold-bn,linearize{mode=train,max-agreement-drop=1},fold-conv,fuse-bias,canonicalize"
    speed testmodels/fashion/$net.onnx $W/layer-folding.onnx
  fi
  if [[ $JOBS == *cluster* ]]; then
    for b in 4 3; do
      opt cluster-$b $net "canonicalize,fold-bn,cluster{bits=$b,min-elements=64,train-steps=200}"
      $O pack $W/cluster-$b.onnx -o $W/cluster-$b.onnxz 2>&1 | grep -o "packed [0-9,]* ([0-9.]*x smaller)" || true
    done
  fi
  if [[ $JOBS == *compress* ]]; then
    for target in size latency; do
      t0=$SECONDS
      $O compress testmodels/fashion/$net.onnx -o $W/c-$target.onnx --target $target --time-budget 10 \
        --calib $D/calib --eval $D/heldout 2>&1 | grep -E "^compress \(|drop .* points|cut " | sed 's/^/  /' || true
      echo "  compress --target $target: test $(test_acc testmodels/fashion/$net.onnx $W/c-$target.onnx)" \
        "($((SECONDS - t0)) s)"
      [ $target = latency ] && speed testmodels/fashion/$net.onnx $W/c-$target.onnx
    done
  fi
done
rm -rf "$W"
