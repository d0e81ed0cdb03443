"""Per-column layer thickness in millimetres, vertically and along the local normal.

Geometry: column c has its centre at lateral position ``x_c = c * lateral_mm``; surface k passes
through ``(x_c, s_k[c] * axial_mm)`` in every column and is the polyline through those points.
Working in mm (not pixels) matters because pixels are often not square (0.02 mm axial by 0.05 mm
lateral is common): a slope of one row per column is 22 degrees there, not 45.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .surfaces import check_spacing, check_surfaces

__all__ = ["thickness_vertical_mm", "thickness_normal_mm"]


def thickness_vertical_mm(surfaces, spacing_mm, absent=np.nan) -> np.ndarray:
    """Thickness of each layer along the image column (depth axis), in mm.

    Parameters
    ----------
    surfaces : array_like of float, shape (K+1, cols)
        Depths in rows (see `layerseg.layers.surfaces`).
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm.
    absent : float
        Value where a layer is absent (zero thickness); NaN by default, pass 0.0 to count
        absence as zero thickness.

    Returns
    -------
    thickness : ndarray of float64, shape (K, cols)
        ``(s_{k+1} - s_k) * axial_mm``; NaN in NaN columns (lenient `labels_to_surfaces`
        output, columns out of order).

    Raises
    ------
    SpacingRequiredError
        `spacing_mm` is None.
    """
    s = check_surfaces(surfaces, allow_nan_columns=True)
    ay, _ = check_spacing(spacing_mm, "thickness in mm")
    d = np.diff(s, axis=0)
    out = d * ay
    out[d <= 0] = absent
    out[np.isnan(d)] = np.nan
    return out


@njit(cache=True, parallel=True)
def _thickness_normal(s, ay, ax, max_reach_mm, out):
    n_s, n_cols = s.shape
    for k in prange(n_s - 1):
        for c in range(n_cols):
            y0 = s[k, c] * ay
            if not s[k + 1, c] > s[k, c]:   # absent, or a NaN column
                out[k, c] = np.nan
                continue
            # tangent of the top surface at column c by central difference in mm; one-sided at
            # the image edges and beside NaN columns; an isolated column (no usable neighbour)
            # has no lateral geometry, so its thickness is the vertical one
            lo = c - 1 if c > 0 and np.isfinite(s[k, c - 1]) else c
            hi = c + 1 if c < n_cols - 1 and np.isfinite(s[k, c + 1]) else c
            if hi == lo:
                out[k, c] = (s[k + 1, c] - s[k, c]) * ay
                continue
            tx = (hi - lo) * ax
            ty = (s[k, hi] - s[k, lo]) * ay
            norm = np.sqrt(tx * tx + ty * ty)
            nx = -ty / norm   # unit normal pointing down (positive depth)
            ny = tx / norm
            x0 = c * ax
            best = np.inf
            # walk bottom-surface segments outward from column c; a segment whose nearest
            # lateral distance exceeds the best hit so far cannot give a shorter one
            for step in range(n_cols):
                found_any = False
                for side in range(2):
                    if side == 0:
                        j = c + step  # segment j .. j+1
                    else:
                        j = c - step - 1
                    if j < 0 or j + 1 > n_cols - 1:
                        continue
                    xa = j * ax
                    xb = (j + 1) * ax
                    near = 0.0
                    if xa > x0:
                        near = xa - x0
                    elif xb < x0:
                        near = x0 - xb
                    if near > best or near > max_reach_mm:
                        continue
                    found_any = True
                    ya = s[k + 1, j] * ay
                    yb = s[k + 1, j + 1] * ay
                    # solve x0 + t nx = xa + u (xb - xa), y0 + t ny = ya + u (yb - ya)
                    ex = xb - xa
                    ey = yb - ya
                    det = nx * (-ey) - ny * (-ex)
                    if det == 0.0:
                        continue
                    rx = xa - x0
                    ry = ya - y0
                    t = (rx * (-ey) - ry * (-ex)) / det
                    u = (nx * ry - ny * rx) / det
                    if t >= 0.0 and u >= -1e-12 and u <= 1.0 + 1e-12 and t < best:
                        best = t
                if not found_any and step > 0:
                    break
            out[k, c] = best if best < np.inf else np.nan


def thickness_normal_mm(surfaces, spacing_mm, max_reach_mm: float | None = None) -> np.ndarray:
    """Thickness of each layer along the local normal of its top surface, in mm.

    For column c and layer k the ray starts at the top surface point ``(x_c, s_k[c] * axial_mm)``
    and runs along the top surface's downward unit normal, computed in mm from the central
    difference of the top surface (one-sided at the image edges). The thickness is the distance
    to the first crossing of that ray with the bottom surface (the polyline through the
    ``s_{k+1}`` points). For flat parallel layers tilted by any angle this is their
    perpendicular thickness exactly; the definition follows the usual "measure perpendicular to
    the upper boundary" practice of skin ultrasound.

    Parameters
    ----------
    surfaces : array_like of float, shape (K+1, cols)
        Depths in rows.
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm.
    max_reach_mm : float, optional
        Ignore crossings further than this laterally from the column (default: no limit).

    Returns
    -------
    thickness : ndarray of float64, shape (K, cols)
        NaN where the layer is absent in the column, the column is NaN (lenient
        `labels_to_surfaces` output), or the ray leaves the image sideways without meeting the
        bottom surface (undefined). Rays may cross NaN columns of the bottom surface: those
        segments are skipped.

    Raises
    ------
    SpacingRequiredError
        `spacing_mm` is None.
    """
    s = check_surfaces(surfaces, allow_nan_columns=True)
    ay, ax = check_spacing(spacing_mm, "thickness in mm")
    reach = np.inf if max_reach_mm is None else float(max_reach_mm)
    out = np.empty((s.shape[0] - 1, s.shape[1]), dtype=np.float64)
    _thickness_normal(s, ay, ax, reach, out)
    return out
