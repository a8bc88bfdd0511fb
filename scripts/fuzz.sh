#!/usr/bin/env bash
# The fuzzing lane, longer than CI's: RUNS mutated models and data folders (default 20,000) through every
# command, for at most SECONDS (default 3600), from SEED (default: the time). A failure names the run, the
# command and the mutations; rerun it with the same seed.
#   bash scripts/fuzz.sh [RUNS] [SECONDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXOPT_FUZZ_RUNS="${1:-20000}" ONNXOPT_FUZZ_SECONDS="${2:-3600}" ONNXOPT_FUZZ_SEED="${3:-$(date +%s)}"
echo "fuzzing: $ONNXOPT_FUZZ_RUNS runs, at most $ONNXOPT_FUZZ_SECONDS s, seed $ONNXOPT_FUZZ_SEED"
dotnet test tests/Cli.Tests -c Release --filter "FullyQualifiedName~FuzzTests" --logger "console;verbosity=normal"
