"""Speed benchmark of the speckle filters against the fastest honest NumPy/SciPy/scikit-image
version of the same computation, and against findpeaks where it has the filter.

`run_filter_benchmarks` times every filter at each frame size (best of `repeats`, after a
warm-up that compiles the Numba kernels), returns a dict, and prints one side-by-side table.
findpeaks (pure-Python loops) is timed on a small frame only and scaled by the pixel count; the
table marks those figures as extrapolated. findpeaks is optional (``pip install 'layerseg[bench]'``):
without it the table says so and leaves its column empty. Timings are wall-clock on whatever machine runs it: on
a shared, loaded machine they move by tens of percent between runs; the load average before and
after is recorded.

The baselines are vectorised and use the same window, boundary and formula as the Numba kernel:

* median: ``scipy.ndimage.median_filter`` (bit-identical result);
* Lee / Kuan: window mean and variance from ``scipy.ndimage.uniform_filter`` (mode 'reflect'),
  the weight formula in NumPy;
* Frost: the same statistics, then one shifted-array multiply-add per window offset;
* SRAD: a NumPy SRAD with whole-array slicing and edge padding, same scheme and q0 schedule;
* NLM: ``skimage.restoration.denoise_nl_means(fast_mode=True)`` at equal patch, search and h
  (our 'l2' mode computes the same weights; the Pearson mode is timed against it as well).
"""

from __future__ import annotations

import math
import os
import platform
import time

import numpy as np
from scipy import ndimage as ndi

from ..errors import MissingDependencyError, require_optional
from ._timing import best_time

__all__ = ["run_filter_benchmarks", "format_table", "numpy_lee", "numpy_frost", "numpy_srad",
           "DEFAULT_SIZES", "QUICK_SIZES"]

DEFAULT_SIZES = ((512, 512), (1024, 1024), (2048, 1024))
"""Frame sizes (rows, cols): 512 x 512, four times its pixels (1024 x 1024), and 2048 x 1024."""

QUICK_SIZES = ((128, 128), (256, 256))

WINDOW = 5
CU = 0.5227
DAMPING = 2.0
SRAD_ITER, SRAD_DT = 50, 0.05
NLM_PATCH, NLM_SEARCH, NLM_H = 7, 11, 0.3   # scikit-image's default patch_size / patch_distance


# ----------------------------------------------------------------------------- baselines
def numpy_lee(img: np.ndarray, window: int = WINDOW, cu: float = CU, kuan: bool = False
              ) -> np.ndarray:
    """Lee (or Kuan) filter from scipy.ndimage.uniform_filter statistics (vectorised, in the
    image's own dtype, so a float32 frame is not slowed by float64 temporaries)."""
    x = img
    m = ndi.uniform_filter(x, window)
    var = np.maximum(ndi.uniform_filter(x * x, window) - m * m, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = 1 - (cu * cu) * (m * m) / var
    if kuan:
        w /= 1 + cu * cu
    w = np.where(var > 1e-12 * (m * m), np.clip(w, 0, 1), 0)
    return (m + w * (x - m)).astype(img.dtype)


def numpy_frost(img: np.ndarray, window: int = WINDOW, damping: float = DAMPING) -> np.ndarray:
    """Frost filter, vectorised (in the image's dtype): uniform_filter statistics, then one
    shifted multiply-add per window offset."""
    x = img
    r = window // 2
    m = ndi.uniform_filter(x, window)
    var = np.maximum(ndi.uniform_filter(x * x, window) - m * m, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(m > 0, damping * var / (m * m), 0).astype(x.dtype)
    P = np.pad(x, r, mode="symmetric")
    rows, cols = x.shape
    num = np.zeros_like(x)
    den = np.zeros_like(x)
    for y in range(window):
        for xx in range(window):
            w = np.exp(-k * x.dtype.type(math.hypot(y - r, xx - r)))
            num += w * P[y:y + rows, xx:xx + cols]
            den += w
    return (num / den).astype(img.dtype)


def numpy_srad(img: np.ndarray, n_iter: int = SRAD_ITER, dt: float = SRAD_DT, q0: float = CU
               ) -> np.ndarray:
    """SRAD (Yu & Acton 2002) with whole-array NumPy operations, Neumann boundary, the same
    decaying q0 schedule as `layerseg.filters.despeckle_srad` with a float q0."""
    I = img.astype(img.dtype, copy=True)
    eps = 1e-6 * float(I.max())
    for it in range(n_iter):
        q = q0 * math.exp(-it * dt / 6.0)
        q0sq = q * q
        P = np.pad(I, 1, mode="edge")
        dn = P[:-2, 1:-1] - I
        ds = P[2:, 1:-1] - I
        dw = P[1:-1, :-2] - I
        de = P[1:-1, 2:] - I
        iv = 1.0 / np.maximum(I, eps)
        g2 = (dn * dn + ds * ds + dw * dw + de * de) * iv * iv
        lap = (dn + ds + dw + de) * iv
        den = (1.0 + 0.25 * lap) ** 2
        q2 = (0.5 * g2 - 0.0625 * lap * lap) / den
        c = np.clip(1.0 / (1.0 + (q2 - q0sq) / (q0sq * (1.0 + q0sq))), 0.0, 1.0)
        cp = np.pad(c, ((0, 1), (0, 1)), mode="edge")
        I = (I + 0.25 * dt * (cp[1:, :-1] * ds + c * dn + cp[:-1, 1:] * de + c * dw)
             ).astype(img.dtype)
    return I


# ----------------------------------------------------------------------------- cases
FINDPEAKS_MISSING = "findpeaks is not installed (pip install 'layerseg[bench]')"


def _findpeaks_filters(use: bool | None):
    """findpeaks' (median, lee, kuan, frost) filter functions, or None.

    `use` None: where findpeaks is installed; True: required (`MissingDependencyError` naming the
    ``bench`` extra when it is missing); False: never."""
    if use is False:
        return None
    try:
        require_optional("findpeaks", "findpeaks", "bench",
                         "the findpeaks comparison of the filter benchmark")
    except MissingDependencyError:
        if use:
            raise
        return None
    from findpeaks.filters.frost import frost_filter
    from findpeaks.filters.kuan import kuan_filter
    from findpeaks.filters.lee import lee_filter
    from findpeaks.filters.median import median_filter

    return median_filter, lee_filter, kuan_filter, frost_filter


def _cases(findpeaks: bool | None = None):
    """(name, ours, baseline name, baseline, findpeaks callable or None)."""
    from skimage.restoration import denoise_nl_means

    from ..filters import (denoise_nlm, despeckle_srad, filter_frost, filter_kuan, filter_lee,
                           median_filter)

    fps = _findpeaks_filters(findpeaks)
    fp_median, fp_lee, fp_kuan, fp_frost = (None,) * 4 if fps is None else fps

    def fp(fn, **kw):
        return None if fn is None else (lambda a: fn(a, **kw))

    def sk_nlm(a):
        return denoise_nl_means(a, patch_size=NLM_PATCH, patch_distance=NLM_SEARCH, h=NLM_H,
                                fast_mode=True)

    return [
        (f"median {WINDOW}x{WINDOW}", lambda a: median_filter(a, WINDOW),
         "scipy.ndimage.median_filter", lambda a: ndi.median_filter(a, size=WINDOW),
         fp(fp_median, win_size=WINDOW)),
        (f"lee {WINDOW}x{WINDOW}", lambda a: filter_lee(a, WINDOW, cu=CU),
         "uniform_filter stats", lambda a: numpy_lee(a), fp(fp_lee, win_size=WINDOW, cu=CU)),
        (f"kuan {WINDOW}x{WINDOW}", lambda a: filter_kuan(a, WINDOW, cu=CU),
         "uniform_filter stats", lambda a: numpy_lee(a, kuan=True),
         fp(fp_kuan, win_size=WINDOW, cu=CU)),
        (f"frost {WINDOW}x{WINDOW}", lambda a: filter_frost(a, WINDOW, DAMPING),
         "uniform_filter + shifts", lambda a: numpy_frost(a),
         fp(fp_frost, win_size=WINDOW, damping_factor=DAMPING)),
        (f"srad {SRAD_ITER} it", lambda a: despeckle_srad(a, SRAD_ITER, SRAD_DT, q0=CU),
         "numpy srad", lambda a: numpy_srad(a), None),
        (f"nlm l2 p{NLM_PATCH} s{NLM_SEARCH}",
         lambda a: denoise_nlm(a, NLM_PATCH, NLM_SEARCH, NLM_H, distance="l2"),
         "skimage fast_mode", sk_nlm, None),
        (f"nlm pearson p{NLM_PATCH} s{NLM_SEARCH}",
         lambda a: denoise_nlm(a, NLM_PATCH, NLM_SEARCH, NLM_H, distance="pearson"),
         "skimage fast_mode", sk_nlm, None),
    ]


def _frame(rng: np.random.Generator, shape) -> np.ndarray:
    """A float32 speckle frame: Rayleigh envelope over a smooth reflectivity (positive)."""
    rows, cols = shape
    refl = 1.0 + 0.5 * np.sin(np.linspace(0, 6, rows))[:, None] * np.cos(np.linspace(0, 4, cols))
    sp = np.abs(rng.normal(size=shape) + 1j * rng.normal(size=shape)) / math.sqrt(2)
    return (refl * sp).astype(np.float32)


def run_filter_benchmarks(sizes=DEFAULT_SIZES, repeats: int = 3, findpeaks_shape=(48, 48),
                          seed: int = 0, only: list[str] | None = None, verbose: bool = True,
                          findpeaks: bool | None = None) -> dict:
    """Time every filter against its baselines at each size; print and return the figures.

    Parameters
    ----------
    sizes : sequence of (rows, cols)
        Frame sizes (float32 speckle frames).
    repeats : int
        Best of this many runs for our filters and fast baselines; baselines slower than 5 s
        run once.
    findpeaks_shape : (rows, cols)
        The small frame findpeaks is actually timed on; its time is scaled by pixel count.
    seed : int
        Seed of the synthetic frames.
    only : list of str, optional
        Run only the filters whose name starts with one of these (e.g. ``["median", "lee"]``).
    verbose : bool
        Print the table (and progress) to stdout.
    findpeaks : bool or None
        Time findpeaks' filters too: None (default) where findpeaks is installed, True always
        (`layerseg.errors.MissingDependencyError` naming the ``bench`` extra when it is not),
        False never.

    Returns
    -------
    dict with ``machine`` (cpu count, numba threads, load average before/after, versions),
    ``sizes``, ``results`` (one dict per filter and size: ``ours_s``, ``baseline``,
    ``baseline_s``, ``speedup``, ``findpeaks_s`` (extrapolated), ``findpeaks_speedup``),
    ``findpeaks_measured`` (filter -> seconds on `findpeaks_shape`), ``findpeaks`` ("used",
    "off", or why it is missing) and ``scaling`` (filter ->
    our time at four times the pixels of the first size over the time at the first size, where
    that size was run).
    """
    import numba
    import scipy
    import skimage

    rng = np.random.default_rng(seed)
    fp_state = ("off" if findpeaks is False else
                "used" if _findpeaks_filters(findpeaks) is not None else FINDPEAKS_MISSING)
    cases = [c for c in _cases(fp_state == "used")
             if only is None or any(c[0].startswith(o) for o in only)]
    machine = {"cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(),
               "platform": platform.platform(), "python": platform.python_version(),
               "numpy": np.__version__, "scipy": scipy.__version__,
               "skimage": skimage.__version__, "numba": numba.__version__,
               "loadavg_before": _loadavg()}
    warm = _frame(rng, (64, 64))
    for _, ours, _, base, _ in cases:                # compile kernels, import everything
        ours(warm)
        base(warm)
    machine["threading_layer"] = numba.threading_layer()
    machine["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    fp_small = _frame(rng, findpeaks_shape)
    fp_measured = {}
    for name, _, _, _, fpfn in cases:
        if fpfn is not None:
            t0 = time.perf_counter()
            fpfn(fp_small.astype(np.float64) * 100.0)
            fp_measured[name] = time.perf_counter() - t0
    results = []
    for shape in sizes:
        img = _frame(rng, shape)
        npx = shape[0] * shape[1]
        for name, ours, bname, base, _ in cases:
            t_ours = best_time(lambda: ours(img), repeats)
            t_base = best_time(lambda: base(img), 1)
            if t_base < 5.0 and repeats > 1:
                t_base = min(t_base, best_time(lambda: base(img), repeats - 1))
            fp_s = (fp_measured[name] * npx / (findpeaks_shape[0] * findpeaks_shape[1])
                    if name in fp_measured else None)
            row = {"filter": name, "shape": list(shape), "ours_s": t_ours, "baseline": bname,
                   "baseline_s": t_base, "speedup": t_base / t_ours,
                   "findpeaks_s": fp_s, "findpeaks_speedup": None if fp_s is None else fp_s / t_ours}
            results.append(row)
            if verbose:
                print(f"  {name:<24} {shape[0]}x{shape[1]}: ours {t_ours:.4f} s, {bname} "
                      f"{t_base:.4f} s", flush=True)
    scaling = {}
    if len(sizes) > 1:
        base_px = sizes[0][0] * sizes[0][1]
        four = [s for s in sizes if s[0] * s[1] == 4 * base_px]
        if four:
            for name, *_ in cases:
                t1 = next(r["ours_s"] for r in results if r["filter"] == name
                          and tuple(r["shape"]) == tuple(sizes[0]))
                t4 = next(r["ours_s"] for r in results if r["filter"] == name
                          and tuple(r["shape"]) == tuple(four[0]))
                scaling[name] = t4 / t1
    machine["loadavg_after"] = _loadavg()
    out = {"machine": machine, "sizes": [list(s) for s in sizes], "results": results,
           "findpeaks_shape": list(findpeaks_shape), "findpeaks_measured": fp_measured,
           "findpeaks": fp_state, "scaling": scaling}
    if verbose:
        print(format_table(out))
    return out


def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def format_table(res: dict) -> str:
    """The side-by-side table of a `run_filter_benchmarks` result, as Markdown."""
    sizes = [tuple(s) for s in res["sizes"]]
    head = ["filter", "baseline"]
    for r, c in sizes:
        head += [f"ours {r}x{c} (s)", f"vs baseline {r}x{c}", f"vs findpeaks* {r}x{c}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = list(dict.fromkeys(r["filter"] for r in res["results"]))
    for name in names:
        rows = {tuple(r["shape"]): r for r in res["results"] if r["filter"] == name}
        cells = [name, rows[sizes[0]]["baseline"]]
        for s in sizes:
            r = rows[s]
            fp = "-" if r["findpeaks_speedup"] is None else f"{r['findpeaks_speedup']:.0f}x"
            cells += [f"{r['ours_s']:.4f}", f"{r['speedup']:.1f}x", fp]
        lines.append("| " + " | ".join(cells) + " |")
    m = res["machine"]
    fp_shape = "x".join(str(v) for v in res["findpeaks_shape"])
    notes = [
        "",
        f"Machine: {m['cpus']} CPUs, {m['numba_threads']} Numba threads "
        f"({m.get('threading_layer')} layer, OMP_WAIT_POLICY={m.get('omp_wait_policy')}), "
        f"{m['platform']}; "
        f"load average before {m['loadavg_before']}, after {m.get('loadavg_after')}.",
        "Ratios are baseline time / our time (best of several runs; float32 speckle frames).",
    ]
    fp_state = res.get("findpeaks", "used")
    if fp_state == "used":
        notes.append(f"*findpeaks timed once on a {fp_shape} frame and scaled by pixel count (its "
                     "filters are pure-Python loops): " + ", ".join(
                         f"{k} {v:.2f} s" for k, v in res["findpeaks_measured"].items()) + ".")
    else:
        notes.append(f"*findpeaks not timed: {fp_state}.")
    if res["scaling"]:
        s0 = "x".join(str(v) for v in res["sizes"][0])
        notes.append(f"Our time at four times the pixels of {s0} over the time at {s0} (ideal "
                     "4.0): " + ", ".join(f"{k} {v:.2f}" for k, v in res["scaling"].items())
                     + ".")
    return "\n".join(lines + notes)
