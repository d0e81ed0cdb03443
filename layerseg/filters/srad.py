"""Speckle reducing anisotropic diffusion (SRAD, Yu & Acton 2002) on the linear envelope.

Discretisation (Yu & Acton 2002, eqs. 50-58, the 4-neighbour scheme used by every reference
implementation, e.g. Rodinia's): with ``dN, dS, dW, dE`` the differences to the four neighbours
(Neumann boundary: a pixel outside the image equals its nearest edge pixel) and ``I`` floored at
``eps = SRAD_EPS_REL * max(image)`` in the divisions,

    g2 = (dN**2 + dS**2 + dW**2 + dE**2) / I**2        (squared gradient magnitude, normalised)
    l  = (dN + dS + dW + dE) / I                        (normalised Laplacian)
    q2 = (g2 / 2 - l**2 / 16) / (1 + l / 4)**2          (instantaneous coefficient of variation)
    c  = clip(1 / (1 + (q2 - q0**2) / (q0**2 (1 + q0**2))), 0, 1)
    I <- I + dt / 4 * (c[i+1,j] dS + c[i,j] dN + c[i,j+1] dE + c[i,j] dW)

The speckle scale ``q0`` is the coefficient of variation of homogeneous speckle, either measured in
a homogeneous box of the current image at every iteration (Yu & Acton, section IV), or given /
estimated once and decayed as ``q0(t) = q0 exp(-t / 6)`` with ``t = iteration * dt`` (their
eq. 37).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import numba
from numba import njit, prange

from ..errors import FilterInputError
from ._config import (CV2_FLOOR, ERROR_MODEL, FASTMATH, RAYLEIGH_CV, SRAD_DT_MAX, SRAD_EPS_REL,
                      SRAD_Q0_DECAY)
from ._validate import check_positive, to_envelope
from .adaptive import check_box, estimate_speckle_cv

__all__ = ["despeckle_srad"]


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL, inline="always")
def _coef(c0, vn, vs, vw, ve, q0sq, eps):
    """SRAD diffusion coefficient of one pixel from its value and its four neighbours."""
    dn = vn - c0
    ds = vs - c0
    dw = vw - c0
    de = ve - c0
    v = c0 if c0 > eps else eps
    iv = 1.0 / v
    g2 = (dn * dn + ds * ds + dw * dw + de * de) * (iv * iv)
    lap = (dn + ds + dw + de) * iv
    num = 0.5 * g2 - 0.0625 * lap * lap
    den = 1.0 + 0.25 * lap
    den = den * den
    c = 1.0 / (1.0 + (num / den - q0sq) / (q0sq * (1.0 + q0sq)))
    c = min(max(c, 0.0), 1.0)
    return 0.0 if den < CV2_FLOOR else c


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _coef_row(I, r, q0sq, eps, crow):
    """Diffusion coefficients of image row ``r`` (Neumann boundary) into ``crow``."""
    rows, cols = I.shape
    up = I[r - 1 if r > 0 else 0]
    mid = I[r]
    dn = I[r + 1 if r < rows - 1 else rows - 1]
    if cols == 1:
        crow[0] = _coef(np.float64(mid[0]), up[0], dn[0], mid[0], mid[0], q0sq, eps)
        return
    crow[0] = _coef(np.float64(mid[0]), up[0], dn[0], mid[0], mid[1], q0sq, eps)
    for j in range(1, cols - 1):
        crow[j] = _coef(np.float64(mid[j]), up[j], dn[j], mid[j - 1], mid[j + 1], q0sq, eps)
    j = cols - 1
    crow[j] = _coef(np.float64(mid[j]), up[j], dn[j], mid[j - 1], mid[j], q0sq, eps)


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _update_row(up, mid, dn, cc, cs, k, o):
    """``o = mid + k * div(c grad)`` for one row; ``cc``/``cs``: coefficients of this row and
    the row below. The interior loop has no boundary branches, so LLVM vectorises it."""
    cols = mid.shape[0]
    for j in range(1, cols - 1):
        c0 = np.float64(mid[j])
        div = (cs[j] * (dn[j] - c0) + cc[j] * (up[j] - c0)
               + cc[j + 1] * (mid[j + 1] - c0) + cc[j] * (mid[j - 1] - c0))
        o[j] = c0 + k * div
    for j in (0, cols - 1):
        c0 = np.float64(mid[j])
        je = j + 1 if j < cols - 1 else cols - 1
        jw = j - 1 if j > 0 else 0
        div = (cs[j] * (dn[j] - c0) + cc[j] * (up[j] - c0)
               + cc[je] * (mid[je] - c0) + cc[j] * (mid[jw] - c0))
        o[j] = c0 + k * div


@njit(parallel=True, cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _srad_step(I, q0sq, dt, eps, n_chunks, out):
    """One SRAD iteration of ``I`` into ``out``. Rows are split into blocks run in parallel;
    each block keeps the coefficients of the current and the next row only (the update of row
    i needs c[i] and c[i+1])."""
    rows, cols = I.shape
    k = 0.25 * dt
    for ch in prange(n_chunks):
        a = ch * rows // n_chunks
        b = (ch + 1) * rows // n_chunks
        if a >= b:
            continue
        cbuf = np.empty((2, cols))
        _coef_row(I, a, q0sq, eps, cbuf[0])
        for i in range(a, b):
            cc = cbuf[(i - a) % 2]
            cs = cbuf[(i - a + 1) % 2]
            i_s = i + 1 if i < rows - 1 else rows - 1
            _coef_row(I, i_s, q0sq, eps, cs)
            up = I[i - 1 if i > 0 else 0]
            _update_row(up, I[i], I[i_s], cc, cs, k, out[i])


def _box_q0sq(I: np.ndarray, box) -> float:
    r0, c0, r1, c1 = box
    reg = I[r0:r1, c0:c1].astype(np.float64)
    m = reg.mean()
    return max(float(reg.var() / (m * m)) if m > 0 else 0.0, CV2_FLOOR)


def despeckle_srad(image, n_iter: int = 50, dt: float = 0.05, q0=None, *,
                   input: str = "envelope", dynamic_range_db: float | None = None
                   ) -> np.ndarray:
    """Speckle reducing anisotropic diffusion (Yu & Acton 2002) on the linear envelope.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        float32 or float64 (kept; the state is stored in this dtype between iterations), or
        integers (converted to float32). ``input='envelope'`` (default): the linear envelope,
        >= 0. ``input='log'``: grey levels 0-255 over `dynamic_range_db`; converted to the
        envelope, diffused, converted back.
    n_iter : int
        Number of iterations (>= 0; 0 returns a copy).
    dt : float
        Time step, 0 < dt <= 0.25 (the stability limit of the 4-neighbour scheme).
    q0 : None, 'auto', float or (row0, col0, row1, col1)
        Speckle scale. A box (half-open pixel bounds, >= 3 x 3, homogeneous speckle): its SD/mean
        in the current image at every iteration. A float: the initial q0, decayed as
        ``q0 exp(-t/6)``. None: fully developed speckle, 0.5227, decayed. 'auto': the whole-image
        robust estimate `estimate_speckle_cv`, decayed.
    input, dynamic_range_db
        As in `layerseg.filters.filter_lee`.

    Returns
    -------
    ndarray, same shape and dtype as `image` (float32 for integer input), in the input's domain.

    Raises
    ------
    FilterInputError
        NaN/inf, negative envelope, bad `dt`, `n_iter` or `q0`, float16, missing dynamic range.
    """
    env, back = to_envelope(image, input, dynamic_range_db)
    if not isinstance(n_iter, numbers.Integral) or n_iter < 0:
        raise FilterInputError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    dt = check_positive(dt, "dt", upper=SRAD_DT_MAX)
    box = None
    if q0 is None:
        q_init = RAYLEIGH_CV
    elif isinstance(q0, str):
        if q0 != "auto":
            raise FilterInputError(f"q0 must be None, 'auto', a float or a (row0, col0, row1, "
                                   f"col1) box, got {q0!r}")
        q_init = estimate_speckle_cv(env)
    elif isinstance(q0, numbers.Real):
        q_init = check_positive(q0, "q0")
    else:
        box = check_box(q0, env.shape)
        q_init = None
    peak = float(env.max())
    eps = SRAD_EPS_REL * peak if peak > 0 else SRAD_EPS_REL
    cur = env.copy()
    nxt = np.empty_like(env)
    n_chunks = max(1, min(env.shape[0], 4 * numba.get_num_threads()))
    for it in range(int(n_iter)):
        if box is not None:
            q0sq = _box_q0sq(cur, box)
        else:
            q = q_init * math.exp(-SRAD_Q0_DECAY * it * dt)
            q0sq = max(q * q, CV2_FLOOR)
        _srad_step(cur, q0sq, dt, eps, n_chunks, nxt)
        cur, nxt = nxt, cur
    return back(cur)
