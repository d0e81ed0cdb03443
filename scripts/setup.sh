#!/usr/bin/env bash
# Create .venv and install layerseg with its test dependencies (idempotent).
# torch is installed first, pinned to the CPU build that lies on this machine's disk; elsewhere
# any torch in the project's range works (a GPU build included).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.2,<3"
python -m pip install -q -e ".[dev]"
