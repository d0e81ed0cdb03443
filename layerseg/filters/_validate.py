"""Input checks and intensity-domain conversions shared by the public filter functions.

Every public filter calls these before its private kernel, so kernels only ever see finite,
C-contiguous float32/float64 2-D arrays and plain numbers.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import FilterInputError
from ..frame import display_to_envelope, envelope_to_display
from ._config import MAX_WINDOW

INPUT_KINDS = ("envelope", "log")


def check_image(image, what: str = "image", *, nonnegative: bool = False) -> np.ndarray:
    """Validate a 2-D image and return it as a C-contiguous float32 or float64 array.

    Integer images (any width, e.g. uint8 display frames) are converted to float32; float32 and
    float64 are kept as they are. float16, complex, bool, object, NaN/inf and (when
    `nonnegative`) negative values raise `FilterInputError`.
    """
    a = np.asarray(image)
    if a.ndim != 2:
        raise FilterInputError(f"{what} must be 2-D (rows, cols), got shape {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise FilterInputError(f"{what} is too small ({a.shape[0]} x {a.shape[1]}); filters need "
                               "at least 2 x 2 pixels")
    if a.dtype == np.float16:
        raise FilterInputError(f"{what} is float16, which is too coarse for filtering (11-bit "
                               "mantissa); convert it to float32 first")
    if a.dtype.kind in "iu":
        a = a.astype(np.float32)
    elif a.dtype.kind != "f" or a.dtype not in (np.float32, np.float64):
        raise FilterInputError(f"{what} has pixel type {a.dtype}; filters take float32, float64 "
                               "or integer images")
    if not np.isfinite(a).all():
        n = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise FilterInputError(f"{what} holds {n} NaN/inf pixel(s); mask or inpaint them first")
    if nonnegative and a.min() < 0:
        raise FilterInputError(
            f"{what} has negative values (min {float(a.min()):.4g}) but this filter expects the "
            "linear envelope (amplitude >= 0); pass input='log' with dynamic_range_db for a "
            "log-compressed image")
    return np.ascontiguousarray(a)


def check_window(window, shape, what: str = "window") -> tuple[int, int]:
    """An odd window side (int) or ``(rows, cols)`` pair -> ``(wr, wc)``; each side odd, >= 1,
    no larger than `MAX_WINDOW` and no larger than the image side it slides along."""
    if isinstance(window, numbers.Integral):
        pair = (int(window), int(window))
    else:
        try:
            pair = tuple(window)
        except TypeError:
            raise FilterInputError(f"{what} must be an odd int or a (rows, cols) pair of odd "
                                   f"ints, got {window!r}") from None
        if len(pair) != 2 or not all(isinstance(p, numbers.Integral) for p in pair):
            raise FilterInputError(f"{what} must be an odd int or a (rows, cols) pair of odd "
                                   f"ints, got {window!r}")
        pair = (int(pair[0]), int(pair[1]))
    for side, n, axis in zip(pair, shape, ("rows", "cols")):
        if side < 1 or side % 2 == 0:
            raise FilterInputError(f"{what} sides must be odd and >= 1 (a centred window), got "
                                   f"{pair}")
        if side > MAX_WINDOW:
            raise FilterInputError(f"{what} side {side} exceeds the maximum {MAX_WINDOW}")
        if side > n:
            raise FilterInputError(f"{what} side {side} is larger than the image ({n} {axis})")
    return pair


def check_positive(value, what: str, *, allow_zero: bool = False, upper: float | None = None
                   ) -> float:
    """A finite positive number (or zero when `allow_zero`), at most `upper` when given."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FilterInputError(f"{what} must be a number, got {value!r}") from None
    ok = math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        raise FilterInputError(f"{what} must be a finite {'non-negative' if allow_zero else 'positive'}"
                               f" number, got {value!r}")
    if upper is not None and v > upper:
        raise FilterInputError(f"{what} must be at most {upper}, got {v}")
    return v


def to_envelope(image, input: str, dynamic_range_db, what: str = "image"):
    """Validate `image` and bring it to the linear envelope.

    Returns ``(envelope, back)`` where ``back(result)`` maps a filtered envelope to the caller's
    domain and dtype: identity for ``input='envelope'``; for ``input='log'`` the inverse of
    ``layerseg.frame.display_to_envelope`` (grey 0-255 over `dynamic_range_db`, 1.0 -> grey 255).
    """
    if input not in INPUT_KINDS:
        raise FilterInputError(f"input must be one of {INPUT_KINDS}, got {input!r}")
    if input == "envelope":
        if dynamic_range_db is not None:
            raise FilterInputError("dynamic_range_db is given but input='envelope'; a dynamic "
                                   "range only applies to log-compressed input (input='log')")
        env = check_image(image, what, nonnegative=True)
        return env, (lambda out: out)
    if dynamic_range_db is None:
        raise FilterInputError("input='log' needs dynamic_range_db (the dB range mapped onto grey "
                               "0-255) to recover the linear envelope, where speckle is "
                               "multiplicative")
    dr = check_positive(dynamic_range_db, "dynamic_range_db")
    grey = check_image(image, what)
    if grey.min() < 0 or grey.max() > 255:
        raise FilterInputError(f"{what} with input='log' must hold grey levels 0-255, got "
                               f"[{float(grey.min()):.4g}, {float(grey.max()):.4g}]")
    dtype = grey.dtype
    env = np.ascontiguousarray(display_to_envelope(grey, dr).astype(dtype))

    def back(out):
        return envelope_to_display(out, dr, reference=1.0).astype(dtype)

    return env, back
