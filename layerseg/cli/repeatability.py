"""``layerseg repeatability --out FILE.csv``: within-subject SD, repeatability coefficient and
smallest detectable change (SDC) of every marker per region and layer, from simulated repeat
scans (the default) or from the user's own test-retest score table (``--scores``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "repeatability", help="SDC table of the markers from repeat scans (simulated or yours)",
        description="Repeat scans of the same subjects and sites -> per region, layer and marker: "
                    "within-subject SD, repeatability coefficient and smallest detectable change "
                    "(SDC = 1.96 sqrt(2) within-subject SD), the table `layerseg compare` reads. "
                    "Without --scores, simulates --subjects subjects scanned twice per region (same "
                    "anatomy; probe shifted, tilted, gain, gel and pressure changed, new speckle), "
                    "segments them with --model and scores them. With --scores, reads your long "
                    "score table (`layerseg score`/`infer`): rows sharing subject_id, region, side "
                    "and layer are repeat scans. Exit status 1 when a simulated scan failed.")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.csv", help="the SDC table")
    p.add_argument("--scores", type=Path, metavar="TABLE",
                   help="your test-retest long score table (.csv or .parquet) instead of simulation")
    p.add_argument("--subjects", type=int, default=10, metavar="N",
                   help="simulated subjects per region (default 10)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="simulation seed (default 0)")
    p.add_argument("--regions", nargs="+", default=["cheek", "forehead", "temple"], metavar="R",
                   help="regions to simulate (default cheek forehead temple)")
    p.add_argument("--scans", type=int, default=2, metavar="K",
                   help="scans per subject and region (default 2)")
    p.add_argument("--model", default="classical", metavar="MODEL",
                   help="segmenter for the simulated scans (default classical)")
    p.add_argument("--markers", nargs="+", default=None, metavar="MARKER",
                   help="marker columns (default thickness_mean_mm echo_mean_grey roughness_ra_um)")
    p.add_argument("--scores-out", type=Path, metavar="FILE.csv",
                   help="also write the simulated scans' long score table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, DatasetError
    from ..io.safe_write import check_outputs, check_writable
    from ..scoring import followup as fu
    from ..scoring.table import write_table
    from . import exit_status

    markers = tuple(args.markers) if args.markers else fu.REPEAT_MARKERS
    inputs = [args.scores] if args.scores else []
    check_outputs([args.out, args.scores_out], inputs)
    for f in (args.out, args.scores_out):
        if f is not None:
            check_writable(f.parent)
    t0 = time.perf_counter()
    failures: list[str] = []
    if args.scores:
        if not args.scores.is_file():
            raise DatasetError("no such score table", args.scores)
        try:
            table = (__import__("pandas").read_parquet(args.scores)
                     if args.scores.suffix.lower() in (".parquet", ".pq")
                     else __import__("pandas").read_csv(args.scores))
        except (OSError, ValueError) as e:
            raise DatasetError(f"cannot read the score table ({e})", args.scores) from e
    else:
        if args.subjects < 2:
            raise ConfigError(f"--subjects must be at least 2, got {args.subjects}")
        table, failures = fu.repeat_scan_scores(
            args.subjects, seed=args.seed, regions=tuple(args.regions), n_scans=args.scans,
            model=args.model, log=lambda m: print(m, file=sys.stderr),
            progress=not args.no_progress)
        if table.empty:
            raise DatasetError("every simulated scan failed:\n  " + "\n  ".join(failures[:10]))
        if args.scores_out:
            write_table(table, args.scores_out)
    res = fu.repeatability(table, markers)
    write_table(res, args.out)
    print(f"wrote {args.out} ({len(res)} rows) in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    return exit_status(len(failures))
