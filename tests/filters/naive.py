"""Readable loop-based twins of the filter kernels (stumpy style), for the tests only.

Each twin computes the same quantity as a kernel in layerseg.filters the slow, obvious way:
explicit windows, exact sums, no running updates, no symmetry tricks. Small images only.
"""

from __future__ import annotations

import math

import numpy as np

CV2_FLOOR = 1e-12   # the same floor as layerseg.filters._config (re-stated, not imported)


def window_stats(img, wr, wc):
    """Mean and population variance of every wr x wc window, reflect ('symmetric') boundary."""
    P = np.pad(img.astype(np.float64), ((wr // 2,) * 2, (wc // 2,) * 2), mode="symmetric")
    rows, cols = img.shape
    mean = np.zeros((rows, cols))
    var = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            win = P[i:i + wr, j:j + wc]
            m = win.sum() / win.size
            mean[i, j] = m
            var[i, j] = ((win - m) ** 2).sum() / win.size
    return mean, var


def lee(img, wr, wc, cu, kuan=False):
    mean, var = window_stats(img, wr, wc)
    out = np.zeros(img.shape)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            m, v = mean[i, j], var[i, j]
            if m * m <= 0 or v <= CV2_FLOOR * m * m:
                w = 0.0
            else:
                ci2 = v / (m * m)
                w = 1.0 - cu * cu / ci2
                if kuan:
                    w /= 1.0 + cu * cu
                w = min(max(w, 0.0), 1.0)
            out[i, j] = m + w * (float(img[i, j]) - m)
    return out.astype(img.dtype)


def local_cv(img, wr, wc):
    mean, var = window_stats(img, wr, wc)
    out = np.zeros(img.shape)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            out[i, j] = math.sqrt(var[i, j]) / mean[i, j] if mean[i, j] > 0 else 0.0
    return out.astype(img.dtype)


def frost(img, wr, wc, damping):
    mean, var = window_stats(img, wr, wc)
    P = np.pad(img.astype(np.float64), ((wr // 2,) * 2, (wc // 2,) * 2), mode="symmetric")
    out = np.zeros(img.shape)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            m, v = mean[i, j], var[i, j]
            if m * m <= 0 or v <= CV2_FLOOR * m * m:
                out[i, j] = m
                continue
            k = damping * v / (m * m)
            num = den = 0.0
            for y in range(wr):
                for x in range(wc):
                    dist = math.hypot(y - wr // 2, x - wc // 2)
                    w = math.exp(-k * dist)
                    num += w * P[i + y, j + x]
                    den += w
            out[i, j] = num / den
    return out.astype(img.dtype)


def srad(img, n_iter, dt, q0_of_iter, eps):
    """SRAD (Yu & Acton 2002, 4-neighbour scheme, Neumann boundary); ``q0_of_iter(it, I)``
    returns q0**2 for iteration ``it`` and current image ``I``. State kept in img.dtype."""
    I = img.copy()
    rows, cols = I.shape

    def at(a, i, j):
        return float(a[min(max(i, 0), rows - 1), min(max(j, 0), cols - 1)])

    for it in range(n_iter):
        q0sq = q0_of_iter(it, I)
        C = np.zeros((rows, cols))
        for i in range(rows):
            for j in range(cols):
                c0 = float(I[i, j])
                dn, ds = at(I, i - 1, j) - c0, at(I, i + 1, j) - c0
                dw, de = at(I, i, j - 1) - c0, at(I, i, j + 1) - c0
                v = max(c0, eps)
                g2 = (dn ** 2 + ds ** 2 + dw ** 2 + de ** 2) / v ** 2
                lap = (dn + ds + dw + de) / v
                den = (1 + lap / 4) ** 2
                if den < CV2_FLOOR:
                    C[i, j] = 0.0
                    continue
                q2 = (g2 / 2 - lap ** 2 / 16) / den
                c = 1.0 / (1.0 + (q2 - q0sq) / (q0sq * (1 + q0sq)))
                C[i, j] = min(max(c, 0.0), 1.0)
        new = np.zeros((rows, cols))
        for i in range(rows):
            for j in range(cols):
                c0 = float(I[i, j])
                div = (at(C, i + 1, j) * (at(I, i + 1, j) - c0) + C[i, j] * (at(I, i - 1, j) - c0)
                       + at(C, i, j + 1) * (at(I, i, j + 1) - c0)
                       + C[i, j] * (at(I, i, j - 1) - c0))
                new[i, j] = c0 + dt / 4 * div
        I = new.astype(img.dtype)
    return I


def nlm(img, patch, search, h, mode, sigma=0.0, cutoff=5.0):
    """Non-local means, pixel by pixel over every shift of the search window.

    mode 'l2': scikit-image fast-mode conventions ((patch-1)^2 box of rows p-o+1..p+o,
    normalised by h^2 patch^2, 2 sigma^2 per box pixel subtracted). mode 'pearson': full
    patch x patch box, sum (z(q) - z(q+t))^2 / z(q+t) (floored at 1e-6 of the peak)."""
    o = patch // 2
    pad = o + search + 1
    P = np.pad(img.astype(np.float64), pad, mode="reflect")
    lo, hi = (o - 1, o) if mode == "l2" else (o, o)
    npix = (lo + hi + 1) ** 2
    eps = 1e-6 * float(img.max()) if img.max() > 0 else 1e-12
    rows, cols = img.shape
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            pi, pj = i + pad, j + pad
            ref = P[pi - lo:pi + hi + 1, pj - lo:pj + hi + 1]
            num, wsum = P[pi, pj], 1.0
            for tr in range(-search, search + 1):
                for tc in range(-search, search + 1):
                    if tr == 0 and tc == 0:
                        continue
                    cand = P[pi - lo + tr:pi + hi + 1 + tr, pj - lo + tc:pj + hi + 1 + tc]
                    if mode == "l2":
                        dist = max(((ref - cand) ** 2).sum() - 2 * sigma ** 2 * npix, 0.0)
                    else:
                        dist = ((ref - cand) ** 2 / np.maximum(cand, eps)).sum()
                    dist /= h * h * patch * patch
                    w = math.exp(-dist) if dist <= cutoff else 0.0
                    num += w * P[pi + tr, pj + tc]
                    wsum += w
            out[i, j] = num / wsum
    return out.astype(img.dtype)


def attenuation_gain_db(n_rows, axial_mm, alpha, f_mhz):
    return np.array([2 * alpha * f_mhz * ((i + 0.5) * axial_mm / 10.0) for i in range(n_rows)])
