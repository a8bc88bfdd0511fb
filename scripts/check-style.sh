#!/usr/bin/env bash
# Style checks the test script runs first (.editorconfig has the conventions):
#  1. dotnet format's whitespace rules hold (run `dotnet format whitespace OnnxOpt.sln` to fix);
#  2. lines within ~120 columns: src/ may not gain lines longer than 120 (a ratchet: the budget in
#     scripts/long-lines-budget only goes down; lower it when you shorten lines).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dotnet format whitespace OnnxOpt.sln --verify-no-changes >/tmp/onnxopt-format.log 2>&1; then
  grep -m 10 "WHITESPACE" /tmp/onnxopt-format.log | sed 's/^/  /' >&2 || true
  echo "check-style: whitespace differs from .editorconfig; run: dotnet format whitespace OnnxOpt.sln" >&2
  exit 1
fi
budget=$(cat scripts/long-lines-budget)
long=$(git ls-files -co --exclude-standard 'src/*.cs' | xargs awk 'length > 120 { c++ } END { print c + 0 }')
if [ "$long" -gt "$budget" ]; then
  echo "check-style: $long lines in src/ are longer than 120 columns (budget $budget); wrap the new ones:" >&2
  git diff -U0 HEAD -- 'src/*.cs' | awk '/^\+\+\+ / { f = substr($2, 3) } /^\+[^+]/ && length($0) > 121 { print "  " f ": " substr($0, 2, 80) "..." }' >&2 || true
  exit 1
fi
echo "check-style: whitespace ok; $long lines over 120 columns in src/ (budget $budget)"
