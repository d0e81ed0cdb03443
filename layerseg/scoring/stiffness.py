"""Stiffness of a layer from the frame's elastography map, over valid pixels only.

* ``swe_kpa`` maps (shear-wave Young's modulus E, kPa): ``stiffness_median_kpa``,
  ``stiffness_mean_kpa``, ``stiffness_iqr_kpa``.
* ``strain`` maps (unitless): ``strain_mean``, ``strain_median`` and ``strain_ratio``, the strain
  ratio to a reference layer ``mean strain(reference) / mean strain(layer)`` (the usual strain-ratio
  convention: above 1 means the layer is stiffer than the reference).

``elasto_valid_fraction`` is the share of the layer's pixels with a valid elastography value, and
``elasto_below_resolution`` flags a layer whose median thickness is under the elastography's
spatial resolution (the value is kept, but mixes in its neighbours).
"""

from __future__ import annotations

import numpy as np

__all__ = ["elasto_stats", "ELASTO_RESOLUTION_MM", "MIN_ELASTO_PIXELS"]

ELASTO_RESOLUTION_MM = 0.5
"""Default spatial resolution assumed for an elastography map (mm) when flagging thin layers.
A frame does not carry its elastography's resolution; pass the scanner's value where known."""

MIN_ELASTO_PIXELS = 10
"""Fewest valid elastography pixels in a layer for a stiffness value."""

_KEYS = ("stiffness_median_kpa", "stiffness_mean_kpa", "stiffness_iqr_kpa", "strain_mean",
         "strain_median", "strain_ratio", "elasto_valid_fraction", "elasto_below_resolution",
         "stiffness_reason", "strain_reason")


def elasto_stats(elasto: np.ndarray | None, valid: np.ndarray | None, kind: str | None,
                 mask: np.ndarray, *, thickness_median_mm: float | None = None,
                 resolution_mm: float = ELASTO_RESOLUTION_MM,
                 reference_strain_mean: float | None = None, reference_layer: str = "fat",
                 min_pixels: int = MIN_ELASTO_PIXELS) -> dict:
    """Elastography statistics of one layer.

    Parameters
    ----------
    elasto : ndarray of float32, shape (rows, cols), or None
        kPa or strain, NaN where invalid.
    valid : ndarray of bool, shape (rows, cols), or None
        Validity mask (`Frame.elasto_valid`).
    kind : {'swe_kpa', 'strain'} or None
    mask : ndarray of bool, shape (rows, cols)
        The layer's pixels.
    thickness_median_mm : float, optional
        The layer's median thickness, compared with `resolution_mm`.
    resolution_mm : float
        Elastography resolution (mm).
    reference_strain_mean : float, optional
        Mean strain of the reference layer (for ``strain_ratio``).
    reference_layer : str
        Name of the reference layer (for the reason text).
    min_pixels : int
        Fewest valid pixels for a value.

    Returns
    -------
    dict
        Keys listed in the module notes plus ``stiffness_reason`` / ``strain_reason``.
    """
    out = {k: None for k in _KEYS}
    if elasto is None:
        out["stiffness_reason"] = out["strain_reason"] = "frame has no elastography"
        return out
    ok = mask & (np.isfinite(elasto) if valid is None else (valid & np.isfinite(elasto)))
    n_mask = int(mask.sum())
    n_ok = int(ok.sum())
    out["elasto_valid_fraction"] = (n_ok / n_mask) if n_mask else None
    if thickness_median_mm is not None:
        out["elasto_below_resolution"] = bool(thickness_median_mm < resolution_mm)
    other = "strain" if kind == "swe_kpa" else "stiffness"
    out[f"{other}_reason"] = f"frame elastography is {kind}"
    mine = "stiffness" if kind == "swe_kpa" else "strain"
    if n_mask == 0:
        out[f"{mine}_reason"] = "layer holds no pixel centre"
        return out
    if n_ok < min_pixels:
        out[f"{mine}_reason"] = (f"{n_ok} valid elastography pixel(s) in the layer "
                                 f"(need {min_pixels})")
        return out
    v = elasto[ok].astype(np.float64)
    if kind == "swe_kpa":
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        out.update(stiffness_median_kpa=float(med), stiffness_mean_kpa=float(v.mean()),
                   stiffness_iqr_kpa=float(q3 - q1))
    else:
        mean = float(v.mean())
        out.update(strain_mean=mean, strain_median=float(np.median(v)))
        if reference_strain_mean is None:
            out["strain_reason"] = (f"strain_ratio: reference layer {reference_layer!r} has no "
                                    "valid strain")
        elif mean == 0:
            out["strain_reason"] = "strain_ratio: the layer's mean strain is 0"
        else:
            out["strain_ratio"] = float(reference_strain_mean / mean)
    return out
