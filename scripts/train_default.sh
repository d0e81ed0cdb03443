#!/usr/bin/env bash
# Train layerseg's shipped default model from scratch, as its model card
# (layerseg/data/models/default.md) records:
#   1. simulate the training sets (skipped when present): 500 frames of the default ranges
#      (seed 101) and 700 of the wide ranges (seed 102), 512 x 512 over 12 x 12.8 mm; for
#      stage 2 also 200 default-range (seed 103) and 300 wide-range (seed 104) frames of the
#      varied anatomy (--anatomy varied: layers present or absent in every region, each
#      layer's thickness scaled by its own factor);
#   2. train configs/default_cpu.yaml on them (stage 1, 5,000 steps; LightningCLI; extra
#      arguments are passed on to both stages, e.g. --trainer.max_steps=100 for a trial);
#   3. fine-tune that network with configs/default_cpu_widen.yaml (stage 2, 1,500 steps on
#      patches twice as wide, from stage 1's weights: --model.init_from), on all four sets;
#   4. write the shippable checkpoints to runs/default_cpu/default.ckpt (stage 1) and
#      runs/default_cpu_widen/default.ckpt (stage 2: the default model; copy it to
#      layerseg/data/models/default.ckpt to replace the shipped one).
# Seeds never used for evaluation: the held-out sets are seeds 4242 (default) and 4343 (wide).
# About 115 min on 2 CPU cores (20 simulating, 60 stage 1, 30 stage 2); WORKERS sets the simulation's
# processes. CONFIG and NAME train another config on the same data the same way, e.g. the
# ordered-surface head: CONFIG=configs/surface_cpu.yaml NAME=surface (into runs/surface_cpu);
# stage 2 runs for the default config only (STAGE2=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-runs/default_data}
WORKERS=${WORKERS:-2}
[ -f "$DATA/default/manifest.csv" ] || layerseg simulate --n 500 --out "$DATA/default" \
    --seed 101 --workers "$WORKERS" --no-progress
[ -f "$DATA/wide/manifest.csv" ] || layerseg simulate --n 700 --out "$DATA/wide" --seed 102 \
    --ranges wide --workers "$WORKERS" --no-progress
[ -f "$DATA/varied/manifest.csv" ] || layerseg simulate --n 200 --out "$DATA/varied" \
    --seed 103 --anatomy varied --workers "$WORKERS" --no-progress
[ -f "$DATA/variedwide/manifest.csv" ] || layerseg simulate --n 300 --out "$DATA/variedwide" \
    --seed 104 --ranges wide --anatomy varied --workers "$WORKERS" --no-progress
# one compute thread for the network while the two data workers augment (on 2 cores, more
# threads only spin-wait against the workers); the figures of the card were made so
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
CONFIG=${CONFIG:-configs/default_cpu.yaml}
NAME=${NAME:-default}
ROOT=runs/$(basename "$CONFIG" .yaml)
# (no run yet on a fresh clone: ls fails, which pipefail would turn into an exit)
before=$( (ls -d "$ROOT"/lightning_logs/version_* 2>/dev/null || true) | wc -l)
layerseg fit --config "$CONFIG" --data.datasets="[$DATA/default,$DATA/wide]" \
    --trainer.default_root_dir="$ROOT" "$@"
run=$(ls -dt "$ROOT"/lightning_logs/version_* | head -1)
python scripts/ship_model.py "$run/checkpoints/last.ckpt" --out "$ROOT/$NAME.ckpt" \
    --name "$NAME" --config "$CONFIG" --force
echo "trained: $run (runs before: $before); shippable: $ROOT/$NAME.ckpt"
if [ "$CONFIG" = configs/default_cpu.yaml ] && [ "${STAGE2:-1}" != 0 ]; then
    CONFIG2=configs/default_cpu_widen.yaml
    ROOT2=runs/$(basename "$CONFIG2" .yaml)
    layerseg fit --config "$CONFIG2" \
        --data.datasets="[$DATA/default,$DATA/wide,$DATA/varied,$DATA/variedwide]" \
        --model.init_from="$ROOT/$NAME.ckpt" --trainer.default_root_dir="$ROOT2" "$@"
    run2=$(ls -dt "$ROOT2"/lightning_logs/version_* | head -1)
    python scripts/ship_model.py "$run2/checkpoints/last.ckpt" --out "$ROOT2/$NAME.ckpt" \
        --name "$NAME" --config "$CONFIG2" --force
    echo "stage 2: $run2; shippable: $ROOT2/$NAME.ckpt"
fi
