"""``layerseg simulate``: write a simulated dataset (DESIGN.md layout) or DICOM exams."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("simulate", help="write simulated 24 MHz facial frames with exact truth",
                       description="Simulate N facial high-frequency ultrasound frames (B-mode, "
                                   "label map, elastography, truth JSON) into DIR, as the "
                                   "dataset layout or as multi-frame DICOM exams.")
    p.add_argument("--n", type=int, required=True, metavar="N", help="number of frames")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="dataset seed (default 0)")
    p.add_argument("--region", default=None, metavar="R",
                   help="one facial region for all frames (default: several per subject)")
    p.add_argument("--age-range", type=float, nargs=2, default=(20.0, 80.0),
                   metavar=("MIN", "MAX"), help="subject ages in years (default 20 80)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="parallel processes (output bytes do not depend on it)")
    p.add_argument("--format", choices=("dataset", "dicom"), default="dataset",
                   help="dataset layout (default) or DICOM exams")
    p.add_argument("--image-format", choices=("png", "npy"), default="png")
    p.add_argument("--rf", choices=("rf", "iq"), default=None,
                   help="also write RF (after TGC) or IQ lines per frame under rf/")
    # the simulator's RANGES and ANATOMY_VARIANTS, written out so that `layerseg --help` does not
    # import the simulator (a test holds them equal)
    p.add_argument("--ranges", choices=("default", "wide", "wide_faint"), default="default",
                   help="per-frame parameter ranges: 'default' (today's settings, same seed same "
                        "frames) or 'wide' (probe 15-50 MHz, bandwidth, F-number, TGC, dynamic "
                        "range 40-80 dB, grey map, noise and per-layer echogenicity drawn per "
                        "frame from layerseg/data/sim_ranges.json) or 'wide_faint' (wide, with "
                        "the fat 1-8 dB darker than the dermis)")
    p.add_argument("--anatomy", choices=("default", "varied", "decoupled"),
                   default="default",
                   help="anatomy: 'default' (the regions' table), 'varied' (deep fat and "
                        "muscle present in 60 %% of frames and bone in 50 %% in every region, "
                        "each layer's thickness scaled by its own factor of 0.65-1.55) or "
                        "'decoupled' (that presence, each layer's thickness drawn from one "
                        "range for every region: dermis 0.45-2.8 mm); for training and "
                        "robustness sets")
    p.add_argument("--depth-mm", type=float, default=None, metavar="MM",
                   help="field depth of each frame in mm (default 12)")
    p.add_argument("--width-mm", type=float, default=None, metavar="MM",
                   help="field width of each frame in mm (default 12.8)")
    p.add_argument("--shape", type=int, nargs=2, default=None, metavar=("ROWS", "COLS"),
                   help="frame size in pixels (default 512 512); with --depth-mm and "
                        "--width-mm it sets the pixel spacing")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..simulate import simulate_dataset

    # the field of view where given (else simulate_frame's defaults)
    given = {"depth_mm": args.depth_mm, "width_mm": args.width_mm,
             "shape": None if args.shape is None else tuple(args.shape)}
    field = {k: v for k, v in given.items() if v is not None}
    t0 = time.perf_counter()
    out = simulate_dataset(args.out, args.n, seed=args.seed, region=args.region,
                           age_range=tuple(args.age_range), workers=args.workers,
                           fmt=args.format, progress=not args.no_progress,
                           image_format=args.image_format, write_rf=args.rf,
                           ranges=args.ranges, anatomy=args.anatomy, **field)
    print(f"wrote {args.n} frame(s) to {out} in {time.perf_counter() - t0:.1f} s")
    return 0
