"""``layerseg score --data DIR --out FILE.csv``: per-layer aging markers of a labelled dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "score", help="per-layer aging markers of a labelled dataset (CSV/Parquet tables)",
        description="Score every frame of a labelled dataset folder (manifest.csv layout): one row "
                    "per frame and layer (thickness, area, echogenicity, texture, roughness, "
                    "stiffness, reference z-scores, QC). A frame that cannot be scored is recorded "
                    "with its reason and the batch goes on; the exit status is 1 when any frame "
                    "failed entirely.")
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="dataset folder")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.csv",
                   help="long table, one row per frame and layer")
    p.add_argument("--parquet", type=Path, metavar="FILE", help="the long table as Parquet")
    p.add_argument("--wide", type=Path, metavar="FILE",
                   help="wide table, one row per frame (.parquet for Parquet, else CSV)")
    p.add_argument("--compare", type=Path, metavar="OTHER",
                   help="second label source for the same frames: a dataset folder or a folder of "
                        "label maps <id>.png/.npy; writes the agreement table")
    p.add_argument("--agreement-out", type=Path, metavar="FILE.csv",
                   help="agreement table (default <out>_agreement.csv)")
    p.add_argument("--roughness-cutoff-mm", type=float, default=None, metavar="MM",
                   help="long-wavelength roughness cutoff (default 2.5 mm)")
    p.add_argument("--low-echo-threshold", type=float, default=None, metavar="GREY",
                   help="low-echogenic grey level on 0-255 (default 30)")
    p.add_argument("--reference-layer", default=None, metavar="LAYER",
                   help="strain-ratio reference layer (default fat)")
    p.add_argument("--reference-ranges", type=Path, default=None, metavar="FILE.json",
                   help="reference ranges file (default: the packaged published ranges)")
    p.add_argument("--composite-weights", type=Path, default=None, metavar="FILE.json",
                   help='explicit composite index weighting {"<layer>:<marker>": weight, ...} '
                        "over reference z-scores (no composite without it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..scoring import ScoreOptions, load_reference_ranges, score_dataset

    kw = {}
    if args.roughness_cutoff_mm is not None:
        kw["roughness_cutoff_mm"] = args.roughness_cutoff_mm
    if args.low_echo_threshold is not None:
        kw["low_echo_threshold"] = args.low_echo_threshold
    if args.reference_layer is not None:
        kw["reference_layer"] = args.reference_layer
    if args.reference_ranges is not None:
        kw["reference_ranges"] = load_reference_ranges(args.reference_ranges)
    if args.composite_weights is not None:
        import json

        from ..errors import ConfigError
        try:
            w = json.loads(args.composite_weights.read_text())
            if not (isinstance(w, dict) and w and all(
                    isinstance(k, str) and ":" in k and isinstance(v, (int, float))
                    for k, v in w.items())):
                raise ValueError('expected {"<layer>:<marker>": number, ...}')
        except (OSError, ValueError) as e:
            raise ConfigError(f"bad composite weights ({e})", args.composite_weights) from e
        kw["composite_weights"] = w
    if args.agreement_out is not None and args.compare is None:
        print("layerseg score: --agreement-out needs --compare", file=sys.stderr)
        return 2
    from . import exit_status
    res = score_dataset(args.data, args.out, parquet=args.parquet, wide=args.wide,
                        compare=args.compare, agreement_out=args.agreement_out,
                        options=ScoreOptions(**kw), log=lambda msg: print(msg, file=sys.stderr))
    return exit_status(res["failed"] + res["compare_failed"])
