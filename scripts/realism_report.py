#!/usr/bin/env python
"""Realism report of a labelled dataset folder: now ``layerseg bench realism``
(`layerseg.bench.realism`); this script passes its arguments on (DIR first, as before). The
options are the command's: ``--json`` is required and the per-frame CSV is always written
beside it (the old ``--csv`` is gone).

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
