"""The one owner of the input checks every stage shares: pixel spacing, label maps and usable
contrast.

Every module that takes a spacing or a label map calls these functions (DESIGN.md: a concept has
one owner), so a value accepted in one place is accepted everywhere and a bad one gets the same
error class and words wherever it is found. numpy only: no torch, no numba.
"""

from __future__ import annotations

import math
from os import PathLike

import numpy as np

from .errors import CalibrationError, InvalidImageError, ProfileError, SpacingRequiredError

__all__ = ["check_spacing", "check_label_map", "check_image_2d", "LabelMapError", "contrast_problem",
           "no_echo_columns", "MAX_SPACING_MM", "MIN_SPACING_MM", "MIN_CONTRAST_GREY",
           "NO_ECHO_TOLERANCE_GREY", "MIN_ECHO_FRACTION", "MIN_MARGIN_FRACTION"]

MAX_SPACING_MM = 10.0
"""Largest plausible pixel spacing (mm per pixel) of an ultrasound frame; above it the value is
almost certainly in cm or m, or a header field misread."""

MIN_SPACING_MM = 1e-3
"""Smallest plausible pixel spacing (mm per pixel): 1 um, far under the wavelength of any
clinical ultrasound (31 um at 50 MHz); below it the value is almost certainly in metres read
as mm, or a header field misread (a value in cm read as mm is not caught here)."""

MIN_CONTRAST_GREY = 2.0
"""Smallest spread (grey levels 0-255, 1st to 99th percentile) that a frame must have to hold
any layer; below it the frame is blank (all black, all white, a constant or a frozen screen)."""


NO_ECHO_TOLERANCE_GREY = 4.0
"""Grey levels (0-255) within which a pixel counts as its column's flat background value
(`no_echo_columns`)."""

MIN_ECHO_FRACTION = 0.1
"""Smallest share of a column's pixels that must differ from its flat value for the column to
hold an echo; a screen margin with a line of burned-in text or a ruler's ticks stays under it,
a column through the skin (entry echo, dermis speckle) is far above it."""


MIN_MARGIN_FRACTION = 0.05
"""Narrowest run of flat columns at an image's side, as a share of its width, that
`no_echo_columns` takes for a screen margin."""


class LabelMapError(InvalidImageError, ProfileError):
    """A label map that is not a 2-D integer map with values 0-7, or not the frame's shape.

    Derives from both `InvalidImageError` and `ProfileError`, the classes its checks raised before
    they had one owner."""


def check_spacing(spacing_mm, what: str = "this measure",
                  source: str | PathLike | None = None) -> tuple[float, float]:
    """Validate a pixel spacing ``(axial_mm, lateral_mm)``.

    Parameters
    ----------
    spacing_mm : pair of float or None
        mm per pixel, axial (rows) then lateral (columns).
    what : str
        What needs the spacing, for the message when it is None.
    source : str or path-like, optional
        The file concerned, named in the error.

    Returns
    -------
    (float, float)
        The spacing as two positive finite floats, each from `MIN_SPACING_MM` to
        `MAX_SPACING_MM`.

    Raises
    ------
    SpacingRequiredError
        `spacing_mm` is None.
    CalibrationError
        Not two numbers, not positive and finite, or implausibly large.
    """
    if spacing_mm is None:
        raise SpacingRequiredError(f"{what} needs the pixel spacing (axial_mm, lateral_mm); "
                                   "none was given", source)
    try:
        ay, ax = (float(v) for v in spacing_mm)
    except (TypeError, ValueError):
        raise CalibrationError(f"pixel spacing must be two numbers (axial_mm, lateral_mm), got "
                               f"{spacing_mm!r}", source) from None
    if not (math.isfinite(ay) and math.isfinite(ax) and ay > 0 and ax > 0):
        raise CalibrationError(f"pixel spacing must be positive and finite mm, got ({ay}, {ax})",
                               source)
    if ay > MAX_SPACING_MM or ax > MAX_SPACING_MM:
        raise CalibrationError(f"pixel spacing ({ay}, {ax}) mm per pixel is implausible for an "
                               "ultrasound frame; is it in cm or m instead of mm?", source)
    if ay < MIN_SPACING_MM or ax < MIN_SPACING_MM:
        raise CalibrationError(f"pixel spacing ({ay:g}, {ax:g}) mm per pixel is implausible for an "
                               f"ultrasound frame (under {MIN_SPACING_MM * 1000:g} um); is it in m "
                               "instead of mm?", source)
    return ay, ax


def check_label_map(labels, shape: tuple[int, int] | None = None, *,
                    source: str | PathLike | None = None, what: str = "label map",
                    min_size: int = 1, dtype=np.int64) -> np.ndarray:
    """Validate a label map (DESIGN.md label convention: integers 0-7).

    Parameters
    ----------
    labels : array_like, shape (rows, cols)
        Integer labels, or floats that are whole numbers.
    shape : (int, int), optional
        The shape it must have (the frame's).
    source : str or path-like, optional
        The file concerned, named in the error.
    what : str
        How to name the map in the message (``"frame 12: label map"``).
    min_size : int
        Smallest number of rows and of columns accepted.
    dtype : numpy dtype
        dtype of the returned array.

    Returns
    -------
    ndarray, shape (rows, cols), C-contiguous, of `dtype`

    Raises
    ------
    LabelMapError
        Wrong dimensions or shape, non-integer values, or values outside 0-7.
    """
    from .layers.profiles import N_LABELS  # lazy: layers imports this module

    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.shape[0] < min_size or lab.shape[1] < min_size:
        raise LabelMapError(f"{what} must be a 2-D (rows, cols) array of at least {min_size} x "
                            f"{min_size}, got shape {lab.shape}", source)
    if shape is not None and lab.shape != tuple(shape):
        raise LabelMapError(f"{what} shape {lab.shape} differs from the image shape "
                            f"{tuple(shape)}", source)
    if lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
            raise LabelMapError(f"{what} must hold integers 0-{N_LABELS - 1}; it holds "
                                "non-integer values", source)
    elif lab.dtype.kind not in "iub":
        raise LabelMapError(f"{what} must hold integers 0-{N_LABELS - 1}; got dtype "
                            f"{lab.dtype}", source)
    lo, hi = lab.min(), lab.max()
    if lo < 0 or hi >= N_LABELS:
        raise LabelMapError(f"{what} holds values outside 0-{N_LABELS - 1} (found "
                            f"{lo:g}..{hi:g})", source)
    return np.ascontiguousarray(lab, dtype=dtype)


def check_image_2d(a: np.ndarray, what: str = "B-mode image",
                   source: str | PathLike | None = None, axes: str = "(rows, cols)") -> np.ndarray:
    """Check that an array can stand for a frame: 2-D and at least 2 x 2.

    Parameters
    ----------
    a : ndarray
    what : str
        How to name it in the message (``"RF data"``).
    source : str or path-like, optional
        The file concerned.
    axes : str
        The axes' names for the message (``"(samples, lines)"``).

    Returns
    -------
    ndarray
        `a` itself.

    Raises
    ------
    InvalidImageError
        Not 2-D, or fewer than 2 rows or columns.
    """
    if a.ndim != 2:
        raise InvalidImageError(f"{what} must be 2-D {axes}, got shape {a.shape}", source)
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise InvalidImageError(f"{what} is too small ({a.shape[0]} x {a.shape[1]}); a frame "
                                "needs at least 2 x 2", source)
    return a


def _spread_at_least(g: np.ndarray, min_spread: float) -> bool:
    """True when the 1st-99th percentile spread of `g` is certainly at least `min_spread`, read
    from a histogram of whole grey levels (one pass, no sort): the 1st percentile lies below
    the top edge of its bin and the 99th above the bottom edge of its, so their bins' distance
    less one bounds the spread from below (values beyond 0-255 counted in the edge bins keep
    the bound). False means "ask `np.percentile`", never "too little contrast"."""
    if g.size < 2:
        return False
    if g.dtype == np.uint8:             # whole grey levels already: counted as they are
        counts = np.bincount(g.ravel(), minlength=256)
    elif not np.isfinite(g).all():
        return False
    else:
        counts = np.bincount(np.clip(g, 0.0, 255.0).astype(np.intp).ravel(), minlength=256)
    cum = np.cumsum(counts)
    n = g.size
    # np.percentile (linear) reads ranks (n - 1) q: the 1st percentile is at most the value of
    # rank ceil(0.01 (n - 1)), the 99th at least that of rank floor(0.99 (n - 1))
    r1 = int(np.ceil(0.01 * (n - 1)))
    r99 = int(np.floor(0.99 * (n - 1)))
    b1 = int(np.searchsorted(cum, r1 + 1))
    b99 = int(np.searchsorted(cum, r99 + 1))
    return (b99 - b1 - 1) >= min_spread


def contrast_problem(grey: np.ndarray, min_spread: float = MIN_CONTRAST_GREY) -> str | None:
    """Why a display image (grey 0-255) has no usable contrast, or None when it has.

    The spread is the 1st-to-99th percentile range of the grey levels; a frame whose spread is
    below `min_spread` (all zeros, all white, a constant) cannot show any layer.

    Parameters
    ----------
    grey : ndarray, shape (rows, cols)
        Display grey levels on the 0-255 scale.
    min_spread : float
        Smallest accepted 1st-99th percentile spread, grey levels.

    Returns
    -------
    str or None
    """
    g = np.asarray(grey)
    if g.dtype != np.uint8:
        g = g.astype(np.float32, copy=False)
    if _spread_at_least(g, min_spread):
        return None
    g = g.astype(np.float32, copy=False)
    lo, hi = np.percentile(g, [1.0, 99.0])
    spread = float(hi - lo)
    if spread < min_spread:
        return (f"no usable contrast: 98 % of the pixels lie within {spread:.2f} grey levels "
                f"(around {float(np.median(g)):.0f}); the frame is blank or constant")
    return None


def no_echo_columns(grey: np.ndarray, tolerance_grey: float = NO_ECHO_TOLERANCE_GREY,
                    min_fraction: float = MIN_ECHO_FRACTION,
                    min_margin_fraction: float = MIN_MARGIN_FRACTION) -> np.ndarray:
    """Columns at the sides of a display image that hold no echo: the screen margins or side
    panels of a screen capture, beside the B-mode image.

    A column is flat when fewer than `min_fraction` of its pixels differ from the column's
    median by more than `tolerance_grey`: one value (black, or a panel's grey) but for sparse
    marks (burned-in text, ruler ticks). Margins are the runs of flat columns that reach the
    image's left or right edge and are at least `min_margin_fraction` of its width; flat
    columns inside the image, or narrow runs at its edge, are kept (a shadow under a hair or a
    vessel, or a dark display, can flatten a few columns of tissue).

    Parameters
    ----------
    grey : ndarray, shape (rows, cols)
        Display grey levels 0-255.
    tolerance_grey : float
        Grey levels within which a pixel counts as the column's flat value.
    min_fraction : float
        Share of pixels (0-1) that must differ from it for a column to hold an echo.
    min_margin_fraction : float
        Narrowest margin, as a share of the image's width.

    Returns
    -------
    ndarray of bool, shape (cols,)
        True in the margin columns.
    """
    g = np.asarray(grey)
    if g.ndim != 2:
        raise ValueError(f"grey must be 2-D (rows, cols), got shape {g.shape}")
    cols = g.shape[1]
    out = np.zeros(cols, dtype=bool)
    if g.shape[0] == 0 or cols == 0:
        return out
    tol, frac = float(tolerance_grey), float(min_fraction)

    def flat_run(cols_in_order: np.ndarray) -> int:
        # how many of these columns, in this order, are flat before the first that is not:
        # read in growing chunks, so a frame without margins costs a column or two
        n, step = 0, 1
        while n < cols_in_order.size:
            idx = cols_in_order[n:n + step]
            blk = g[:, idx].astype(np.float32)
            flat = (np.abs(blk - np.median(blk, axis=0)) > tol).mean(axis=0) < frac
            if not flat.all():
                return n + int(np.argmin(flat))
            n += idx.size
            step *= 2
        return n

    least = max(1, int(np.ceil(float(min_margin_fraction) * cols)))
    left = flat_run(np.arange(cols))
    if left == cols:                                   # every column flat: one run
        out[:] = cols >= least
        return out
    right = flat_run(np.arange(cols - 1, left - 1, -1))
    if left >= least:
        out[:left] = True
    if right >= least:
        out[cols - right:] = True
    return out
