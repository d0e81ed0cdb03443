"""The two forms of a segmentation: the label map and K+1 surfaces per column (DESIGN.md).

This module owns the conversions between them, the order check, surface smoothing and layer
presence; everything else calls it.

Conventions
-----------
For a profile of K layers a column holds K + 1 depths ``s_0 <= s_1 <= ... <= s_K`` in row units
(float64, sub-pixel allowed): ``s_k`` is the top of profile layer k and ``s_K`` the bottom of the
last layer. Row r (pixel centre at depth ``r + 0.5``) belongs to layer k when
``s_k <= r + 0.5 < s_{k+1}``; it is background (label 0) when ``r + 0.5 < s_0`` or
``r + 0.5 >= s_K``. With integer surfaces this reads ``s_k <= r < s_{k+1}``.

* Absent layer: zero thickness, its top equals the next layer's top (``s_k = s_{k+1}``). An absent
  last layer has its top at the bottom of the deepest present layer.
* Column with no labelled pixel: every surface equals ``n_rows`` (all of the column is background
  "above the first depth"). `labels_to_surfaces` always writes this; `surfaces_to_labels` accepts
  any all-equal column as empty.
* Exactness: ``surfaces_to_labels(labels_to_surfaces(L))`` equals L for every map L that obeys the
  profile; ``labels_to_surfaces(surfaces_to_labels(S))`` equals S for every integer S in
  ``[0, n_rows]`` that obeys the zero-thickness convention, that is every ordered integer S whose
  fully empty columns sit at ``n_rows`` (absent layers are then automatically "top equals the next
  layer's top", since an absent layer's two surfaces coincide).

A label map obeys a profile when every column reads, from the top: background (possibly none), then
a run of each present layer in profile order (each layer at most one contiguous run, no background
between layers), then background (possibly none). Labels outside 0-7 are never accepted.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from scipy.ndimage import gaussian_filter1d

from ..checks import check_label_map, check_spacing
from ..errors import CalibrationError, ProfileError
from .profiles import N_LABELS, Profile, get_profile

__all__ = ["labels_to_surfaces", "surfaces_to_labels", "resample_surfaces", "order_violations",
           "order_violation_mask", "smooth_surfaces", "layer_presence", "as_profile",
           "check_surfaces", "check_spacing"]


# --------------------------------------------------------------------------- helpers

def as_profile(profile: Profile | str | None) -> Profile:
    """A `Profile` from a profile, a region name/alias, or None (``default``).

    Raises `ProfileError` for an unknown region.
    """
    if isinstance(profile, Profile):
        return profile
    return get_profile(profile)


def _check_labels(labels) -> np.ndarray:
    return check_label_map(labels, dtype=np.int64)


def _position_table(profile: Profile) -> np.ndarray:
    """pos[label] = index of the label in the profile, -1 for background (and absent labels)."""
    pos = np.full(N_LABELS, -2, dtype=np.int64)  # -2: a label not in this profile
    pos[0] = -1
    for i, lab in enumerate(profile.labels):
        pos[lab] = i
    return pos


def check_surfaces(surfaces, profile: Profile | None = None, n_rows: int | None = None,
                   allow_nan_columns: bool = False) -> np.ndarray:
    """Validate surfaces; returns a float64 C-contiguous (K+1, cols) copy-or-view.

    Raises `ProfileError` when the shape does not fit the profile, a value is not finite, lies
    outside ``[0, n_rows]`` (when `n_rows` is given), or a column is not non-decreasing. With
    `allow_nan_columns`, columns that are NaN throughout (the lenient output of
    `labels_to_surfaces` for columns out of order) pass.
    """
    s = np.ascontiguousarray(surfaces, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ProfileError(f"surfaces must be a 2-D (K+1, cols) array, got shape {s.shape}")
    if profile is not None and s.shape[0] != profile.n_layers + 1:
        raise ProfileError(f"the {profile.region} profile has {profile.n_layers} layers, so "
                           f"surfaces need {profile.n_layers + 1} rows; got {s.shape[0]}")
    finite = np.isfinite(s)
    ok_cols = finite.all(axis=0)
    if allow_nan_columns:
        nan_cols = np.isnan(s).all(axis=0)
        if not (ok_cols | nan_cols).all():
            raise ProfileError("surfaces hold infinite depths, or NaN in part of a column "
                               "(only whole NaN columns are accepted)")
    elif not ok_cols.all():
        raise ProfileError("surfaces hold NaN or infinite depths")
    v = s[:, ok_cols]
    if v.size and np.any(np.diff(v, axis=0) < 0):
        bad = np.flatnonzero(ok_cols)[np.any(np.diff(v, axis=0) < 0, axis=0)]
        raise ProfileError(f"surfaces are out of order (a layer's top below its bottom) in "
                           f"{bad.size} column(s), first {bad[0]}")
    if n_rows is not None and v.size and (v.min() < 0 or v.max() > n_rows):
        raise ProfileError(f"surface depths must lie in [0, {n_rows}] rows; found "
                           f"{v.min():g} to {v.max():g}")
    return s


# --------------------------------------------------------------------------- kernels

@njit(cache=True, parallel=True)
def _labels_to_surfaces(labels, pos, n_layers, surfaces, bad):
    n_rows, n_cols = labels.shape
    for c in prange(n_cols):
        tops = np.full(n_layers, -1, dtype=np.int64)
        phase = 0  # 0 top background, 1 inside the layers, 2 bottom background
        cur = -1
        end = n_rows
        ok = True
        for r in range(n_rows):
            p = pos[labels[r, c]]
            if p == -2:
                ok = False
                break
            if phase == 0:
                if p >= 0:
                    phase = 1
                    cur = p
                    tops[p] = r
            elif phase == 1:
                if p == -1:
                    phase = 2
                    end = r
                elif p != cur:
                    if p < cur:
                        ok = False
                        break
                    cur = p
                    tops[p] = r
            else:
                if p != -1:
                    ok = False
                    break
        bad[c] = not ok
        if not ok:
            for k in range(n_layers + 1):
                surfaces[k, c] = np.nan
            continue
        if phase == 0:
            for k in range(n_layers + 1):
                surfaces[k, c] = n_rows
            continue
        surfaces[n_layers, c] = end
        for k in range(n_layers - 1, -1, -1):
            if tops[k] >= 0:
                surfaces[k, c] = tops[k]
            else:
                surfaces[k, c] = surfaces[k + 1, c]


_LABEL_ROW_BLOCK = 16
"""Rows per parallel task of `_surfaces_to_labels`."""


@njit(cache=True, parallel=True)
def _surfaces_to_labels(surfaces, layer_labels, n_rows, out):
    """out[r, c] = layer_labels[k] where surfaces[k, c] <= r + 0.5 < surfaces[k + 1, c], else 0;
    written row by row (contiguous) in blocks of rows in parallel. Each surface becomes the
    first row it covers, ``ceil(s - 0.5)`` (exact for depths below 2**51), and each column's
    count of surfaces at or above the current row advances down the block."""
    n_s, n_cols = surfaces.shape
    first = np.empty((n_s, n_cols), dtype=np.int64)
    for k in range(n_s):
        for c in range(n_cols):
            v = np.ceil(surfaces[k, c] - 0.5)
            first[k, c] = 0 if v < 0 else n_rows if v > n_rows else int(v)
    n_blocks = (n_rows + _LABEL_ROW_BLOCK - 1) // _LABEL_ROW_BLOCK
    for bi in prange(n_blocks):
        r0 = bi * _LABEL_ROW_BLOCK
        r1 = min(n_rows, r0 + _LABEL_ROW_BLOCK)
        count = np.zeros(n_cols, dtype=np.int64)   # surfaces whose first row is <= r
        for r in range(r0, r1):
            for c in range(n_cols):
                k = count[c]
                while k < n_s and first[k, c] <= r:
                    k += 1
                count[c] = k
                out[r, c] = layer_labels[k - 1] if k >= 1 and k < n_s else 0


# --------------------------------------------------------------------------- public

def _convert(labels, profile):
    prof = as_profile(profile)
    lab = _check_labels(labels)
    n_cols = lab.shape[1]
    surfaces = np.empty((prof.n_layers + 1, n_cols), dtype=np.float64)
    bad = np.zeros(n_cols, dtype=np.bool_)
    _labels_to_surfaces(lab, _position_table(prof), prof.n_layers, surfaces, bad)
    return prof, surfaces, bad


def labels_to_surfaces(labels, profile: Profile | str | None = None, strict: bool = True
                       ) -> np.ndarray:
    """Surfaces of a label map under a region profile.

    Parameters
    ----------
    labels : ndarray of int, shape (rows, cols)
        Label map, values 0-7 (DESIGN.md).
    profile : Profile or str or None
        The region profile (or region name; None -> ``default``).
    strict : bool
        When True (default) a map with any column that does not obey the profile raises
        `ProfileError`. When False such columns get NaN surfaces (find them with
        `order_violation_mask`).

    Returns
    -------
    surfaces : ndarray of float64, shape (K+1, cols)
        Integer-valued depths in rows: ``surfaces[k]`` is the top of profile layer k,
        ``surfaces[K]`` the bottom of the last layer. An absent layer's top equals the next
        layer's top; a column with no labelled pixel has every surface at ``rows``.

    Raises
    ------
    ProfileError
        Unknown region, labels outside 0-7, or (strict) a column out of profile order.
    """
    prof, surfaces, bad = _convert(labels, profile)
    if strict and bad.any():
        cols = np.flatnonzero(bad)
        raise ProfileError(f"label map does not obey the {prof.region} profile {prof.layers} in "
                           f"{cols.size} column(s), first column {cols[0]} (a layer out of order, "
                           "split in two runs, or background between layers)")
    return surfaces


def surfaces_to_labels(surfaces, profile: Profile | str | None, n_rows: int) -> np.ndarray:
    """Label map of K+1 surfaces per column.

    Parameters
    ----------
    surfaces : array_like of float, shape (K+1, cols)
        Depths in rows (sub-pixel allowed), non-decreasing down each column, in ``[0, n_rows]``.
    profile : Profile or str or None
        The region profile (K layers).
    n_rows : int
        Number of rows of the map.

    Returns
    -------
    labels : ndarray of uint8, shape (n_rows, cols)
        Row r of a column is profile layer k when ``s_k <= r + 0.5 < s_{k+1}``, else 0.

    Raises
    ------
    ProfileError
        Wrong number of surfaces for the profile, non-finite or out-of-order depths.
    """
    prof = as_profile(profile)
    n_rows = int(n_rows)
    if n_rows < 1:
        raise ProfileError(f"n_rows must be positive, got {n_rows}")
    s = check_surfaces(surfaces, prof, n_rows)
    out = np.empty((n_rows, s.shape[1]), dtype=np.uint8)
    _surfaces_to_labels(s, np.asarray(prof.labels, dtype=np.uint8), n_rows, out)
    return out


def resample_surfaces(surfaces, n_rows_from: int, shape_to) -> np.ndarray:
    """Surfaces of a grid taken onto another grid over the same field of view.

    Parameters
    ----------
    surfaces : array_like of float, shape (K+1, cols_from)
        Depths in rows of a grid of `n_rows_from` rows (this module's conventions).
    n_rows_from : int
    shape_to : (rows, cols)
        The other grid; both grids span the same depth and width (pixel edges on pixel edges).

    Returns
    -------
    ndarray of float64, shape (K+1, cols)
        Depths scaled by ``rows / n_rows_from`` (exact: the top edges coincide) and interpolated
        linearly between column centres (held beyond the outer centres), so order is kept. A
        column whose nearest source column has no labelled pixel stays empty (every depth at
        ``rows``), never half-interpolated.
    """
    s = np.asarray(surfaces, dtype=np.float64)
    rows, cols = (int(v) for v in shape_to)
    n_from, c_from = int(n_rows_from), s.shape[1]
    scaled = s * (rows / n_from)
    x_from = (np.arange(c_from) + 0.5) * (cols / c_from) - 0.5     # source centres, target units
    x_to = np.arange(cols, dtype=np.float64)
    out = np.stack([np.interp(x_to, x_from, row) for row in scaled])
    empty = np.all(s == s[:1], axis=0) & (s[0] >= n_from)
    if empty.any():
        nearest = np.clip(np.floor((x_to + 0.5) * c_from / cols).astype(int), 0, c_from - 1)
        out[:, empty[nearest]] = rows
    return np.clip(out, 0.0, rows)


def order_violation_mask(labels, profile: Profile | str | None = None) -> np.ndarray:
    """Columns of a label map that do not obey a profile's layer order.

    Parameters
    ----------
    labels : ndarray of int, shape (rows, cols)
        Label map, values 0-7.
    profile : Profile or str or None
        The region profile.

    Returns
    -------
    mask : ndarray of bool, shape (cols,)
        True where the column breaks the order: a layer above one that should lie over it, a layer
        in two runs, or background between two layers.
    """
    return _convert(labels, profile)[2]


def order_violations(labels, profile: Profile | str | None = None) -> int:
    """Number of columns of a label map that break the profile's layer order (see
    `order_violation_mask`)."""
    return int(order_violation_mask(labels, profile).sum())


def layer_presence(surfaces) -> np.ndarray:
    """Where each layer is present (positive thickness).

    Parameters
    ----------
    surfaces : array_like of float, shape (K+1, cols)

    Returns
    -------
    present : ndarray of bool, shape (K, cols)
        ``surfaces[k+1] > surfaces[k]``. With sub-pixel surfaces a present layer may cover no
        pixel centre. False in NaN columns (lenient `labels_to_surfaces` output).
    """
    s = check_surfaces(surfaces, allow_nan_columns=True)
    return s[1:] > s[:-1]


def smooth_surfaces(surfaces, sigma_mm: float, spacing_mm) -> np.ndarray:
    """Gaussian smoothing of each surface along the columns, keeping the order.

    Every surface is filtered with the same non-negative weights, so differences between
    surfaces (layer thicknesses) are smoothed too and never become negative: the order holds.
    Empty columns (all surfaces equal: no labelled pixel) and NaN columns (lenient
    `labels_to_surfaces` output) are left as they are and do not enter their neighbours' averages
    (normalised convolution); edges use the nearest valid column.

    Parameters
    ----------
    surfaces : array_like of float, shape (K+1, cols)
        Depths in rows.
    sigma_mm : float
        Gaussian standard deviation along the image width, in mm (>= 0; 0 returns a copy).
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm.

    Returns
    -------
    smoothed : ndarray of float64, shape (K+1, cols)
    """
    s = check_surfaces(surfaces, allow_nan_columns=True).copy()
    _, ax = check_spacing(spacing_mm, "smoothing surfaces in mm")
    sigma_mm = float(sigma_mm)
    if not np.isfinite(sigma_mm) or sigma_mm < 0:
        raise CalibrationError(f"sigma_mm must be a non-negative number, got {sigma_mm!r}")
    sigma_px = sigma_mm / ax
    if sigma_px == 0:
        return s
    valid = (s[-1] > s[0]).astype(np.float64)        # False for NaN columns too
    den = gaussian_filter1d(valid, sigma_px, mode="nearest")
    num = gaussian_filter1d(np.where(valid > 0, s, 0.0), sigma_px, axis=1, mode="nearest")
    use = (valid > 0) & (den > 1e-12)
    out = s.copy()
    out[:, use] = num[:, use] / den[use]
    # rounding can leave differences of a few ulp below zero: restore the exact order
    out[:, use] = np.maximum.accumulate(out[:, use], axis=0)
    return out
