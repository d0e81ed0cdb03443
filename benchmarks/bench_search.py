"""Speed of the ordered search on 8-class score maps, against a plain NumPy/Python implementation
of the same recurrence, a column-vectorised NumPy version, and one read of the score map.

    python benchmarks/bench_search.py [--shapes 512x512 2048x1024] [--plain-cols 64] [--json F]

The plain implementation is timed on --plain-cols columns and scaled to the full width (its cost
is exactly linear in columns); pass --plain-cols 0 to time it on every column.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import numba

from layerseg.bench.search import format_search_benchmark, run_search_benchmark


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=["512x512", "2048x1024"])
    ap.add_argument("--plain-cols", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in a.shapes]
    res = run_search_benchmark(shapes, seed=a.seed, repeat=a.repeat,
                               plain_cols=a.plain_cols or None)
    print(f"numba threads: {numba.get_num_threads()}, CPUs: {os.cpu_count()}, "
          f"{platform.processor() or platform.machine()}")
    print(format_search_benchmark(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
