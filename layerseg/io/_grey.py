"""The one owner of how pixel values become a frame's grey levels (DESIGN.md: grey conversion).

Two questions, one answer each, called by every reader and by the dataset loader:

`is_effectively_grey` / `rgb_to_grey` -- is a colour image really grey, and its grey levels.
    A pixel is *coloured* when its chroma ``max(R,G,B) - min(R,G,B)`` exceeds `GREY_CHROMA_MAX`
    (24 levels on the 0-255 scale: above the chroma noise of JPEG-compressed and 4:2:2-subsampled
    grey screens, below any colour map's colours). An image is *effectively grey* when at most
    `GREY_FRACTION_MAX` (0.5 %) of its pixels are coloured: calipers, markers and a small logo
    stay below it, an elastography overlay or a colour-flow box does not. The PNG/TIFF/JPEG
    reader and the DICOM reader both decide with these two numbers, so one screen exported both
    ways is treated alike.

`pixels_to_grey` -- integer or float pixel values onto the frame's scale.
    Images whose pixel type is a display bit depth (PNG/TIFF/JPEG: ``scale='bit_depth'``): 8-bit
    values are grey levels as they are; 16-bit values are scaled linearly from 0-65535 onto
    0-255 (float32, no precision lost). Arrays whose type is a storage choice (NIfTI, NRRD,
    ``.npy``: ``scale='as_is'``) are taken as they are. Floats are taken as they are in both.
    Then ``intensity='display'`` requires grey levels in 0-255, ``'envelope'`` values >= 0.

Label maps are never passed through `pixels_to_grey`: their values are class indices 0-7 and are
validated by `layerseg.checks.check_label_map` instead.
"""

from __future__ import annotations

from os import PathLike
from typing import Literal

import numpy as np

from ..errors import InvalidImageError

__all__ = ["GREY_CHROMA_MAX", "GREY_FRACTION_MAX", "pixel_chroma", "coloured_fraction",
           "is_effectively_grey", "rgb_to_grey", "pixels_to_grey", "BT601"]

GREY_CHROMA_MAX = 24.0
"""Largest chroma ``max(R,G,B) - min(R,G,B)`` (0-255 scale) of a pixel that still counts as
grey: above the chroma noise of JPEG-compressed grey images."""

GREY_FRACTION_MAX = 0.005
"""Largest fraction of coloured pixels (chroma above `GREY_CHROMA_MAX`) of an image or region
that is still effectively grey (calipers, markers)."""

BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)
"""ITU-R BT.601 luminance weights of R, G, B."""


def pixel_chroma(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel chroma ``max(R,G,B) - min(R,G,B)``.

    Parameters
    ----------
    rgb : ndarray, shape (..., 3) or (..., 4)
        0-255 scale; a 4th (alpha) channel is ignored.

    Returns
    -------
    ndarray, float32, shape (...)
    """
    a = np.asarray(rgb)[..., :3].astype(np.float32, copy=False)
    return a.max(axis=-1) - a.min(axis=-1)


def coloured_fraction(rgb: np.ndarray) -> float:
    """Fraction of the pixels of `rgb` (shape (rows, cols, 3|4), 0-255) whose chroma exceeds
    `GREY_CHROMA_MAX`; 0.0 for an empty image."""
    c = pixel_chroma(rgb)
    return float((c > GREY_CHROMA_MAX).mean()) if c.size else 0.0


def is_effectively_grey(rgb: np.ndarray) -> bool:
    """True when at most `GREY_FRACTION_MAX` of the pixels of `rgb` are coloured (chroma above
    `GREY_CHROMA_MAX`).

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3) or (rows, cols, 4)
        0-255 scale; an alpha channel is ignored.

    Returns
    -------
    bool
    """
    return coloured_fraction(rgb) <= GREY_FRACTION_MAX


def rgb_to_grey(rgb: np.ndarray, colour: str = "refuse", source=None) -> np.ndarray:
    """Grey levels of an RGB image.

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3) or (rows, cols, 4)
        Any numeric type on a 0-255 scale; a 4th (alpha) channel is ignored.
    colour : {'refuse', 'luminance'}
        What to do when the image is not effectively grey (`is_effectively_grey`): raise
        `InvalidImageError`, or convert with ITU-R BT.601 luminance.
    source : str or path-like, optional
        File name for messages.

    Returns
    -------
    ndarray, float32, shape (rows, cols)
        Where R, G and B agree within one level everywhere (grey stored as colour), their mean,
        the grey level itself; otherwise the BT.601 luminance ``0.299 R + 0.587 G + 0.114 B``.

    Raises
    ------
    InvalidImageError
        Not an RGB(A) array, an unknown `colour`, or colour with ``colour='refuse'``.
    """
    if colour not in ("refuse", "luminance"):
        raise InvalidImageError(f"colour must be 'refuse' or 'luminance', got {colour!r}", source)
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise InvalidImageError(f"expected an RGB image (rows, cols, 3), got shape {a.shape}",
                                source)
    a = a[..., :3].astype(np.float32)
    chroma = pixel_chroma(a)
    spread = float(chroma.max()) if chroma.size else 0.0
    if spread <= 1.0:
        return a.mean(axis=2, dtype=np.float32)  # grey stored as colour
    frac = float((chroma > GREY_CHROMA_MAX).mean())
    if colour == "refuse" and frac > GREY_FRACTION_MAX:
        raise InvalidImageError(
            f"the image is in colour ({100 * frac:.2f}% of its pixels have R, G, B differing by "
            f"more than {GREY_CHROMA_MAX:g} levels, up to {spread:g}; at most "
            f"{100 * GREY_FRACTION_MAX:g}% may) where a grey B-mode is expected; to convert it "
            "(ITU-R BT.601 luminance: burned-in calipers and text then read as grey) give its "
            "sidecar JSON \"colour\": \"luminance\" (colour='luminance' in Python), crop the "
            "grey B-mode with a sidecar 'bmode_box', or describe its elastography overlay in "
            "the sidecar's 'elasto'", source)
    return (a @ BT601).astype(np.float32)


def pixels_to_grey(a: np.ndarray, *, scale: Literal["bit_depth", "as_is"],
                   intensity: Literal["display", "envelope"] = "display",
                   source: str | PathLike | None = None, what: str = "image") -> np.ndarray:
    """A grey (single-channel) image's pixel values on the frame's scale.

    Parameters
    ----------
    a : ndarray, shape (rows, cols)
        Integer or float pixel values (bool is taken as 0/255).
    scale : {'bit_depth', 'as_is'}
        ``'bit_depth'`` for formats whose pixel type is a display bit depth (PNG, TIFF, JPEG):
        16-bit integers are scaled from 0-65535 onto 0-255, 8-bit taken as grey levels.
        ``'as_is'`` for arrays whose type is a storage choice (NIfTI, NRRD, ``.npy``).
    intensity : {'display', 'envelope'}
        What the values must be: grey 0-255, or a linear envelope >= 0.
    source : str or path-like, optional
        The file, named in errors.
    what : str
        How to name the image in messages (``"frame 3"``).

    Returns
    -------
    ndarray, float32, shape (rows, cols)

    Raises
    ------
    InvalidImageError
        Not numeric, NaN/inf values, 16-bit values outside 0-65535, values outside the
        intensity's range.
    """
    if scale not in ("bit_depth", "as_is"):
        raise ValueError(f"scale must be 'bit_depth' or 'as_is', got {scale!r}")
    if intensity not in ("display", "envelope"):
        raise InvalidImageError(f"intensity must be 'display' or 'envelope', got {intensity!r}",
                                source)
    a = np.asarray(a)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * np.uint8(255)
    if a.dtype.kind not in "uif":
        raise InvalidImageError(f"{what}: pixel type {a.dtype} is not a grey image", source)
    if a.dtype.kind in "ui" and scale == "bit_depth" and a.dtype.itemsize > 1:
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise InvalidImageError(f"{what}: integer values range {lo} to {hi}, outside 16-bit "
                                    "0-65535", source)
        return a.astype(np.float32) * np.float32(255.0 / 65535.0)
    f = a.astype(np.float32)
    bad = ~np.isfinite(f)
    if bad.any():
        raise InvalidImageError(f"{what} holds {int(bad.sum())} NaN/inf pixel(s)", source)
    if not f.size:
        return f
    lo, hi = float(f.min()), float(f.max())
    if intensity == "display" and (lo < 0 or hi > 255):
        raise InvalidImageError(
            f"{what} ranges {lo:g} to {hi:g}, outside display grey 0-255; if it is a linear "
            "envelope say so (intensity='envelope': read_volume's argument, the sidecar's or the "
            "manifest's \"intensity\"), or rescale it", source)
    if intensity == "envelope" and lo < 0:
        raise InvalidImageError(f"{what} has negative values; an envelope must be >= 0", source)
    return f
