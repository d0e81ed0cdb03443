"""Realism measures of B-mode frames: speckle size and layer contrast, per frame and per dataset.

Used to compare simulated frames with frames from scanners and other simulators (the numbers a
network can latch onto): ``layerseg bench realism --data DIR`` (`layerseg.bench.realism`)
prints them for a dataset folder.

Measures (on the *display* image, i.e. the log-compressed grey levels, as saved; no envelope is
needed):

* Speckle size: the full width at half maximum (FWHM) of the normalised 2-D autocovariance of the grey image inside a layer's mask, along depth (axial) and across
  (lateral). Pixels outside the mask are zero after each row's in-mask mean is removed (depth
  trends from TGC or attenuation and laterally extended bands such as a SLEB do not widen it;
  the finite row biases the lateral width low by a few per cent when a row holds only some
  tens of speckles), and the correlation sum at each lag is
  divided by the number of in-mask pixel pairs at that lag (``ACF(m x) / ACF(m)``), so the
  mask's shape does not bias it. The mask is first eroded (default 3 rows, 1 column) so the
  interface echoes at its edges stay out. The half-maximum point is linearly interpolated
  between lags. For fully developed speckle the intensity ACF has the FWHM of the amplitude
  PSF; the log image's ACF differs somewhat from it (log compression changes the statistics),
  so compare log images with log images (the issue's reference points are log-image values).
* Contrast: ``(mean grey of a layer - mean grey of the dermis) / SD of dermis grey``, in dermis
  SDs, on the eroded masks.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sp_fft
from scipy.ndimage import binary_erosion

from ..errors import ConfigError

__all__ = ["acf_fwhm", "layer_contrast", "frame_realism", "summarise", "PERCENTILES"]

PERCENTILES = (5, 25, 50, 75, 95)


def _erode(mask: np.ndarray, erode_px: tuple[int, int]) -> np.ndarray:
    ez, ex = (int(v) for v in erode_px)
    if ez <= 0 and ex <= 0:
        return mask.astype(bool)
    st = np.ones((2 * max(ez, 0) + 1, 2 * max(ex, 0) + 1), bool)
    return binary_erosion(mask, structure=st, border_value=0)


def _half_width(profile: np.ndarray) -> float:
    """Lag (in samples, interpolated) where a profile starting at 1 first falls to 0.5."""
    below = np.flatnonzero(profile < 0.5)
    if below.size == 0:
        return float("nan")
    k = int(below[0])
    a, b = profile[k - 1], profile[k]
    return float(k - 1 + (a - 0.5) / (a - b))


def acf_fwhm(image: np.ndarray, mask: np.ndarray, spacing_mm, *,
             erode_px: tuple[int, int] = (3, 1), min_pixels: int = 200) -> tuple[float, float]:
    """Axial and lateral FWHM (mm) of the normalised autocovariance of `image` inside `mask`.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Grey (log) image, or any real image (an envelope or intensity gives that ACF instead).
    mask : bool ndarray (rows, cols)
        Region to measure (e.g. the dermis label).
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral).
    erode_px : (int, int)
        Rows and columns eroded from the mask's edges first.
    min_pixels : int
        Fewer pixels left after erosion: return NaNs.

    Returns
    -------
    (axial_mm, lateral_mm) : tuple of float
        NaN where the region is too small or the ACF never falls to half (along that axis).
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or np.shape(mask) != img.shape:
        raise ConfigError(f"image and mask must be 2-D of one shape, got {img.shape} and "
                          f"{np.shape(mask)}")
    m = _erode(np.asarray(mask, bool), erode_px)
    if m.sum() < min_pixels:
        return float("nan"), float("nan")
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    sub = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    mm = m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float64)
    # remove each row's mean inside the mask: depth trends (TGC / attenuation mismatch) and
    # laterally extended bands (SLEB, upper/lower dermis contrast) are anatomy, not speckle
    n_row = mm.sum(axis=1)
    row_mean = np.where(n_row > 0, (sub * mm).sum(axis=1) / np.maximum(n_row, 1), 0.0)
    x = (sub - row_mean[:, None]) * mm
    shape = (2 * sub.shape[0], 2 * sub.shape[1])
    num = sp_fft.irfft2(np.abs(sp_fft.rfft2(x, shape)) ** 2, shape)
    den = sp_fft.irfft2(np.abs(sp_fft.rfft2(mm, shape)) ** 2, shape)
    nz, nx = sub.shape
    ok = den > 0.5
    acf = np.where(ok, num / np.where(ok, den, 1.0), np.nan)
    if not acf[0, 0] > 0:
        return float("nan"), float("nan")
    acf /= acf[0, 0]
    # use lags with enough pairs (at least 20 % of the zero-lag count)
    enough = den >= 0.2 * den[0, 0]
    ax = np.where(enough[:nz, 0], acf[:nz, 0], np.nan)
    la = np.where(enough[0, :nx], acf[0, :nx], np.nan)
    ax = ax[:np.argmax(np.isnan(ax))] if np.isnan(ax).any() else ax
    la = la[:np.argmax(np.isnan(la))] if np.isnan(la).any() else la
    dz, dx = (float(v) for v in spacing_mm)
    return 2.0 * _half_width(ax) * dz, 2.0 * _half_width(la) * dx


def layer_contrast(image: np.ndarray, masks: dict, *, reference: str = "dermis",
                   erode_px: tuple[int, int] = (3, 1), min_pixels: int = 50) -> dict:
    """Contrast of each layer to the reference layer, in reference SDs.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Grey image.
    masks : dict[str, bool ndarray]
        Layer name -> mask; must hold `reference`.
    reference : str
    erode_px : (int, int)
        Erosion of every mask first (keeps interface echoes out).
    min_pixels : int
        Layers with fewer pixels after erosion get NaN.

    Returns
    -------
    dict[str, float]
        ``(mean(layer) - mean(reference)) / SD(reference)`` per layer other than the reference.
    """
    img = np.asarray(image, dtype=np.float64)
    ref = _erode(masks[reference], erode_px)
    out: dict = {}
    if ref.sum() < min_pixels:
        return {k: float("nan") for k in masks if k != reference}
    mu, sd = float(img[ref].mean()), float(img[ref].std())
    for name, m in masks.items():
        if name == reference:
            continue
        e = _erode(m, erode_px)
        out[name] = (float((img[e].mean() - mu) / sd) if e.sum() >= min_pixels and sd > 0
                     else float("nan"))
    return out


def frame_realism(image: np.ndarray, labels: np.ndarray, layers, spacing_mm, *,
                  speckle_layers=("dermis", "fat"), erode_px: tuple[int, int] = (3, 1)) -> dict:
    """Speckle size (um) and contrast (dermis SDs) of one labelled frame.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Display grey image.
    labels : int ndarray (rows, cols)
        Label map; layer ``layers[k]`` has label ``k + 1``.
    layers : sequence of str
        The region profile's layer names, from the skin down.
    spacing_mm : (float, float)
    speckle_layers : sequence of str
        Layers whose speckle size to measure.
    erode_px : (int, int)

    Returns
    -------
    dict
        ``speckle_um`` {layer: [axial, lateral]}, ``contrast_sd`` {layer: value} (every layer
        but the epidermis, dermis and bone), ``dermis_thickness_mm`` (mean over columns holding
        dermis).
    """
    lab = np.asarray(labels)
    masks = {ly: lab == k + 1 for k, ly in enumerate(layers)}
    if "dermis" not in masks:
        raise ConfigError("the profile has no dermis")
    sp = {}
    for ly in speckle_layers:
        if ly in masks:
            a, b = acf_fwhm(image, masks[ly], spacing_mm, erode_px=erode_px)
            sp[ly] = [a * 1e3, b * 1e3]
    cm = {ly: m for ly, m in masks.items() if ly not in ("epidermis", "bone")}
    con = layer_contrast(image, cm, erode_px=erode_px)
    d = masks["dermis"].sum(axis=0)
    th = float(d[d > 0].mean() * float(spacing_mm[0])) if (d > 0).any() else float("nan")
    return {"speckle_um": sp, "contrast_sd": con, "dermis_thickness_mm": th}


def summarise(per_frame: list[dict], percentiles=PERCENTILES) -> dict:
    """Percentiles over frames of every measure of `frame_realism` (NaNs ignored).

    Returns
    -------
    dict
        ``{measure: {"n": frames with a value, "pXX": value, ...}}`` with measures
        ``speckle_axial_um.<layer>``, ``speckle_lateral_um.<layer>``, ``contrast_sd.<layer>``,
        ``dermis_thickness_mm``.
    """
    vals: dict[str, list] = {}
    for r in per_frame:
        for ly, (a, b) in r["speckle_um"].items():
            vals.setdefault(f"speckle_axial_um.{ly}", []).append(a)
            vals.setdefault(f"speckle_lateral_um.{ly}", []).append(b)
        for ly, c in r["contrast_sd"].items():
            vals.setdefault(f"contrast_sd.{ly}", []).append(c)
        vals.setdefault("dermis_thickness_mm", []).append(r["dermis_thickness_mm"])
    out = {}
    for k, v in vals.items():
        a = np.asarray([x for x in v if x is not None and math.isfinite(x)])
        d = {"n": int(a.size)}
        for q in percentiles:
            d[f"p{q}"] = float(np.percentile(a, q)) if a.size else float("nan")
        out[k] = d
    return out
