"""Non-local means: plain squared-difference mode and the ultrasound Pearson mode (Coupé 2009).

``out(p) = sum_t w(p, p+t) z(p+t) / sum_t w(p, p+t)`` over the shifts ``t`` of a
``(2 search + 1)**2`` search window, ``w(p, p) = 1`` and, for ``t != 0``,
``w = exp(-D)`` where ``D <= NLM_CUTOFF`` (5) and 0 beyond it.

* ``distance='l2'`` (additive noise; meant for log-compressed display images) follows
  scikit-image's ``denoise_nl_means(fast_mode=True)`` exactly in its conventions, so the two
  agree up to scikit-image's approximate exponential (Schraudolph): the patch distance is
  ``D = max(sum_{q in B(p)} (z(q) - z(q+t))**2 - 2 sigma**2 |B|, 0) / (h**2 patch**2)`` where
  ``B(p)`` is the ``(patch-1) x (patch-1)`` box of rows and columns ``p-patch//2+1 .. p+patch//2``
  (scikit-image's integral-image box), and the image is padded by numpy's ``'reflect'``.
* ``distance='pearson'`` (multiplicative noise; the linear envelope) uses the Bayesian / Pearson
  distance of Coupé et al. (2009) for the model ``u = v + v**0.5 eta``:
  ``D = sum_{q in B(p)} (z(q) - z(q+t))**2 / z(q+t) / (h**2 patch**2)`` over the full
  ``patch x patch`` box centred on ``p`` (the candidate patch's values in the denominator,
  floored at 1e-6 of the image peak). Note this distance is not symmetric.

Algorithm (Darbon et al. 2008 / Froment 2014, made parallel): shifts are the outer loop, so each
patch distance is a box sum of a per-pixel difference image, kept with running sums; the pair
``(p, p+t)`` and ``(p+t, p)`` share the difference image, so only half of the shifts are
computed. The frame is cut into tiles (rows, and columns beyond 512) processed in parallel, each
tile with private buffers (no write races), and each tile loops over all shifts while its
buffers stay in cache. A tile's weights are those of the whole frame, bit for bit: each comes
from the same running sums down the same rows.

Reference: Coupé P, Hellier P, Kervrann C, Barillot C (2009) Nonlocal means-based speckle
filtering for ultrasound images. IEEE Trans Image Process 18(10):2221-2229.
"""

from __future__ import annotations

import numbers

import numpy as np
from numba import njit, prange

from ..errors import FilterInputError
from ._config import ERROR_MODEL, FASTMATH, NLM_CUTOFF
from ._expneg import exp_neg
from ._validate import check_image, check_positive, to_envelope

__all__ = ["denoise_nlm"]

L2, PEARSON = 0, 1

NLM_MAX_TILE_COLS = 512
"""Widest column tile of the kernel (`_column_tile`); narrower frames run whole rows."""


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _add_row(P, R, row, tr, tc, c0, n, mode, forward, sign, V):
    """``V[v] += sign * g(P[row, c0 + v], P[row + tr, c0 + v + tc])`` for v < n, with g the
    squared difference (l2) or the squared difference times the reciprocal ``R`` of the
    candidate (Pearson; ``R = 1 / max(P, eps)``, so no division in the loop)."""
    pa = P[row, c0:c0 + n]
    pb = P[row + tr, c0 + tc:c0 + tc + n]
    if mode == L2:
        for v in range(n):
            d = pa[v] - pb[v]
            V[v] += sign * (d * d)
    elif forward:
        rb = R[row + tr, c0 + tc:c0 + tc + n]
        for v in range(n):
            d = pa[v] - pb[v]
            V[v] += sign * (d * d) * rb[v]
    else:
        ra = R[row, c0:c0 + n]
        for v in range(n):
            d = pa[v] - pb[v]
            V[v] += sign * (d * d) * ra[v]


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _shift_weights(P, R, pad, ra0, nr, ca0, nc, tr, tc, lo, hi, mode, inv_norm, var_n,
                   cutoff, V, H, W, forward):
    """Weights of the pairs (q, q+t) for anchors q in rows ra0..ra0+nr, cols ca0..ca0+nc (image
    coordinates) into ``W[:nr, :nc]``. ``forward``: the denominator is z(q+t) (Pearson weight of
    q receiving from q+t); else z(q) (weight of q+t receiving from q). l2 ignores it.
    Column sums over the patch rows ``V`` are kept with running updates down the rows; the box
    sums ``H`` along a row add ``lo + hi + 1`` shifted copies of ``V`` (each pass vectorised; a
    running or prefix sum along the row would be one long dependency chain)."""
    ncv = nc + lo + hi
    bw = lo + hi + 1
    c0 = ca0 - lo + pad
    for u in range(nr):
        r = ra0 + u + pad
        if u == 0:
            for v in range(ncv):
                V[v] = 0.0
            for y in range(-lo, hi + 1):
                _add_row(P, R, r + y, tr, tc, c0, ncv, mode, forward, 1.0, V)
        else:
            _add_row(P, R, r + hi, tr, tc, c0, ncv, mode, forward, 1.0, V)
            _add_row(P, R, r - lo - 1, tr, tc, c0, ncv, mode, forward, -1.0, V)
        for v in range(nc):
            H[v] = V[v]
        for k in range(1, bw):
            Vk = V[k:k + nc]
            for v in range(nc):
                H[v] += Vk[v]
        Wu = W[u]
        for v in range(nc):
            dist = max(H[v] - var_n, 0.0) * inv_norm
            w = exp_neg(min(dist, cutoff))
            Wu[v] = w if dist <= cutoff else 0.0


@njit(parallel=True, cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _nlm_kernel(P, R, pad, d, lo, hi, mode, inv_norm, var_n, cutoff, tile, col_tile, out):
    rows, cols = out.shape
    n_tiles = (rows + tile - 1) // tile
    n_ct = (cols + col_tile - 1) // col_tile
    for tt in prange(n_tiles * n_ct):
        ti = tt // n_ct
        a = ti * tile
        b = min(rows, a + tile)
        T = b - a
        c0 = (tt % n_ct) * col_tile
        Wd = min(cols, c0 + col_tile) - c0
        num = np.empty((T, Wd))
        wsum = np.empty((T, Wd))
        for i in range(T):
            for j in range(Wd):
                num[i, j] = P[a + i + pad, c0 + j + pad]
                wsum[i, j] = 1.0
        WA = np.empty((T + d, Wd + d))
        WB = np.empty((T + d, Wd + d))
        V = np.empty(Wd + d + lo + hi + 1)
        H = np.empty(Wd + d)
        for tr in range(-d, d + 1):
            for tc in range(0, d + 1):
                if tc == 0 and tr <= 0:
                    continue
                ra0 = a + min(0, -tr)
                nr = T + abs(tr)
                ca0 = c0 - tc
                nc = Wd + tc
                _shift_weights(P, R, pad, ra0, nr, ca0, nc, tr, tc, lo, hi, mode, inv_norm,
                               var_n, cutoff, V, H, WA, True)
                if mode == PEARSON:
                    _shift_weights(P, R, pad, ra0, nr, ca0, nc, tr, tc, lo, hi, mode, inv_norm,
                                   var_n, cutoff, V, H, WB, False)
                    wb = WB
                else:
                    wb = WA
                for i in range(T):
                    ua = a + i - ra0
                    pr = a + i + pad
                    wf_row = WA[ua, tc:tc + Wd]              # weight of (p, p+t), p in row i
                    wb_row = wb[ua - tr, 0:Wd]               # weight of (p-t, p)
                    pf = P[pr + tr, pad + c0 + tc:pad + c0 + tc + Wd]
                    pb = P[pr - tr, pad + c0 - tc:pad + c0 - tc + Wd]
                    nrow = num[i]
                    wrow = wsum[i]
                    # two loops, one store array each: few enough run-time alias checks for
                    # LLVM to vectorise them
                    for j in range(Wd):
                        nrow[j] += wf_row[j] * pf[j] + wb_row[j] * pb[j]
                    for j in range(Wd):
                        wrow[j] += wf_row[j] + wb_row[j]
        for i in range(T):
            for j in range(Wd):
                out[a + i, c0 + j] = num[i, j] / wsum[i, j]


def _column_tile(cols: int) -> int:
    """Columns per tile: the whole row up to `NLM_MAX_TILE_COLS`, else equal tiles of at most
    that many (a tile's buffers, about 4 x 8 x (tile rows + search) x tile columns bytes, stay
    in a core's L2 cache; whole 1024-column rows did not, and cost 4.3-4.9x the time of 512)."""
    n = -(-int(cols) // NLM_MAX_TILE_COLS)
    return -(-int(cols) // n)


def denoise_nlm(image, patch: int = 5, search: int = 5, h: float = 0.1, *,
                distance: str = "pearson", sigma: float = 0.0, input: str = "envelope",
                dynamic_range_db: float | None = None) -> np.ndarray:
    """Non-local means denoising, Pearson (ultrasound, multiplicative) or plain l2 distance.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        float32 or float64 (kept), or integers (converted to float32).
        ``distance='pearson'``: ``input='envelope'`` (default), the linear envelope (>= 0), or
        ``input='log'`` with `dynamic_range_db`: grey levels 0-255, converted to the envelope and
        back. ``distance='l2'``: any image with additive noise, typically a log-compressed
        display image, filtered as given (`input` must stay 'envelope' or be 'log' without
        conversion; it is not used).
    patch : int
        Patch side in pixels, odd, >= 3 (scikit-image's ``patch_size``).
    search : int
        Largest shift in pixels, >= 1: the search window is ``(2 search + 1)**2``
        (scikit-image's ``patch_distance``).
    h : float
        Filtering parameter > 0, in the image's intensity units for 'l2' (as scikit-image's
        ``h``); in square-root intensity units for 'pearson'. Larger smooths more.
    distance : {'pearson', 'l2'}
        Patch distance (see the module notes).
    sigma : float
        'l2' only: noise SD subtracted as in scikit-image (``2 sigma**2`` per pixel), default 0.
    input, dynamic_range_db
        See `image`.

    Returns
    -------
    ndarray, same shape and dtype as `image` (float32 for integer input), in the input's domain.

    Raises
    ------
    FilterInputError
        NaN/inf, negative envelope (Pearson), even or too small patch, search < 1 or larger than
        the image, float16, unknown distance.
    """
    if distance not in ("pearson", "l2"):
        raise FilterInputError(f"distance must be 'pearson' or 'l2', got {distance!r}")
    if distance == "pearson":
        img, back = to_envelope(image, input, dynamic_range_db)
        if sigma:
            raise FilterInputError("sigma applies only to distance='l2'")
    else:
        if input not in ("envelope", "log"):
            raise FilterInputError(f"input must be 'envelope' or 'log', got {input!r}")
        if dynamic_range_db is not None:
            raise FilterInputError("distance='l2' filters the image as given (additive noise); "
                                   "dynamic_range_db would be ignored, so it is refused")
        img = check_image(image)
        back = lambda out: out  # noqa: E731
    if not isinstance(patch, numbers.Integral) or patch < 3 or patch % 2 == 0:
        raise FilterInputError(f"patch must be an odd integer >= 3, got {patch!r}")
    if not isinstance(search, numbers.Integral) or search < 1:
        raise FilterInputError(f"search must be an integer >= 1, got {search!r}")
    if search >= min(img.shape) or patch > min(img.shape):
        raise FilterInputError(f"patch {patch} / search {search} too large for an image of shape "
                               f"{img.shape}")
    h = check_positive(h, "h")
    sigma = check_positive(sigma, "sigma", allow_zero=True)
    o = patch // 2
    d = int(search)
    if distance == "l2":
        lo, hi, mode = o - 1, o, L2
        var_n = 2.0 * sigma * sigma * (lo + hi + 1) ** 2
        eps = 0.0
    else:
        lo, hi, mode = o, o, PEARSON
        var_n = 0.0
        peak = float(img.max())
        eps = 1e-6 * peak if peak > 0 else 1e-12
    pad = d + o + 1
    # one float64 kernel signature for both dtypes: the arithmetic is float64 anyway, and a
    # second parallel compile would double the first-call cost
    P = np.ascontiguousarray(np.pad(img.astype(np.float64), pad, mode="reflect"))
    inv_norm = 1.0 / (h * h * patch * patch)
    tile = max(32, 4 * d)
    # Pearson: the reciprocal of the (floored) intensity, so the kernel multiplies
    R = 1.0 / np.maximum(P, eps) if mode == PEARSON else P
    out = np.empty(img.shape, dtype=np.float64)
    _nlm_kernel(P, R, pad, d, lo, hi, mode, inv_norm, var_n, NLM_CUTOFF, tile,
                _column_tile(img.shape[1]), out)
    return back(out.astype(img.dtype))
