"""``layerseg bench accuracy|speed``: the accuracy and speed benchmarks (code in `layerseg.bench`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("bench", help="accuracy and speed benchmarks",
                       description="Benchmarks run by CI and by hand: 'accuracy' scores a segmenter "
                                   "on a labelled dataset; 'speed' times the Numba kernels; "
                                   "'realism' measures a dataset's speckle and contrast; "
                                   "'gate' is CI's check.")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH")
    bsub.required = True

    a = bsub.add_parser(
        "accuracy", help="segment a labelled dataset and score the answers",
        description="Segment every frame of a labelled dataset folder (DESIGN.md layout) and "
                    "write per-layer Dice, 95 %% Hausdorff and average symmetric surface distance "
                    "(mm), thickness MAE (mm) and order violations as JSON, with a per-frame CSV "
                    "beside it. A frame that fails is recorded in the CSV with its reason and the "
                    "run goes on; the exit status is 1 when any frame failed.")
    a.add_argument("--data", required=True, type=Path, metavar="DIR", help="dataset folder")
    a.add_argument("--model", default="classical", metavar="MODEL",
                   help="segmenter: 'classical' (default) or a checkpoint path (.ckpt written by "
                        "'layerseg fit')")
    a.add_argument("--config", type=Path, default=None, metavar="FILE.json",
                   help="classical segmenter configuration overrides (JSON)")
    a.add_argument("--json", required=True, type=Path, metavar="FILE", help="summary JSON")
    a.add_argument("--csv", type=Path, default=None, metavar="FILE",
                   help="per-frame CSV (default: the JSON path with .csv)")
    a.add_argument("--progress", action="store_true", help="show a progress bar")
    a.set_defaults(func=run_accuracy)

    s = bsub.add_parser(
        "speed", help="time the Numba kernels against their baselines",
        description="Run the speed benchmarks of layerseg.bench (filters, ordered search, "
                    "simulator, OpenCV peers where installed, the batch pipeline, a trained "
                    "model exported and eager with --model, and its network on --device) and "
                    "write their figures as JSON, "
                    "with every comparison also as a flat 'ratios' key (..."
                    ".speedup: peer time / ours, ours faster = above 1) and a Markdown table of "
                    "them beside the JSON (FILE with .md).")
    s.add_argument("--quick", action="store_true",
                   help="small sizes and one repeat (a smoke run for CI)")
    s.add_argument("--json", required=True, type=Path, metavar="FILE",
                   help="figures as JSON (the ratio table goes to FILE with .md)")
    s.add_argument("--suite", action="append", choices=SPEED_SUITES, default=None,
                   metavar="NAME", help="run only this suite (repeatable): "
                                        + ", ".join(SPEED_SUITES))
    s.add_argument("--model", default="default", metavar="MODEL",
                   help="the trained model the 'model' suite times (exported graph and eager "
                        "network, alone and through layerseg.segment, beside the classical "
                        "segmenter): 'default' (skipped while no default model is shipped) or a "
                        "checkpoint path; threads from LAYERSEG_THREADS or the machine")
    s.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="the torch device of the 'device' suite: the model's network by "
                        "precision (fp32, bf16, fp16), batch size and torch.compile, with the "
                        "share of the device's measured matrix-multiply rate it reaches: "
                        "'cpu' (default), 'cuda' or 'cuda:N'")
    s.set_defaults(func=run_speed)

    r = bsub.add_parser(
        "realism", help="speckle size and layer contrast of a labelled dataset",
        description="Measure every labelled frame of a dataset folder (DESIGN.md layout; "
                    "simulated, another simulator's or real with manual labels): dermis and fat "
                    "speckle FWHM (um, from the log image's 2-D autocovariance inside the eroded "
                    "layer mask) and each layer's contrast in dermis SDs. Prints the percentiles "
                    "over frames as a Markdown table and writes them with the per-frame values "
                    "as JSON (and CSV beside it); --plot draws the frames against reference "
                    "points. A frame that cannot be measured is listed with why; the exit status "
                    "is 1 then.")
    r.add_argument("--data", required=True, type=Path, metavar="DIR", help="dataset folder")
    r.add_argument("--json", required=True, type=Path, metavar="FILE",
                   help="summary and per-frame values (per-frame CSV beside it, FILE with .csv)")
    r.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="scatter plots: dermis speckle axial vs lateral, fat vs muscle contrast")
    r.add_argument("--ref", action="append", default=[], metavar="NAME:AX,LAT,FAT[,MUSCLE]",
                   help="a reference point for the plot (repeatable), e.g. "
                        "real_lowfreq:116,206,-2.2")
    r.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="measure at most N frames")
    r.set_defaults(func=run_realism)

    g = bsub.add_parser(
        "gate", help="the CI gate: accuracy floors and speed ratios",
        description="Score the classical segmenter on a small fixed simulated set (made in a "
                    "temporary folder) against per-layer Dice floors, and time each Numba kernel "
                    "against its own NumPy/plain reference (a failing ratio is measured again, "
                    "up to the stated number of attempts). Thresholds: "
                    "layerseg/data/bench_gate.json. Prints a table and 'gate: N passed, M "
                    "failed'; the exit status is 1 when any check failed.")
    g.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the checks as JSON")
    g.add_argument("--thresholds", type=Path, default=None, metavar="FILE.json",
                   help="gate file (default: layerseg/data/bench_gate.json)")
    g.add_argument("--only", choices=("accuracy", "speed"), default=None,
                   help="run one kind of check only")
    g.set_defaults(func=run_gate)


def run_accuracy(args: argparse.Namespace) -> int:
    from . import exit_status
    from ..bench.accuracy import evaluate_dataset, write_accuracy
    from ..io.safe_write import check_outputs, dataset_input_files

    csv_path = args.csv if args.csv is not None else args.json.with_suffix(".csv")
    inputs = dataset_input_files(args.data) + ([args.config] if args.config else [])
    check_outputs([args.json, csv_path], inputs)   # before any work
    summary, rows = evaluate_dataset(args.data, model=args.model,
                                     config=None if args.config is None else str(args.config),
                                     progress=args.progress)
    jp, cp = write_accuracy(summary, rows, args.json, csv_path)
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        print(f"layerseg bench accuracy: frame {r['id']} failed: {r['error']}", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    print(f"wrote {jp} and {cp} ({summary['frames']} frame(s) scored, {len(failed)} failed)",
          file=sys.stderr)
    return exit_status(len(failed))


def run_realism(args: argparse.Namespace) -> int:
    from . import exit_status
    from ..bench.realism import (format_realism, frames_csv, parse_reference, realism_plot,
                                 run_realism)
    from ..errors import ConfigError
    from ..io.safe_write import check_outputs, dataset_input_files, write_text_atomic
    try:
        refs = [parse_reference(t) for t in args.ref]
    except ValueError as e:
        raise ConfigError(f"--ref: {e}") from None
    csv_path = args.json.with_suffix(".csv")
    check_outputs([args.json, csv_path, args.plot], dataset_input_files(args.data))
    res = run_realism(args.data, max_frames=args.max_frames)
    if not res["frames"] and not res["failures"]:
        raise ConfigError("no labelled frame to measure (the manifest has no label maps)",
                          args.data)
    write_text_atomic(args.json, json.dumps(res, indent=1, default=_jsonable) + "\n")
    write_text_atomic(csv_path, frames_csv(res))
    if args.plot is not None:
        realism_plot(res, args.plot, refs)
    print(format_realism(res))
    for f in res["failures"]:
        print(f"layerseg bench realism: frame {f['id']} failed: {f['error']}", file=sys.stderr)
    print(f"wrote {args.json} and {csv_path}" + (f" and {args.plot}" if args.plot else ""),
          file=sys.stderr)
    return exit_status(len(res["failures"]))


def run_gate(args: argparse.Namespace) -> int:
    from ..bench.gate import format_gate, load_gate
    from ..bench.gate import run_gate as _run
    from ..io.safe_write import check_outputs, write_text_atomic
    if args.json is not None:
        check_outputs([args.json])   # before any work
    gate = load_gate(args.thresholds)
    which = ("accuracy", "speed") if args.only is None else (args.only,)
    t0 = time.perf_counter()
    res = _run(gate, which=which, log=lambda m: print(m, file=sys.stderr, flush=True))
    res["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(res, indent=2, default=_jsonable) + "\n")
    print(format_gate(res))
    print(f"layerseg bench gate: {res['seconds']}", file=sys.stderr)
    return 1 if res["failed"] else 0


SPEED_SUITES = ("search", "filters", "simulate", "opencv", "pipeline", "model", "device",
                "growth")
"""The suites of ``layerseg bench speed``, in the order they run."""

_SPEED_TABLES = {"model": "layerseg.bench.model:format_model_benchmark",
                 "device": "layerseg.bench.device:format_device_benchmark",
                 "growth": "layerseg.bench.growth:format_growth_benchmark"}
"""Suites whose figures are also printed as a table ('module:function' of the result)."""


def _speed_suites(quick: bool, model: str = "default", device: str = "cpu"
                  ) -> list[tuple[str, str, dict]]:
    """(name, 'module:function', kwargs) of every speed benchmark to run."""
    if quick:
        return [("search", "layerseg.bench.search:run_search_benchmark",
                 {"shapes": ((128, 128),), "repeat": 1, "plain_cols": 8}),
                ("filters", "layerseg.bench.filters:run_filter_benchmarks",
                 {"sizes": ((128, 128),), "repeats": 1, "verbose": False}),
                ("simulate", "layerseg.bench.simulate:run_simulate_benchmark",
                 {"per_cell": 2.0, "frames": 1, "with_pymust": False}),
                ("opencv", "layerseg.bench.opencv:run_opencv_benchmark",
                 {"sizes": ((128, 128),), "repeats": 1}),
                ("pipeline", "layerseg.bench.pipeline:run_pipeline_benchmark",
                 {"n_exams": 1, "frames_per_exam": 2, "shape": (128, 128), "repeat": 1}),
                ("model", "layerseg.bench.model:run_model_benchmark",
                 {"model": model, "shape": (128, 128), "repeat": 1}),
                ("device", "layerseg.bench.device:run_device_benchmark",
                 {"model": model, "device": device, "shape": (128, 128), "batches": (1, 2),
                  "precisions": ("fp32", "bf16"), "min_run_time": 0.05}),
                ("growth", "layerseg.bench.growth:run_growth_benchmark",
                 {"sizes": ((64, 64), (128, 128)), "model": model, "repeat": 1,
                  "filters": False})]
    return [("search", "layerseg.bench.search:run_search_benchmark", {}),
            ("filters", "layerseg.bench.filters:run_filter_benchmarks", {"verbose": False}),
            ("simulate", "layerseg.bench.simulate:run_simulate_benchmark", {}),
            ("opencv", "layerseg.bench.opencv:run_opencv_benchmark",
             {"sizes": ((512, 512), (2048, 1024))}),
            ("pipeline", "layerseg.bench.pipeline:run_pipeline_benchmark", {}),
            ("model", "layerseg.bench.model:run_model_benchmark",
             {"model": model, "shape": (512, 512)}),
            ("device", "layerseg.bench.device:run_device_benchmark",
             {"model": model, "device": device, "shape": (512, 512)}),
            ("growth", "layerseg.bench.growth:run_growth_benchmark", {"model": model})]


def run_speed(args: argparse.Namespace) -> int:
    import importlib

    from ..bench.ratios import flat_ratios, ratios_markdown
    from ..errors import MissingDependencyError
    from ..io.safe_write import check_outputs, write_text_atomic
    md_path = args.json.with_suffix(".md")
    check_outputs([args.json, md_path])   # before any work
    out: dict = {"quick": bool(args.quick), "suites": {}}
    status = 0
    only = getattr(args, "suite", None)
    for name, target, kw in _speed_suites(args.quick, getattr(args, "model", "default"),
                                          getattr(args, "device", "cpu")):
        if only and name not in only:
            continue
        mod_name, fn_name = target.split(":")
        try:
            fn = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError, MissingDependencyError):
            out["suites"][name] = {"status": "not available", "target": target}
            print(f"layerseg bench speed: {name}: {target} is not available; skipped",
                  file=sys.stderr)
            continue
        t0 = time.perf_counter()
        try:
            res = fn(**kw)
        except MissingDependencyError as e:
            out["suites"][name] = {"status": "not available", "target": target, "error": str(e)}
            print(f"layerseg bench speed: {name}: {e}; skipped", file=sys.stderr)
            continue
        except Exception as e:  # noqa: BLE001 - one failing suite must not hide the others
            out["suites"][name] = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
            print(f"layerseg bench speed: {name} failed: {e}", file=sys.stderr)
            status = 1
            continue
        out["suites"][name] = {"status": "ok", "seconds": round(time.perf_counter() - t0, 3),
                               "results": res}
        if name in _SPEED_TABLES:
            mod_name, fn_name = _SPEED_TABLES[name].split(":")
            print(getattr(importlib.import_module(mod_name), fn_name)(res) + "\n", flush=True)
        print(f"layerseg bench speed: {name} done in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
    out["ratios"] = flat_ratios(out)
    write_text_atomic(args.json, json.dumps(out, indent=2, default=_jsonable) + "\n")
    write_text_atomic(md_path, ratios_markdown(
        out["ratios"], "layerseg bench speed" + (" --quick" if args.quick else "")))
    print(f"wrote {args.json} and {md_path}", file=sys.stderr)
    return status


def _jsonable(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)
