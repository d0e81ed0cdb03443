"""The ordered search: the best labelling that obeys a region profile in every column.

Given per-pixel scores for the labels 0-7 (log-probabilities from a model, or negative costs from
image features; higher is better), `ordered_search` finds K+1 integer surfaces per column that
maximise the total score of the labelling they define (`layerseg.layers.surfaces` conventions:
background above ``s_0`` and below ``s_K``, profile layer k on rows ``s_k <= r < s_{k+1}``), under

* order: the profile's layer sequence in every column (always);
* thickness: per layer, a minimum and maximum thickness in mm (converted to whole rows with the
  axial spacing: min rounded up, max rounded down), with zero thickness (absence) allowed for a
  layer without a minimum, or listed in ``absent_ok``;
* smoothness (optional): ``|s_k[c] - s_k[c+1]| <= max_jump_px`` for every surface and neighbouring
  columns.

Method
------
Without smoothness the columns are independent and each is solved exactly by dynamic programming
over the surfaces: with ``P_l[b]`` the prefix sum of label l's scores down the column,
``g_0[b] = P_0[b]`` and ``g_{k+1}[b] = P_{l_k}[b] + max_{a in A_k(b)} (g_k[a] - P_{l_k}[a])`` where
``A_k(b)`` holds the tops a whose thickness ``b - a`` layer k allows; the windowed maximum is kept
with a monotone queue (a running maximum for a layer without limits), so a column costs
O(rows x K), and tiles of columns run in parallel (``prange``).

With smoothness the surfaces are coupled across columns; the exact optimum is a min-cut problem
(Li et al. 2006). By default (``smooth_method="ascent"``) this module uses a documented
approximation instead, block coordinate ascent from two feasible starts, keeping the better result:

1. the per-column exact answer made feasible: top down, each surface is the jump-limited path
   closest (truncated L1, Viterbi) to its per-column depths among those that keep the order and
   thickness limits with the surface above and leave room for the obligatory layers below;
2. the best *flat* answer (the exact 1-D optimum on the column-summed scores, which meets every
   limit with zero jumps), ascended first on blocks of 8 columns (surfaces constant over a block:
   the same problem restricted, at an eighth of the cost per pass), then repeated over its blocks.

From each start, one surface at a time is re-solved exactly by dynamic programming along the
columns (Viterbi, states = depth, transitions within the jump limit, each column's depths limited
by the neighbouring surfaces' order and thickness limits), alternating top-down and bottom-up
passes until a pass no longer improves the total. The first start ascends to convergence; the
flat one, which creeps (each pass moves a surface only as far as its neighbours' limits allow),
gets 10 passes to overtake it and ascends on only if it has. Every step keeps all constraints
and never lowers the total score, so the answer always obeys the jump, order and thickness
limits; it may be a local optimum (the tests measure how close it comes to known smooth
surfaces). A pass costs O(K x cols x rows), and so does each start.

``smooth_method="mincut"`` solves the same problem exactly as a minimum s-t cut (Li et al. 2006)
through PyMaxflow, with (K+1) x rows x cols nodes: practical for small frames and used by the tests
to measure the ascent (on noisy 60 x 60 frames it reaches the exact optimum or comes within 2 % of
the exact optimum's gain over the flat answer). It cannot express "absent or at least the minimum".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from ..errors import ConfigError, ScoreMapError, require_optional
from .profiles import LABEL_INDEX, N_LABELS, Profile
from .surfaces import as_profile, check_spacing, surfaces_to_labels

__all__ = ["SearchResult", "ordered_search", "search_limits_rows", "labelling_score"]

_NEG = -np.inf
_BELOW = N_LABELS
"""Index of the optional ninth score plane of `_search`: the background below the deepest layer
(label 0 there), when it is scored apart from the background above the skin."""
_GAIN_RTOL = 1e-9
"""A surface move is kept only when it raises the total by more than this (relative); stops ties
from cycling."""
_GUIDE_TRUNCATION_ROWS = 8.0
"""Per-column depths further than this from the smooth start path cost no more (outliers)."""


@dataclass
class SearchResult:
    """The answer of `ordered_search`.

    Attributes
    ----------
    labels : ndarray of uint8, shape (rows, cols)
        Label map (0-7), ordered under the profile in every column.
    surfaces : ndarray of float64, shape (K+1, cols)
        Integer-valued surface depths in rows (see `layerseg.layers.surfaces`).
    flags : list of str
        QC flags, e.g. a limit that was dropped because it could not be met.
    score : float
        Total score of the labelling.
    method : str
        ``"per-column exact"`` or ``"smooth coordinate ascent (N passes)"``.
    """

    labels: np.ndarray
    surfaces: np.ndarray
    flags: list[str] = field(default_factory=list)
    score: float = float("nan")
    method: str = ""


# --------------------------------------------------------------------------- kernels

@njit(cache=True)
def _column_dp(P, n, mn, mx, absent, g, h, arg, dq, out_s, k_from, k_keep, keep, bot):
    """Exact DP for one column. P: (K+1, n+1) prefix sums, row 0 background, row k+1 layer k
    (and row K+1, the background below the deepest layer, when it is scored apart: `bot` is the
    row of the background below, 0 or K+1).
    Writes the K+1 surfaces to out_s; returns the best total score. g: (2, n+1), the DP rows of
    the current and the next surface in turn (small enough for the L1 cache with the other
    buffers at 600 rows); arg: (K+1, n+1) back-pointers.

    The DP row of surface k (the top of layer k) depends on the background's and layers
    0..k-1's scores only. `k_keep` >= 0: that row of surface `k_keep` is copied into `keep`
    ((n+1,)). `k_from` > 0: the DP starts at surface `k_from` from the row the caller put in
    ``g[k_from & 1]`` and the back-pointers in ``arg[1..k_from]`` (kept from a solve of the
    same column whose scores of the background above and those layers were the same); P's
    rows 1..k_from (and row 0 when `bot` is K+1) are then not read."""
    n_layers = mn.shape[0]
    if k_from == 0:
        for b in range(n + 1):
            g[0, b] = P[0, b]
    for k in range(k_from, n_layers):
        if k == k_keep:
            for b in range(n + 1):
                keep[b] = g[k & 1, b]
        lo_t = mn[k]
        hi_t = mx[k]
        Pk = P[k + 1]
        gk = g[k & 1]
        gn = g[(k + 1) & 1]
        if lo_t == 0 and hi_t >= n:
            # no limits: the window is every a <= b, a running maximum
            run = _NEG
            ra = -1
            for b in range(n + 1):
                v = gk[b] - Pk[b]
                if v >= run and v > _NEG:
                    run = v
                    ra = b
                if ra >= 0:
                    gn[b] = run + Pk[b]
                else:
                    gn[b] = _NEG
                arg[k + 1, b] = ra
            continue
        for a in range(n + 1):
            h[a] = gk[a] - Pk[a]
        head = 0
        tail = 0
        for b in range(n + 1):
            a_new = b - lo_t
            if a_new >= 0 and h[a_new] > _NEG:
                while tail > head and h[dq[tail - 1]] <= h[a_new]:
                    tail -= 1
                dq[tail] = a_new
                tail += 1
            while tail > head and dq[head] < b - hi_t:
                head += 1
            best = _NEG
            besta = -1
            if tail > head:
                best = h[dq[head]]
                besta = dq[head]
            if absent[k] and lo_t > 0 and h[b] > best:
                best = h[b]
                besta = b
            if besta >= 0:
                gn[b] = best + Pk[b]
            else:
                gn[b] = _NEG
            arg[k + 1, b] = besta
    best = _NEG
    bb = -1
    for b in range(n + 1):
        v = g[n_layers & 1, b] + P[bot, n] - P[bot, b]
        if v > best:
            best = v
            bb = b
    out_s[n_layers] = bb
    for k in range(n_layers, 0, -1):
        out_s[k - 1] = arg[k, int(out_s[k])]
    return best


MAX_PASSES = 50
"""Most coordinate-ascent passes of `ordered_search` unless told."""

_COARSE_BLOCK = 8
"""Columns per block of the flat start's first, coarse ascent (`_coarse_flat_start`)."""

_SECOND_START_PASSES = 10
"""Passes the flat start of the smooth search gets to overtake the guided one
(`_smooth_search`)."""

_TILE = 8
"""Columns per parallel task of the gain tables: one cache line of float64 scores, read row by
row."""

_COLUMN_TILE_BYTES = 256
"""Bytes of each score row a tile of the per-column solve (`_per_column`) reads at a time: its
prefix sums read the score rows 4 cache lines at a time, which the hardware prefetches better
than 1 or 2. Tiles of 32 float64 or 64 float32 columns: measured 17-28 % faster than tiles of 8
(float64, 512 x 512 and 1024 x 1024) and, for the decode's float32 scores on a 600 x 640 grid,
about 10 % faster with 64 columns than with 32 (narrower ones slower still), same answers."""


class _Kept(NamedTuple):
    """What a per-column solve keeps so that a second solve of the same columns, whose scores
    changed only for layers `k` and below, starts at surface `k` (`_column_dp`): each column's
    DP row of surface `k`, `g` ((cols, rows+1)), and its back-pointers of surfaces 1..k, `arg`
    ((cols, k, rows+1))."""

    k: int
    g: np.ndarray
    arg: np.ndarray


def _per_column(scores, labs, mn, mx, absent, surfaces, totals, bad, keep_from=-1,
                resume=None):
    """Solve every column exactly (`_column_dp`) in parallel tiles of columns: writes the K+1
    surfaces (K+1, cols), each column's total (cols,) and whether it held a non-finite score
    (cols,). Tiles of up to `_COLUMN_TILE_BYTES` of each score row, narrower when there are
    few columns so that every thread still gets two tiles.

    `keep_from` k >= 1: also returns a `_Kept` of surface k (8 + 4k bytes per pixel: 24 for
    k = 4); `resume` (a `_Kept` of these columns, in this order): the columns' scores of the
    background above the skin and layers 0..k-1 are those of the solve that kept it, and the
    DP starts at surface k (same answers as a whole solve; the background's and those layers'
    scores are not read, so not checked for non-finite values again). `labs`: the score plane
    of the background above, of layers 0..K-1 and of the background below (K+2). Returns the
    `_Kept` or None."""
    n_lab, n, n_cols = scores.shape
    per = -(-n_cols // (2 * max(1, numba.get_num_threads())))
    tile_max = max(_TILE, _COLUMN_TILE_BYTES // scores.dtype.itemsize)
    tile = int(min(tile_max, max(_TILE, -(-per // _TILE) * _TILE)))
    k_from, k_keep = 0, -1
    keep_g = np.empty((0, 0))
    keep_arg = np.empty((0, 0, 0), dtype=np.int32)
    if resume is not None:
        k_from = int(resume.k)
        keep_g, keep_arg = resume.g, resume.arg
        if keep_g.shape != (n_cols, n + 1) or keep_arg.shape != (n_cols, k_from, n + 1):
            raise ValueError("the kept DP rows do not match these columns")
    elif keep_from >= 1:
        k_keep = int(keep_from)
        keep_g = np.empty((n_cols, n + 1))
        keep_arg = np.empty((n_cols, k_keep, n + 1), dtype=np.int32)
    _per_column_tiles(scores, labs, mn, mx, absent, surfaces, totals, bad, tile, k_from,
                      k_keep, keep_g, keep_arg)
    return _Kept(k_keep, keep_g, keep_arg) if k_keep >= 1 else None


@njit(cache=True, parallel=True)
def _per_column_tiles(scores, labs, mn, mx, absent, surfaces, totals, bad, tile, k_from,
                      k_keep, keep_g, keep_arg):
    """`_per_column`'s kernel: k_from 0 or the surface the kept rows (keep_g, keep_arg) resume
    at; k_keep -1 or the surface whose rows are kept into keep_g, keep_arg."""
    n_lab, n, n_cols = scores.shape
    n_layers = mn.shape[0]
    n_tiles = (n_cols + tile - 1) // tile
    # the background below the deepest layer: its own prefix row when scored apart
    bot = n_layers + 1 if labs[n_layers + 1] != labs[0] else 0
    n_p = n_layers + 2 if bot else n_layers + 1
    for ti in prange(n_tiles):
        c0 = ti * tile
        w = min(tile, n_cols - c0)
        # prefix sums of the tile's columns, reading the score rows contiguously (resuming at
        # surface k_from: not those of layers 0..k_from-1, which the DP does not read, nor the
        # background above when the one below is scored apart)
        P = np.empty((tile, n_p, n + 1))
        acc = np.zeros(tile)
        ok = np.ones(tile, dtype=np.bool_)
        for j in range(n_p):
            if (j >= 1 and j <= k_from) or (j == 0 and k_from > 0 and bot):
                continue
            lab = labs[j]
            for t in range(w):
                acc[t] = 0.0
                P[t, j, 0] = 0.0
            for r in range(n):
                for t in range(w):
                    v = scores[lab, r, c0 + t]
                    if not np.isfinite(v):
                        ok[t] = False
                    acc[t] += v
                    P[t, j, r + 1] = acc[t]
        g = np.empty((2, n + 1))
        h = np.empty(n + 1)
        arg = np.empty((n_layers + 1, n + 1), dtype=np.int32)
        dq = np.empty(n + 1, dtype=np.int32)
        s = np.empty(n_layers + 1)
        none = np.empty(0)
        for t in range(w):
            c = c0 + t
            bad[c] = not ok[t]
            if not ok[t]:
                totals[c] = np.nan
                for j in range(n_layers + 1):
                    surfaces[j, c] = n
                continue
            if k_from > 0:
                for b in range(n + 1):
                    g[k_from & 1, b] = keep_g[c, b]
                for i in range(k_from):
                    for b in range(n + 1):
                        arg[i + 1, b] = keep_arg[c, i, b]
            keep = keep_g[c] if k_keep >= 0 else none
            totals[c] = _column_dp(P[t], n, mn, mx, absent, g, h, arg, dq, s, k_from, k_keep,
                                   keep, bot)
            if k_keep >= 0:
                for i in range(k_keep):
                    for b in range(n + 1):
                        keep_arg[c, i, b] = arg[i + 1, b]
            for j in range(n_layers + 1):
                surfaces[j, c] = s[j]


@njit(cache=True)
def _thick_ok(t, mn, mx, absent):
    if t < 0:
        return False
    if t == 0:
        return mn == 0 or absent
    return t >= mn and t <= mx


@njit(cache=True, parallel=True)
def _gain_table(scores, lab_above, lab_below, U):
    """U[c, d] = sum_{r<d} (score_above - score_below)[r, c], tiles of columns in parallel so the
    score rows are read contiguously."""
    n_lab, n, n_cols = scores.shape
    n_tiles = (n_cols + _TILE - 1) // _TILE
    for ti in prange(n_tiles):
        c0 = ti * _TILE
        w = min(_TILE, n_cols - c0)
        acc = np.zeros(_TILE)
        for t in range(w):
            U[c0 + t, 0] = 0.0
        for r in range(n):
            for t in range(w):
                a = np.float64(scores[lab_above, r, c0 + t])   # float32 scores: in float64
                acc[t] += a - scores[lab_below, r, c0 + t]
                U[c0 + t, r + 1] = acc[t]


@njit(cache=True, parallel=True)
def _gain_table_cols(scores, lab_above, lab_below, cols, U):
    """`_gain_table` in the columns `cols` only (the others of U are left as they are)."""
    n = scores.shape[1]
    for i in prange(cols.shape[0]):
        c = cols[i]
        acc = 0.0
        U[c, 0] = 0.0
        for r in range(n):
            acc += np.float64(scores[lab_above, r, c]) - scores[lab_below, r, c]
            U[c, r + 1] = acc


@njit(cache=True)
def _surface_pass(U, mn, mx, absent, S, j, jump, V, arg, allowed, dq):
    """Re-solve surface j (0..K) with the others fixed, exactly, by Viterbi along columns.
    U[c, d] is the part of the total score that depends on s_j (see `_gain_table`). V: at least
    (2, rows+1), the Viterbi rows of the previous and the current column in turn; arg:
    (cols, rows+1) back-pointers; allowed: unused (kept for the callers' buffers).
    Updates S[j] in place when the total improves; returns the gain (>= 0).

    Each column's Viterbi runs over the depths its neighbouring surfaces and the thickness
    limits leave open (`_pass_box`), not the whole column: with close neighbours (the flat
    start, thin layers) that is a few rows instead of all of them. Same answers, ties
    included, as the whole-column pass (tested against it)."""
    n_cols = U.shape[0]
    n = U.shape[1] - 1
    n_layers = mn.shape[0]
    cur_total = 0.0
    lp = 1
    hp = 0
    for c in range(n_cols):
        cur_total += U[c, int(S[j, c])]
        lo, hi = _pass_box(mn, mx, absent, S, j, c, n, n_layers)
        # depths allowed by the neighbouring surfaces' order and thickness limits: the box
        # less the gaps next to neighbours whose layer may be absent
        a1, b1, a2, b2 = _box_gaps(mn, mx, absent, S, j, c, n_layers)
        if c == 0:
            for d in range(lo, hi + 1):
                gap = (d >= a1 and d <= b1) or (d >= a2 and d <= b2)
                V[0, d] = _NEG if gap else U[0, d]
                arg[0, d] = -1
            lp = lo
            hp = hi
            continue
        Vp = V[(c - 1) & 1]
        Vc = V[c & 1]
        # V[c, d] = U[d] + max of V[c-1] over [d - jump, d + jump] within the previous
        # column's box (monotone queue)
        head = 0
        tail = 0
        nxt = max(lp, lo - jump)
        for d in range(lo, hi + 1):
            top = min(d + jump, hp)
            while nxt <= top:
                if Vp[nxt] > _NEG:
                    while tail > head and Vp[dq[tail - 1]] <= Vp[nxt]:
                        tail -= 1
                    dq[tail] = nxt
                    tail += 1
                nxt += 1
            while tail > head and dq[head] < d - jump:
                head += 1
            gap = (d >= a1 and d <= b1) or (d >= a2 and d <= b2)
            if not gap and tail > head:
                Vc[d] = U[c, d] + Vp[dq[head]]
                arg[c, d] = dq[head]
            else:
                Vc[d] = _NEG
                arg[c, d] = -1
        lp = lo
        hp = hi
    best = _NEG
    bd = -1
    for d in range(lp, hp + 1):
        if V[(n_cols - 1) & 1, d] > best:
            best = V[(n_cols - 1) & 1, d]
            bd = d
    gain = best - cur_total
    if bd < 0 or not gain > _GAIN_RTOL * (1.0 + abs(cur_total)):
        return 0.0
    d = bd
    for c in range(n_cols - 1, -1, -1):
        S[j, c] = d
        if c > 0:
            d = arg[c, d]
    return gain


@njit(cache=True)
def _free_surface_pass(U, mn, mx, absent, S, j):
    """`_surface_pass` for a surface free of the jump limit (jump >= rows: the decode's bottom
    surface): its columns are independent, so each takes its best allowed depth, with no
    Viterbi rows and no back-pointers. The same answer as `_surface_pass`, ties and float sums
    included (tested against it): the Viterbi's value at column c, depth d is
    ``U[c, d] + M`` (``M`` the best value of the column before; ``U[0, d]`` at column 0), the
    path enters column c < last at its deepest best depth and the last column at its
    shallowest, and each value is formed here the same way."""
    n_cols = U.shape[0]
    n = U.shape[1] - 1
    n_layers = mn.shape[0]
    cur_total = 0.0
    for c in range(n_cols):
        cur_total += U[c, int(S[j, c])]
    choice = np.empty(n_cols, dtype=np.int64)
    M = 0.0
    for c in range(n_cols):
        lo, hi = _pass_box(mn, mx, absent, S, j, c, n, n_layers)
        best = _NEG
        deep = -1
        shallow = -1
        a1, b1, a2, b2 = _box_gaps(mn, mx, absent, S, j, c, n_layers)
        for d in range(lo, hi + 1):
            if (d >= a1 and d <= b1) or (d >= a2 and d <= b2):
                continue
            v = U[c, d] if c == 0 else U[c, d] + M
            if v > best:
                best = v
                shallow = d
                deep = d
            elif v == best:
                deep = d
        if deep < 0:
            return 0.0                      # a column with no allowed depth: nothing feasible
        M = best
        choice[c] = deep if c < n_cols - 1 else shallow
    gain = M - cur_total
    if not gain > _GAIN_RTOL * (1.0 + abs(cur_total)):
        return 0.0
    for c in range(n_cols):
        S[j, c] = choice[c]
    return gain


@njit(cache=True)
def _pass_box(mn, mx, absent, S, j, c, n, n_layers):
    """Smallest depth range [lo, hi] (within 0..n) holding every depth of surface j in column c
    that `_thick_ok` allows against surfaces j - 1 and j + 1 (empty when lo > hi)."""
    lo = 0
    hi = n
    if j > 0:
        p = int(S[j - 1, c])
        zero = mn[j - 1] == 0 or absent[j - 1]
        lo = max(lo, p if zero else p + max(mn[j - 1], 1))
        hi = min(hi, p + mx[j - 1])
    if j < n_layers:
        q = int(S[j + 1, c])
        zero = mn[j] == 0 or absent[j]
        lo = max(lo, q - mx[j])
        hi = min(hi, q if zero else q - max(mn[j], 1))
    return lo, hi


@njit(cache=True)
def _box_gaps(mn, mx, absent, S, j, c, n_layers):
    """The depths inside `_pass_box`'s range that `_thick_ok` still refuses: a layer that may be
    absent is either 0 or at least its minimum thick, so next to each neighbour lies a gap of
    depths 1 .. min - 1 rows away. Returns (a1, b1, a2, b2): the gaps [a1, b1] under surface
    j - 1 and [a2, b2] over surface j + 1 (empty when a > b)."""
    a1, b1, a2, b2 = 1, 0, 1, 0
    if j > 0 and (mn[j - 1] == 0 or absent[j - 1]):
        p = int(S[j - 1, c])
        a1, b1 = p + 1, p + mn[j - 1] - 1
    if j < n_layers and (mn[j] == 0 or absent[j]):
        q = int(S[j + 1, c])
        a2, b2 = q - mn[j] + 1, q - 1
    return a1, b1, a2, b2


@njit(cache=True)
def _gain_total(U, S, base):
    """Total score of surfaces S (K+1, cols) from the gain tables U (`_gain_tables`) and each
    column's score with every row the background below the deepest layer, `base` (cols,): a
    row between s_k and s_k+1 gains sum_{j > k} (score above surface j - score below it) = its
    label's score - that background's (telescoping), so the total is base + sum_j U_j[s_j] per
    column, K+1 look-ups instead of a pass over every pixel (`_total_score`; equal up to float
    rounding)."""
    n_s, n_cols, _ = U.shape
    tot = 0.0
    for c in range(n_cols):
        t = base[c]
        for j in range(n_s):
            t += U[j, c, int(S[j, c])]
        tot += t
    return tot


@njit(cache=True)
def _total_score(scores, labs, S):
    n_lab, n, n_cols = scores.shape
    n_s = S.shape[0]
    tot = 0.0
    for c in range(n_cols):
        for r in range(n):
            lab = labs[0]
            if r >= S[n_s - 1, c]:
                lab = labs[n_s]         # the background below the deepest layer
            for k in range(n_s - 1):
                if S[k, c] <= r and r < S[k + 1, c]:
                    lab = labs[k + 1]
                    break
            tot += scores[lab, r, c]
    return tot


# --------------------------------------------------------------------------- validation

def _check_scores(scores, below_ok: bool = False) -> np.ndarray:
    """Scores as a contiguous float32 or float64 array, checked; `below_ok`: a ninth plane, the
    background below the deepest layer (`_BELOW`), is allowed (`_search`)."""
    if not isinstance(scores, np.ndarray):
        scores = np.asarray(scores)
    if scores.ndim != 3 or not (scores.shape[0] == N_LABELS
                                or (below_ok and scores.shape[0] == N_LABELS + 1)):
        raise ScoreMapError(f"score maps must have shape ({N_LABELS}, rows, cols), one map per "
                            f"label 0-7; got shape {scores.shape}")
    if scores.shape[1] < 1 or scores.shape[2] < 1:
        raise ScoreMapError(f"score maps are empty: shape {scores.shape}")
    if scores.dtype.kind not in "fiu" or scores.dtype.itemsize > 8:
        raise ScoreMapError(f"score maps must be real numbers, got dtype {scores.dtype}")
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    return np.ascontiguousarray(scores)


def _per_layer(value, prof: Profile, name: str, default: float) -> np.ndarray:
    out = np.full(prof.n_layers, default, dtype=np.float64)
    if value is None:
        return out
    if isinstance(value, dict):
        for key, v in value.items():
            if key not in LABEL_INDEX or key == "background":
                raise ConfigError(f"{name}: unknown layer {key!r}; layers are "
                                  f"{', '.join(prof.layers)}")
            if v is not None:
                out[prof.position(key)] = float(v)
    elif np.ndim(value) == 0:
        out[:] = float(value)
    else:
        vals = list(value)
        if len(vals) != prof.n_layers:
            raise ConfigError(f"{name}: give one value per layer of the {prof.region} profile "
                              f"({prof.n_layers}: {', '.join(prof.layers)}), got {len(vals)}")
        for i, v in enumerate(vals):
            if v is not None:
                out[i] = float(v)
    if np.any(np.isnan(out)) or np.any(out < 0):
        raise ConfigError(f"{name} must be non-negative numbers in mm, got {value!r}")
    return out


def search_limits_rows(profile, n_rows: int, spacing_mm=None, min_thickness_mm=None,
                       max_thickness_mm=None, absent_ok=None):
    """Per-layer thickness limits of `ordered_search` in whole rows.

    Parameters
    ----------
    profile : Profile or str or None
        Region profile (K layers).
    n_rows : int
        Frame depth in rows.
    spacing_mm : (float, float), optional
        Pixel spacing; required when a limit in mm is given.
    min_thickness_mm, max_thickness_mm : dict or sequence or float, optional
        Per layer (dict by layer name, or K values in profile order, or one value for all).
    absent_ok : iterable of str, optional
        Layers that may be absent (zero thickness) despite a minimum.

    Returns
    -------
    mn, mx : ndarray of int64, shape (K,)
        Minimum (rounded up) and maximum (rounded down) thickness in rows.
    absent : ndarray of bool, shape (K,)
        Whether zero thickness is allowed.
    flags : list of str
        Limits dropped because they cannot be met (see `ordered_search`).
    """
    prof = as_profile(profile)
    flags: list[str] = []
    K = prof.n_layers
    given = min_thickness_mm is not None or max_thickness_mm is not None
    if given:
        ay, _ = check_spacing(spacing_mm, "thickness limits in mm")
    mn_mm = _per_layer(min_thickness_mm, prof, "min_thickness_mm", 0.0)
    mx_mm = _per_layer(max_thickness_mm, prof, "max_thickness_mm", np.inf)
    for i in range(K):
        if mn_mm[i] > mx_mm[i]:
            raise ConfigError(f"{prof.layers[i]}: min_thickness_mm {mn_mm[i]:g} exceeds "
                              f"max_thickness_mm {mx_mm[i]:g}")
    absent = np.zeros(K, dtype=np.bool_)
    for name in absent_ok or ():
        if name not in prof.layers:
            raise ConfigError(f"absent_ok: {name!r} is not a layer of the {prof.region} "
                              f"profile {prof.layers}")
        absent[prof.position(name)] = True
    mn = np.zeros(K, dtype=np.int64)
    mx = np.full(K, n_rows, dtype=np.int64)
    if given:
        for i in range(K):
            mn[i] = min(math.ceil(mn_mm[i] / ay - 1e-9), n_rows + 1)
            if np.isfinite(mx_mm[i]):
                mx[i] = min(math.floor(mx_mm[i] / ay + 1e-9), n_rows)
            if mx[i] < mn[i]:
                flags.append(f"max_thickness_mm[{prof.layers[i]}] dropped: no whole number of "
                             f"rows ({ay:g} mm each) lies between the minimum {mn_mm[i]:g} mm and "
                             f"the maximum {mx_mm[i]:g} mm")
                mx[i] = n_rows
    absent |= mn == 0
    # the layers that must be present need their minimum rows; drop minima, deepest first
    for i in range(K - 1, -1, -1):
        need = int(mn[~absent].sum())
        if need <= n_rows:
            break
        if not absent[i]:
            flags.append(f"min_thickness_mm[{prof.layers[i]}] dropped: the minimum thicknesses "
                         f"need {need} rows, the frame has {n_rows}")
            mn[i] = 0
            absent[i] = True
    return mn, mx, absent, flags


def _check_jump(max_jump_px, K: int) -> np.ndarray:
    try:
        jump = np.asarray(max_jump_px, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        jump = None
    if jump is not None and jump.size == 1:
        jump = np.repeat(jump, K + 1)
    if jump is None or jump.size != K + 1 or np.any(~np.isfinite(jump)) or np.any(jump < 0) \
            or np.any(jump != np.round(jump)):
        raise ConfigError(f"max_jump_px must be a non-negative whole number of rows, or one per "
                          f"surface ({K + 1}), got {max_jump_px!r}")
    return jump.astype(np.int64)


def labelling_score(scores, surfaces, profile=None) -> float:
    """Total score of the labelling defined by integer surfaces (for checks and comparisons).

    Parameters
    ----------
    scores : ndarray of float, shape (8, rows, cols)
    surfaces : ndarray, shape (K+1, cols), integer-valued depths in rows
    profile : Profile or str or None
    """
    prof = as_profile(profile)
    sc = _check_scores(scores)
    labs = np.array((0,) + prof.labels + (0,), dtype=np.int64)
    return float(_total_score(sc, labs, np.ascontiguousarray(surfaces, dtype=np.float64)))


# --------------------------------------------------------------------------- public

def ordered_search(scores, profile: Profile | str | None = None, spacing_mm=None,
                   min_thickness_mm=None, max_thickness_mm=None, max_jump_px: int | None = None,
                   absent_ok=None, max_passes: int = MAX_PASSES, smooth_method: str = "ascent"
                   ) -> SearchResult:
    """The labelling that obeys a region profile in every column and has the best total score.

    Parameters
    ----------
    scores : ndarray of float32 or float64, shape (8, rows, cols)
        Per-pixel score of each label 0-7 (log-probabilities or negative costs; higher is
        better). Labels outside the profile are ignored.
    profile : Profile or str or None
        Region profile or region name (None -> ``default``).
    spacing_mm : (float, float), optional
        Pixel spacing (axial, lateral) in mm; required with thickness limits.
    min_thickness_mm, max_thickness_mm : dict or sequence or float, optional
        Per-layer limits in mm: a dict by layer name, K values in profile order, or one value
        for every layer. A layer with a positive minimum must be present in every column unless
        listed in `absent_ok`.
    max_jump_px : int or sequence of K+1 int, optional
        Largest change of a surface's depth, in rows, between neighbouring columns (one for all
        surfaces, or one per surface, top first). None: the columns are solved independently
        (exact).
    absent_ok : iterable of str, optional
        Layers that may be absent (zero thickness) even though they have a minimum thickness.
    max_passes : int
        Most coordinate-ascent passes with `max_jump_px` (a flag is raised when reached).
    smooth_method : {"ascent", "mincut"}
        With `max_jump_px`: ``"ascent"`` (default) is the fast coordinate ascent described in the
        module docstring; ``"mincut"`` is the exact optimum as a minimum cut (Li et al. 2006,
        through PyMaxflow: ``pip install 'layerseg[mincut]'``), with (K+1) x rows x cols graph
        nodes: for small frames and for checking the ascent. It cannot express `absent_ok`
        layers that have a minimum.

    Returns
    -------
    SearchResult
        ``labels`` (uint8, (rows, cols)), ``surfaces`` (float64, (K+1, cols)), ``flags``,
        ``score``, ``method``.

    Raises
    ------
    ScoreMapError
        Wrong shape or number of classes, or NaN / infinite scores (clip log-probabilities).
    ProfileError
        Unknown region.
    SpacingRequiredError
        Thickness limits without `spacing_mm`.
    ConfigError
        Malformed limits (negative, minimum above maximum, unknown layer).

    Notes
    -----
    Limits that cannot all be met in the frame's depth are relaxed and named in ``flags``: the
    minima of the deepest obligatory layers are dropped first. See the module docstring for the
    method and its cost.
    """
    sc = _check_scores(scores)      # eight planes (the ninth is `_search`'s own)
    return _search(sc, profile, spacing_mm, min_thickness_mm, max_thickness_mm,
                   max_jump_px, absent_ok, max_passes, smooth_method)[0]


class _PerColumn(NamedTuple):
    """`_search`'s per-column exact answer beside its smooth one: `surfaces` (K+1, cols), total
    `score`, `flags`, each column's score `totals` (cols,), and the ascent's gain tables `gains`
    ((K+1, cols, rows+1)) or None; the per-column DP rows `kept` for a second solve (`_Kept`,
    when asked for) and the guided start `start` ((K+1, cols), `_guided_start`) or None."""

    surfaces: np.ndarray
    score: float
    flags: list
    totals: np.ndarray
    gains: np.ndarray | None
    kept: _Kept | None = None
    start: np.ndarray | None = None


@dataclass
class _Warm:
    """What a second search with the same limits reuses from the first (`_search`) when only
    the scores of the labels `labels` in the columns `changed` (bool, (cols,)) differ: its
    smooth answer `surfaces` (K+1, cols), a start of the second ascent beside the guided one;
    its gain tables `gains` ((K+1, cols, rows+1), `_gain_tables`), updated in place in those
    labels' tables and columns; its per-column answer (`pc_surfaces` (K+1, cols), `pc_totals`
    (cols,)) outside the changed columns (the columns are independent; the changed ones are
    solved again). Optional: the first per-column solve's kept DP rows `kept` (`_Kept`; the
    changed columns then start at its surface when no layer above it changed) and the first
    guided start `start` ((K+1, cols); its surfaces above the first one whose per-column
    depths changed are kept)."""

    surfaces: np.ndarray
    pc_surfaces: np.ndarray
    pc_totals: np.ndarray
    gains: np.ndarray
    changed: np.ndarray
    labels: tuple
    kept: _Kept | None = None
    start: np.ndarray | None = None


def _search(scores, profile=None, spacing_mm=None, min_thickness_mm=None, max_thickness_mm=None,
            max_jump_px=None, absent_ok=None, max_passes: int = MAX_PASSES,
            smooth_method: str = "ascent", warm: _Warm | None = None, keep_from: int = -1):
    """`ordered_search`, and with `max_jump_px` also the per-column exact answer the smooth
    search starts from: ``(result, per_column)``, `per_column` being None or that answer
    (`_PerColumn`), so `layerseg.layers.decode` compares the two without solving the
    columns twice. `warm` (`_Warm`, with `max_jump_px` and the ascent): the decode's second
    search, after its evidence rule lowered the scores of some columns, starts from the first
    one's answer as well as from the guided start, and solves only the changed columns
    again. `keep_from` k >= 1 (a layer index): the per-column solve keeps its DP rows of
    surface k (`_Kept`, in `per_column.kept`) for a warm second search whose changed layers
    are k or deeper.

    `scores` may hold a ninth plane (`_BELOW`): the score of the background below the deepest
    layer, where it differs from the background above the skin (plane 0); the warm search
    names it ``"background_below"`` among its changed labels. A change there enters only the
    last step of each column's DP, so the kept DP rows stay valid."""
    prof = as_profile(profile)
    sc = _check_scores(scores, below_ok=True)
    _, n, n_cols = sc.shape
    mn, mx, absent, flags = search_limits_rows(prof, n, spacing_mm, min_thickness_mm,
                                               max_thickness_mm, absent_ok)
    below = _BELOW if sc.shape[0] > N_LABELS else 0
    labs = np.array((0,) + prof.labels + (below,), dtype=np.int64)
    K = prof.n_layers
    jump = None if max_jump_px is None else _check_jump(max_jump_px, K)
    if smooth_method not in ("ascent", "mincut"):
        raise ConfigError(f"smooth_method must be 'ascent' or 'mincut', got {smooth_method!r}")
    if warm is not None and (jump is None or smooth_method != "ascent"):
        raise ConfigError("a warm start needs the jump-limited ascent")
    cols = None if warm is None else np.flatnonzero(warm.changed)
    # a warm solve starts at the kept surface when no layer above it changed (the background
    # above the skin enters every surface's DP row: no resume when it changed; the one below
    # enters only the last step)
    resume = None
    if warm is not None and warm.kept is not None and "background" not in warm.labels:
        changed = [prof.layers.index(name) for name in warm.labels
                   if name != "background_below"]
        if warm.kept.k <= min(changed, default=K):
            resume = warm.kept
    kept = None
    if cols is None or cols.size == n_cols:
        surfaces = np.empty((K + 1, n_cols), dtype=np.float64)
        totals = np.empty(n_cols, dtype=np.float64)
        bad = np.zeros(n_cols, dtype=np.bool_)
        kept = _per_column(sc, labs, mn, mx, absent, surfaces, totals, bad,
                           keep_from=keep_from if warm is None else -1, resume=resume)
    else:
        # the columns are independent: only those whose scores changed are solved again
        surfaces = np.array(warm.pc_surfaces, dtype=np.float64)
        totals = np.array(warm.pc_totals, dtype=np.float64)
        bad = np.zeros(n_cols, dtype=np.bool_)
        if cols.size:
            s_sub = np.empty((K + 1, cols.size))
            t_sub = np.empty(cols.size)
            b_sub = np.zeros(cols.size, dtype=np.bool_)
            sub = None if resume is None else \
                _Kept(resume.k, resume.g[cols], resume.arg[cols])
            _per_column(np.ascontiguousarray(sc[:, :, cols]), labs, mn, mx, absent, s_sub,
                        t_sub, b_sub, resume=sub)
            surfaces[:, cols], totals[cols], bad[cols] = s_sub, t_sub, b_sub
    if bad.any():
        cols = np.flatnonzero(bad)
        raise ScoreMapError(f"score maps hold NaN or infinite values in {cols.size} column(s), "
                            f"first column {cols[0]}; clip log-probabilities to a finite floor")
    if max_jump_px is None:
        labels = surfaces_to_labels(surfaces, prof, n)
        return SearchResult(labels, surfaces, flags, float(totals.sum()), "per-column exact"), \
            None
    per_column_flags = list(flags)
    U = None
    start = None
    if smooth_method == "mincut":
        S = _mincut_search(sc, labs, mn, mx, absent, jump)
        method = "smooth exact min-cut"
        total = float(_total_score(sc, labs, S))
    else:
        if warm is None:
            U = _gain_tables(sc, labs, K)
        else:
            # a table depends on the labels on both sides of its surface and on each column
            # alone: only the tables of the changed labels, in the changed columns, change
            U = warm.gains
            hit = np.array([_BELOW if name == "background_below" else LABEL_INDEX[name]
                            for name in warm.labels], dtype=np.int64)
            for j in range(K + 1):
                if not cols.size or (labs[j] not in hit and labs[j + 1] not in hit):
                    continue
                if cols.size == n_cols:
                    _gain_table(sc, labs[j], labs[j + 1], U[j])  # tiles: rows read contiguously
                else:
                    _gain_table_cols(sc, labs[j], labs[j + 1], cols, U[j])
        S, passes, converged, total, start = _smooth_search(
            sc, labs, mn, mx, absent, jump, int(max_passes), surfaces, U,
            None if warm is None else warm.surfaces,
            None if warm is None or warm.start is None else (warm.start, warm.pc_surfaces))
        if not converged:
            flags.append(f"smooth search stopped after max_passes={max_passes} passes before "
                         "converging")
        method = f"smooth coordinate ascent ({passes} passes)"
    labels = surfaces_to_labels(S, prof, n)
    per_column = _PerColumn(surfaces, float(totals.sum()), per_column_flags, totals, U, kept,
                            start)
    return SearchResult(labels, S, flags, float(total), method), per_column


@njit(cache=True)
def _fit_surface(f, lo, hi, alt, jump, trunc, V, arg, out):
    """Integer path d_c with |d_c - d_{c+1}| <= jump and d_c in [lo_c, hi_c] or d_c == alt_c that
    is closest to targets f_c in truncated L1 (min(|d - f|, trunc)), by Viterbi along columns.
    Some allowed depth must exist in every column.

    The best predecessor of each depth (the largest ``V[c-1, a]`` over ``|a - d| <= jump``, the
    shallowest among equals) comes from a monotone queue, and each column visits only the span
    of its allowed depths (from the smaller of lo_c and alt_c to the larger of hi_c and alt_c):
    a column costs O(span) whatever the jump (a free surface has jump = rows: a scan of the
    window would cost O(rows**2)), and a thin layer's surface a few rows, not the whole column.
    V ((2, rows+1): the Viterbi rows of the previous and the current column in turn) and arg
    ((cols, rows+1) back-pointers, int32 or wider) are written in those spans (clipped to
    0..rows) only, and read nowhere else (V is -inf at the span's depths not allowed). Without
    a feasible path (possible only when jump is below the rows) `out` is -1 from the last
    column where none reaches, up to the first."""
    n_cols = f.shape[0]
    n1 = V.shape[1]
    dq = np.empty(n1, dtype=np.int64)
    pa = 0
    pb = -1
    for c in range(n_cols):
        a, b = _allowed_span(lo[c], hi[c], alt[c], n1)
        Vp = V[(c - 1) & 1]
        Vc = V[c & 1]
        head = 0
        tail = 0
        nxt = pa
        for d in range(a, b + 1):
            if c > 0:
                # the window [d - jump, d + jump] of the previous column's span: finite values
                # only, kept in decreasing order with the shallowest first among equals
                top = min(d + jump, pb)
                while nxt <= top:
                    if Vp[nxt] > _NEG:
                        while tail > head and Vp[dq[tail - 1]] < Vp[nxt]:
                            tail -= 1
                        dq[tail] = nxt
                        tail += 1
                    nxt += 1
                while tail > head and dq[head] < d - jump:
                    head += 1
            if not ((d >= lo[c] and d <= hi[c]) or d == alt[c]):
                Vc[d] = _NEG
                arg[c, d] = -1
                continue
            e = abs(d - f[c])
            u = -(e if e < trunc else trunc)
            if c == 0:
                Vc[d] = u
                arg[c, d] = -1
            elif tail > head:
                Vc[d] = u + Vp[dq[head]]
                arg[c, d] = dq[head]
            else:
                Vc[d] = _NEG
                arg[c, d] = -1
        pa = a
        pb = b
    best = _NEG
    d = -1
    Vl = V[(n_cols - 1) & 1]
    for a in range(pa, pb + 1):
        if Vl[a] > best:
            best = Vl[a]
            d = a
    for c in range(n_cols - 1, -1, -1):
        out[c] = d
        if c > 0:
            # no feasible path (d = -1): -1 from here on, never a read outside the spans
            d = arg[c, d] if d >= 0 else -1


@njit(cache=True)
def _allowed_span(lo, hi, alt, n1):
    """The depths from the smallest to the largest allowed one of a column of `_fit_surface`
    (the range [lo, hi] and the alternative alt, when given), within 0..n1-1."""
    if lo <= hi:
        a = lo
        b = hi
        if alt >= 0:
            a = min(a, alt)
            b = max(b, alt)
    else:
        a = alt
        b = alt
    return max(a, 0), min(b, n1 - 1)


def _guided_start(guide, n, mn, mx, absent, jump, trunc=_GUIDE_TRUNCATION_ROWS, earlier=None):
    """Feasible surfaces near the per-column answer `guide`: each surface, top down, is the
    jump-limited path closest to its per-column depths among those that keep the order and
    thickness limits with the surface above and leave room for the obligatory layers below.

    Surface k depends on the limits and on `guide`'s surfaces 0..k only: with `earlier`
    (``(start, guide)`` of an earlier call under the same limits), the surfaces above the first
    one whose guide differs are taken from that start (same answer)."""
    K = mn.shape[0]
    n_cols = guide.shape[1]
    mand = np.where(absent, 0, mn)
    room = np.concatenate([np.cumsum(mand[::-1])[::-1], [0]])   # rows needed below surface k
    S = np.empty((K + 1, n_cols))
    k0 = 0
    if earlier is not None:
        old_start, old_guide = earlier
        while k0 <= K and np.array_equal(guide[k0], old_guide[k0]):
            k0 += 1
        S[:k0] = old_start[:k0]
        if k0 > K:
            return S
    V = np.empty((2, n + 1))
    arg = np.empty((n_cols, n + 1), dtype=np.int32)
    out = np.empty(n_cols, dtype=np.int64)
    for k in range(k0, K + 1):
        if k == 0:
            lo = np.zeros(n_cols, dtype=np.int64)
            hi = np.full(n_cols, n - room[0], dtype=np.int64)
            alt = np.full(n_cols, -1, dtype=np.int64)
        else:
            prev = S[k - 1].astype(np.int64)
            lo = prev + mn[k - 1]
            hi = np.minimum(prev + mx[k - 1], n - room[k])
            alt = prev if absent[k - 1] else np.full(n_cols, -1, dtype=np.int64)
        _fit_surface(np.ascontiguousarray(guide[k]), lo, hi, np.ascontiguousarray(alt),
                     int(jump[k]), trunc, V, arg, out)
        S[k] = out
    return S


def _gain_tables(sc, labs, K):
    """`_gain_table` of every surface 0..K, shape (K+1, cols, rows+1): they depend on the scores
    and the profile only, so both starts and every pass of the ascent share them (at most the
    memory of the score maps themselves, K+1 <= 8 tables)."""
    _, n, n_cols = sc.shape
    U = np.empty((K + 1, n_cols, n + 1))
    for j in range(K + 1):
        _gain_table(sc, labs[j], labs[j + 1], U[j])
    return U


def _ascend(U, mn, mx, absent, S, jump, max_passes):
    """Coordinate ascent from S with the surfaces' gain tables U (`_gain_tables`)."""
    K = mn.shape[0]
    _, n_cols, n1 = U.shape
    V = np.empty((2, n1))
    # back-pointers in 16 bits where the rows allow: half the memory traffic of the passes
    arg = np.empty((n_cols, n1), dtype=np.int16 if n1 <= np.iinfo(np.int16).max else np.int32)
    allowed = np.empty(n1, dtype=np.bool_)
    dq = np.empty(n1, dtype=np.int32)
    passes = 0
    # a surface solved with its neighbours as they are now is at its optimum: solving it again
    # before a neighbour moves would gain nothing, so it is skipped (same answers, fewer passes)
    stale = np.ones(K + 1, dtype=np.bool_)
    while passes < max_passes:
        order = range(K + 1) if passes % 2 == 0 else range(K, -1, -1)
        gain = 0.0
        for j in order:
            if not stale[j]:
                continue
            if jump[j] >= n1 - 1:           # free of the slope limit: columns independent
                g = _free_surface_pass(U[j], mn, mx, absent, S, j)
            else:
                g = _surface_pass(U[j], mn, mx, absent, S, j, int(jump[j]), V, arg, allowed,
                                  dq)
            stale[j] = False
            if g > 0.0:
                if j > 0:
                    stale[j - 1] = True
                if j < K:
                    stale[j + 1] = True
            gain += g
        passes += 1
        if gain == 0.0:
            return S, passes, True
    return S, passes, False


@njit(cache=True, parallel=True)
def _block_sums(sc, block):
    """Sums of `sc` (L, rows, cols), float32 or float64, over blocks of `block` columns (the last
    one shorter), in float64: shape (L, rows, ceil(cols / block)). Each block's first value
    plus the running sum of the others, which for blocks of at most 8 columns are the sums of
    ``np.add.reduceat(sc, range(0, cols, block), axis=2, dtype=float64)`` bit for bit (numpy
    sums longer runs pairwise), at a fraction of its time (no casting buffers)."""
    n_lab, n, n_cols = sc.shape
    n_blocks = (n_cols + block - 1) // block
    out = np.empty((n_lab, n, n_blocks))
    for lr in prange(n_lab * n):
        lab = lr // n
        r = lr - lab * n
        for b in range(n_blocks):
            c0 = b * block
            c1 = min(c0 + block, n_cols)
            acc = 0.0
            for c in range(c0 + 1, c1):
                acc += np.float64(sc[lab, r, c])
            out[lab, r, b] = np.float64(sc[lab, r, c0]) + acc
    return out


def _coarse_flat_start(sc, labs, mn, mx, absent, jump, max_passes, block=_COARSE_BLOCK):
    """The flat start, ascended first on blocks of `block` columns: surfaces constant over each
    block form a restriction of the same problem (a block's gain is the sum of its columns'
    gains, `_gain_table` being linear in the scores, and a jump between blocks is a jump between
    neighbouring columns), so the coarse answer, repeated over its blocks, is a feasible start
    that scores at least the flat answer. The flat start creeps (each pass moves a surface only
    as far as its neighbours' limits allow): on blocks its passes cost 1/`block` as much.

    Returns the start, shape (K+1, cols)."""
    _, n, n_cols = sc.shape
    K = mn.shape[0]
    flat = np.ascontiguousarray(sc.sum(axis=2, dtype=np.float64)[:, :, None])
    s0 = np.empty((K + 1, 1))
    tot = np.empty(1)
    bad = np.zeros(1, dtype=np.bool_)
    _per_column(flat, labs, mn, mx, absent, s0, tot, bad)
    n_blocks = -(-n_cols // block)
    if n_blocks < 2:
        return np.repeat(s0, n_cols, axis=1)
    blocks = _block_sums(sc, block)
    Sb, _, _ = _ascend(_gain_tables(blocks, labs, K), mn, mx, absent,
                       np.ascontiguousarray(np.repeat(s0, n_blocks, axis=1)), jump, max_passes)
    return np.repeat(Sb, block, axis=1)[:, :n_cols]


def _smooth_search(sc, labs, mn, mx, absent, jump, max_passes, guide, U, warm=None,
                   earlier=None):
    """Coordinate ascent from feasible starts, keeping the better result.

    Without `warm`: from the per-column answer made smooth (`_guided_start`), ascended to
    convergence, and from the flat answer ascended on column blocks (`_coarse_flat_start`). The
    flat start gets `_SECOND_START_PASSES` passes to overtake the guided one: still below it
    then, it is dropped (ascent from a start far from the answer creeps, each pass moving a
    surface at most as far as its neighbours' limits allow); above it, it ascends on. Where
    the guided start finds no path (jump limits that differ between surfaces), the flat start
    takes its place.
    With `warm` (surfaces, (K+1, cols): the answer of a search with the same limits on scores
    changed in a few columns): from the guided start and from `warm`, both to convergence (the
    warm start alone can stick: a layer closed by moving one surface onto the next leaves two
    coincident surfaces that no single-surface move separates).

    `U`: the gain tables of `sc` (`_gain_tables`); `earlier`: ``(start, guide)`` of an earlier
    search under the same limits (`_guided_start`). Returns ``(surfaces, passes, converged,
    total score, guided start)`` of the kept answer."""
    _, n, n_cols = sc.shape
    # every row the background below, per column (the gains telescope to it: `_gain_total`)
    base = sc[labs[-1]].sum(axis=0, dtype=np.float64)
    guided = _guided_start(guide, n, mn, mx, absent, jump, earlier=earlier)
    start = guided.copy()           # the ascent moves its start in place; `guided` is returned
    # the guided start places the surfaces one by one from the top: with jump limits that
    # differ between surfaces, one it placed can leave the next no path (a free surface above
    # one of fixed thickness and jump 0); the flat start meets any limits and takes its place
    flat_first = bool((start < 0).any())
    if flat_first:
        start = _coarse_flat_start(sc, labs, mn, mx, absent, jump, max_passes)
    S, passes, converged = _ascend(U, mn, mx, absent, np.ascontiguousarray(start), jump,
                                   max_passes)
    total = _gain_total(U, S, base)
    if warm is not None:
        S2, p2, c2 = _ascend(U, mn, mx, absent, np.array(warm, dtype=np.float64), jump,
                             max_passes)
    elif flat_first:      # the second start would be the same flat start, already ascended
        return S, passes, converged, total, guided
    else:
        S2, p2, c2 = _ascend(U, mn, mx, absent, np.ascontiguousarray(
            _coarse_flat_start(sc, labs, mn, mx, absent, jump, max_passes)), jump,
            min(_SECOND_START_PASSES, max_passes))
        if not c2 and p2 < max_passes and _gain_total(U, S2, base) > total:
            S2, more, c2 = _ascend(U, mn, mx, absent, S2, jump, max_passes - p2)
            p2 += more
    total2 = _gain_total(U, S2, base)
    if total2 > total:
        return S2, p2, c2, total2, guided
    return S, passes, converged, total, guided


def _mincut_search(sc, labs, mn, mx, absent, jump):
    """Exact jump-limited search as a minimum s-t cut (Li et al. 2006; Ishikawa's construction)
    with PyMaxflow. Node (j, c, d), d = 1..n, is on the source side when ``s_j[c] >= d``; every
    constraint is an implication between two such nodes (an infinite arc), and the score of
    surface j at depth d enters as the increments of its cost down the column."""
    _, n, n_cols = sc.shape
    K = mn.shape[0]
    if any(absent[k] and int(mn[k]) > 0 for k in range(K)):
        raise ConfigError("smooth_method='mincut' cannot express 'absent or at least the "
                          "minimum' (absent_ok); use smooth_method='ascent'")
    maxflow = require_optional("maxflow", "PyMaxflow", "mincut", "smooth_method='mincut'")
    if n < 1:
        return np.zeros((K + 1, n_cols))
    P = np.zeros((sc.shape[0], n + 1, n_cols))
    np.cumsum(sc, axis=1, out=P[:, 1:])
    U = P[labs[:-1]] - P[labs[1:]]             # (K+1, n+1, cols): score as a function of s_j
    delta = -(U[:, 1:] - U[:, :-1])            # cost increment of x(j, c, d) = 1, d = 1..n
    delta = np.ascontiguousarray(delta.transpose(0, 2, 1))   # (K+1, cols, n)
    big = 1.0 + 4.0 * float(np.abs(delta).sum())
    g = maxflow.Graph[float]()
    ids = g.add_grid_nodes((K + 1, n_cols, n))
    src = np.where(delta < 0, -delta, 0.0)
    snk = np.where(delta > 0, delta, 0.0)
    ai, bi = [], []                            # implications x(a) = 1 => x(b) = 1

    def imply(a, b):
        ai.append(np.ravel(a))
        bi.append(np.ravel(b))

    imply(ids[:, :, 1:], ids[:, :, :-1])       # s >= d + 1 implies s >= d
    for j in range(K + 1):
        J = int(jump[j])
        if J < n and n_cols > 1:               # s_j[c] >= d  =>  s_j[c +- 1] >= d - J
            imply(ids[j, :-1, J:], ids[j, 1:, :n - J])
            imply(ids[j, 1:, J:], ids[j, :-1, :n - J])
    for k in range(K):
        lo = int(mn[k])
        hi = int(mx[k])
        if lo < n:                             # s_k >= d  =>  s_{k+1} >= d + lo
            imply(ids[k, :, :n - lo], ids[k + 1, :, lo:])
        snk[k, :, max(n - lo, 0):] = big      # s_k > n - lo is impossible
        src[k + 1, :, :min(lo, n)] = big      # s_{k+1} >= lo always
        if hi < n:                             # s_{k+1} >= d  =>  s_k >= d - hi
            imply(ids[k + 1, :, hi:], ids[k, :, :n - hi])
    a = np.concatenate(ai)
    b = np.concatenate(bi)
    g.add_edges(a, b, np.full(a.size, big), np.zeros(a.size))
    g.add_grid_tedges(ids, src, snk)
    g.maxflow()
    x = ~g.get_grid_segments(ids)              # True on the source side: s_j[c] >= d
    return x.sum(axis=2).astype(np.float64)
