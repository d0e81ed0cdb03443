"""Speed benchmark of the ordered search (`layerseg.layers.ordered_search`).

Compares, on random score maps of 8 classes, the Numba search with

* ``plain``: a straightforward NumPy/Python implementation of the same per-column recurrence
  (`ordered_search_plain`: Python loops over columns, layers and bottom depths, NumPy for the
  prefix sums and the windowed maximum), the readable twin the tests check the kernel against;
* ``vectorised``: the same recurrence written with NumPy across all columns at once
  (`ordered_search_vectorised`, Python loops over layers and depths only), a stronger baseline;
* ``read once``: a single pass over the score map (``scores.sum()``), the floor of any method.
"""

from __future__ import annotations

import time

import numpy as np

from ..layers.search import ordered_search, search_limits_rows
from ..layers.surfaces import as_profile
from ._timing import best_time

__all__ = ["ordered_search_plain", "ordered_search_vectorised", "run_search_benchmark",
           "format_search_benchmark"]


def ordered_search_plain(scores, profile=None, spacing_mm=None, min_thickness_mm=None,
                         max_thickness_mm=None, absent_ok=None) -> np.ndarray:
    """Per-column exact ordered search, written plainly (reference and benchmark baseline).

    Same inputs and the same answer as `layerseg.layers.ordered_search` without
    ``max_jump_px``; returns only the surfaces, float64 (K+1, cols).
    """
    prof = as_profile(profile)
    scores = np.asarray(scores, dtype=np.float64)
    _, n, n_cols = scores.shape
    mn, mx, absent, _ = search_limits_rows(prof, n, spacing_mm, min_thickness_mm,
                                           max_thickness_mm, absent_ok)
    labs = [0] + list(prof.labels)
    K = prof.n_layers
    out = np.empty((K + 1, n_cols))
    for c in range(n_cols):
        P = np.zeros((K + 1, n + 1))
        P[:, 1:] = np.cumsum(scores[labs, :, c], axis=1)
        g = P[0].copy()
        args = []
        for k in range(K):
            h = g - P[k + 1]
            new = np.full(n + 1, -np.inf)
            arg = np.full(n + 1, -1)
            for b in range(n + 1):
                lo, hi = max(0, b - mx[k]), b - mn[k]
                best, besta = -np.inf, -1
                if hi >= lo:
                    a = lo + int(np.argmax(h[lo:hi + 1]))
                    best, besta = h[a], a
                if absent[k] and h[b] > best:
                    best, besta = h[b], b
                if besta >= 0 and best > -np.inf:
                    new[b] = best + P[k + 1, b]
                    arg[b] = besta
            g = new
            args.append(arg)
        b = int(np.argmax(g + P[0, n] - P[0]))
        out[K, c] = b
        for k in range(K - 1, -1, -1):
            b = int(args[k][b])
            out[k, c] = b
    return out


def ordered_search_vectorised(scores, profile=None) -> np.ndarray:
    """The per-column recurrence without thickness limits, in NumPy across all columns.

    Returns the surfaces, float64 (K+1, cols); the same answer as `ordered_search` with no limits
    (up to ties).
    """
    prof = as_profile(profile)
    scores = np.asarray(scores, dtype=np.float64)
    _, n, n_cols = scores.shape
    labs = [0] + list(prof.labels)
    K = prof.n_layers
    P = np.zeros((K + 1, n + 1, n_cols))
    np.cumsum(scores[labs], axis=1, out=P[:, 1:])
    g = P[0]
    args = []
    idx = np.arange(n + 1)[:, None]
    for k in range(K):
        h = g - P[k + 1]
        # running maximum over a <= b, and where it was reached
        run = np.maximum.accumulate(h, axis=0)
        at = np.where(h == run, idx, 0)
        arg = np.maximum.accumulate(at, axis=0)
        g = run + P[k + 1]
        args.append(arg)
    b = np.argmax(g + P[0, n] - P[0], axis=0)
    out = np.empty((K + 1, n_cols))
    cols = np.arange(n_cols)
    out[K] = b
    for k in range(K - 1, -1, -1):
        b = args[k][b, cols]
        out[k] = b
    return out


def run_search_benchmark(shapes=((512, 512), (2048, 1024)), seed: int = 0, repeat: int = 3,
                         plain_cols: int | None = 64, profile=None) -> list[dict]:
    """Time the ordered search against its baselines on random 8-class score maps.

    Parameters
    ----------
    shapes : sequence of (rows, cols)
    seed : int
        Seed of the random scores.
    repeat : int
        Best of `repeat` runs for the fast methods.
    plain_cols : int or None
        Time the plain implementation on this many columns and scale linearly to the full width
        (its cost is exactly linear in columns); None times it on every column.
    profile : Profile or str or None

    Returns
    -------
    list of dict
        One per shape: ``rows``, ``cols``, seconds for ``numba``, ``numba_limits`` (with thickness
        limits), ``numba_smooth`` (``max_jump_px=2``, one run), ``plain``, ``vectorised``, ``read_once``, and ``plain_scaled_from_cols``.
    """
    prof = as_profile(profile)
    rng = np.random.default_rng(seed)
    out = []
    ordered_search(rng.normal(size=(8, 16, 4)), prof, max_jump_px=2)  # compile outside the timing
    ordered_search(rng.normal(size=(8, 16, 4)), prof, spacing_mm=(0.02, 0.05),
                   min_thickness_mm={"dermis": 0.1}, max_thickness_mm={"smas": 0.1})
    for rows, cols in shapes:
        sc = rng.normal(size=(8, rows, cols))
        limits = dict(spacing_mm=(0.02, 0.05), min_thickness_mm={"dermis": 0.3, "epidermis": 0.06},
                      max_thickness_mm={"epidermis": 0.4, "dermis": 3.0, "smas": 1.5},
                      absent_ok=None)
        t_numba = best_time(lambda: ordered_search(sc, prof), repeat)
        t_limits = best_time(lambda: ordered_search(sc, prof, **limits), repeat)
        t_read = best_time(lambda: sc.sum(), repeat)
        t_smooth = best_time(lambda: ordered_search(sc, prof, max_jump_px=2), 1)
        t_vec = best_time(lambda: ordered_search_vectorised(sc, prof), 1)
        pc = cols if plain_cols is None else min(plain_cols, cols)
        sub = np.ascontiguousarray(sc[:, :, :pc])
        t0 = time.perf_counter()
        ordered_search_plain(sub, prof)
        t_plain = (time.perf_counter() - t0) * cols / pc
        out.append({"rows": rows, "cols": cols, "numba": t_numba, "numba_limits": t_limits,
                    "numba_smooth": t_smooth,
                    "plain": t_plain, "vectorised": t_vec, "read_once": t_read,
                    "plain_scaled_from_cols": pc})
    return out


def format_search_benchmark(results: list[dict]) -> str:
    """A Markdown table of `run_search_benchmark` results, ratios side by side."""
    lines = ["| rows x cols | numba (ms) | numba + limits (ms) | numba smooth, jump 2 (ms) "
             "| plain (ms) | vectorised NumPy (ms) | read once (ms) | plain / numba "
             "| vectorised / numba | numba / read once |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['rows']} x {r['cols']} | {1e3 * r['numba']:.1f} | {1e3 * r['numba_limits']:.1f} "
            f"| {1e3 * r['numba_smooth']:.0f} "
            f"| {1e3 * r['plain']:.0f} | {1e3 * r['vectorised']:.1f} | {1e3 * r['read_once']:.2f} "
            f"| {r['plain'] / r['numba']:.0f}x | {r['vectorised'] / r['numba']:.1f}x "
            f"| {r['numba'] / r['read_once']:.1f}x |")
    return "\n".join(lines)
