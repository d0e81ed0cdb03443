"""The CI gate: ``layerseg bench gate`` (run by ``.ci/run`` after the test suite).

Two kinds of check, both against the stated thresholds of ``layerseg/data/bench_gate.json``:

* accuracy: the classical segmenter on a small fixed simulated set (frames, seed, shape from the
  file, simulated on the fly into a temporary folder, nothing committed), scored with
  `layerseg.bench.accuracy.evaluate_dataset`; a layer fails when its mean Dice is below its floor
  (the floor is the value measured on that set when the file was written minus a stated noise
  margin), when it is missing from the answers, or when any frame fails;
* speed: each Numba kernel against its own NumPy/SciPy/plain reference, on one small frame,
  timed with `timeit` (best of `repeat`, after a warm-up run that compiles the kernel); a case
  fails when ``reference time / our time`` is below ``min_speedup`` in each of ``attempts``
  measurements (a failing case is measured again, so one noisy moment on a loaded machine does
  not fail CI, while a kernel 10x too slow fails every time). The kernels run on
  ``numba_threads`` threads (1 in the gate file): the references are single-threaded, and on a
  loaded 2-core CI machine a parallel kernel on a small frame waits on its thread barrier
  (measured: 2 threads at load 5 made Lee 0.03x its reference, 1 thread 3x), which would gate on
  the machine's load rather than on the kernel.

`run_gate` returns every check as a row (``kind``, ``name``, ``value``, ``threshold``,
``passed``, ``detail``); `format_gate` prints them as a table.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ._timing import best_time

__all__ = ["load_gate", "make_gate_dataset", "accuracy_checks", "speed_cases", "speed_checks",
           "run_gate", "format_gate", "best_time"]


def load_gate(path: str | Path | None = None) -> dict[str, Any]:
    """The gate's thresholds: ``layerseg/data/bench_gate.json``, or the JSON file `path`."""
    if path is None:
        text = resources.files("layerseg.data").joinpath("bench_gate.json").read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return json.loads(text)


# ----------------------------------------------------------------------------- accuracy
def make_gate_dataset(out: str | Path, frames: int, seed: int, shape=(512, 512),
                      region: str | None = None) -> Path:
    """Simulate the gate's fixed labelled set into `out` (float32 .npy images, no elastography)."""
    from ..simulate.dataset import simulate_dataset
    return simulate_dataset(out, int(frames), seed=int(seed), region=region, progress=False,
                            image_format="npy", with_elasto=False, shape=tuple(shape))


def accuracy_checks(spec: dict[str, Any], predict: Callable | None = None,
                    data: str | Path | None = None) -> tuple[list[dict], dict]:
    """Score the classical segmenter (or `predict`) on the gate set; one check per floor.

    Parameters
    ----------
    spec : dict
        The ``accuracy`` block of the gate file: ``frames``, ``seed``, ``shape``, ``region``,
        ``floors`` (layer -> minimum mean Dice).
    predict : callable, optional
        ``predict(frame) -> labels`` instead of the classical segmenter (tests).
    data : path, optional
        An existing dataset folder instead of simulating one.

    Returns
    -------
    (checks, summary)
    """
    from .accuracy import evaluate_dataset

    with tempfile.TemporaryDirectory(prefix="layerseg-gate-") as tmp:
        if data is None:
            data = make_gate_dataset(Path(tmp) / "set", spec["frames"], spec["seed"],
                                     spec.get("shape", (512, 512)), spec.get("region"))
        summary, rows = evaluate_dataset(data, model=spec.get("model", "classical"),
                                         predict=predict)
    checks = []
    model = spec.get("model", "classical")
    tag = "" if model == "classical" else f"{model}: "
    failed = [r for r in rows if r["status"] != "ok"]
    checks.append({"kind": "accuracy", "name": f"{tag}frames segmented",
                   "value": len(rows) - len(failed),
                   "threshold": len(rows), "passed": not failed,
                   "detail": "; ".join(f"{r['id']}: {r['error']}" for r in failed)[:200]})
    for layer, floor in spec["floors"].items():
        d = summary["layers"].get(layer, {}).get("dice")
        ok = d is not None and math.isfinite(d) and d >= floor
        checks.append({"kind": "accuracy", "name": f"{tag}{layer} Dice", "value": d,
                       "threshold": floor, "passed": bool(ok),
                       "detail": "" if d is not None else "layer missing from the answers"})
    return checks, summary


# ----------------------------------------------------------------------------- speed
def speed_cases() -> dict[str, tuple[Callable, Callable]]:
    """Gate speed cases: flat key -> (ours(frame), reference(frame)).

    The kernels are looked up when this is called (``layerseg.filters.<name>``,
    ``layerseg.bench.search.ordered_search``), so a replaced kernel is what gets timed.
    """
    from scipy import ndimage as ndi

    from .. import filters as F
    from . import filters as bf
    from . import search as bs

    w, cu = bf.WINDOW, bf.CU
    prof = None

    def scores(a):   # an 8-class score map with the frame's shape, made once per frame
        key = (a.shape, a.ctypes.data)
        if _score_cache.get("key") != key:
            rng = np.random.default_rng(0)
            _score_cache.update(key=key, sc=rng.normal(size=(8,) + a.shape))
        return _score_cache["sc"]

    return {
        f"filters.median_{w}x{w}.vs_scipy.speedup":
            (lambda a: F.median_filter(a, w), lambda a: ndi.median_filter(a, size=w)),
        f"filters.lee_{w}x{w}.vs_numpy_reference.speedup":
            (lambda a: F.filter_lee(a, w, cu=cu), lambda a: bf.numpy_lee(a)),
        f"filters.kuan_{w}x{w}.vs_numpy_reference.speedup":
            (lambda a: F.filter_kuan(a, w, cu=cu), lambda a: bf.numpy_lee(a, kuan=True)),
        f"filters.frost_{w}x{w}.vs_numpy_reference.speedup":
            (lambda a: F.filter_frost(a, w, bf.DAMPING), lambda a: bf.numpy_frost(a)),
        f"filters.srad_{bf.SRAD_ITER}_it.vs_numpy_reference.speedup":
            (lambda a: F.despeckle_srad(a, bf.SRAD_ITER, bf.SRAD_DT, q0=cu),
             lambda a: bf.numpy_srad(a)),
        "search.vs_plain.speedup":
            (lambda a: bs.ordered_search(scores(a), prof),
             lambda a: bs.ordered_search_plain(scores(a), prof)),
    }


_score_cache: dict[str, Any] = {}


def speed_checks(spec: dict[str, Any], cases: dict | None = None,
                 log: Callable[[str], None] | None = None) -> list[dict]:
    """Time each case against its reference; one check per case.

    Parameters
    ----------
    spec : dict
        The ``speed`` block of the gate file: ``shape``, ``repeat``, ``min_speedup``,
        ``attempts``, ``seed``, optional ``numba_threads`` and ``only`` (list of keys).
    cases : dict, optional
        key -> (ours, reference); default `speed_cases`.
    """
    from .filters import _frame

    cases = speed_cases() if cases is None else cases
    only = spec.get("only")
    if only:
        cases = {k: v for k, v in cases.items() if k in only}
    img = _frame(np.random.default_rng(spec.get("seed", 0)), tuple(spec["shape"]))
    warm = img[:32, :32].copy()
    thr = float(spec["min_speedup"])
    attempts = max(1, int(spec.get("attempts", 3)))
    rep = int(spec.get("repeat", 5))
    import numba
    threads = numba.get_num_threads()
    if spec.get("numba_threads"):
        numba.set_num_threads(min(int(spec["numba_threads"]), numba.config.NUMBA_NUM_THREADS))
    try:
        return _time_cases(cases, img, warm, thr, attempts, rep, log)
    finally:
        numba.set_num_threads(threads)


def _time_cases(cases, img, warm, thr, attempts, rep, log):
    checks = []
    for key, (ours, ref) in cases.items():
        ours(warm)                                   # compile outside the timing
        ref(warm)
        ratios = []
        for _ in range(attempts):
            t_ours = best_time(lambda: ours(img), rep)
            t_ref = best_time(lambda: ref(img), rep)
            ratios.append(t_ref / t_ours)
            if ratios[-1] >= thr:
                break
        best = max(ratios)
        if log is not None:
            log(f"  {key}: {', '.join(f'{r:.2f}' for r in ratios)}")
        checks.append({"kind": "speed", "name": key, "value": best, "threshold": thr,
                       "passed": best >= thr,
                       "detail": f"{len(ratios)} attempt(s): "
                                 + ", ".join(f"{r:.2f}x" for r in ratios)})
    return checks


# ----------------------------------------------------------------------------- both
def run_gate(gate: dict[str, Any] | None = None, which=("accuracy", "speed"),
             predict: Callable | None = None, log: Callable[[str], None] | None = None
             ) -> dict[str, Any]:
    """Run the gate's checks; returns ``{"passed", "failed", "checks", "seconds",
    "accuracy_summary"}``."""
    gate = load_gate() if gate is None else gate
    checks: list[dict] = []
    out: dict[str, Any] = {"seconds": {}}
    if "accuracy" in which:
        # "accuracy" (the classical segmenter) and any "accuracy_<model>" block (a shipped
        # trained model, e.g. accuracy_default), each on its own fixed set
        for key in [k for k in gate if k == "accuracy" or k.startswith("accuracy_")]:
            t0 = time.perf_counter()
            c, summary = accuracy_checks(gate[key], predict=predict if key == "accuracy"
                                         else None)
            checks += c
            out[f"{key}_summary"] = summary
            out["seconds"][key] = round(time.perf_counter() - t0, 2)
    if "speed" in which:
        t0 = time.perf_counter()
        checks += speed_checks(gate["speed"], log=log)
        out["seconds"]["speed"] = round(time.perf_counter() - t0, 2)
    out["checks"] = checks
    out["passed"] = sum(c["passed"] for c in checks)
    out["failed"] = sum(not c["passed"] for c in checks)
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def format_gate(res: dict[str, Any]) -> str:
    """The checks as a Markdown table, then ``gate: N passed, M failed``."""
    lines = ["| kind | check | measured | threshold | result | detail |",
             "|---|---|---|---|---|---|"]
    for c in res["checks"]:
        lines.append(f"| {c['kind']} | {c['name']} | {_fmt(c['value'])} | "
                     f">= {_fmt(c['threshold'])} | {'pass' if c['passed'] else 'FAIL'} | "
                     f"{c['detail']} |")
    failed = [c["name"] for c in res["checks"] if not c["passed"]]
    if failed:
        lines.append("")
        lines.append("failed: " + ", ".join(failed))
    lines.append(f"gate: {res['passed']} passed, {res['failed']} failed")
    return "\n".join(lines)
