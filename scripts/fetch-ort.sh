#!/usr/bin/env bash
# Fetches ONNX Runtime 1.30.0's CPU library for linux-x64 into .ort/ (ignored by git) when it is
# missing: from the npm package onnxruntime-node@1.30.0 (the registry checks its sha512), then the
# library's own sha256 is checked. Called by the Runtime project's build; safe to run by hand.
# ONNXOPT_ORT_LIB=/path/to/libonnxruntime.so.1 skips the download entirely.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.ort"
lib="$dest/libonnxruntime.so.1"
want=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23

if [ -n "${ONNXOPT_ORT_LIB:-}" ]; then exit 0; fi
if [ -f "$lib" ] && [ "$(sha256sum "$lib" | cut -d' ' -f1)" = "$want" ]; then exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "fetch-ort: npm is needed to fetch onnxruntime-node@1.30.0 (or set ONNXOPT_ORT_LIB)" >&2; exit 1; }

mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9
if [ -f "$lib" ] && [ "$(sha256sum "$lib" | cut -d' ' -f1)" = "$want" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-ort: downloading onnxruntime-node@1.30.0 (about 113 MB) ..." >&2
(cd "$tmp" && npm pack --silent onnxruntime-node@1.30.0 >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-1.30.0.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
got=$(sha256sum "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "fetch-ort: sha256 mismatch for libonnxruntime.so.1: got $got, expected $want" >&2
  exit 1
fi
mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.partial"
mv "$lib.partial" "$lib"
echo "fetch-ort: $lib ready" >&2
