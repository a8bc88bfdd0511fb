#!/usr/bin/env bash
# Training throughput against PyTorch, alternated on the same machine: ROUNDS times, onnxopt-bench train-speed
# then bench/train_speed.py (Debian's python3-torch, 2 threads), the same nets, batches and steps. Prints each
# round's steps/s and, per net, the range of each and the range and median of the per-round ratios (on a noisy
# VM only figures taken back to back compare).
#   bash bench/train-speed-vs-pytorch.sh [ROUNDS=3] [STEPS=100] [MODELS=vgg,resnet,mobilenetv2,mlp]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} steps=${2:-100} models=${3:-vgg,resnet,mobilenetv2,mlp}
dotnet build -c Release bench/OnnxOpt.Bench -v q -nologo >/dev/null
log=$(mktemp)
for r in $(seq 1 "$rounds"); do
  dotnet run --no-build --project bench/OnnxOpt.Bench -c Release -- train-speed --models "$models" --steps "$steps" \
    | awk -v r="$r" '/steps\/s/ { print "onnxopt", r, $1, $4 }' | tee -a "$log"
  /usr/bin/python3 bench/train_speed.py --models "$models" --steps "$steps" \
    | awk -v r="$r" '/steps\/s/ { print "pytorch", r, $1, $4 }' | tee -a "$log"
done
awk '
  { v[$1, $3, $2] = $4; if (!($3 in seen)) { seen[$3] = 1; order[++nn] = $3 }; if ($2 > rounds) rounds = $2 }
  END {
    printf "%-12s %17s %17s %13s %7s\n", "net", "onnxopt steps/s", "pytorch steps/s", "ratio", "median"
    for (x = 1; x <= nn; x++) {
      n = order[x]
      k = 0; omin = pmin = rmin = 1e18; omax = pmax = rmax = 0
      for (r = 1; r <= rounds; r++) {
        o = v["onnxopt", n, r]; p = v["pytorch", n, r]; if (o == "" || p == "") continue
        q[++k] = o / p
        if (o < omin) omin = o; if (o > omax) omax = o; if (p < pmin) pmin = p; if (p > pmax) pmax = p
        if (q[k] < rmin) rmin = q[k]; if (q[k] > rmax) rmax = q[k]
      }
      if (k == 0) continue
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (q[j] < q[i]) { t = q[i]; q[i] = q[j]; q[j] = t }
      med = k % 2 ? q[(k + 1) / 2] : (q[k / 2] + q[k / 2 + 1]) / 2
      printf "%-12s %17s %17s %13s %6.2fx\n", n, sprintf("%.1f-%.1f", omin, omax), sprintf("%.1f-%.1f", pmin, pmax),
        sprintf("%.2f-%.2fx", rmin, rmax), med
    }
  }' "$log"
rm -f "$log"
