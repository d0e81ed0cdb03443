"""Echogenicity and texture of a layer: mean/median in dB or grey levels, low-echogenic pixel
fraction, coefficient of variation and grey-level co-occurrence (GLCM) features.

Scales
------
* ``grey``: display grey levels on the 0-255 scale (`Frame.display`); always available.
* ``db``: the log-compressed level in dB relative to the frame's display reference (0 dB at grey
  255), ``db = (grey / 255 - 1) * DR``. Only where the log compression is known: an envelope
  frame (RF input, the simulator) or a display frame with a stated ``dynamic_range_db``. A display
  frame without it is never given in dB (DESIGN.md).

Every function returns a dict of measures; a measure that cannot be computed is None and its
group's ``*_reason`` entry says why (see `layerseg.scoring.markers`).
"""

from __future__ import annotations

import numpy as np
from skimage.feature import graycomatrix, graycoprops

__all__ = ["display_grey", "grey_to_db", "frame_dynamic_range_db", "echo_stats", "glcm_features",
           "GLCM_PROPS", "LOW_ECHO_THRESHOLD_GREY"]

LOW_ECHO_THRESHOLD_GREY = 30.0
"""Default low-echogenic pixel threshold on the 0-255 display scale: pixels below it count as
low-echogenic (the LEP convention of 20 MHz skin studies, amplitudes 0-30 of 255). Configurable."""

GLCM_PROPS = ("contrast", "homogeneity", "energy", "correlation")
"""Co-occurrence properties reported (scikit-image `graycoprops` names)."""


def frame_dynamic_range_db(frame) -> float | None:
    """The dynamic range (dB) that maps the frame's display grey 0-255, or None when unknown.

    Envelope frames are log-compressed by `Frame.display` over their own dynamic range, else 60 dB;
    that compression is then known exactly.
    """
    return frame.display_dynamic_range_db


def display_grey(frame) -> np.ndarray:
    """Display grey levels 0-255 of a frame, float64, shape (rows, cols)."""
    return np.asarray(frame.display(), dtype=np.float64)


def grey_to_db(grey: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """Grey 0-255 over `dynamic_range_db` dB -> dB relative to grey 255 (<= 0)."""
    return (np.asarray(grey, dtype=np.float64) / 255.0 - 1.0) * float(dynamic_range_db)


def echo_stats(grey: np.ndarray, mask: np.ndarray, *, dynamic_range_db: float | None,
               dermis_mean_grey: float | None,
               low_echo_threshold: float = LOW_ECHO_THRESHOLD_GREY) -> dict:
    """First-order echogenicity of the pixels of one layer.

    Parameters
    ----------
    grey : ndarray of float, shape (rows, cols)
        Display grey levels 0-255.
    mask : ndarray of bool, shape (rows, cols)
        The layer's pixels.
    dynamic_range_db : float or None
        Log-compression dynamic range; None when unknown (then no dB values).
    dermis_mean_grey : float or None
        Mean grey of the frame's dermis, for ``echo_ratio_to_dermis``.
    low_echo_threshold : float
        Grey level (0-255) below which a pixel is low-echogenic.

    Returns
    -------
    dict
        ``echo_mean_grey``, ``echo_median_grey``, ``echo_mean_db``, ``echo_median_db``,
        ``echo_ratio_to_dermis`` (mean grey / dermis mean grey), ``low_echo_fraction``,
        ``echo_cv`` (SD / mean of grey), and ``echo_reason`` / ``echo_db_reason``.
    """
    v = grey[mask]
    out = {"echo_mean_grey": None, "echo_median_grey": None, "echo_mean_db": None,
           "echo_median_db": None, "echo_ratio_to_dermis": None, "low_echo_fraction": None,
           "echo_cv": None, "echo_reason": None, "echo_db_reason": None}
    if v.size == 0:
        out["echo_reason"] = out["echo_db_reason"] = "layer holds no pixel centre"
        return out
    mean = float(v.mean())
    out["echo_mean_grey"] = mean
    out["echo_median_grey"] = float(np.median(v))
    out["low_echo_fraction"] = float(np.mean(v < low_echo_threshold))
    reasons = []
    if mean > 0:
        out["echo_cv"] = float(v.std() / mean)
    else:
        reasons.append("echo_cv: mean grey is 0")
    if dermis_mean_grey is not None and dermis_mean_grey > 0:
        out["echo_ratio_to_dermis"] = mean / dermis_mean_grey
    else:
        reasons.append("echo_ratio_to_dermis: no dermis pixels (or black dermis) in the frame")
    out["echo_reason"] = "; ".join(reasons) or None
    if dynamic_range_db is not None:
        d = grey_to_db(v, dynamic_range_db)
        out["echo_mean_db"] = float(d.mean())
        out["echo_median_db"] = float(np.median(d))
    else:
        out["echo_db_reason"] = ("log compression unknown (display image without "
                                 "dynamic_range_db): echogenicity given in grey levels only")
    return out


def glcm_features(grey: np.ndarray, mask: np.ndarray, spacing_mm, *, distance_mm: float = 0.1,
                  levels: int = 32, min_pairs: int = 50) -> dict:
    """Grey-level co-occurrence texture of one layer (scikit-image), over its pixels only.

    Grey 0-255 is quantised to `levels` fixed bins (comparable across frames). Pixels outside the
    layer get an extra level 0, and every pair that touches it is dropped from the co-occurrence
    matrix before normalising, so only pairs with both pixels inside the layer count. The pixel
    offset is `distance_mm` converted separately along depth and width (pixels are often not
    square), at 0 degrees (lateral) and 90 degrees (axial); the properties are averaged over the
    two directions (a symmetric matrix each).

    Parameters
    ----------
    grey : ndarray of float, shape (rows, cols)
        Display grey levels 0-255.
    mask : ndarray of bool, shape (rows, cols)
    spacing_mm : (float, float) or None
        Pixel spacing; None means a 1-pixel offset (reported in ``glcm_distance_px``).
    distance_mm : float
        Offset between the pixels of a pair, in mm.
    levels : int
        Number of grey bins.
    min_pairs : int
        Fewest in-layer pairs per direction; fewer -> empty with reason (layer too thin / small).

    Returns
    -------
    dict
        ``glcm_<prop>`` for each of `GLCM_PROPS`, ``glcm_distance_mm``, ``glcm_reason``.
    """
    out = {f"glcm_{p}": None for p in GLCM_PROPS}
    out["glcm_distance_mm"] = None
    out["glcm_reason"] = None
    if not mask.any():
        out["glcm_reason"] = "layer holds no pixel centre"
        return out
    if spacing_mm is None:
        dy = dx = 1
        out["glcm_reason"] = "no pixel spacing: GLCM offsets are 1 pixel, not a distance in mm"
    else:
        ay, ax = spacing_mm
        dy = max(1, int(round(distance_mm / ay)))
        dx = max(1, int(round(distance_mm / ax)))
        out["glcm_distance_mm"] = float(distance_mm)
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    g = grey[r0:r1, c0:c1]
    m = mask[r0:r1, c0:c1]
    q = np.clip((g * (levels / 256.0)).astype(np.int64), 0, levels - 1) + 1
    q = np.where(m, q, 0).astype(np.uint8)
    props = {p: [] for p in GLCM_PROPS}
    for d, angle, name in ((dx, 0.0, "lateral"), (dy, np.pi / 2, "axial")):
        P = graycomatrix(q, [d], [angle], levels=levels + 1, symmetric=True, normed=False)
        P = P[1:, 1:, :, :].astype(np.float64)
        n_pairs = P.sum() / 2
        if n_pairs < min_pairs:
            why = (f"layer too thin or small for GLCM: {int(n_pairs)} in-layer pixel pairs "
                   f"{name} at {d} px (need {min_pairs})")
            out["glcm_reason"] = why
            out["glcm_distance_mm"] = None
            return out
        P /= P.sum()
        for p in GLCM_PROPS:
            props[p].append(float(graycoprops(P, p)[0, 0]))
    for p in GLCM_PROPS:
        vals = [x for x in props[p] if np.isfinite(x)]
        if vals:
            out[f"glcm_{p}"] = float(np.mean(vals))
        else:
            out["glcm_reason"] = f"glcm_{p} undefined (uniform grey in the layer)"
    return out
