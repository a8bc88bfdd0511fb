#!/usr/bin/env bash
# Runs the whole onnxopt test suite from a fresh clone: installs the ONNX backend test data
# (Debian's libonnx-testdata) and a headless browser (chromium) when missing and apt is usable, checks
# style (scripts/check-style.sh), builds, runs every test project, and prints one closing line "N passed, N failed, N skipped".
#   scripts/test.sh          the whole suite (what CI runs)
#   scripts/test.sh --fast   the fast lane: unit, rule, lit and golden tests (every project but the CLI's end-to-end
#                            tests), no installs; about a minute after the build
set -euo pipefail
cd "$(dirname "$0")/.."

# The closing line from dotnet test's per-project summaries in log $1, prefixed by $2.
summary() {
  awk -v prefix="$2" '/(Passed|Failed)! +- +Failed:/ {
         for (i = 1; i <= NF; i++) { gsub(",", "", $(i+1));
           if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
       END { printf "%s%d passed, %d failed, %d skipped\n", prefix, p, f, s }' "$1"
}

if [ "${1:-}" = "--fast" ]; then
  dotnet build OnnxOpt.sln -c Release -v quiet -nologo
  log=$(mktemp)
  rc=0
  for p in GraphIR Data Calibration Autodiff Training Runtime Passes; do
    dotnet test "tests/$p.Tests" -c Release --no-build >"$log.$p" 2>&1 || rc=1
    grep -E '^(Passed|Failed)!|^ +Failed |Error Message' -A2 "$log.$p" || true
    cat "$log.$p" >>"$log" && rm -f "$log.$p"
  done
  summary "$log" "fast: "
  rm -f "$log"
  exit "$rc"
fi

if [ ! -d /usr/share/libonnx-testdata/data ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing libonnx-testdata (ONNX backend test models) ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libonnx-testdata) >/dev/null 2>&1 \
    || echo "warning: could not install libonnx-testdata; the backend-model tests will be skipped"
fi

if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing chromium (the HTML report's browser tests) ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "warning: could not install chromium; the browser tests will be skipped"
fi

bash scripts/check-style.sh

log=$(mktemp)
set +e
dotnet test OnnxOpt.sln -c Release 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
summary "$log" ""
rm -f "$log"
exit "$rc"
