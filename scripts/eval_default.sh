#!/usr/bin/env bash
# Reproduce the figures of the default model's card (layerseg/data/models/default.md) and of
# benchmarks/RESULTS.md: held-out simulated frames (seeds never used in training or tuning) and
# the independent PyMUST set, for the default model and the classical segmenter side by side.
#   bash scripts/eval_default.sh [OUT_DIR] [MODEL]
# OUT_DIR (default runs/eval_default) receives the frames, per-model summaries (JSON, with a
# per-frame CSV beside each) and table.md. MODEL defaults to the shipped 'default'.
# About 55 min on 2 CPU cores, most of it the PyMUST set and the classical segmenter.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/eval_default}
MODEL=${2:-default}
mkdir -p "$OUT"
[ -f "$OUT/default200/manifest.csv" ] || layerseg simulate --n 200 --out "$OUT/default200" \
    --seed 4242 --no-progress
[ -f "$OUT/wide200/manifest.csv" ] || layerseg simulate --n 200 --out "$OUT/wide200" \
    --seed 4343 --ranges wide --no-progress
[ -f "$OUT/pymust24/manifest.csv" ] || python scripts/make_pymust_set.py "$OUT/pymust24" \
    --n 24 --seed 9001
# frames twice as deep as the benchmark's (24 mm: the tissue under the modelled layers)
DEEP=(--shape 1024 512 --depth-mm 24 --width-mm 12.8)
[ -f "$OUT/deep60/manifest.csv" ] || layerseg simulate --n 60 --out "$OUT/deep60" \
    --seed 4545 "${DEEP[@]}" --no-progress
[ -f "$OUT/deepwide60/manifest.csv" ] || layerseg simulate --n 60 --out "$OUT/deepwide60" \
    --seed 4646 --ranges wide "${DEEP[@]}" --no-progress
rows=()
for set in default200 wide200 pymust24 deep60 deepwide60; do
    for m in "$MODEL" classical; do
        tag=$(basename "$m" .ckpt)
        js="$OUT/${set}_${tag}.json"
        [ -f "$js" ] || layerseg bench accuracy --data "$OUT/$set" --model "$m" --json "$js" \
            || true     # a frame that fails is in the CSV; the summary is still written
        rows+=("$set / $tag=$js")
    done
done
python scripts/accuracy_table.py "${rows[@]}" | tee "$OUT/table.md"
