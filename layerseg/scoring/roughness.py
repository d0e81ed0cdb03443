"""Roughness of a boundary (a layer's lower surface): Ra and Rq in micrometres.

The method follows profile roughness practice (ISO 16610-21 Gaussian profile filter,
ISO 4287 parameters):

1. The boundary is a profile ``z(x)``: depth in µm (rows x axial spacing) at ``x = c * lateral``,
   over the longest run of consecutive columns where the boundary exists.
2. Short-wavelength filter ``lambda_s`` (Gaussian, default two lateral pixels, the sampling's
   Nyquist wavelength): removes the column-to-column staircase of a boundary read from a label
   map, whose depths are whole rows. This is the sub-pixel step for integer surfaces: the filtered
   profile is a sub-pixel estimate of the boundary. It passes a sinusoid of wavelength
   ``lambda`` with gain ``exp(-pi (alpha lambda_s / lambda)^2)``, above 0.99 for
   ``lambda >= 10 px`` at the default. Surfaces that are already sub-pixel (an ordered search)
   can be given directly and go through the same filter.
3. Long-wavelength filter ``lambda_c`` (the cutoff, in mm, reported): the Gaussian mean line,
   i.e. the large-scale curve of the face and any tilt, is subtracted. Its gain for a wavelength
   well under the cutoff is ~0, so such undulations pass into the roughness whole.
4. ``lambda_c / 2`` is dropped at each end of the profile (the filter's run-in/run-out) and the
   roughness profile is centred on its mean over the remaining evaluation length; it must be at
   least one cutoff long.
5. ``Ra = mean |r|``, ``Rq = sqrt(mean r^2)``.

The ISO Gaussian weighting function ``s(x) = exp(-pi (x / (alpha lambda))^2) / (alpha lambda)``,
``alpha = sqrt(ln 2 / pi)``, is a normal density with ``sigma = alpha lambda / sqrt(2 pi)``; its
transmission is 50 % at the cutoff wavelength. The filtering itself is
`scipy.ndimage.gaussian_filter1d`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter1d

__all__ = ["roughness_profile", "roughness_ra_rq", "gaussian_sigma_for_cutoff",
           "ROUGHNESS_CUTOFF_MM"]

ROUGHNESS_CUTOFF_MM = 2.5
"""Default long-wavelength cutoff (mm), an ISO 4288 standard cutoff; the face's curvature over a
10-15 mm wide frame lies above it, dermal-junction undulations (tenths of a mm) well below."""

_ALPHA = math.sqrt(math.log(2.0) / math.pi)


def gaussian_sigma_for_cutoff(cutoff: float) -> float:
    """Standard deviation of the ISO Gaussian profile filter with cutoff wavelength `cutoff`
    (same unit): ``alpha * cutoff / sqrt(2 pi)`` = 0.1874 x cutoff."""
    return _ALPHA * float(cutoff) / math.sqrt(2.0 * math.pi)


def _longest_run(valid: np.ndarray) -> tuple[int, int]:
    """(start, stop) of the longest run of True in a 1-D bool array ((0, 0) when none)."""
    v = np.concatenate(([False], np.asarray(valid, dtype=bool), [False]))
    d = np.diff(v.astype(np.int8))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    if starts.size == 0:
        return 0, 0
    i = int(np.argmax(stops - starts))
    return int(starts[i]), int(stops[i])


def roughness_profile(depth_rows, spacing_mm, valid=None, *, cutoff_mm=ROUGHNESS_CUTOFF_MM,
                      short_cutoff_mm: float | None = None):
    """The roughness profile of one boundary (micrometres), or None with the reason.

    Parameters
    ----------
    depth_rows : array_like of float, shape (cols,)
        Boundary depth per column, in rows (sub-pixel allowed).
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm.
    valid : array_like of bool, shape (cols,), optional
        Columns where the boundary exists; the longest consecutive run is used.
    cutoff_mm : float
        Long-wavelength cutoff ``lambda_c`` in mm.
    short_cutoff_mm : float, optional
        Short-wavelength cutoff ``lambda_s`` in mm (default: two lateral pixels; 0 disables).

    Returns
    -------
    (r_um, reason) : (ndarray of float64 or None, str or None)
        The centred roughness profile over the evaluation length, or None and why not.
    """
    z = np.asarray(depth_rows, dtype=np.float64)
    ay, ax = (float(s) for s in spacing_mm)
    if not (cutoff_mm > 0):
        raise ValueError(f"cutoff_mm must be positive, got {cutoff_mm}")
    lam_s = 2.0 * ax if short_cutoff_mm is None else float(short_cutoff_mm)
    ok = np.isfinite(z) if valid is None else (np.asarray(valid, dtype=bool) & np.isfinite(z))
    a, b = _longest_run(ok)
    n = b - a
    trim = int(math.ceil(0.5 * cutoff_mm / ax))
    if n - 2 * trim < max(3, cutoff_mm / ax):
        return None, (f"boundary too short for roughness: {n * ax:.2f} mm of consecutive columns, "
                      f"need 2 x cutoff = {2 * cutoff_mm:g} mm")
    prof = z[a:b] * ay * 1000.0
    if lam_s > 0:
        prof = gaussian_filter1d(prof, gaussian_sigma_for_cutoff(lam_s) / ax, mode="nearest")
    mean_line = gaussian_filter1d(prof, gaussian_sigma_for_cutoff(cutoff_mm) / ax,
                                  mode="nearest")
    r = (prof - mean_line)[trim:n - trim]
    return r - r.mean(), None


def roughness_ra_rq(depth_rows, spacing_mm, valid=None, *, cutoff_mm=ROUGHNESS_CUTOFF_MM,
                    short_cutoff_mm: float | None = None) -> dict:
    """Ra and Rq (µm) of one boundary; see the module notes for the filtering.

    Returns
    -------
    dict
        ``roughness_ra_um``, ``roughness_rq_um`` (None when not computable),
        ``roughness_cutoff_mm``, ``roughness_short_cutoff_mm``, ``roughness_length_mm``
        (evaluation length), ``roughness_reason``.
    """
    ax = float(spacing_mm[1])
    lam_s = 2.0 * ax if short_cutoff_mm is None else float(short_cutoff_mm)
    out = {"roughness_ra_um": None, "roughness_rq_um": None,
           "roughness_cutoff_mm": float(cutoff_mm), "roughness_short_cutoff_mm": lam_s,
           "roughness_length_mm": None, "roughness_reason": None}
    r, reason = roughness_profile(depth_rows, spacing_mm, valid, cutoff_mm=cutoff_mm,
                                  short_cutoff_mm=short_cutoff_mm)
    if r is None:
        out["roughness_reason"] = reason
        return out
    out["roughness_ra_um"] = float(np.mean(np.abs(r)))
    out["roughness_rq_um"] = float(np.sqrt(np.mean(r * r)))
    out["roughness_length_mm"] = float(r.size * ax)
    return out
