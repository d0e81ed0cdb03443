"""Write a PNG grid of simulated frames per facial region (rows) and age (columns), with the
label map outline, to compare by eye with published 20-24 MHz facial HFUS images.

    python scripts/sim_gallery.py --out sim_gallery.png [--seed 0] [--ages 25 45 70] [--labels]
        [--ranges default|wide|wide_faint] [--anatomy default|varied|decoupled] [--dpi 110]

With ``--ranges wide`` (or ``wide_faint``) every frame draws its own probe, display chain and
layer echogenicity (`layerseg/data/sim_ranges.json`; frequency from the ranges, not
``--frequency``) and the title gives the drawn centre frequency and dynamic range.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from layerseg.simulate import SIM_REGIONS, simulate_frame  # noqa: E402
from layerseg.simulate.anatomy import ANATOMY_VARIANTS  # noqa: E402
from layerseg.simulate.ranges import RANGES  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="sim_gallery.png")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ages", type=float, nargs="+", default=[25, 45, 70])
    ap.add_argument("--regions", nargs="+", default=list(SIM_REGIONS))
    ap.add_argument("--sex", default="F")
    ap.add_argument("--labels", action="store_true", help="draw label boundaries")
    ap.add_argument("--vary", action="store_true", help="random settings and artefacts")
    ap.add_argument("--frequency", type=float, default=24.0)
    ap.add_argument("--ranges", choices=RANGES, default="default")
    ap.add_argument("--anatomy", choices=ANATOMY_VARIANTS, default="default")
    ap.add_argument("--dpi", type=int, default=110)
    args = ap.parse_args(argv)
    wide = args.ranges != "default"
    nr, nc = len(args.regions), len(args.ages)
    fig, axes = plt.subplots(nr, nc, figsize=(3.2 * nc, 3.1 * nr), squeeze=False)
    for i, reg in enumerate(args.regions):
        for j, age in enumerate(args.ages):
            s = simulate_frame(args.seed + 100 * i + j, region=reg, age=age, sex=args.sex,
                               vary=args.vary or wide, with_elasto=False,
                               frequency_mhz=None if wide else args.frequency,
                               ranges=args.ranges, anatomy=args.anatomy)
            f = s.frame
            dz, dx = f.spacing_mm
            r, c = f.shape
            ax = axes[i, j]
            ax.imshow(f.bmode, cmap="gray", vmin=0, vmax=255, aspect="equal",
                      extent=(0, c * dx, r * dz, 0))
            if args.labels:
                edges = np.zeros(s.labels.shape, bool)
                edges[1:] = s.labels[1:] != s.labels[:-1]
                yy, xx = np.nonzero(edges)
                ax.plot((xx + 0.5) * dx, (yy + 0.5) * dz, ",", color="tab:red", alpha=0.6)
            title = f"{reg}, {args.sex} {age:g} y"
            if wide:
                ac = s.truth["acoustics"]
                title += f", {ac['frequency_mhz']:.0f} MHz, {ac['dynamic_range_db']:.0f} dB"
            ax.set_title(title, fontsize=8)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(args.out, dpi=args.dpi)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
