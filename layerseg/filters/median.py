"""Fast exact median filter for any odd window (domain-agnostic: envelope or display).

The median commutes with any monotone intensity mapping, so it is the same filter on the envelope
and on a log-compressed image; it takes no ``input`` argument. Results are bit-identical to
``scipy.ndimage.median_filter(image, size=window)`` (its default ``mode='reflect'``).

Algorithm. Windows of up to `NETWORK_MAX` pixels (15 x 15) use a selection network: Batcher's
odd-even merge sort on the window padded to a power of two, with the padding wires (+inf)
resolved symbolically and every compare-exchange that cannot reach the middle output pruned, so a
5 x 5 median costs 113 branch-free min/max operations. The common square windows (`UNROLLED`:
3 x 3, 5 x 5, 7 x 7) run the network unrolled on local variables, one output pixel per loop
iteration, which LLVM vectorises across neighbouring pixels with the window held in SIMD
registers (the kernels are generated from `median_network` by `unrolled_source` into
``_median_unrolled.py``; a test keeps that file equal to the generator's output). Other windows
of up to `NETWORK_MAX` pixels hold one buffer row per window element (plus two spare rows) and
apply every compare-exchange to a whole image row at once, writing to free rows and renaming
(see `median_schedule`), which LLVM also turns into SIMD min/max, but through memory. Larger
windows gather each window into a small buffer and select its middle element in place (Wirth's
selection). Rows are split into blocks run in parallel.
"""

from __future__ import annotations

import numpy as np
import numba
from numba import njit, prange

from functools import lru_cache

from ._config import ERROR_MODEL, FASTMATH_NONE
from ._validate import check_image, check_window

__all__ = ["median_filter"]

#: Largest window (pixels, 15 x 15) filtered with a selection network; larger ones use in-place
#: selection (the network was 8-12x faster than selection at 9 x 9 and 11 x 11 here).
NETWORK_MAX = 225

_FULL, _MIN_ONLY, _MAX_ONLY = 0, 1, 2


def _batcher_pairs(n: int):
    """Compare-exchange pairs (i, j), i < j, of Batcher's odd-even merge sort of n = 2**p wires."""
    pairs = []

    def merge(lo, hi, r):
        step = r * 2
        if step < hi - lo:
            merge(lo, hi, step)
            merge(lo + r, hi, step)
            pairs.extend((i, i + r) for i in range(lo + r, hi - r, step))
        else:
            pairs.append((lo, lo + r))

    def sort(lo, hi):
        if hi - lo >= 1:
            mid = lo + (hi - lo) // 2
            sort(lo, mid)
            sort(mid + 1, hi)
            merge(lo, hi, 1)

    sort(0, n - 1)
    return pairs


@lru_cache(maxsize=32)
def median_network(n: int):
    """A pruned selection network for the median of n (odd) values.

    Returns ``(a, b, op, out)``: int64 arrays of buffer slots and operations (0: ``a, b = min,
    max``; 1: only ``a = min``; 2: only ``b = max``) to apply in order to slots ``0..n-1``, and
    the slot that then holds the median.
    """
    size = 1
    while size < n:
        size *= 2
    slot = list(range(n)) + [-1] * (size - n)       # wire -> buffer slot, -1: constant +inf
    kept = []
    for i, j in _batcher_pairs(size):
        si, sj = slot[i], slot[j]
        if sj < 0:                                   # min(x, inf) = x stays, inf stays
            continue
        if si < 0:                                   # inf moves to j, the value to i
            slot[i], slot[j] = sj, -1
            continue
        kept.append((si, sj))
    out = slot[n // 2]
    needed = {out}
    ops = []
    for a, b in reversed(kept):
        na, nb = a in needed, b in needed
        if not (na or nb):
            continue
        ops.append((a, b, _FULL if (na and nb) else (_MIN_ONLY if na else _MAX_ONLY)))
        needed.add(a)
        needed.add(b)
    ops.reverse()
    arr = np.array(ops, dtype=np.int64).reshape(-1, 3)
    return (np.ascontiguousarray(arr[:, 0]), np.ascontiguousarray(arr[:, 1]),
            np.ascontiguousarray(arr[:, 2]), out)


@lru_cache(maxsize=32)
def median_schedule(n: int):
    """`median_network` (n) as an out-of-place schedule over ``n + 2`` buffer rows.

    Every compare-exchange reads two rows and writes its min and/or max to free rows, and the
    slot -> row map is renamed instead of overwriting in place: LLVM vectorises a loop whose
    stores cannot alias its loads (measured 15x faster per element than in-place min/max here).

    Returns ``(src_a, src_b, dst_min, dst_max, op, out_row, n_rows)``; ``dst_min`` / ``dst_max`` is
    -1 where the operation does not write it (op 1: min only; op 2: max only).
    """
    a_s, b_s, ops, out = median_network(n)
    row = list(range(n))
    free = [n + 1, n]
    rec = []
    for a, b, op in zip(a_s.tolist(), b_s.tolist(), ops.tolist()):
        ra, rb = row[a], row[b]
        dmin = dmax = -1
        if op in (_FULL, _MIN_ONLY):
            dmin = free.pop()
        if op in (_FULL, _MAX_ONLY):
            dmax = free.pop()
        rec.append((ra, rb, dmin, dmax, op))
        if dmin >= 0:
            free.append(ra)
            row[a] = dmin
        if dmax >= 0:
            free.append(rb)
            row[b] = dmax
    arr = np.array(rec, dtype=np.int64).reshape(-1, 5)
    cols = [np.ascontiguousarray(arr[:, k]) for k in range(5)]
    return (*cols, row[out], n + 2)


@njit(parallel=True, cache=True, fastmath=FASTMATH_NONE, error_model=ERROR_MODEL)
def _median_network_kernel(P, wr, wc, sa, sb, dmin, dmax, sop, out_row, n_rows, n_chunks, out):
    """Median of each ``wr x wc`` window of ``P`` by the out-of-place schedule of
    `median_schedule`, a whole output row at a time."""
    rows, cols = out.shape
    n_ops = sa.shape[0]
    for ch in prange(n_chunks):
        a = ch * rows // n_chunks
        b = (ch + 1) * rows // n_chunks
        buf = np.empty((n_rows, cols), dtype=P.dtype)
        for i in range(a, b):
            t = 0
            for y in range(wr):
                for x in range(wc):
                    src = P[i + y, x:x + cols]
                    dst = buf[t]
                    for j in range(cols):
                        dst[j] = src[j]
                    t += 1
            for q in range(n_ops):
                ra = buf[sa[q]]
                rb = buf[sb[q]]
                op = sop[q]
                if op == 0:
                    lo = buf[dmin[q]]
                    hi = buf[dmax[q]]
                    for j in range(cols):
                        u = ra[j]
                        v = rb[j]
                        lo[j] = min(u, v)
                        hi[j] = max(u, v)
                elif op == 1:
                    lo = buf[dmin[q]]
                    for j in range(cols):
                        lo[j] = min(ra[j], rb[j])
                else:
                    hi = buf[dmax[q]]
                    for j in range(cols):
                        hi[j] = max(ra[j], rb[j])
            res = buf[out_row]
            orow = out[i]
            for j in range(cols):
                orow[j] = res[j]


@njit(cache=True, fastmath=FASTMATH_NONE, error_model=ERROR_MODEL)
def _select_kth(a, n, k):
    """k-th smallest of ``a[:n]`` (0-based), reordering ``a`` in place (Wirth 1976)."""
    lo = 0
    hi = n - 1
    while lo < hi:
        x = a[k]
        i = lo
        j = hi
        while True:
            while a[i] < x:
                i += 1
            while x < a[j]:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo = i
        if k < i:
            hi = j
    return a[k]


@njit(parallel=True, cache=True, fastmath=FASTMATH_NONE, error_model=ERROR_MODEL)
def _median_kernel(P, wr, wc, n_chunks, out):
    """Median of each ``wr x wc`` window of the padded image ``P`` into ``out``."""
    rows, cols = out.shape
    n = wr * wc
    k = n // 2
    for ch in prange(n_chunks):
        a = ch * rows // n_chunks
        b = (ch + 1) * rows // n_chunks
        buf = np.empty(n, dtype=P.dtype)
        for i in range(a, b):
            for j in range(cols):
                t = 0
                for y in range(wr):
                    for x in range(wc):
                        buf[t] = P[i + y, j + x]
                        t += 1
                out[i, j] = _select_kth(buf, n, k)


#: Square windows with an unrolled register kernel in ``_median_unrolled.py`` (3 x 3 to 7 x 7:
#: 4-5x faster than the row schedule here; larger ones compile too slowly to pay).
UNROLLED = (3, 5, 7)

UNROLLED_MODULE = "_median_unrolled.py"
"""File name of the generated kernels, beside this module."""


def unrolled_source(sizes=UNROLLED) -> str:
    """Python source of the unrolled register kernels, one per square window in `sizes`.

    Each kernel ``_median_unrolled_<n>(P, n_chunks, out)`` reads the padded image ``P`` (rows +
    n - 1, cols + n - 1) and writes the median of every n x n window into ``out`` (rows, cols),
    applying `median_network` (n * n) to local variables. Regenerate the module with
    ``python scripts/make_median_kernels.py``.
    """
    head = ['"""Unrolled median selection networks (generated by '
            '`layerseg.filters.median.unrolled_source`;',
            'do not edit: run ``python -m layerseg.filters.median`` to regenerate)."""',
            "",
            "from numba import njit, prange",
            "",
            "from ._config import ERROR_MODEL, FASTMATH_NONE",
            ""]
    out = head
    for n in sizes:
        a_s, b_s, ops, mid = median_network(n * n)
        out += ["",
                "@njit(parallel=True, cache=True, fastmath=FASTMATH_NONE, error_model=ERROR_MODEL)",
                f"def _median_unrolled_{n}(P, n_chunks, out):",
                f'    """Median of every {n} x {n} window of ``P`` into ``out`` '
                f'({len(a_s)} min/max steps)."""',
                "    rows, cols = out.shape",
                "    for ch in prange(n_chunks):",
                "        r0 = ch * rows // n_chunks",
                "        r1 = (ch + 1) * rows // n_chunks",
                "        for i in range(r0, r1):",
                "            for j in range(cols):"]
        t = 0
        for y in range(n):
            for x in range(n):
                out.append(f"                v{t} = P[i + {y}, j + {x}]")
                t += 1
        for a, b, op in zip(a_s.tolist(), b_s.tolist(), ops.tolist()):
            if op == _FULL:
                out.append(f"                v{a}, v{b} = min(v{a}, v{b}), max(v{a}, v{b})")
            elif op == _MIN_ONLY:
                out.append(f"                v{a} = min(v{a}, v{b})")
            else:
                out.append(f"                v{b} = max(v{a}, v{b})")
        out.append(f"                out[i, j] = v{mid}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def median_filter(image, size=5) -> np.ndarray:
    """Median filter with an odd window, exactly equal to ``scipy.ndimage.median_filter``.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        float32 or float64 (kept), or integers (converted to float32). Any intensity domain
        (envelope or display grey levels): the median commutes with monotone mappings.
    size : odd int or (rows, cols)
        Window size in pixels (default 5), each side odd and no larger than the image.

    Returns
    -------
    ndarray, same shape and dtype as `image` (float32 for integer input). Boundaries are
    mirrored about the edge (scipy's ``mode='reflect'``), so the result equals
    ``scipy.ndimage.median_filter(image, size=size)`` bit for bit.

    Raises
    ------
    FilterInputError
        NaN/inf, float16 or non-numeric image, even or oversized window.
    """
    img = check_image(image)
    wr, wc = check_window(size, img.shape, "size")
    P = np.pad(img, ((wr // 2, wr // 2), (wc // 2, wc // 2)), mode="symmetric")
    out = np.empty_like(img)
    n_chunks = max(1, min(img.shape[0], 4 * numba.get_num_threads()))
    if wr == wc and wr in UNROLLED:
        from . import _median_unrolled
        getattr(_median_unrolled, f"_median_unrolled_{wr}")(P, n_chunks, out)
    elif wr * wc <= NETWORK_MAX:
        sa, sb, dmin, dmax, sop, out_row, n_rows = median_schedule(wr * wc)
        _median_network_kernel(P, wr, wc, sa, sb, dmin, dmax, sop, out_row, n_rows, n_chunks, out)
    else:
        _median_kernel(P, wr, wc, n_chunks, out)
    return out

