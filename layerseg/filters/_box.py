"""Private Numba kernels for the local-statistics (box window) filters: Lee, Kuan, Frost, and the
local coefficient of variation used to estimate the speckle scale.

Every kernel takes a padded image ``P`` (``np.pad(image, ((wr//2,), (wc//2,)), "symmetric")``,
which is scipy.ndimage's ``'reflect'`` boundary), the window sides and plain numbers, and writes
into a preallocated ``out`` of the unpadded shape. Rows are split into ``n_chunks`` blocks run in
parallel; inside a block the window sums are kept with running (add-new, drop-old) updates in
float64, so the cost per pixel does not grow with the window.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import CV2_FLOOR, ERROR_MODEL, FASTMATH
from ._expneg import EXP_NEG_MAX, exp_neg

LEE, KUAN, LOCAL_CV = 0, 1, 2


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _init_colsums(P, a, wr, s1, s2):
    for j in range(P.shape[1]):
        s1[j] = 0.0
        s2[j] = 0.0
    for k in range(wr):
        for j in range(P.shape[1]):
            v = np.float64(P[a + k, j])
            s1[j] += v
            s2[j] += v * v


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _advance_colsums(P, i, wr, s1, s2):
    """Column sums for output row ``i`` from those of row ``i - 1``."""
    for j in range(P.shape[1]):
        vn = np.float64(P[i + wr - 1, j])
        vo = np.float64(P[i - 1, j])
        s1[j] += vn - vo
        s2[j] += vn * vn - vo * vo


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _prefix(s, S):
    """``S[k] = sum(s[:k])``: window sums along a row become ``S[j + w] - S[j]``, a
    branch-free loop LLVM can vectorise (a running add-drop sum cannot be)."""
    acc = 0.0
    S[0] = 0.0
    for k in range(s.shape[0]):
        acc += s[k]
        S[k + 1] = acc


@njit(parallel=True, cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _adaptive_kernel(P, wr, wc, mode, cu2, n_chunks, out):
    """Lee (mode 0), Kuan (mode 1) or the local coefficient of variation (mode 2).

    Lee: ``out = m + W (x - m)``, ``W = clip(1 - cu2 / ci2, 0, 1)``;
    Kuan: ``W = clip((1 - cu2 / ci2) / (1 + cu2), 0, 1)``; ``ci2 = var / m**2`` over the window
    (population variance). Local CV: ``out = sqrt(var) / m`` (0 where ``m == 0``).
    """
    rows, cols = out.shape
    rr, rc = wr // 2, wc // 2
    inv_n = 1.0 / (wr * wc)
    pc = P.shape[1]
    for ch in prange(n_chunks):
        a = ch * rows // n_chunks
        b = (ch + 1) * rows // n_chunks
        if a >= b:
            continue
        s1 = np.empty(pc)
        s2 = np.empty(pc)
        S1 = np.empty(pc + 1)
        S2 = np.empty(pc + 1)
        _init_colsums(P, a, wr, s1, s2)
        for i in range(a, b):
            if i > a:
                _advance_colsums(P, i, wr, s1, s2)
            _prefix(s1, S1)
            _prefix(s2, S2)
            xrow = P[i + rr, rc:rc + cols]
            orow = out[i]
            if mode == LOCAL_CV:
                for j in range(cols):
                    m = (S1[j + wc] - S1[j]) * inv_n
                    var = max((S2[j + wc] - S2[j]) * inv_n - m * m, 0.0)
                    cv = np.sqrt(var) / max(m, 1e-300)
                    orow[j] = cv if m > 0.0 else 0.0
            else:
                kw = 1.0 / (1.0 + cu2) if mode == KUAN else 1.0
                for j in range(cols):
                    m = (S1[j + wc] - S1[j]) * inv_n
                    var = max((S2[j + wc] - S2[j]) * inv_n - m * m, 0.0)
                    m2 = m * m
                    w = (1.0 - cu2 * m2 / max(var, 1e-300)) * kw
                    w = min(max(w, 0.0), 1.0)
                    w = 0.0 if (m2 <= 0.0 or var <= CV2_FLOOR * m2) else w
                    x = np.float64(xrow[j])
                    orow[j] = m + w * (x - m)


@njit(parallel=True, cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _frost_kernel(P, wr, wc, damping, dist_idx, dist_val, n_chunks, out):
    """Frost filter: ``out = sum_k m_k x_k / sum_k m_k`` over the window, with
    ``m_k = exp(-damping * ci2 * |t_k|)``, ``ci2 = var / mean**2`` of the window and ``|t_k|`` the
    Euclidean distance (pixels) of neighbour k from the centre. ``dist_idx[wr, wc]`` indexes the
    distinct distances ``dist_val``, so only ``len(dist_val)`` exponentials are taken per pixel.
    A whole row is done at a time: its weights per distinct distance (vectorised `exp_neg`,
    exponents clamped at EXP_NEG_MAX), then one multiply-add pass per window offset.
    """
    rows, cols = out.shape
    inv_n = 1.0 / (wr * wc)
    pc = P.shape[1]
    nd = dist_val.shape[0]
    for ch in prange(n_chunks):
        a = ch * rows // n_chunks
        b = (ch + 1) * rows // n_chunks
        if a >= b:
            continue
        s1 = np.empty(pc)
        s2 = np.empty(pc)
        S1 = np.empty(pc + 1)
        S2 = np.empty(pc + 1)
        kk = np.empty(cols)
        E = np.empty((nd, cols))
        num = np.empty(cols)
        den = np.empty(cols)
        _init_colsums(P, a, wr, s1, s2)
        for i in range(a, b):
            if i > a:
                _advance_colsums(P, i, wr, s1, s2)
            _prefix(s1, S1)
            _prefix(s2, S2)
            for j in range(cols):
                m = (S1[j + wc] - S1[j]) * inv_n
                var = max((S2[j + wc] - S2[j]) * inv_n - m * m, 0.0)
                m2 = m * m
                k = damping * var / max(m2, 1e-300)
                # a flat (or zero) window: all weights 1, the window mean
                kk[j] = 0.0 if (m2 <= 0.0 or var <= CV2_FLOOR * m2) else k
            for u in range(nd):
                du = dist_val[u]
                Eu = E[u]
                for j in range(cols):
                    Eu[j] = exp_neg(min(kk[j] * du, EXP_NEG_MAX))
            for j in range(cols):
                num[j] = 0.0
                den[j] = 0.0
            for y in range(wr):
                prow = P[i + y]
                for x in range(wc):
                    Ew = E[dist_idx[y, x]]
                    px = prow[x:x + cols]
                    for j in range(cols):
                        num[j] += Ew[j] * px[j]
                        den[j] += Ew[j]
            orow = out[i]
            for j in range(cols):
                orow[j] = num[j] / den[j]
