"""``layerseg info PATH...``: read files or dataset folders and print each frame's calibration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import LayersegError


def register(sub) -> None:
    p = sub.add_parser("info", help="read frames and print their size, spacing and elastography",
                       description="Read each file (DICOM, PNG/TIFF/JPEG + spacing, NIfTI/NRRD, "
                                   "RF .npy/.mat) or dataset folder and print what layerseg sees: "
                                   "frames, size, spacing and its provenance, elastography.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--spacing", nargs=2, type=float, metavar=("AXIAL_MM", "LATERAL_MM"),
                   help="explicit pixel spacing for files that carry none (recorded as 'user')")
    p.add_argument("--colour-bar", type=Path, metavar="LUT",
                   help="colour bar LUT file (CSV value,r,g,b or JSON) decoding the elastography "
                        "overlay of DICOM files; without it the file's own bar is used where it "
                        "states one")
    p.add_argument("--elasto-kind", choices=("swe_kpa", "strain"),
                   help="what the --colour-bar values are (default: what the file states, else "
                        "swe_kpa)")
    p.add_argument("--colour", choices=("refuse", "luminance"), default=None,
                   help="a B-mode that holds colour and cannot be decoded: refuse it (default) or "
                        "convert it to luminance (DICOM and PNG/TIFF/JPEG)")
    p.set_defaults(func=run)


def _describe(frame) -> str:
    r, c = frame.shape
    if frame.spacing_mm is not None:
        ay, ax = frame.spacing_mm
        sp = (f"spacing {ay:.4g} x {ax:.4g} mm ({frame.meta.calibration}), "
              f"{r * ay:.2f} mm deep x {c * ax:.2f} mm wide")
    else:
        sp = "no spacing"
    el = ""
    extra = frame.meta.extra or {}
    if frame.elasto is not None:
        n = int(frame.elasto_valid.sum())
        src = extra.get("colour_bar_source")
        el = (f", elastography {frame.elasto_kind} ({n} valid px"
              f"{f', colour bar from {src}' if src else ''})")
    elif extra.get("elasto_ignored"):
        el = f", elastography not decoded ({extra['elasto_ignored']})"
    f = f", {frame.meta.frequency_mhz:g} MHz" if frame.meta.frequency_mhz else ""
    return f"{r} x {c} px {frame.intensity}, {sp}{f}{el}"


def _options_for(path: Path, options: dict) -> dict:
    """The subset of `options` that the reader `read` picks for `path` takes (an option it does
    not take would be an error there)."""
    import importlib
    import inspect

    from ..io.read import FORMATS, sniff_format

    try:
        module, func, _ = FORMATS[sniff_format(path)]
        fn = getattr(importlib.import_module(f"layerseg.io.{module}"), func)
    except (LayersegError, ImportError):
        return {}  # read() reports the problem itself
    params = inspect.signature(fn).parameters
    return {k: v for k, v in options.items() if k in params}


def run(args: argparse.Namespace) -> int:
    from ..io import read, read_dataset
    from ..io.colour import load_lut

    options: dict = {}
    if args.colour is not None:
        options["colour"] = args.colour
    if args.elasto_kind is not None:
        options["elasto_kind"] = args.elasto_kind
    if args.colour_bar is not None:
        try:
            options["colour_bar"] = load_lut(args.colour_bar)
        except LayersegError as e:
            print(f"FAILED {e}", file=sys.stderr)
            return 2

    from ..batch import run_each
    from . import exit_status

    datasets: list[Path] = []
    files: list[Path] = []
    for p in args.paths:
        if p.is_dir() and (p / "manifest.csv").is_file():
            datasets.append(p)
        elif p.is_dir():
            files += sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith(".")
                            and not q.name.endswith(".json"))
        else:
            files.append(p)
    spacing = tuple(args.spacing) if args.spacing else None

    def show_dataset(p: Path) -> None:
        ds = read_dataset(p, validate=False)
        print(f"{p}: dataset of {len(ds)} frame(s)")
        for out in run_each(range(len(ds)), lambda i: _describe(ds[i].frame),
                            key=lambda i: ds.rows[i]["id"]):
            if out.ok:
                print(f"  {out.key}: {out.value}")
            else:
                print(f"FAILED {p} frame {out.key}: {out.error}", file=sys.stderr)
                bad.append(out.key)

    def show_file(path: Path) -> None:
        series = read(path, spacing=spacing, **_options_for(path, options))
        first = _describe(series[0])
        print(f"{path}: {len(series)} frame(s)")
        print(f"  frame 0: {first}")

    bad: list[str] = []
    for out in run_each([*datasets, *files], lambda p: (show_dataset if p in datasets
                                                        else show_file)(p)):
        if not out.ok:
            print(f"FAILED {out.error}", file=sys.stderr)
            bad.append(out.key)
    failed = len(bad)
    if failed:
        print(f"{failed} input(s) failed", file=sys.stderr)
    return exit_status(failed)
