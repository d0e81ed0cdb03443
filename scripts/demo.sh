#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job on the bundled sample data:
#  1. read the bundled files (simulated multi-frame DICOM exams with elastography, a PNG capture
#     with its spacing sidecar) and print their calibration;
#  2. `layerseg infer` them with the shipped default model: every frame segmented and scored;
#     per exam label maps (NIfTI + PNG), overlays, scores and an HTML report; for the run one
#     scores table, a log and a summary;
#  3. simulate a small labelled 24 MHz dataset and report both segmenters' accuracy on it.
# Output goes to a new folder under out/ (nothing existing is overwritten).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
OUT=${1:-out/demo-$(date +%Y%m%d-%H%M%S)}
echo "== bundled samples"
layerseg info data/samples/exams data/samples/bmode_capture.png
echo "== layerseg infer -> $OUT/infer"
layerseg infer data/samples/exams data/samples/bmode_capture.png --out "$OUT/infer" --model default \
    --no-progress
echo "reports: $(ls "$OUT"/infer/exams/*/report.html | tr '\n' ' ')"
echo "scores:  $OUT/infer/scores.csv ($(($(wc -l < "$OUT/infer/scores.csv") - 1)) rows)"
echo "== accuracy on 6 simulated frames (exact truth): the default model, then the classical segmenter"
layerseg simulate --n 6 --out "$OUT/sim" --seed 7 --no-progress
layerseg bench accuracy --data "$OUT/sim" --model default --json "$OUT/accuracy_default.json"
layerseg bench accuracy --data "$OUT/sim" --model classical --json "$OUT/accuracy_classical.json"
