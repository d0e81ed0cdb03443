"""Depth-gain (attenuation) compensation, from a dB/cm/MHz slope or a measured depth profile.

A pixel at depth ``z`` (the centre of row ``i``: ``z = (i + 0.5) * axial_mm``) has lost
``2 * alpha * f * z`` dB on the way down and back (round trip), with ``alpha`` in dB/cm/MHz,
``f`` in MHz and ``z`` in cm. Compensation multiplies the linear envelope by
``10 ** (gain_db / 20)``, or adds ``gain_db / dynamic_range_db * 255`` grey levels to a
log-compressed image (then clipped to 0-255). This is a per-row scale, so it is plain NumPy
broadcasting; there is no kernel.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import FilterInputError
from ._validate import check_image, check_positive

__all__ = ["compensate_attenuation", "attenuation_gain_db"]


def _axial_mm(spacing_mm) -> float:
    if isinstance(spacing_mm, numbers.Real):
        return check_positive(spacing_mm, "spacing_mm")
    try:
        ay = spacing_mm[0]
    except (TypeError, IndexError):
        raise FilterInputError(f"spacing_mm must be the axial spacing in mm or an (axial, "
                               f"lateral) pair, got {spacing_mm!r}") from None
    return check_positive(ay, "axial spacing (mm)")


def attenuation_gain_db(n_rows: int, spacing_mm, alpha_db_cm_mhz: float, f_mhz: float
                        ) -> np.ndarray:
    """Round-trip attenuation of each row in dB: ``2 * alpha * f * z_cm``, shape (n_rows,),
    float64, with ``z`` the depth of the row centre, ``(i + 0.5) * axial_mm / 10`` cm."""
    ay = _axial_mm(spacing_mm)
    a = check_positive(alpha_db_cm_mhz, "alpha_db_cm_mhz", allow_zero=True)
    f = check_positive(f_mhz, "f_mhz")
    z_cm = (np.arange(int(n_rows), dtype=np.float64) + 0.5) * ay / 10.0
    return 2.0 * a * f * z_cm


def compensate_attenuation(image, spacing_mm=None, alpha_db_cm_mhz: float | None = None,
                           f_mhz: float | None = None, profile=None, *,
                           input: str = "envelope", dynamic_range_db: float | None = None
                           ) -> np.ndarray:
    """Depth-gain compensation of a B-mode image.

    Give either a slope (`alpha_db_cm_mhz`, `f_mhz` and `spacing_mm`) or a measured `profile`.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        float32/float64 (kept) or integers (-> float32). ``input='envelope'``: linear envelope,
        >= 0; ``input='log'``: grey levels 0-255 over `dynamic_range_db`.
    spacing_mm : float or (axial_mm, lateral_mm)
        Pixel spacing; only the axial spacing is used. Required with a slope.
    alpha_db_cm_mhz : float
        Attenuation slope in dB/cm/MHz (skin about 1 dB/cm/MHz at 20-45 MHz; literature-values).
    f_mhz : float
        Centre frequency in MHz.
    profile : array_like, shape (rows,), optional
        Measured mean linear envelope amplitude at each depth (for example the lateral mean over a
        uniform phantom), > 0; the gain is ``profile[0] / profile`` (in dB:
        ``20 log10(profile[0] / profile)``), flattening that profile.
    input : {'envelope', 'log'}
    dynamic_range_db : float
        Required with ``input='log'``.

    Returns
    -------
    ndarray, same shape and dtype as `image` (float32 for integer input), in the input's domain.

    Raises
    ------
    FilterInputError
        Both or neither of slope and profile, missing spacing or frequency, a profile of the
        wrong length or with non-positive values, bad image.
    """
    have_slope = alpha_db_cm_mhz is not None or f_mhz is not None
    if have_slope == (profile is not None):
        raise FilterInputError("give either an attenuation slope (alpha_db_cm_mhz with f_mhz and "
                               "spacing_mm) or a measured depth profile, not both or neither")
    if input not in ("envelope", "log"):
        raise FilterInputError(f"input must be 'envelope' or 'log', got {input!r}")
    if input == "log":
        if dynamic_range_db is None:
            raise FilterInputError("input='log' needs dynamic_range_db to turn dB of gain into "
                                   "grey levels")
        dr = check_positive(dynamic_range_db, "dynamic_range_db")
        img = check_image(image)
    else:
        if dynamic_range_db is not None:
            raise FilterInputError("dynamic_range_db is given but input='envelope'")
        img = check_image(image, nonnegative=True)
    rows = img.shape[0]
    if have_slope:
        if alpha_db_cm_mhz is None or f_mhz is None or spacing_mm is None:
            raise FilterInputError("slope compensation needs alpha_db_cm_mhz, f_mhz and "
                                   "spacing_mm")
        gain_db = attenuation_gain_db(rows, spacing_mm, alpha_db_cm_mhz, f_mhz)
    else:
        p = np.asarray(profile, dtype=np.float64)
        if p.shape != (rows,):
            raise FilterInputError(f"profile must have one value per image row, shape ({rows},),"
                                   f" got {p.shape}")
        if not np.isfinite(p).all() or (p <= 0).any():
            raise FilterInputError("profile must be finite and > 0 (a linear envelope amplitude "
                                   "per depth)")
        gain_db = 20.0 * np.log10(p[0] / p)
    if input == "envelope":
        out = img * (10.0 ** (gain_db / 20.0))[:, None]
    else:
        out = np.clip(img + (gain_db / dr * 255.0)[:, None], 0.0, 255.0)
    return out.astype(img.dtype)
