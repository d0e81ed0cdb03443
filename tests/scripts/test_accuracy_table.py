"""scripts/accuracy_table.py: the side-by-side table of `bench accuracy` summaries, computed
from a real (tiny) `layerseg bench accuracy` run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from layerseg.cli import main

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "accuracy_table.py"


def test_table_row_matches_the_summary(tmp_path):
    data = tmp_path / "sim"
    assert main(["simulate", "--n", "2", "--out", str(data), "--seed", "5", "--no-progress"]) == 0
    js = tmp_path / "acc.json"
    assert main(["bench", "accuracy", "--data", str(data), "--model", "classical", "--json",
                 str(js)]) == 0
    summ = json.loads(js.read_text())
    out = subprocess.run([sys.executable, str(SCRIPT), f"sim / classical={js}"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith("| set / model | frames | epidermis | dermis |")
    cells = [c.strip() for c in out[2].strip("|").split("|")]
    assert cells[0] == "sim / classical" and cells[1] == str(summ["frames"])
    lay = summ["layers"]
    assert cells[3] == f"{lay['dermis']['dice']:.3f}"
    core = [lay[k]["dice"] for k in ("dermis", "fat", "smas", "muscle")
            if k in lay and np.isfinite(lay[k]["dice"])]
    assert cells[9] == f"{np.mean(core):.3f}"
    assert cells[10] == f"{lay['dermis']['thickness_mae_mm']:.3f}"
    assert cells[11] == str(summ["order_violations"])
    # no argument: the usage, exit 2
    assert subprocess.run([sys.executable, str(SCRIPT)], capture_output=True).returncode == 2
