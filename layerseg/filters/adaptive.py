"""Local-statistics speckle filters on the linear envelope: Lee, Kuan and Frost.

All three assume multiplicative speckle, ``z = x * n`` with ``E[n] = 1`` and coefficient of
variation ``cu`` of ``n``, which holds on the LINEAR envelope (detected amplitude). On a
log-compressed display image the noise is additive instead (about 5.6 dB SD for fully developed
speckle), so these functions take ``input='log'`` with the image's dynamic range and convert to the
envelope and back (see `layerseg.frame.display_to_envelope`); they never filter grey levels as if
they were an envelope.

Boundaries: windows are completed by mirror reflection about the edge (scipy.ndimage's default
``mode='reflect'``, ``d c b a | a b c d``).

References: Lee JS (1980) IEEE TPAMI 2:165-168; Kuan DT et al. (1985) IEEE TPAMI 7:165-177;
Frost VS et al. (1982) IEEE TPAMI 4:157-166; Lopes A et al. (1990) IEEE TGRS 28:992-1000.
"""

from __future__ import annotations

import numbers

import numpy as np
import numba

from ..errors import FilterInputError
from ._box import KUAN, LEE, LOCAL_CV, _adaptive_kernel, _frost_kernel
from ._config import RAYLEIGH_CV
from ._validate import check_image, check_positive, check_window, to_envelope

__all__ = ["filter_lee", "filter_kuan", "filter_frost", "estimate_speckle_cv", "local_cv"]


def _n_chunks(rows: int) -> int:
    return max(1, min(rows, 4 * numba.get_num_threads()))


def _pad(a: np.ndarray, wr: int, wc: int) -> np.ndarray:
    return np.pad(a, ((wr // 2, wr // 2), (wc // 2, wc // 2)), mode="symmetric")


def local_cv(envelope, window=7) -> np.ndarray:
    """Local coefficient of variation ``sd / mean`` of a linear envelope over a sliding window.

    Parameters
    ----------
    envelope : ndarray, shape (rows, cols), float32/float64 (integers -> float32), >= 0
    window : odd int or (rows, cols)
        Window size in pixels.

    Returns
    -------
    ndarray, same shape and dtype: the population SD over the mean in each window (0 where the
    window mean is 0). About 0.52 in fully developed speckle.
    """
    env = check_image(envelope, "envelope", nonnegative=True)
    wr, wc = check_window(window, env.shape)
    out = np.empty_like(env)
    _adaptive_kernel(_pad(env, wr, wc), wr, wc, LOCAL_CV, 0.0, _n_chunks(env.shape[0]), out)
    return out


def estimate_speckle_cv(envelope, box=None, window: int = 7) -> float:
    """Estimate the speckle coefficient of variation (SD / mean) of a linear envelope.

    Parameters
    ----------
    envelope : ndarray, shape (rows, cols), >= 0
    box : (row0, col0, row1, col1) or None
        A homogeneous region (half-open pixel bounds, at least 3 x 3): the CV is its SD over its
        mean. None: the median over the image of the local CV in `window`-sized windows, a robust
        whole-image estimate that reads high where the image has much structure.
    window : int
        Window of the whole-image estimate.

    Returns
    -------
    float : the estimate (0.5227 for fully developed speckle on the envelope).
    """
    env = check_image(envelope, "envelope", nonnegative=True)
    if box is not None:
        return _box_cv(env, box)
    cv = local_cv(env, window)
    vals = cv[cv > 0]
    if vals.size == 0:
        raise FilterInputError("cannot estimate the speckle CV: the image is flat or zero")
    return float(np.median(vals))


def check_box(box, shape) -> tuple[int, int, int, int]:
    """Validate a ``(row0, col0, row1, col1)`` half-open region inside `shape`, >= 3 x 3."""
    try:
        r0, c0, r1, c1 = (int(v) for v in box)
    except (TypeError, ValueError):
        raise FilterInputError(f"a homogeneous box must be (row0, col0, row1, col1), got {box!r}"
                               ) from None
    if not (0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]):
        raise FilterInputError(f"box {box!r} is not inside the image of shape {shape}")
    if r1 - r0 < 3 or c1 - c0 < 3:
        raise FilterInputError(f"box {box!r} is smaller than 3 x 3 pixels; too few samples for "
                               "the speckle statistics")
    return r0, c0, r1, c1


def _box_cv(env: np.ndarray, box) -> float:
    r0, c0, r1, c1 = check_box(box, env.shape)
    reg = env[r0:r1, c0:c1].astype(np.float64)
    m = reg.mean()
    if m <= 0:
        raise FilterInputError(f"box {box!r} has zero mean; choose a region with signal")
    return float(reg.std() / m)


def _resolve_cu(env: np.ndarray, cu) -> float:
    """``cu`` spec -> a number: None (Rayleigh 0.5227), 'auto', a box, or a positive float."""
    if cu is None:
        return RAYLEIGH_CV
    if isinstance(cu, str):
        if cu != "auto":
            raise FilterInputError(f"cu must be None, 'auto', a float or a (row0, col0, row1, "
                                   f"col1) box, got {cu!r}")
        return estimate_speckle_cv(env)
    if isinstance(cu, numbers.Real):
        return check_positive(cu, "cu")
    return _box_cv(env, cu)


def _lee_kuan(image, window, cu, input, dynamic_range_db, mode):
    env, back = to_envelope(image, input, dynamic_range_db)
    wr, wc = check_window(window, env.shape)
    c = _resolve_cu(env, cu)
    out = np.empty_like(env)
    _adaptive_kernel(_pad(env, wr, wc), wr, wc, mode, c * c, _n_chunks(env.shape[0]), out)
    return back(out)


def filter_lee(image, window=5, *, cu=None, input: str = "envelope",
               dynamic_range_db: float | None = None) -> np.ndarray:
    """Lee's adaptive speckle filter (multiplicative model, linear envelope).

    ``out = m + W (z - m)`` with ``W = clip(1 - cu**2 / ci**2, 0, 1)``, where ``m`` and
    ``ci = sd / m`` are the window mean and coefficient of variation: homogeneous speckle
    (``ci <= cu``) is replaced by its local mean; edges and bright reflectors (``ci >> cu``) are kept.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        float32 or float64 (kept), or integers (converted to float32). With ``input='envelope'``
        (default): the linear envelope, >= 0. With ``input='log'``: grey levels 0-255
        log-compressed over `dynamic_range_db`.
    window : odd int or (rows, cols)
        Window size in pixels (default 5).
    cu : None, 'auto', float or (row0, col0, row1, col1)
        Speckle coefficient of variation on the envelope. None: fully developed speckle,
        sqrt(4/pi - 1) = 0.5227; 'auto': `estimate_speckle_cv` of the whole image; a box: the CV
        of that homogeneous region; a float: used as is.
    input : {'envelope', 'log'}
        What `image` holds (see above).
    dynamic_range_db : float, optional
        Required with ``input='log'``.

    Returns
    -------
    ndarray, same shape and dtype as `image` (float32 for integer input), in the input's domain.

    Raises
    ------
    FilterInputError
        NaN/inf, negative envelope, even or oversized window, float16, missing dynamic range.
    """
    return _lee_kuan(image, window, cu, input, dynamic_range_db, LEE)


def filter_kuan(image, window=5, *, cu=None, input: str = "envelope",
                dynamic_range_db: float | None = None) -> np.ndarray:
    """Kuan's adaptive speckle filter (multiplicative model, linear envelope).

    As `filter_lee` with the LMMSE weight of Kuan et al. (1985):
    ``W = clip((1 - cu**2 / ci**2) / (1 + cu**2), 0, 1)``. Same parameters, returns and errors
    as `filter_lee`.
    """
    return _lee_kuan(image, window, cu, input, dynamic_range_db, KUAN)


def _distance_table(wr: int, wc: int):
    yy, xx = np.mgrid[-(wr // 2):wr // 2 + 1, -(wc // 2):wc // 2 + 1]
    d2 = (yy * yy + xx * xx).astype(np.int64)
    uniq, idx = np.unique(d2, return_inverse=True)
    return idx.reshape(d2.shape).astype(np.int64), np.sqrt(uniq.astype(np.float64))


def filter_frost(image, window=5, damping: float = 2.0, *, input: str = "envelope",
                 dynamic_range_db: float | None = None) -> np.ndarray:
    """Frost's adaptive speckle filter (multiplicative model, linear envelope).

    ``out = sum_k m_k z_k / sum_k m_k`` over the window, ``m_k = exp(-damping * ci**2 * |t_k|)``
    with ``ci = sd / mean`` of the window and ``|t_k|`` the distance (pixels) of neighbour k from
    the centre: a flat region is averaged, a high-variation one keeps its centre pixel.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        As in `filter_lee`.
    window : odd int or (rows, cols)
        Window size in pixels (default 5).
    damping : float
        Damping factor K > 0 (default 2.0); larger keeps more detail.
    input, dynamic_range_db
        As in `filter_lee`.

    Returns
    -------
    ndarray, same shape and dtype as `image` (float32 for integer input), in the input's domain.
    """
    env, back = to_envelope(image, input, dynamic_range_db)
    wr, wc = check_window(window, env.shape)
    k = check_positive(damping, "damping")
    idx, dist = _distance_table(wr, wc)
    out = np.empty_like(env)
    _frost_kernel(_pad(env, wr, wc), wr, wc, k, idx, dist, _n_chunks(env.shape[0]), out)
    return back(out)
