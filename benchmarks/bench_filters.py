"""Speckle-filter speed benchmark: Numba kernels vs NumPy/SciPy/scikit-image and findpeaks.

    python benchmarks/bench_filters.py            # 512x512, 1024x1024 (4x pixels), 2048x1024
    python benchmarks/bench_filters.py --quick    # 128x128 and 256x256, one run each
    python benchmarks/bench_filters.py --json out.json --only median lee

The code lives in layerseg.bench.filters; this script only parses arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from layerseg.bench.filters import DEFAULT_SIZES, QUICK_SIZES, run_filter_benchmarks


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small frames, one repeat")
    p.add_argument("--repeats", type=int, default=None, help="best of N runs (default 3)")
    p.add_argument("--only", nargs="*", default=None, help="filter name prefixes to run")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    repeats = args.repeats or (1 if args.quick else 3)
    res = run_filter_benchmarks(sizes=sizes, repeats=repeats, only=args.only)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
