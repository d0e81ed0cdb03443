#!/usr/bin/env python
"""Realism report of a labelled dataset folder: dermis/fat speckle size and layer contrast.

Usage::

    python scripts/realism_report.py DIR [--max-frames N] [--json OUT.json] [--csv OUT.csv]
        [--plot OUT.png] [--ref NAME:AXIAL_UM,LATERAL_UM,FAT_SD[,MUSCLE_SD]] ...

Speckle FWHM (axial, lateral, in um) comes from the 2-D autocovariance of the *display (log)
image* inside the eroded layer mask (`layerseg.simulate.realism.acf_fwhm`); contrast is
``(mean layer - mean dermis) / SD dermis`` on the grey image. Prints the 5/25/50/75/95th
percentiles over frames; ``--plot`` draws the frames (dermis speckle axial vs lateral, fat vs
muscle contrast) with the reference points given by ``--ref``, e.g.
``--ref independent:45,92,-1.0,0.4 --ref real_lowfreq:116,206,-2.2``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def _ref(text: str):
    name, _, vals = text.partition(":")
    v = [float(x) for x in vals.split(",")]
    if not name or len(v) < 3:
        raise argparse.ArgumentTypeError("--ref wants NAME:AXIAL_UM,LATERAL_UM,FAT_SD[,MUSCLE_SD]")
    return name, v + [float("nan")] * (4 - len(v))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="dataset folder (manifest.csv with labels)")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write per-frame values + summary")
    ap.add_argument("--csv", type=Path, default=None, help="write per-frame values")
    ap.add_argument("--plot", type=Path, default=None, help="scatter plot PNG")
    ap.add_argument("--ref", type=_ref, action="append", default=[],
                    metavar="NAME:AX,LAT,FAT[,MUSCLE]", help="reference point (repeatable)")
    a = ap.parse_args(argv)

    import numpy as np
    from layerseg.io.dataset import read_dataset
    from layerseg.layers import get_profile
    from layerseg.simulate.realism import frame_realism, summarise

    ds = read_dataset(a.data, check_values=False)
    per = []
    for i, item in enumerate(ds):
        if a.max_frames is not None and i >= a.max_frames:
            break
        if item.label is None:
            continue
        layers = get_profile(item.row.get("region") or None).layers
        r = frame_realism(item.frame.bmode, np.asarray(item.label), layers, item.frame.spacing_mm)
        r["id"] = item.id
        if item.truth and "acoustics" in item.truth:
            r["frequency_mhz"] = item.truth["acoustics"].get("frequency_mhz")
        per.append(r)
    if not per:
        print("no labelled frames", file=sys.stderr)
        return 1
    summ = summarise(per)
    print(f"{len(per)} frame(s) of {a.data}; speckle from the log image's 2-D autocovariance "
          "inside the eroded layer mask; contrast in dermis SDs")
    print(f"{'measure':34s} {'n':>4s} " + " ".join(f"{'p' + str(q):>8s}" for q in (5, 25, 50, 75, 95)))
    for k in sorted(summ):
        d = summ[k]
        print(f"{k:34s} {d['n']:4d} " + " ".join(f"{d['p' + str(q)]:8.2f}" for q in (5, 25, 50, 75, 95)))
    for name, t in (("muscle below -2 SD", lambda c: c < -2), ("muscle above 0 SD", lambda c: c > 0)):
        m = [r["contrast_sd"].get("muscle") for r in per]
        m = [c for c in m if c is not None and np.isfinite(c)]
        if m:
            print(f"{name}: {100.0 * np.mean([t(c) for c in m]):.0f} % of {len(m)} frames")
    flat = []
    for r in per:
        row = {"id": r["id"], "frequency_mhz": r.get("frequency_mhz"),
               "dermis_thickness_mm": r["dermis_thickness_mm"]}
        for ly, (ax, la) in r["speckle_um"].items():
            row[f"speckle_axial_um.{ly}"], row[f"speckle_lateral_um.{ly}"] = ax, la
        for ly, c in r["contrast_sd"].items():
            row[f"contrast_sd.{ly}"] = c
        flat.append(row)
    if a.json:
        a.json.write_text(json.dumps({"summary": summ, "frames": flat}, indent=1))
    if a.csv:
        keys = sorted({k for r in flat for k in r}, key=lambda k: (k != "id", k))
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(flat)
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (p1, p2) = plt.subplots(1, 2, figsize=(11, 4.5))
        ax_ = [r.get("speckle_axial_um.dermis", np.nan) for r in flat]
        la_ = [r.get("speckle_lateral_um.dermis", np.nan) for r in flat]
        p1.scatter(ax_, la_, s=8, alpha=0.6, label="frames")
        fat = [r.get("contrast_sd.fat", np.nan) for r in flat]
        mus = [r.get("contrast_sd.muscle", np.nan) for r in flat]
        p2.scatter(fat, mus, s=8, alpha=0.6, label="frames")
        for name, (ra, rl, rf, rm) in a.ref:
            p1.scatter([ra], [rl], marker="*", s=160, label=name)
            p2.scatter([rf], [rm if np.isfinite(rm) else 0.0], marker="*", s=160, label=name)
        p1.set(xlabel="dermis speckle axial FWHM (um)", ylabel="lateral FWHM (um)")
        p2.set(xlabel="fat contrast (dermis SDs)", ylabel="muscle contrast (dermis SDs)")
        p1.legend(fontsize=7)
        p2.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
