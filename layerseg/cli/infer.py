"""``layerseg infer INPUT... --out DIR``: batch inference over files and folders of exams."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "infer", help="segment and score a folder of exams: label maps, overlays, scores, report",
        description="Read every frame of every input file (folders are walked recursively; "
                    "hidden files and .json sidecars are skipped), segment it, score it, and "
                    "write per exam (DIR/exams/<exam key>/): label maps (NIfTI volume and PNG), "
                    "overlays, the scores (CSV/Parquet) and an HTML report; for the run: "
                    "DIR/scores.csv and .parquet, DIR/summary.json and DIR/run.log. Exams are "
                    "named by a salted pseudonymous key: no name, ID or file name reaches an "
                    "output unless --keep-ids. A failing file is recorded and skipped; the exit "
                    "status is 1 when anything failed, 2 when the run is refused before any "
                    "work. Research software, not a medical device.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="exam files (DICOM, PNG/TIFF + spacing, NIfTI, RF) or folders")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--model", default="default", metavar="default|classical|PATH",
                   help="segmentation model, passed to layerseg.segment: default (the shipped "
                        "network, the default), classical (training-free) or a checkpoint")
    p.add_argument("--region", default=None, metavar="R",
                   help="facial region of every frame (layer order and reference ranges); an "
                        "unknown name takes the default layer order with a QC note")
    p.add_argument("--spacing", nargs=2, type=float, metavar=("AXIAL", "LATERAL"),
                   help="pixel spacing in mm for files that carry none (overrides any "
                        "calibration; recorded as 'user')")
    p.add_argument("--resume", action="store_true",
                   help="continue an earlier run in DIR: skip exams already complete "
                        "(done.json) whose input is unchanged (without it, a DIR that holds an "
                        "earlier run is refused, never overwritten)")
    p.add_argument("--keep-ids", action="store_true",
                   help="name exams by file stem and keep file paths in the outputs "
                        "(identifying: only for data you may share)")
    p.add_argument("--write-key-map", action="store_true",
                   help="write DIR/key_map.csv: exam key -> input file (keep it private)")
    p.add_argument("--workers", default="1", metavar="N|auto",
                   help="1 (default): read, segment and score one frame after the other; N > 1: "
                        "N-1 background threads read and decode the next files and frames while "
                        "the current one is segmented and scored (at most N frames ahead); "
                        "auto: min(2, CPU cores). The outputs are the same for every N")
    p.add_argument("--batch-size", type=int, default=8, metavar="N",
                   help="trained models: up to N frames of one exam per network call (default "
                        "8; the outputs are the same for every N; the classical segmenter has "
                        "no network and ignores it)")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda",
                   help="where a trained network runs: cpu (exported graph), cuda or cuda:N "
                        "(mixed precision), auto (default: cuda when torch sees one, else cpu)")
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="run under Lightning's predict loop on N devices of this machine (N "
                        "processes: GPUs with --device cuda, else CPU processes), the exams "
                        "shared out between them, each written by one; the outputs are the "
                        "same as one process's (the run log says which process did which exam)")
    p.add_argument("--num-nodes", type=int, default=1, metavar="M",
                   help="machines in a distributed run (default 1): start the same command on "
                        "each under torchrun or SLURM, the output folder on a shared file system")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def parse_workers(value: str | int) -> int:
    """``--workers``: a whole number 1 or more, or ``auto`` (min(2, CPU cores)).

    Raises
    ------
    ConfigError
        Anything else (0, negative, not a number): refused before any work (exit status 2).
    """
    import os

    from ..errors import ConfigError
    if str(value).strip().lower() == "auto":
        return max(1, min(2, os.cpu_count() or 1))
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"--workers {value!r}: give a whole number, 1 or more, or 'auto'") \
            from None
    if n < 1:
        raise ConfigError(f"--workers {n}: give 1 or more (1 reads, segments and scores one "
                          "frame after the other), or 'auto'")
    return n


def run(args: argparse.Namespace) -> int:
    from ..infer import run_infer
    from . import exit_status

    workers = parse_workers(args.workers)
    res = run_infer(args.inputs, args.out, model=args.model, region=args.region,
                    spacing=tuple(args.spacing) if args.spacing else None, resume=args.resume,
                    keep_ids=args.keep_ids, write_key_map=args.write_key_map,
                    progress=not args.no_progress, workers=workers,
                    batch_size=args.batch_size, device=args.device, devices=args.devices,
                    num_nodes=args.num_nodes)
    if res["run"].get("global_rank", 0) != 0:
        return 0   # rank 0 gives the run's status; a failed exam is not a crashed process
    return exit_status(res["failed"])
