"""Agreement report: markers from the classical segmenter's labels against markers from the
ground-truth labels of the same simulated frames (Bland-Altman bias, 95 % limits, ICC(A,1)).

A real use of `layerseg.scoring.agreement` (through ``score_dataset(..., compare=...)``, the path
of ``layerseg score --compare``), not a pass/fail test: it reports how far the classical
segmenter's markers sit from the truth's.

Usage::

    python scripts/agreement_classical_vs_truth.py --data SIMULATED_DATASET --out agreement.csv
    python scripts/agreement_classical_vs_truth.py --n 60 --out agreement.csv   # simulate first

``a`` in the table is the ground truth, ``b`` the classical segmenter (bias = truth - classical).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="simulated dataset (default: simulate --n frames)")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", type=Path, default=Path("agreement_classical_vs_truth.csv"))
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args(argv)

    from layerseg import segment
    from layerseg.io import read_dataset
    from layerseg.scoring import score_dataset

    work = args.work or Path(tempfile.mkdtemp(prefix="agreement_"))
    data = args.data
    if data is None:
        from layerseg.simulate import simulate_dataset
        data = work / "sim"
        if not (data / "manifest.csv").is_file():
            simulate_dataset(data, args.n, seed=args.seed, progress=False)
    seg_dir = work / "classical_labels"
    seg_dir.mkdir(parents=True, exist_ok=True)
    ds = read_dataset(data)
    failed = 0
    for item in ds:
        p = seg_dir / f"{item.id}.png"
        if p.is_file():
            continue
        try:
            lab = segment(item.frame, model="classical", region=item.row.get("region") or None)
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"segmentation failed for {item.id}: {e}", file=sys.stderr)
            failed += 1
            continue
        Image.fromarray(np.asarray(lab, dtype=np.uint8)).save(p)
    rc = score_dataset(data, work / "truth_scores.csv", compare=seg_dir, agreement_out=args.out,
                       log=lambda m: print(m, file=sys.stderr))
    agr = pd.read_csv(args.out)
    keep = ["thickness_mean_mm", "echo_mean_db", "roughness_ra_um", "stiffness_median_kpa",
            "low_echo_fraction"]
    show = agr[agr["marker"].isin(keep)][["layer", "marker", "n", "mean_a", "mean_b", "bias",
                                          "loa_lower", "loa_upper", "icc"]]
    with pd.option_context("display.width", 160, "display.precision", 3):
        print(show.to_string(index=False))
    print(f"agreement table: {args.out} ({len(agr)} rows); segmentation failures: {failed}")
    return 1 if (rc["failed"] or rc["compare_failed"] or failed) else 0


if __name__ == "__main__":
    sys.exit(main())
