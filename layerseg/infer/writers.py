"""Writers of the batch inference outputs: label maps (NIfTI, PNG), overlays, score tables.

Every file is written atomically (`layerseg.io.safe_write.atomic_write`) and deterministically:
the same frames give the same bytes (no timestamps in PNG, NIfTI or gzip headers), so a resumed
run's outputs are byte-identical to an uninterrupted one's. Nothing here writes a file name, a
path or a header field of the input: only arrays, spacing and pseudonymous keys.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np

from ..io.safe_write import atomic_write
from ..layers.profiles import LABEL_NAMES

__all__ = ["LABEL_COLOURS", "label_volume_nifti_bytes", "write_label_nifti", "png_bytes",
           "write_png", "render_overlay", "write_bytes"]

LABEL_COLOURS = {
    1: (255, 255, 255),   # epidermis
    2: (255, 200, 0),     # dermis
    3: (0, 220, 255),     # fat
    4: (255, 0, 255),     # smas
    5: (0, 255, 120),     # deep_fat
    6: (255, 80, 60),     # muscle
    7: (140, 140, 255),   # bone
}
"""Outline colour of each label (RGB) in the overlays and the report."""


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def label_volume_nifti_bytes(labels: list[np.ndarray], spacing_mm: tuple[float, float]) -> bytes:
    """A stack of label maps as gzip-compressed NIfTI-1 bytes, deterministic.

    Parameters
    ----------
    labels : list of ndarray of uint8, each shape (rows, cols)
        The frames' label maps 0-7 (same shape).
    spacing_mm : (float, float)
        ``(axial_mm, lateral_mm)``.

    Returns
    -------
    bytes
        A ``.nii.gz`` file: data shape ``(cols, rows, frames)`` uint8 (frame ``k`` is
        ``data[:, :, k].T``, as `layerseg.io.read` reads volumes), zooms
        ``(lateral_mm, axial_mm, 1)``, unit mm, intent 'label', an empty description, and a
        gzip header with no time stamp.
    """
    import nibabel as nib
    vol = np.stack([np.asarray(lab, dtype=np.uint8).T for lab in labels], axis=-1)
    ay, ax = (float(s) for s in spacing_mm)
    affine = np.diag([ax, ay, 1.0, 1.0])
    img = nib.Nifti1Image(vol, affine)
    h = img.header
    h.set_data_dtype(np.uint8)
    h.set_zooms((ax, ay, 1.0))
    h.set_xyzt_units("mm")
    h.set_intent("label")
    h["descrip"] = b""
    h["cal_min"], h["cal_max"] = 0, len(LABEL_NAMES) - 1
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def write_label_nifti(path: str | os.PathLike, labels: list[np.ndarray],
                      spacing_mm: tuple[float, float]) -> Path:
    """Write `label_volume_nifti_bytes` to `path` (``.nii.gz``) atomically."""
    return write_bytes(path, label_volume_nifti_bytes(labels, spacing_mm))


def png_bytes(img: np.ndarray) -> bytes:
    """Encode a uint8 image ``(rows, cols)`` grey or ``(rows, cols, 3)`` RGB as PNG bytes (no
    time stamp or text chunks)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8)).save(buf, format="PNG",
                                                                     optimize=False)
    return buf.getvalue()


def write_png(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Write `png_bytes` of `img` to `path` atomically."""
    return write_bytes(path, png_bytes(img))


def _display_scale(spacing_mm, shape, min_width: int = 480, max_width: int = 900
                   ) -> tuple[int, int]:
    """Output size (rows, cols) showing the frame at its physical aspect (square display
    pixels of the finer spacing), between `min_width` and `max_width` wide."""
    ay, ax = spacing_mm
    rows, cols = shape
    d = min(ay, ax)
    h, w = rows * ay / d, cols * ax / d
    f = max_width / w if w > max_width else (min_width / w if w < min_width else 1.0)
    return max(2, int(round(h * f))), max(2, int(round(w * f)))


def _resize(img: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    from PIL import Image
    mode = Image.NEAREST if nearest else Image.BILINEAR
    return np.asarray(Image.fromarray(img).resize((size[1], size[0]), mode))


def _font():
    """Pillow's built-in font at 14 px (Pillow >= 10.1), else its small bitmap font."""
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=14)
    except TypeError:
        return ImageFont.load_default()


def _elasto_panel(frame, size) -> tuple[np.ndarray, str]:
    from ..io.colour import default_colour_bar, encode_colour
    e = np.asarray(frame.elasto, dtype=np.float64)
    valid = np.asarray(frame.elasto_valid, dtype=bool) & np.isfinite(e)
    vals = e[valid]
    vmax = float(np.percentile(vals, 99)) if vals.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    bar = default_colour_bar(0.0, vmax)
    grey = np.clip(np.rint(frame.display()), 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    rgb[valid] = encode_colour(e[valid], bar)
    unit = "kPa" if frame.elasto_kind == "swe_kpa" else "strain"
    return _resize(rgb, size, nearest=False), f"elastography 0-{vmax:.3g} {unit}"


def render_overlay(frame, labels: np.ndarray, profile_layers=None) -> np.ndarray:
    """The B-mode with each layer's outline and name drawn on it; elastography beside it.

    Parameters
    ----------
    frame : layerseg.Frame
        The frame (display grey B-mode, spacing in mm, optional elastography).
    labels : ndarray of uint8, shape (rows, cols)
        Label map 0-7.
    profile_layers : sequence of str, optional
        Layer names to label (default every label present).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        RGB, resampled to the frame's physical aspect (square display pixels): the overlay,
        then, when the frame has elastography, a gap and the elastography in colour over the
        grey B-mode with its range written under it.
    """
    from PIL import Image, ImageDraw
    from skimage.segmentation import find_boundaries

    lab = np.asarray(labels, dtype=np.uint8)
    size = _display_scale(frame.spacing_mm or (1.0, 1.0), lab.shape)
    grey = np.clip(np.rint(frame.display()), 0, 255).astype(np.uint8)
    rgb = _resize(np.repeat(grey[..., None], 3, axis=-1), size, nearest=False).copy()
    lab_big = _resize(lab, size, nearest=True)
    edges = find_boundaries(lab_big, mode="inner")
    for v, col in LABEL_COLOURS.items():
        rgb[edges & (lab_big == v)] = col
    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    font = _font()
    names = set(profile_layers) if profile_layers is not None else None
    h, w = size
    x_text = max(2, w // 40)
    for v in range(1, len(LABEL_NAMES)):
        name = LABEL_NAMES[v]
        if names is not None and name not in names:
            continue
        rows = np.nonzero(lab_big[:, min(w - 1, x_text + 4)] == v)[0]
        if rows.size == 0:
            cols_any = np.nonzero((lab_big == v).any(axis=0))[0]
            if cols_any.size == 0:
                continue
            rows = np.nonzero(lab_big[:, cols_any[cols_any.size // 2]] == v)[0]
        y = int(rows.mean()) - 5
        y = min(max(y, 0), h - 16)
        draw.text((x_text + 1, y + 1), name, fill=(0, 0, 0), font=font)
        draw.text((x_text, y), name, fill=LABEL_COLOURS[v], font=font)
    out = np.asarray(img)
    if frame.elasto is not None:
        panel, caption = _elasto_panel(frame, size)
        pim = Image.fromarray(panel.copy())
        d2 = ImageDraw.Draw(pim)
        d2.text((x_text + 1, h - 17), caption, fill=(0, 0, 0), font=font)
        d2.text((x_text, h - 18), caption, fill=(255, 255, 255), font=font)
        gap = np.zeros((h, 8, 3), np.uint8)
        out = np.concatenate([out, gap, np.asarray(pim)], axis=1)
    return np.ascontiguousarray(out, dtype=np.uint8)
