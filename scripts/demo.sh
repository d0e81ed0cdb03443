#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job on the bundled sample data:
#  1. read the bundled frames (DICOM with US regions, JPEG cine, PNG + sidecar, simulated frames)
#     and print their calibration;
#  2. simulate a small labelled 24 MHz dataset (exact truth), segment it with the training-free
#     classical segmenter and report its accuracy;
#  3. score the per-layer aging markers of that dataset into CSV tables.
# Output goes to a new folder under out/ (nothing existing is overwritten).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
OUT=${1:-out/demo-$(date +%Y%m%d-%H%M%S)}
echo "== bundled samples"
layerseg info data/samples data/samples/sim
echo "== simulate 6 frames into $OUT/sim"
layerseg simulate --n 6 --out "$OUT/sim" --seed 7
echo "== classical segmenter accuracy"
layerseg bench accuracy --data "$OUT/sim" --model classical --json "$OUT/accuracy.json"
cat "$OUT/accuracy.json"; echo
echo "== aging markers"
layerseg score --data "$OUT/sim" --out "$OUT/scores.csv" --wide "$OUT/scores_wide.csv"
echo "scores: $OUT/scores.csv ($(($(wc -l < "$OUT/scores.csv") - 1)) rows), per frame: $OUT/scores_wide.csv"
