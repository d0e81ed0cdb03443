"""How the trained model's per-column confidence separates familiar from unfamiliar frames.

    python scripts/confidence_report.py --model default DIR [DIR ...]

For every frame of each labelled dataset folder: the model's per-column confidence
(`layerseg.layers.decode.column_confidence`), the share of columns under the decode priors'
``confidence.column_min``, whether the frame is flagged ("model uncertain"), and the frame's
mean Dice over dermis, fat, SMAS and muscle against its truth. Prints one line per folder
(frames, flagged share, median confidence, mean Dice of flagged and unflagged frames) and the
Spearman correlation of confidence with Dice over all frames; `--csv` keeps the per-frame rows.
"""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+")
    ap.add_argument("--model", default="default")
    ap.add_argument("--csv", default=None)
    a = ap.parse_args(argv)

    from scipy.stats import spearmanr

    from layerseg.io.dataset import read_dataset
    from layerseg.layers import load_priors
    from layerseg.metrics import dice
    from layerseg.segmentation import segment

    cmin = load_priors()["confidence"]["column_min"]
    rows = []
    for d in a.data:
        ds = read_dataset(d)
        for i in range(len(ds.rows)):
            it = ds[i]
            res = segment(it.frame, model=a.model, return_scores=True)
            conf = res.column_confidence
            ds_ = [dice(res.labels == k, it.label == k) for k in (2, 3, 4, 6)]
            ds_ = [v for v in ds_ if np.isfinite(v)]
            rows.append({"set": d, "id": it.id, "mean_confidence": float(conf.mean()),
                         "low_fraction": float(np.mean(conf < cmin)),
                         "flagged": any("uncertain" in f for f in res.flags),
                         "dice4": float(np.mean(ds_)) if ds_ else float("nan")})
    print(f"column_min {cmin}")
    for d in a.data:
        r = [x for x in rows if x["set"] == d]
        fl = [x["dice4"] for x in r if x["flagged"]]
        ok = [x["dice4"] for x in r if not x["flagged"]]
        print(f"{d}: {len(r)} frames, flagged {100 * len(fl) / len(r):.1f} %, median "
              f"confidence {np.median([x['mean_confidence'] for x in r]):.3f}, mean Dice-4 "
              f"flagged {np.mean(fl) if fl else float('nan'):.3f} / unflagged "
              f"{np.mean(ok) if ok else float('nan'):.3f}")
    rho = spearmanr([x["mean_confidence"] for x in rows], [x["dice4"] for x in rows],
                    nan_policy="omit")[0]
    print(f"Spearman(confidence, Dice-4) over {len(rows)} frames: {rho:.2f}")
    if a.csv:
        with open(a.csv, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
