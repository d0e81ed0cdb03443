#!/usr/bin/env python
"""Draw the classical segmenter's surfaces over simulated frames: a few frames per region and one
frame with a 4 mm stand-off pad. One PNG per region (and ``standoff_4mm.png``) in OUT_DIR; each
row shows the frame, the true surfaces and the found surfaces (one colour per surface: top of
epidermis red, dermis green, fat blue, SMAS yellow, then magenta, cyan, orange for the next
layers of the region's profile, purple for the bottom), under a caption with each layer's Dice
(also printed).

Usage::

    python scripts/segmentation_gallery.py OUT_DIR [--per-region 2] [--seed 900000]
        [--regions forehead cheek ...]

The PNGs are for looking at, not for committing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from layerseg.layers import get_profile
from layerseg.segmentation import segment
from layerseg.simulate import SIM_REGIONS, simulate_frame

# one colour per surface (top of each profile layer, then the bottom of the last)
COLOURS = [(255, 60, 60), (60, 255, 60), (80, 140, 255), (255, 255, 0), (255, 0, 255),
           (0, 255, 255), (255, 150, 0), (180, 120, 255)]


def _panel(sf, res) -> np.ndarray:
    g = np.clip(sf.frame.bmode, 0, 255).astype(np.uint8)
    rgb = np.stack([g] * 3, axis=-1)
    found = rgb.copy()
    truth = rgb.copy()
    S = res.surfaces
    T = np.asarray(sf.truth["surfaces_rows"])
    rows, cols = g.shape
    for k in range(S.shape[0]):
        col = COLOURS[k % len(COLOURS)]
        for c in range(cols):
            r = int(S[k, c])
            if 0 <= r < rows:
                found[r, c] = col
            r = int(round(T[k, c]))
            if 0 <= r < rows:
                truth[r, c] = col
    return np.concatenate([rgb, truth, found], axis=1)


def _dice(a, b):
    s = a.sum() + b.sum()
    return float("nan") if s == 0 else 2 * (a & b).sum() / s


def _caption(img: np.ndarray, text: str) -> np.ndarray:
    bar = Image.new("RGB", (img.shape[1], 14), (0, 0, 0))
    ImageDraw.Draw(bar).text((2, 1), text, fill=(255, 255, 255))
    return np.concatenate([np.asarray(bar), img], axis=0)


def _row(sf, label: str) -> np.ndarray:
    res = segment(sf.frame, return_scores=True)
    prof = get_profile(sf.frame.meta.region)
    d = " ".join(f"{ly[:4]} {_dice(res.labels == lab, sf.labels == lab):.2f}"
                 for ly, lab in zip(prof.layers, prof.labels))
    text = f"{label}  Dice: {d}"
    print(text)
    return _caption(_panel(sf, res), text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for the PNGs (created)")
    p.add_argument("--per-region", type=int, default=2)
    p.add_argument("--seed", type=int, default=900000)
    p.add_argument("--regions", nargs="*", default=list(SIM_REGIONS))
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    for ri, region in enumerate(a.regions):
        rows = []
        for j in range(a.per_region):
            seed = a.seed + 100 * ri + j
            sf = simulate_frame(seed, region=region, age=25 + 50 * j / max(1, a.per_region - 1))
            rows.append(_row(sf, f"{region} seed {seed}"))
        path = a.out / f"{region}.png"
        Image.fromarray(np.concatenate(rows, axis=0)).save(path)
        print("wrote", path)
    sf = simulate_frame(a.seed + 99, region="cheek", standoff_mm=4.0)
    path = a.out / "standoff_4mm.png"
    Image.fromarray(_row(sf, f"cheek, 4 mm stand-off, seed {a.seed + 99}")).save(path)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
