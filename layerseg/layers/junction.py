"""The dermis-fat junction placed on the image's own echo step, near where a model put it.

At 20-24 MHz the dermis is the brightest soft tissue of the face and the subcutaneous fat
under it is darker: the junction is where the echogenicity steps down. A network trained on
simulated frames has also learnt where that step usually lies (how thick a dermis usually
is, how its speckle looks near the fat); on a frame from another scanner it may end a thick,
evenly bright dermis too early and call its lower part fat (layerseg/data/models/default.md,
"Known limits"). This step reads the image itself: per column, within ``window_mm`` of the
model's junction, the row edge with the largest step down in mean echo (the laterally
smoothed grey levels in dB, ``step_mm`` above against ``step_mm`` below) is taken when that
step is at least ``min_drop_db`` and at least ``margin_db`` larger than the step at the model's
own junction. The moves are median-filtered across ``median_mm`` of neighbouring columns, so
one column's speckle does not move the junction alone, and lowered where a moved run meets
an unmoved one to a ramp within the decode's slope limit; the dermis and the fat keep their
minimum thicknesses, the dermis its maximum. Decode priors: ``dermis_junction``
(``layerseg/data/decode_priors.json``), for probabilistic models given the frame's image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .surfaces import as_profile

__all__ = ["junction_steps_db", "refine_dermis_junction"]


def junction_steps_db(grey: np.ndarray, dynamic_range_db: float, spacing_mm, step_mm: float,
                      lateral_sigma_mm: float) -> np.ndarray:
    """Step down in mean echo at every row edge of a frame, in dB.

    Parameters
    ----------
    grey : ndarray, shape (rows, cols)
        Display grey levels 0-255 (log-compressed: dB = grey x dynamic range / 255).
    dynamic_range_db : float
        Dynamic range mapping grey 0-255, dB.
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral), mm.
    step_mm : float
        Depth over which each side's mean is taken, mm (at least one row).
    lateral_sigma_mm : float
        Gaussian smoothing across columns before the means, mm (0: none).

    Returns
    -------
    ndarray of float64, shape (rows + 1, cols)
        Row edge ``z`` (0 the frame's top, ``rows`` its bottom): the mean over rows ``z - h ..
        z - 1`` minus the mean over rows ``z .. z + h - 1`` (``h`` = `step_mm` in rows), in dB;
        positive where the image darkens downwards. ``-inf`` within ``h`` rows of the top and
        bottom, where a side would be cut.
    """
    g = np.asarray(grey, dtype=np.float64) * (float(dynamic_range_db) / 255.0)
    ay, ax = float(spacing_mm[0]), float(spacing_mm[1])
    if lateral_sigma_mm > 0:
        g = ndi.gaussian_filter1d(g, lateral_sigma_mm / ax, axis=1, mode="nearest")
    rows = g.shape[0]
    h = max(1, int(round(step_mm / ay)))
    out = np.full((rows + 1, g.shape[1]), -np.inf)
    if rows < 2 * h:
        return out
    csum = np.vstack([np.zeros((1, g.shape[1])), np.cumsum(g, axis=0)])
    z = np.arange(h, rows - h + 1)
    out[h:rows - h + 1] = ((csum[z] - csum[z - h]) - (csum[z + h] - csum[z])) / h
    return out


def refine_dermis_junction(surfaces: np.ndarray, profile, grey: np.ndarray,
                           dynamic_range_db: float, spacing_mm, *, window_mm: float,
                           step_mm: float, lateral_sigma_mm: float, min_drop_db: float,
                           margin_db: float, median_mm: float, dermis_mm=(0.0, np.inf),
                           min_fat_mm: float = 0.0, max_slope_deg: float = 0.0
                           ) -> tuple[np.ndarray, float]:
    """Move the dermis-fat junction to the image's echo step near it (module docstring).

    Parameters
    ----------
    surfaces : ndarray, shape (K+1, cols)
        Surface depths in rows of `grey` (sub-pixel allowed), non-decreasing down each column.
    profile : Profile or str or None
        The region profile; a profile without both dermis and fat is returned unchanged.
    grey : ndarray, shape (rows, cols)
        The frame's display grey levels 0-255, on the grid of `surfaces`.
    dynamic_range_db : float
        Dynamic range mapping grey 0-255, dB.
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral), mm.
    window_mm : float
        Largest move of the junction, mm.
    step_mm, lateral_sigma_mm : float
        See `junction_steps_db`.
    min_drop_db : float
        Smallest echo step (dB) the junction moves to.
    margin_db : float
        How much larger (dB) that step must be than the step at the model's junction.
    median_mm : float
        Lateral extent (mm) of the median filter over the columns' moves.
    dermis_mm : (float, float)
        The dermis's thickness limits, mm.
    min_fat_mm : float
        The fat's minimum thickness, mm.
    max_slope_deg : float
        Where moved columns meet unmoved ones (or others moved by another amount), the moves
        are lowered to a ramp no steeper than this between neighbouring columns (degrees,
        measured in mm; the decode's ``max_slope_deg``); 0: no ramp.

    Returns
    -------
    surfaces : ndarray of float64, shape (K+1, cols)
        With the dermis's bottom moved (the fat's top with it); every other surface as given.
    moved : float
        Fraction of columns whose junction moved.
    """
    prof = as_profile(profile)
    S = np.array(surfaces, dtype=np.float64)
    if "dermis" not in prof.layers or "fat" not in prof.layers or S.shape[1] == 0:
        return S, 0.0
    kd, kf = prof.layers.index("dermis"), prof.layers.index("fat")
    ay, ax = float(spacing_mm[0]), float(spacing_mm[1])
    grey = np.asarray(grey)
    rows = grey.shape[0]
    cols = np.arange(S.shape[1])
    s = S[kd + 1]
    # where the junction may go: within the window, the dermis and the fat kept in their limits
    lo = np.maximum(s - window_mm / ay, S[kd] + dermis_mm[0] / ay)
    hi = np.minimum(np.minimum(s + window_mm / ay, S[kd] + dermis_mm[1] / ay),
                    S[kf + 1] - min_fat_mm / ay)
    lo_i = np.clip(np.ceil(lo - 1e-9), 0, rows).astype(np.int64)
    hi_i = np.clip(np.floor(hi + 1e-9), 0, rows).astype(np.int64)
    # the steps of the band of rows the windows read, not of the whole frame: every row edge
    # read lies at least a step's rows inside the band (or the band ends at the frame's edge),
    # so its value is the whole frame's
    h = max(1, int(round(step_mm / ay)))
    here_i = np.clip(np.rint(s), 0, rows).astype(np.int64)
    r0 = int(max(0, min(lo_i.min(), here_i.min()) - h))
    r1 = int(min(rows, max(hi_i.max(), here_i.max()) + h))
    step = junction_steps_db(grey[r0:r1], dynamic_range_db, (ay, ax), step_mm,
                             lateral_sigma_mm)                  # row edges r0 .. r1
    z = np.arange(r0, r1 + 1)[:, None]
    inside = (z >= lo_i[None, :]) & (z <= hi_i[None, :])
    cand = np.where(inside, step, -np.inf)
    best_row = np.argmax(cand, axis=0)
    best = cand[best_row, cols]
    best_row = best_row + r0
    here = step[here_i - r0, cols]
    here = np.where(np.isfinite(here), here, 0.0)
    take = (hi_i >= lo_i) & np.isfinite(best) & (best >= min_drop_db) \
        & (best - here >= margin_db)
    move = np.where(take, best_row - s, 0.0)
    width = max(1, int(round(median_mm / ax)))
    move = ndi.median_filter(move, size=width | 1, mode="nearest")
    if max_slope_deg > 0:
        # a moved run meets an unmoved one in a ramp no steeper than the decode's slope limit
        # (the largest Lipschitz function under the moves, each sign apart), not in a step
        per_col = np.tan(np.radians(max_slope_deg)) * ax / ay
        move = _ramped(np.maximum(move, 0.0), per_col) - _ramped(np.maximum(-move, 0.0),
                                                                 per_col)
    # the median may hand a column a neighbour's move: keep each column inside its own limits
    new = np.clip(s + move, np.minimum(lo, s), np.maximum(hi, s))
    moved = float(np.mean(np.abs(new - s) > 1e-9))
    S[kd + 1] = new
    return S, moved


def _ramped(move: np.ndarray, per_col: float) -> np.ndarray:
    """The largest function under `move` (>= 0, shape (cols,)) that changes by at most
    `per_col` between neighbouring columns: ``min over c' of move[c'] + per_col * |c - c'|``
    (one pass each way)."""
    out = move.astype(np.float64, copy=True)
    for c in range(1, out.size):
        out[c] = min(out[c], out[c - 1] + per_col)
    for c in range(out.size - 2, -1, -1):
        out[c] = min(out[c], out[c + 1] + per_col)
    return out
