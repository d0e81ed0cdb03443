"""Speed of the speckle filters against OpenCV (``opencv-python-headless``, the ``bench`` extra).

Same window and frame for both; ours is `layerseg.filters`, OpenCV's peer is:

* median 5x5: ``cv2.medianBlur`` on uint8 and on float32 (OpenCV takes float32 for 3x3 and 5x5
  only);
* Lee / Kuan 5x5: window mean and mean of squares from ``cv2.blur`` (reflect-101 border), the
  weight formula in NumPy (float32; a uint8 frame is converted to float32 first, inside the
  timing, as ours does);
* NLM: ``cv2.fastNlMeansDenoising`` on uint8 with the same patch (7) and search window
  (2 x 11 + 1 = 23) as ours (`layerseg.filters.denoise_nlm`, 'l2' distance);
* bilateral 5x5 (``cv2.bilateralFilter``): a reference point only (layerseg has no bilateral
  filter), reported in ns/pixel without a ratio.

Frames: the float32 speckle frames of `layerseg.bench.filters`, and the same scaled to uint8.
Each figure is the best of `repeats` ``timeit`` calls after a warm-up call; ``speedup`` is
OpenCV's time over ours (above 1: ours faster). Where OpenCV is faster the figure says so.
"""

from __future__ import annotations

import numpy as np

from ..errors import require_optional
from .gate import best_time

__all__ = ["run_opencv_benchmark", "format_opencv_table"]


def _cv_lee(cv2, a, window, cu, kuan=False):
    x = a.astype(np.float32, copy=False)
    m = cv2.blur(x, (window, window), borderType=cv2.BORDER_REFLECT_101)
    var = np.maximum(cv2.blur(x * x, (window, window), borderType=cv2.BORDER_REFLECT_101)
                     - m * m, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = 1 - (cu * cu) * (m * m) / var
    if kuan:
        w /= 1 + cu * cu
    w = np.where(var > 1e-12 * (m * m), np.clip(w, 0, 1), 0)
    return m + w * (x - m)


def _cases(cv2):
    from .. import filters as F
    from . import filters as bf

    w, cu = bf.WINDOW, bf.CU
    p, s = bf.NLM_PATCH, bf.NLM_SEARCH
    return [
        # name, dtype, ours, opencv
        (f"median_{w}x{w}", "float32", lambda a: F.median_filter(a, w),
         lambda a: cv2.medianBlur(a, w)),
        (f"median_{w}x{w}", "uint8", lambda a: F.median_filter(a, w),
         lambda a: cv2.medianBlur(a, w)),
        (f"lee_{w}x{w}", "float32", lambda a: F.filter_lee(a, w, cu=cu),
         lambda a: _cv_lee(cv2, a, w, cu)),
        (f"lee_{w}x{w}", "uint8", lambda a: F.filter_lee(a, w, cu=cu),
         lambda a: _cv_lee(cv2, a, w, cu)),
        (f"kuan_{w}x{w}", "float32", lambda a: F.filter_kuan(a, w, cu=cu),
         lambda a: _cv_lee(cv2, a, w, cu, kuan=True)),
        (f"nlm_l2_p{p}_s{s}", "uint8",
         lambda a: F.denoise_nlm(a, p, s, bf.NLM_H * 255.0, distance="l2"),
         lambda a: cv2.fastNlMeansDenoising(a, None, h=10.0, templateWindowSize=p,
                                            searchWindowSize=2 * s + 1)),
        (f"bilateral_{w}x{w}", "uint8", None,
         lambda a: cv2.bilateralFilter(a, w, 25.0, 2.0)),
        (f"bilateral_{w}x{w}", "float32", None,
         lambda a: cv2.bilateralFilter(a, w, 0.25, 2.0)),
    ]


def run_opencv_benchmark(sizes=((512, 512),), repeats: int = 3, seed: int = 0,
                         verbose: bool = False) -> dict:
    """Time our filters against OpenCV's peers at each size (see the module docstring).

    Returns
    -------
    dict with ``opencv`` (version), ``numba_threads``, ``opencv_threads`` and ``results``: one
    dict per (filter, dtype, size): ``filter``, ``dtype``, ``shape``, ``ours_s``, ``opencv_s``,
    ``ours_ns_per_px``, ``opencv_ns_per_px`` and ``speedup`` (OpenCV time / ours; None for the
    bilateral reference point).
    """
    require_optional("cv2", "opencv-python-headless", "bench", "the OpenCV speed comparison")
    import cv2
    import numba

    from .filters import _frame

    rng = np.random.default_rng(seed)
    cases = _cases(cv2)
    results = []
    for shape in sizes:
        f32 = _frame(rng, tuple(shape))
        u8 = np.clip(f32 / np.percentile(f32, 99.5) * 255.0, 0, 255).astype(np.uint8)
        npx = shape[0] * shape[1]
        for name, dtype, ours, cv in cases:
            img = f32 if dtype == "float32" else u8
            cv(img)
            t_cv = best_time(lambda: cv(img), repeats)
            t_ours = None
            if ours is not None:
                ours(img)
                t_ours = best_time(lambda: ours(img), repeats)
            row = {"filter": name, "dtype": dtype, "shape": list(shape), "ours_s": t_ours,
                   "opencv_s": t_cv, "opencv_ns_per_px": 1e9 * t_cv / npx,
                   "ours_ns_per_px": None if t_ours is None else 1e9 * t_ours / npx,
                   "speedup": None if t_ours is None else t_cv / t_ours}
            results.append(row)
    out = {"opencv": cv2.__version__, "numba_threads": numba.get_num_threads(),
           "opencv_threads": cv2.getNumThreads(), "sizes": [list(s) for s in sizes],
           "results": results}
    if verbose:
        print(format_opencv_table(out))
    return out


def format_opencv_table(res: dict) -> str:
    """Markdown table of `run_opencv_benchmark` figures (ns/pixel and ratio)."""
    lines = ["| filter | dtype | size | ours (ns/px) | OpenCV (ns/px) | OpenCV / ours |",
             "|---|---|---|---|---|---|"]
    for r in res["results"]:
        o = "-" if r["ours_ns_per_px"] is None else f"{r['ours_ns_per_px']:.1f}"
        sp = "-" if r["speedup"] is None else f"{r['speedup']:.2f}x"
        lines.append(f"| {r['filter']} | {r['dtype']} | {r['shape'][0]}x{r['shape'][1]} | {o} | "
                     f"{r['opencv_ns_per_px']:.1f} | {sp} |")
    lines.append(f"\nOpenCV {res['opencv']} ({res['opencv_threads']} threads), Numba "
                 f"{res['numba_threads']} threads; ratio above 1: ours faster.")
    return "\n".join(lines)
