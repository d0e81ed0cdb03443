"""``layerseg compare BASELINE FOLLOWUP --out DIR``: what changed, layer by layer, between two
visits, and whether it exceeds the smallest detectable change (SDC) of the measurement."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="follow-up visits: change per layer and marker against the SDC",
        description="Compare two visits, each a `layerseg infer` output folder or a `layerseg "
                    "score` long table: exams are matched by pseudonymous subject key, region and "
                    "side; per layer and marker the change, the change in SDC units and a verdict "
                    "(increase / decrease / within measurement noise). Writes DIR/changes.csv, "
                    "changes.parquet, unmatched.csv (subjects in one visit only) and compare.html "
                    "(overlays side by side where the infer folders have them). Exit status 1 when "
                    "a subject is unmatched.")
    p.add_argument("baseline", type=Path, metavar="BASELINE", help="baseline visit")
    p.add_argument("followup", type=Path, metavar="FOLLOWUP", help="follow-up visit")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--sdc", type=Path, default=None, metavar="FILE.csv",
                   help="SDC table from `layerseg repeatability` (default: the packaged table "
                        "of the segmenter both visits were measured with, classical or "
                        "default)")
    p.add_argument("--markers", nargs="+", default=None, metavar="MARKER",
                   help="markers to compare (default: those of the SDC table)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..scoring.visits import compare_folders
    from . import exit_status
    cmp = compare_folders(args.baseline, args.followup, args.out, sdc=args.sdc,
                          markers=args.markers)
    v = cmp.changes["verdict"].value_counts().to_dict()
    print(f"{len(cmp.changes)} comparisons: " + ", ".join(f"{k} {n}" for k, n in sorted(v.items()))
          + f"; {len(cmp.unmatched)} unmatched; wrote {args.out}", file=sys.stderr)
    return exit_status(len(cmp.unmatched))
