#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job on the bundled sample data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
layerseg info data/samples
