"""Simulated elastography: per-layer stiffness, shear-wave (SWE) and strain maps, colour overlays.

Three steps, each seeded only through the ``numpy.random.Generator`` passed in:

1. `draw_layer_stiffness` draws one subject's Young's modulus per layer (kPa) from the table
   ``layerseg/data/sim_stiffness.json`` (sources in ``sim_stiffness.md``), by facial region, sex and
   age, with between-subject spread.
2. `simulate_swe` renders a shear-wave map in kPa from a label map: the true per-pixel modulus,
   blurred to the millimetre-scale resolution of shear-wave systems, with spatially correlated
   multiplicative noise and a limited valid box. `simulate_strain` renders a strain map under a
   uniform axial compression of the layered medium (the layers of a column act as springs in
   series).
3. `render_elasto_overlay` paints a map in colour over the grey B-mode through a colour bar
   (`layerseg.io.colour.ColourBar`), and `draw_colour_bar` draws the bar to place beside it.

Which pixels carry a value: tissue labels 1-6 (epidermis .. muscle) inside the valid box. The
background (gel, stand-off, below the deepest layer) carries none, and neither does bone: the bone
surface reflects nearly all the energy and shadows everything under it, so neither shear-wave
tracking nor speckle tracking works there. Bone still takes part in the strain model as a
near-rigid spring.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import ConfigError
from ..layers.profiles import LABEL_INDEX, LABEL_NAMES, N_LABELS, canonical_region
from ..checks import check_label_map, check_spacing

__all__ = ["STIFFNESS_LAYERS", "draw_layer_stiffness", "stiffness_table", "modulus_map",
           "simulate_swe", "simulate_strain", "series_strain", "random_valid_box",
           "render_elasto_overlay", "draw_colour_bar"]

STIFFNESS_LAYERS: tuple[str, ...] = LABEL_NAMES[1:]
"""Layer names that get a modulus: every label except background."""

_VALUED_LABELS = np.array([LABEL_INDEX[n] for n in ("epidermis", "dermis", "fat", "smas",
                                                     "deep_fat", "muscle")])
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548


# ---------------------------------------------------------------------------------- stiffness
@lru_cache(maxsize=1)
def stiffness_table() -> dict:
    """The parsed ``sim_stiffness.json`` (cached; do not modify the returned dict)."""
    with resources.files("layerseg.data").joinpath("sim_stiffness.json").open() as f:
        t = json.load(f)
    missing = [n for n in STIFFNESS_LAYERS if n not in t.get("layers", {})]
    if missing:
        raise ConfigError(f"sim_stiffness.json lacks the layer(s) {missing}")
    return t


def _sex_key(sex) -> str | None:
    if sex is None:
        return None
    s = str(sex).strip().lower()
    if s in ("f", "female", "w", "woman"):
        return "F"
    if s in ("m", "male", "man"):
        return "M"
    if s in ("", "u", "unknown", "o", "other", "x"):
        return None
    raise ConfigError(f"sex must be 'F', 'M' or None (unknown), got {sex!r}")


@lru_cache(maxsize=None)
def _layer_params(region: str, layer: str) -> tuple[float, float, float, float, dict]:
    """(e_ref_kpa, ref_age_years, age_slope_per_year, cv, sex_factor) of a layer in a region."""
    t = stiffness_table()
    p = dict(t["layers"][layer])
    over = t["regions"].get(region, {}).get(layer, {})
    p.update({k: v for k, v in over.items() if k != "factor"})
    e_ref = float(p["e_ref_kpa"]) * float(over.get("factor", 1.0))
    return (e_ref, float(p["ref_age_years"]), float(p["age_slope_per_year"]), float(p["cv"]),
            {k: float(v) for k, v in p["sex_factor"].items()})


def draw_layer_stiffness(region: str | None, sex: str | None, age: float,
                         rng: np.random.Generator) -> dict[str, float]:
    """Draw one subject's Young's modulus per layer.

    ``E = e_ref * sex_factor * exp(slope * (age - ref_age)) * exp(cv * z - cv**2 / 2)`` with
    ``z ~ N(0, 1)`` drawn per layer in `STIFFNESS_LAYERS` order (so the mean over subjects equals
    the table's value at the reference age). The parameters per layer and region, and where each comes
    from, are in ``layerseg/data/sim_stiffness.json`` / ``sim_stiffness.md``: masseter (region
    ``jaw``) 9.5 kPa in women and 11.7 kPa in men at 50 y rising slightly with age, temporalis
    (``temple``) 8.8 kPa, dermis falling with age, deep fat falling strongly with age.

    Parameters
    ----------
    region : str or None
        Facial region or alias (None -> ``default``); unknown names raise `ProfileError`.
    sex : {'F', 'M'} or None
        None (unknown) uses the sex-neutral value.
    age : float
        Age in years, 0-120.
    rng : numpy.random.Generator
        Consumes exactly ``len(STIFFNESS_LAYERS)`` standard normals.

    Returns
    -------
    dict of str -> float
        Young's modulus in kPa for each name in `STIFFNESS_LAYERS`.
    """
    reg = canonical_region(region, strict=True)
    sk = _sex_key(sex)
    try:
        a = float(age)
    except (TypeError, ValueError):
        raise ConfigError(f"age must be a number of years, got {age!r}") from None
    if not (math.isfinite(a) and 0 <= a <= 120):
        raise ConfigError(f"age must lie in 0-120 years, got {age!r}")
    z = rng.standard_normal(len(STIFFNESS_LAYERS))
    out = {}
    for zi, layer in zip(z, STIFFNESS_LAYERS):
        e_ref, ref_age, slope, cv, sex_factor = _layer_params(reg, layer)
        sf = 1.0 if sk is None else sex_factor[sk]
        e = e_ref * sf * math.exp(slope * (a - ref_age)) * math.exp(cv * zi - 0.5 * cv * cv)
        out[layer] = float(e)
    return out


# ---------------------------------------------------------------------------------- helpers
def _check_labels(labels) -> np.ndarray:
    return check_label_map(labels, min_size=2, dtype=np.intp)


def _nonneg(name: str, v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {v!r}") from None
    if not (math.isfinite(f) and f >= 0):
        raise ConfigError(f"{name} must be finite and >= 0, got {v!r}")
    return f


def _fraction(name: str, v) -> float:
    f = _nonneg(name, v)
    if f >= 1:
        raise ConfigError(f"{name} must lie in [0, 1), got {v!r}")
    return f


def modulus_map(labels: np.ndarray, layer_kpa: dict[str, float]) -> np.ndarray:
    """The true per-pixel Young's modulus of a label map.

    Parameters
    ----------
    labels : ndarray of int, shape (rows, cols)
        Label map 0-7.
    layer_kpa : dict of str -> float
        Modulus in kPa for (at least) every layer present in `labels`.

    Returns
    -------
    ndarray of float64, shape (rows, cols)
        kPa; NaN on background (label 0).
    """
    lab = _check_labels(labels)
    lut = np.full(N_LABELS, np.nan)
    present = np.unique(lab)
    for i in present:
        if i == 0:
            continue
        name = LABEL_NAMES[i]
        if name not in layer_kpa:
            raise ConfigError(f"layer_kpa has no modulus for layer {name!r}, which the label map "
                              "holds")
        v = float(layer_kpa[name])
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"layer_kpa[{name!r}] must be a positive finite kPa, got {v!r}")
        lut[i] = v
    return lut[lab]


def random_valid_box(shape: tuple[int, int], rng: np.random.Generator, *,
                     min_frac: float = 0.5, max_frac: float = 0.9) -> tuple[int, int, int, int]:
    """A random rectangle ``(row0, row1, col0, col1)`` (half-open pixel bounds) of a frame.

    Height and width are each a uniform fraction in ``[min_frac, max_frac]`` of the frame; the
    position is uniform. Consumes four uniforms from `rng`.
    """
    rows, cols = int(shape[0]), int(shape[1])
    u = rng.random(4)
    h = max(2, int(round(rows * (min_frac + (max_frac - min_frac) * u[0]))))
    w = max(2, int(round(cols * (min_frac + (max_frac - min_frac) * u[1]))))
    h, w = min(h, rows), min(w, cols)
    r0 = int(math.floor(u[2] * (rows - h + 1)))
    c0 = int(math.floor(u[3] * (cols - w + 1)))
    r0, c0 = min(r0, rows - h), min(c0, cols - w)
    return r0, r0 + h, c0, c0 + w


def _box_mask(shape, valid_box, rng) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    if valid_box is None:
        box = random_valid_box(shape, rng)
    else:
        try:
            box = tuple(int(v) for v in valid_box)
        except (TypeError, ValueError):
            raise ConfigError(f"valid_box must be (row0, row1, col0, col1), got "
                              f"{valid_box!r}") from None
        if len(box) != 4:
            raise ConfigError(f"valid_box must be (row0, row1, col0, col1), got {valid_box!r}")
        r0, r1, c0, c1 = box
        if not (0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]):
            raise ConfigError(f"valid_box {box} (half-open row0, row1, col0, col1) does not fit "
                              f"the {shape[0]} x {shape[1]} frame")
    m = np.zeros(shape, dtype=bool)
    m[box[0]:box[1], box[2]:box[3]] = True
    return m, box


def _sigma_px(resolution_mm: float, spacing: tuple[float, float]) -> tuple[float, float]:
    s = resolution_mm / _FWHM_PER_SIGMA
    return s / spacing[0], s / spacing[1]


def _masked_blur(values: np.ndarray, mask: np.ndarray, sigma_px) -> np.ndarray:
    """Normalised convolution: the Gaussian-weighted mean of `values` over `mask` pixels only."""
    if sigma_px[0] <= 0 and sigma_px[1] <= 0:
        return np.where(mask, values, 0.0)
    m = mask.astype(np.float64)
    num = ndimage.gaussian_filter(np.where(mask, values, 0.0), sigma_px, mode="constant")
    den = ndimage.gaussian_filter(m, sigma_px, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(mask & (den > 0), out, 0.0)


def _correlated_noise(shape, sigma_px, rng) -> np.ndarray:
    """Zero-mean, unit-SD Gaussian noise correlated over the resolution cell."""
    z = rng.standard_normal(shape)
    if sigma_px[0] > 0 or sigma_px[1] > 0:
        z = ndimage.gaussian_filter(z, sigma_px, mode="wrap")
        sd = float(z.std())
        z = (z - z.mean()) / (sd if sd > 0 else 1.0)
    return z


def _dropouts(shape, sigma_px, frac: float, rng) -> np.ndarray:
    """Holes of low shear-wave / tracking quality: blobs of the resolution cell's size covering
    about `frac` of the frame (True = dropped). Draws nothing when `frac` is 0."""
    if frac <= 0:
        return np.zeros(shape, bool)
    z = _correlated_noise(shape, sigma_px, rng)
    return z > np.quantile(z, 1.0 - frac)


def _layer_info(lab: np.ndarray, spacing, resolution_mm: float, layer_kpa) -> dict[str, Any]:
    """Per layer present: modulus, median vertical thickness (mm) over the columns holding it, and
    whether that is thinner than the resolution."""
    out = {}
    for i in np.unique(lab):
        if i == 0:
            continue
        name = LABEL_NAMES[int(i)]
        per_col = (lab == i).sum(axis=0)
        t = float(np.median(per_col[per_col > 0])) * spacing[0]
        out[name] = {"kpa": float(layer_kpa[name]), "median_thickness_mm": round(t, 6),
                     "thinner_than_resolution": bool(t < resolution_mm)}
    return out


# ---------------------------------------------------------------------------------- SWE
def simulate_swe(labels: np.ndarray, spacing_mm: tuple[float, float],
                 layer_kpa: dict[str, float], rng: np.random.Generator, *,
                 resolution_mm: float = 1.0, noise_frac: float = 0.1,
                 valid_box: tuple[int, int, int, int] | None = None,
                 dropout_frac: float = 0.0) -> tuple[np.ndarray, dict[str, Any]]:
    """A shear-wave elastography map (Young's modulus, kPa) of a layered label map.

    The true modulus (`modulus_map`) is averaged over tissue with a Gaussian of full width at half
    maximum `resolution_mm` in both axes (converted to pixels through `spacing_mm`; a normalised
    convolution over the valued pixels, so gel and bone do not leak in), then multiplied by
    log-normal noise ``exp(noise_frac * n - noise_frac**2 / 2)`` whose field ``n`` (unit SD) is
    correlated over the same resolution cell, so the noise has mean 1 and SD ~ `noise_frac`.

    Parameters
    ----------
    labels : ndarray of int, shape (rows, cols)
        Label map 0-7 (image space).
    spacing_mm : (float, float)
        Pixel spacing ``(axial, lateral)`` in mm.
    layer_kpa : dict of str -> float
        Modulus per layer (`draw_layer_stiffness`).
    rng : numpy.random.Generator
        Draws the box (when `valid_box` is None) and then the noise.
    resolution_mm : float
        FWHM of the spatial resolution in mm (>= 0; 0 = no blur). Shear-wave systems resolve about
        1 mm.
    noise_frac : float
        Relative SD of the multiplicative noise (>= 0).
    valid_box : (row0, row1, col0, col1) or None
        Half-open pixel bounds of the acquisition box; random (`random_valid_box`) when None.
    dropout_frac : float
        Fraction (0-1) of the frame lost to low-quality holes (blobs of the resolution cell's
        size, as scanners blank pixels whose shear-wave quality is poor); 0 (default) = none.
        Drawn after the noise, and only when > 0.

    Returns
    -------
    kpa : ndarray of float32, shape (rows, cols)
        Modulus in kPa; NaN outside the box, on background and on bone.
    info : dict
        JSON-serialisable: ``kind`` ('swe_kpa'), ``valid_box`` [row0, row1, col0, col1],
        ``resolution_mm``, ``sigma_px`` [axial, lateral], ``noise_frac``, ``dropout_frac`` and
        ``layers``: per layer
        present ``{"kpa", "median_thickness_mm", "thinner_than_resolution"}``.
    """
    lab = _check_labels(labels)
    spacing = check_spacing(spacing_mm, "simulated elastography")
    res = _nonneg("resolution_mm", resolution_mm)
    nf = _nonneg("noise_frac", noise_frac)
    true = modulus_map(lab, layer_kpa)
    box_mask, box = _box_mask(lab.shape, valid_box, rng)
    tissue = np.isin(lab, _VALUED_LABELS)
    sig = _sigma_px(res, spacing)
    blurred = _masked_blur(np.nan_to_num(true), tissue, sig)
    z = _correlated_noise(lab.shape, sig, rng)
    kpa = blurred * np.exp(nf * z - 0.5 * nf * nf)
    df = _fraction("dropout_frac", dropout_frac)
    valid = tissue & box_mask & ~_dropouts(lab.shape, sig, df, rng)
    out = np.where(valid, kpa, np.nan).astype(np.float32)
    info = {"kind": "swe_kpa", "valid_box": list(box), "resolution_mm": res,
            "sigma_px": [float(sig[0]), float(sig[1])], "noise_frac": nf, "dropout_frac": df,
            "layers": _layer_info(lab, spacing, res, layer_kpa)}
    return out, info


# ---------------------------------------------------------------------------------- strain
def series_strain(labels: np.ndarray, layer_kpa: dict[str, float],
                  compression: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact strain of a uniformly compressed layered medium, column by column.

    In each column the non-background pixels (labels 1-7, each one pixel of height ``h``) are
    springs in series: the stress ``sigma`` is the same in all of them, ``strain_i = sigma / E_i``,
    and the shortening adds up to the applied one, ``sum(strain_i * h) = compression * H`` with
    ``H`` the column's tissue height. Hence ``sigma = compression * n / sum(1 / E_i)`` (n pixels).

    Returns
    -------
    strain : ndarray of float64, shape (rows, cols)
        Unitless (positive = shortening); 0 on background.
    stress_kpa : ndarray of float64, shape (cols,)
        The column stress in kPa (0 where a column holds no tissue).
    """
    lab = _check_labels(labels)
    true = modulus_map(lab, layer_kpa)
    medium = lab > 0
    inv = np.where(medium, 1.0 / np.where(medium, true, 1.0), 0.0)
    n = medium.sum(axis=0)
    s_inv = inv.sum(axis=0)
    stress = np.where(n > 0, compression * n / np.where(s_inv > 0, s_inv, 1.0), 0.0)
    return stress[None, :] * inv, stress


def simulate_strain(labels: np.ndarray, spacing_mm: tuple[float, float],
                    layer_kpa: dict[str, float], rng: np.random.Generator, *,
                    compression: float = 0.01, resolution_mm: float = 0.5,
                    noise_std: float | None = None,
                    valid_box: tuple[int, int, int, int] | None = None,
                    dropout_frac: float = 0.0) -> tuple[np.ndarray, dict[str, Any]]:
    """A strain-elastography map of a layered label map under uniform axial compression.

    The exact series-spring strain (`series_strain`: stress uniform per column, ``strain_i =
    sigma / E_i``, ``sum(strain_i * h_i) = compression * H``) is averaged over tissue with a
    Gaussian of FWHM `resolution_mm` (normalised convolution, as in `simulate_swe`), and additive
    Gaussian noise of SD `noise_std`, correlated over the resolution cell, is added.

    Parameters
    ----------
    labels : ndarray of int, shape (rows, cols)
        Label map 0-7.
    spacing_mm : (float, float)
        Pixel spacing ``(axial, lateral)`` in mm.
    layer_kpa : dict of str -> float
        Modulus per layer in kPa (bone takes part as a stiff spring).
    rng : numpy.random.Generator
        Draws the box (when `valid_box` is None) and then the noise.
    compression : float
        Applied axial compression as a fraction of the tissue height (0 < c < 1; 1 % default).
    resolution_mm : float
        FWHM of the spatial resolution in mm (>= 0; 0 = none). Strain imaging resolves finer than
        shear-wave imaging; 0.5 mm default (our choice).
    noise_std : float or None
        SD of the additive strain noise; None -> 10 % of `compression`.
    valid_box : (row0, row1, col0, col1) or None
        Half-open pixel bounds of the valid box; random when None.
    dropout_frac : float
        Fraction (0-1) of the frame lost to decorrelation holes (resolution-sized blobs); 0
        (default) = none. Drawn after the noise, and only when > 0.

    Returns
    -------
    strain : ndarray of float32, shape (rows, cols)
        Unitless strain; NaN outside the box, on background and on bone.
    info : dict
        JSON-serialisable: ``kind`` ('strain'), ``compression``, ``valid_box``, ``resolution_mm``,
        ``sigma_px``, ``noise_std``, ``dropout_frac``, ``stress_median_kpa`` and ``layers``: per
        layer present ``{"kpa", "median_thickness_mm", "thinner_than_resolution", "strain_mean"}`` (the mean
        exact strain of the layer over the frame, before blur and noise).
    """
    lab = _check_labels(labels)
    spacing = check_spacing(spacing_mm, "simulated elastography")
    res = _nonneg("resolution_mm", resolution_mm)
    c = _nonneg("compression", compression)
    if not 0 < c < 1:
        raise ConfigError(f"compression must be a fraction in (0, 1), got {compression!r}")
    ns = 0.1 * c if noise_std is None else _nonneg("noise_std", noise_std)
    strain, stress = series_strain(lab, layer_kpa, c)
    box_mask, box = _box_mask(lab.shape, valid_box, rng)
    tissue = np.isin(lab, _VALUED_LABELS)
    sig = _sigma_px(res, spacing)
    blurred = _masked_blur(strain, tissue, sig)
    z = _correlated_noise(lab.shape, sig, rng)
    df = _fraction("dropout_frac", dropout_frac)
    valid = tissue & box_mask & ~_dropouts(lab.shape, sig, df, rng)
    out = np.where(valid, blurred + ns * z, np.nan).astype(np.float32)
    layers = _layer_info(lab, spacing, res, layer_kpa)
    for name, d in layers.items():
        d["strain_mean"] = float(strain[lab == LABEL_INDEX[name]].mean())
    cols = stress > 0
    info = {"kind": "strain", "compression": c, "valid_box": list(box), "resolution_mm": res,
            "sigma_px": [float(sig[0]), float(sig[1])], "noise_std": ns, "dropout_frac": df,
            "stress_median_kpa": float(np.median(stress[cols])) if cols.any() else None,
            "layers": layers}
    return out, info


# ---------------------------------------------------------------------------------- colour
def render_elasto_overlay(bmode_grey: np.ndarray, values: np.ndarray, valid: np.ndarray | None,
                          bar, alpha: float = 1.0) -> np.ndarray:
    """Paint an elastography map in colour over the grey B-mode, as a scanner displays it.

    Parameters
    ----------
    bmode_grey : ndarray, shape (rows, cols)
        Display grey levels 0-255 (any numeric dtype; rounded and clipped).
    values : ndarray, shape (rows, cols)
        kPa or strain, in the bar's unit; values beyond the bar's ends take its end colours.
    valid : ndarray of bool, shape (rows, cols), or None
        Where to paint colour; None -> ``isfinite(values)``. Invalid pixels show the B-mode grey.
    bar : layerseg.io.colour.ColourBar
        The colour map (`layerseg.io.colour.default_colour_bar` for a jet-like one).
    alpha : float
        Opacity of the colour, in (0, 1]. 1 (default, as shear-wave displays usually are) keeps
        the colours exactly on the bar, so `layerseg.io.colour.decode_colour` recovers the values
        to within the bar's step; below 1 the colours mix with the grey and decode less exactly.

    Returns
    -------
    ndarray of uint8, shape (rows, cols, 3)
        RGB screen image.
    """
    from ..io.colour import encode_colour

    g = np.asarray(bmode_grey)
    if g.ndim != 2 or g.dtype.kind not in "biuf":
        raise ConfigError(f"bmode_grey must be a 2-D numeric grey image, got shape {g.shape} "
                          f"dtype {g.dtype}")
    v = np.asarray(values, dtype=np.float64)
    if v.shape != g.shape:
        raise ConfigError(f"values shape {v.shape} differs from the B-mode shape {g.shape}")
    ok = np.isfinite(v)
    if valid is not None:
        m = np.asarray(valid, dtype=bool)
        if m.shape != g.shape:
            raise ConfigError(f"valid mask shape {m.shape} differs from the B-mode shape "
                              f"{g.shape}")
        ok &= m
    a = float(alpha)
    if not (math.isfinite(a) and 0 < a <= 1):
        raise ConfigError(f"alpha must lie in (0, 1], got {alpha!r}")
    grey = np.clip(np.rint(np.nan_to_num(g.astype(np.float64))), 0, 255)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    col = encode_colour(np.where(ok, v, np.nan), bar).astype(np.float64)
    rgb[ok] = a * col[ok] + (1 - a) * rgb[ok]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def draw_colour_bar(height: int, width: int, bar) -> np.ndarray:
    """Draw a vertical colour bar, maximum at the top, as scanners place it beside the overlay.

    Row ``i`` shows the value ``vmax - (vmax - vmin) * i / (height - 1)``, so
    ``layerseg.io.colour.sample_colour_bar(rgb, (0, 0, height, width), bar.vmin, bar.vmax)``
    recovers the bar.

    Parameters
    ----------
    height, width : int
        Size in pixels (height >= 2, width >= 1).
    bar : layerseg.io.colour.ColourBar

    Returns
    -------
    ndarray of uint8, shape (height, width, 3)
    """
    from ..io.colour import encode_colour

    h, w = int(height), int(width)
    if h < 2 or w < 1:
        raise ConfigError(f"a colour bar needs height >= 2 and width >= 1, got {h} x {w}")
    vals = np.linspace(bar.vmax, bar.vmin, h)
    col = encode_colour(vals, bar)
    return np.ascontiguousarray(np.broadcast_to(col[:, None, :], (h, w, 3)))
