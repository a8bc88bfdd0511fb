#!/usr/bin/env bash
# Structured pruning, Layer Folding and distillation on transformers (issue 32's benchmarks):
#   - the test ViT (testmodels/transformers/vit_op17.onnx, trained on digits): residual branches, attention heads and
#     MLP neurons removed, distilled on the 200 unlabeled calibration images (no selection on the test images:
#     eval-every=0); accuracy on the 500 held-out test images; ORT latency against the input (1 thread, batch 1,
#     interleaved), three runs;
#   - Layer Folding's trained slopes on the ViT's GELUs, then fold-conv (fc2 . fc1 one matrix);
#   - the BERT-style test encoders (bert_op13: 2 x 64; bert_medium: 4 x 192, 128 positions) and, with --arctic, the pretrained arctic-embed-xs from its NuGet
#     package (onnxopt-bench arctic): half the heads and half the MLP neurons, distilled on the calibration sentences;
#     mean-pooled embedding cosine on the held-out sentences; latency at sequence 32 and 64 (bert_op13's positions
#     end at 64) or 32 and 128 (bert_medium, arctic).
#   bash bench/transformers/run.sh [--arctic]
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build src/OnnxOpt -c Release -v q -nologo > /dev/null
O="dotnet src/OnnxOpt/bin/Release/net10.0/onnxopt.dll"
W=$(mktemp -d)
D=testmodels/digits/data
VIT=testmodels/transformers/vit_op17.onnx

figures() { # summary of an optimize run: MACs, depth, the budget measure
  grep -E "^pipeline|budget measure" | sed -E 's/^pipeline .*\}: (nodes.*)/\1/' | sed 's/, file .*//'
}
speed() { # three interleaved timings of input vs candidate (speed-up = input / candidate)
  for r in 1 2 3; do $O bench "$1" --vs "$2" ${3:-} 2>&1 | grep -E "^speed-up" || true; done
}

echo "== ViT: residual branches (1/3), heads and MLP neurons (40% each), distill 1000 steps"
$O optimize $VIT -o $W/vit.pruned.onnx --calib $D/calib --eval $D/test --force --passes \
  "canonicalize,prune{unit=block,ratio=0.34,min-speedup=0},prune{unit=head,ratio=0.4,criterion=taylor,min-speedup=0},\
prune{ratio=0.4,criterion=taylor,min-speedup=0},distill{eval-every=0}" 2>&1 | figures || true
speed $VIT $W/vit.pruned.onnx

echo "== ViT: heads and MLP neurons (50% each), distill 1000 steps"
$O optimize $VIT -o $W/vit.hn.onnx --calib $D/calib --eval $D/test --force --passes \
  "canonicalize,prune{unit=head,ratio=0.5,criterion=taylor,min-speedup=0},prune{ratio=0.5,criterion=taylor,\
min-speedup=0},distill{eval-every=0}" 2>&1 | figures || true
speed $VIT $W/vit.hn.onnx

echo "== ViT: Layer Folding (trained slopes on the GELUs, budget 1 point), then fold-conv"
$O optimize $VIT -o $W/vit.lf.onnx --calib $D/calib --eval $D/test --force --passes \
  "canonicalize,linearize{mode=train,max-agreement-drop=1,eval-every=0},canonicalize,fold-conv,canonicalize" \
  2>&1 | figures || true
speed $VIT $W/vit.lf.onnx

encoder() { # name model calib eval dims
  echo "== $1: half the heads (damage) and half the MLP neurons (taylor), distill (pooled cosine, token swap)"
  $O optimize "$2" -o $W/$1.pruned.onnx --calib "$3" --eval "$4" --force --passes \
    "canonicalize,prune{unit=head,ratio=0.5,criterion=damage,sensitivity-samples=64,min-speedup=0},\
prune{ratio=0.5,criterion=taylor,min-speedup=0},distill{steps=${STEPS:-1000},batch=16,lr=0.0002,token-swap=0.15,\
eval-every=0}" 2>&1 | figures || true
  for dims in $5; do speed "$2" $W/$1.pruned.onnx "${dims//,/ }"; done
}
encoder bert testmodels/transformers/bert_op13.onnx testmodels/transformers/bert_data testmodels/transformers/bert_eval \
  "--dim,sequence=32 --dim,sequence=64"
T=testmodels/transformers
encoder bert_medium $T/bert_medium.onnx $T/bert_medium_data $T/bert_medium_eval "--dim,sequence=32 --dim,sequence=128"
if [ "${1:-}" = "--arctic" ]; then
  paths=$(dotnet run --project bench/OnnxOpt.Bench -c Release -- arctic)
  model=$(echo "$paths" | awk '/^model/ {print $2}')
  calib=$(echo "$paths" | awk '/^calib/ {print $2}')
  eval=$(echo "$paths" | awk '/^eval/ {print $2}')
  encoder arctic "$model" "$calib" "$eval" "--dim,sequence_length=32 --dim,sequence_length=128"
fi
rm -rf "$W"
