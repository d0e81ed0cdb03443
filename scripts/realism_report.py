#!/usr/bin/env python
"""Realism report of a labelled dataset folder: kept for old command lines; it is
``layerseg bench realism`` (`layerseg.bench.realism`).

Usage::

    python scripts/realism_report.py DIR --json OUT.json [--plot OUT.png] [--max-frames N]
        [--ref NAME:AXIAL_UM,LATERAL_UM,FAT_SD[,MUSCLE_SD]] ...
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from layerseg.cli import main
    argv = sys.argv[1:]
    if argv and not argv[0].startswith("-"):
        argv = ["--data", *argv]
    sys.exit(main(["bench", "realism", *argv]))
