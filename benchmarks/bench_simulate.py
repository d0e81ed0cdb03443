"""Simulator benchmark: layerseg's convolution simulator vs PyMUST's SIMUS on the same layered
phantom (speed, speckle sizes, layer contrasts), and the speed of full 512 x 512 frames.

    python benchmarks/bench_simulate.py                  # 8 scatterers/cell, 5 timed frames
    python benchmarks/bench_simulate.py --quick          # 2 scatterers/cell, 2 frames
    python benchmarks/bench_simulate.py --no-pymust      # this simulator only
    python benchmarks/bench_simulate.py --json out.json

Takes a few minutes (SIMUS); the code lives in layerseg.bench.simulate.
"""

from __future__ import annotations

import argparse
import json
import sys

from layerseg.bench.simulate import format_report, run_simulate_benchmark


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer scatterers and frames")
    p.add_argument("--per-cell", type=float, default=None, help="scatterers per resolution cell")
    p.add_argument("--frames", type=int, default=None, help="512x512 frames to time")
    p.add_argument("--no-pymust", action="store_true", help="skip the SIMUS comparison")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    per_cell = args.per_cell or (2.0 if args.quick else 8.0)
    frames = args.frames if args.frames is not None else (2 if args.quick else 5)
    res = run_simulate_benchmark(per_cell=per_cell, seed=args.seed, frames=frames,
                                 with_pymust=not args.no_pymust)
    print(format_report(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2, default=float)
    return 0 if res.get("agree", {"ok": True}) and all(res.get("agree", {}).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
