"""PNG, TIFF and JPEG frames (screen captures, exports), with spacing from the caller or a sidecar.

`read_image` returns a lazy `FrameSeries`: one frame for PNG/JPEG, one per page for a multi-page
TIFF (each page decoded only when asked for; the first is decoded at once so a bad file fails
early).

Pixel values
------------
Converted by `layerseg.io._grey` (the one owner of grey conversion; the dataset loader calls the
same functions):

- 8-bit grey: grey levels 0-255 as they are (``intensity='display'``).
- 16-bit grey: scaled linearly from the full 0-65535 range onto 0-255 (float32, no precision lost;
  ``meta.extra['bit_depth'] = 16``).
- 32-bit float (TIFF): taken as display grey 0-255, or as a linear envelope when the sidecar says
  ``"intensity": "envelope"``; NaN/inf pixels are refused.
- Colour (RGB, RGBA, palette, CMYK, YCbCr JPEG): an effectively grey image (at most
  `~layerseg.io._grey.GREY_FRACTION_MAX` of its pixels with a chroma above
  `~layerseg.io._grey.GREY_CHROMA_MAX`, the rule the DICOM reader uses too) is read as grey: the
  mean of R, G, B where they agree within one level, else its BT.601 luminance. Otherwise
  ``colour='refuse'`` (the default) raises `InvalidImageError` saying how to proceed, and
  ``colour='luminance'`` converts it with ITU-R BT.601 weights, ``Y = 0.299 R + 0.587 G +
  0.114 B``. An alpha channel is dropped.

Spacing
-------
``spacing=(axial_mm, lateral_mm)`` (recorded as calibration ``'user'``), else the sidecar JSON's
``spacing_mm`` (calibration ``'sidecar'``), else none: images may carry no spacing at all, and then
``Frame.spacing_mm`` is None and every physical measure refuses the frame later
(`SpacingRequiredError`) until a spacing is given.

Sidecar JSON
------------
By default ``<same stem>.json`` beside the image (``scan.png`` -> ``scan.json``) when it exists;
``sidecar=PATH`` names another (which must exist), ``sidecar=False`` ignores any. Keys, all
optional::

    {"spacing_mm": [axial, lateral],           # mm per pixel
     "dynamic_range_db": 60,                   # log compression of the grey levels, where known
     "frequency_mhz": 24, "device": "...", "region": "cheek",
     "intensity": "display" | "envelope",      # float TIFFs only
     "bmode_box": [row0, col0, row1, col1],    # crop the B-mode (end-exclusive pixel box)
     "colour": "refuse" | "luminance",         # a colour export (burned-in calipers, text):
                                               # its luminance is the B-mode (as colour=)
     "elasto": {...},                          # elastography, below
     "comment": "..."}

``elasto`` gives the elastography either as a numeric map or as a colour overlay in the image::

    {"kind": "swe_kpa" | "strain",             # default swe_kpa
     "map": "scan_kpa.npy"}                    # float map, NaN invalid, B-mode shape; path relative
                                               # to the sidecar
    {"kind": "swe_kpa",
     "lut": "bar.csv" | "default",             # a LUT file (see colour.load_lut) or the shipped jet
     "vmin": 0, "vmax": 180,                   # rescale the LUT (required for "default")
     "bar_box": [r0, c0, r1, c1],              # ...or sample the bar drawn in the image instead,
     "orientation": "vertical", "top_is_max": true,   # with vmin/vmax its end values
     "overlay_box": [r0, c0, r1, c1],          # where the colour map lies (default: the B-mode box)
     "max_distance": 40, "bleed_px": 2}        # see colour.decode_colour

An overlay box inside the B-mode box is an overlay on the B-mode: the elastography is decoded on the
B-mode grid (invalid outside the box) and the B-mode is the image's luminance, so under the
overlay it shows the overlay's brightness, not tissue. An overlay box beside the B-mode box (no
overlap) is a side-by-side layout: it must have the B-mode box's size and is registered to it pixel
for pixel.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (CalibrationError, ColourBarError, CorruptFileError, InvalidImageError,
                      LayersegError, MissingFileError, ReadError,
                      UnsupportedFormatError)
from ..frame import ELASTO_KINDS, Frame, FrameMeta, FrameSeries
from ._grey import pixels_to_grey, rgb_to_grey
from ._limits import MAX_PIXELS, check_claimed_pixels, refuse_special_file, require_file

__all__ = ["read_image", "rgb_to_grey", "read_sidecar", "SIDECAR_KEYS"]

SIDECAR_KEYS = ("spacing_mm", "dynamic_range_db", "frequency_mhz", "region", "device", "elasto",
                "intensity", "bmode_box", "colour", "comment")
_ELASTO_KEYS = ("kind", "map", "lut", "vmin", "vmax", "bar_box", "orientation", "top_is_max",
                "overlay_box", "max_distance", "bleed_px")


# ------------------------------------------------------------------------------------ sidecar
def load_json_object(path: Path, known_keys, what: str = "sidecar") -> dict[str, Any]:
    """Parse a sidecar JSON file that must hold one object with only `known_keys` at top level.

    Raises `CorruptFileError` naming the file for invalid JSON, a non-object, or unknown keys,
    and `ReadError` for a file that cannot be read or is not a regular file. Shared by the
    image and RF sidecars.
    """
    if Path(path).is_dir():
        raise ReadError(f"{what} is not a regular file (a folder)", path)
    refuse_special_file(path, what)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ReadError(f"{what} cannot be read ({e.strerror or type(e).__name__})",
                        path) from None
    try:
        d = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptFileError(f"{what} is not valid JSON ({e})", path) from None
    if not isinstance(d, dict):
        raise CorruptFileError(f"{what} JSON must be an object ({{...}})", path)
    unknown = sorted(set(d) - set(known_keys))
    if unknown:
        raise CorruptFileError(f"{what} has unknown key(s) {unknown}; known keys are "
                               f"{list(known_keys)}", path)
    return d


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a sidecar JSON (keys: `SIDECAR_KEYS`; see the module docstring).

    Raises `MissingFileError` if missing, `CorruptFileError` if not a JSON object or holding
    unknown keys, `CalibrationError` for a malformed ``spacing_mm``.
    """
    p = Path(path)
    if not p.exists():      # not a regular file: load_json_object says so
        raise MissingFileError("sidecar JSON does not exist", p)
    d = load_json_object(p, SIDECAR_KEYS)
    if "spacing_mm" in d:
        sp = d["spacing_mm"]
        ok = isinstance(sp, (list, tuple)) and len(sp) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0
            for x in sp)
        if not ok:
            raise CalibrationError(f"sidecar spacing_mm must be [axial_mm, lateral_mm], two "
                                   f"positive numbers, got {sp!r}", p)
    for k in ("dynamic_range_db", "frequency_mhz"):
        if k in d and d[k] is not None:
            v = d[k]
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and v > 0):
                raise CorruptFileError(f"sidecar {k} must be a positive number, got {v!r}", p)
    if "colour" in d and d["colour"] not in ("refuse", "luminance"):
        raise CorruptFileError(f"sidecar colour must be 'refuse' or 'luminance', got "
                               f"{d['colour']!r}", p)
    if "intensity" in d and d["intensity"] not in ("display", "envelope"):
        raise CorruptFileError(f"sidecar intensity must be 'display' or 'envelope', got "
                               f"{d['intensity']!r}", p)
    if "elasto" in d:
        e = d["elasto"]
        if not isinstance(e, dict):
            raise CorruptFileError("sidecar elasto must be an object", p)
        unknown = sorted(set(e) - set(_ELASTO_KEYS))
        if unknown:
            raise CorruptFileError(f"sidecar elasto has unknown key(s) {unknown}; known keys are "
                                   f"{list(_ELASTO_KEYS)}", p)
        if e.get("kind", "swe_kpa") not in ELASTO_KINDS:
            raise CorruptFileError(f"sidecar elasto kind must be one of {ELASTO_KINDS}, got "
                                   f"{e.get('kind')!r}", p)
        if sum(k in e for k in ("map", "lut", "bar_box")) != 1:
            raise CorruptFileError("sidecar elasto needs exactly one of 'map' (a numeric map), "
                                   "'lut' (a colour bar file or 'default') or 'bar_box' (the bar "
                                   "in the image)", p)
    return d


def _box(v, what, shape, path) -> tuple[int, int, int, int]:
    try:
        r0, c0, r1, c1 = (int(x) for x in v)
    except (TypeError, ValueError):
        raise CorruptFileError(f"sidecar {what} must be [row0, col0, row1, col1], got {v!r}",
                               path) from None
    if not (0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]):
        raise CalibrationError(f"sidecar {what} {[r0, c0, r1, c1]} lies outside the image "
                               f"({shape[0]} x {shape[1]} pixels)", path)
    return r0, c0, r1, c1


# ------------------------------------------------------------------------------------ decoding
def _open(path: Path):
    """Open an image with Pillow (header only) and check the size it claims before any decoding:
    at most `layerseg.io._limits.MAX_PIXELS` pixels per page; Pillow's own decompression-bomb
    refusal becomes the same `InvalidImageError`."""
    import warnings

    from PIL import Image, UnidentifiedImageError
    try:
        if path.stat().st_size == 0:
            raise CorruptFileError("file is empty (0 bytes)", path)
        with warnings.catch_warnings():
            # our own limit below decides; Pillow's warning threshold is lower than MAX_PIXELS
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except LayersegError:
        raise
    except FileNotFoundError:
        raise MissingFileError("file does not exist", path) from None
    except Image.DecompressionBombError as e:
        raise InvalidImageError(f"refused before decoding: {e} (layerseg reads at most "
                                f"{MAX_PIXELS:,} pixels per file)", path) from e
    except UnidentifiedImageError:
        raise UnsupportedFormatError("not an image file Pillow can read (PNG, TIFF, JPEG "
                                     "expected)", path) from None
    except (OSError, ValueError, SyntaxError, struct.error, EOFError) as e:
        raise CorruptFileError(f"cannot open the image ({type(e).__name__}: {e})", path) from e
    try:
        check_claimed_pixels((im.size[1], im.size[0]), path, f"the {im.format} header")
    except LayersegError:
        im.close()
        raise
    return im


def _page_array(im, path: Path, page: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode the current page: a 2-D grey array (uint8/uint16/float32) or (rows, cols, 3/4)."""
    info: dict[str, Any] = {"format": im.format, "pil_mode": im.mode}
    mode = im.mode
    try:
        if mode in ("P", "PA"):
            im = im.convert("RGBA")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        elif mode == "LA":
            im = im.getchannel("L")
        a = np.asarray(im)
    except OSError as e:
        raise CorruptFileError(f"image data cannot be decoded (page {page}: {e}); the file may be "
                               "truncated", path) from e
    except (ValueError, TypeError) as e:
        raise UnsupportedFormatError(f"pixel format {mode} cannot be decoded ({e})", path) from e
    if mode == "1":
        a = a.astype(np.uint8) * 255
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.dtype.kind not in "uif":
        raise UnsupportedFormatError(f"pixel type {a.dtype} (PIL mode {mode}) is not supported",
                                     path)
    info["bit_depth"] = 8 * a.dtype.itemsize if a.dtype.kind in "ui" else 32
    return a, info


def _to_grey(a: np.ndarray, info: dict, colour: str, path: Path, page: int,
             float_intensity: str) -> tuple[np.ndarray, str]:
    """Grey float32 image and its intensity kind from a decoded page."""
    if a.size == 0 or 0 in a.shape[:2]:
        raise InvalidImageError(f"image is empty ({a.shape[0]} x {a.shape[1]} pixels)", path)
    if a.shape[0] == 1 and a.shape[1] == 1:
        raise InvalidImageError("image is a single pixel; a frame needs at least 2 x 2", path)
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise InvalidImageError(f"image is too small ({a.shape[0]} x {a.shape[1]} pixels); a "
                                "frame needs at least 2 x 2", path)
    if a.ndim == 3:
        if a.dtype.kind == "f":
            raise UnsupportedFormatError("floating-point colour images are not supported", path)
        if a.dtype.itemsize > 1:
            raise UnsupportedFormatError(f"{8 * a.dtype.itemsize}-bit colour images are not "
                                         "supported; save the B-mode as 8/16-bit grey", path)
        g = rgb_to_grey(a, colour, path)
        info["colour"] = "grey" if colour == "refuse" else "luminance"
        return g, "display"
    intensity = float_intensity if a.dtype.kind == "f" else "display"
    if a.dtype.kind in "ui" and a.dtype.itemsize > 1:
        info["bit_depth"] = 16
    return pixels_to_grey(a, scale="bit_depth", intensity=intensity, source=path,
                          what=f"image (page {page})"), intensity


def read_image(path: str | os.PathLike, spacing=None, sidecar=None,
               colour: str = "refuse") -> FrameSeries:
    """Read a PNG, TIFF or JPEG image as frames.

    Parameters
    ----------
    path : str or path-like
        The image. A multi-page TIFF gives one frame per page, decoded lazily.
    spacing : (float, float), optional
        ``(axial_mm, lateral_mm)`` per pixel; overrides any sidecar spacing and is recorded as
        calibration ``'user'``.
    sidecar : path, False or None
        Sidecar JSON (see the module docstring). None: ``<stem>.json`` beside the image if it
        exists; False: ignore any sidecar.
    colour : {'refuse', 'luminance'}
        For colour images that are not grey: raise `InvalidImageError` (default), or convert with
        BT.601 luminance.

    Returns
    -------
    FrameSeries
        Frames with ``bmode`` float32 (rows, cols) on a 0-255 display scale (or a linear envelope
        for float TIFFs the sidecar calls so), ``spacing_mm`` or None, and the sidecar's dynamic
        range, frequency, device, region and elastography.

    Raises
    ------
    ReadError, UnsupportedFormatError, CorruptFileError
        Missing, unreadable, empty or truncated file.
    InvalidImageError
        Single-pixel or too-small image, NaN/inf pixels, colour where grey is expected.
    CalibrationError
        Malformed sidecar spacing or boxes outside the image.
    ColourBarError
        A sidecar colour bar that is malformed or does not match the overlay.
    """
    p = Path(path)
    if colour not in ("refuse", "luminance"):
        raise InvalidImageError(f"colour must be 'refuse' or 'luminance', got {colour!r}", p)
    require_file(p)
    side: dict[str, Any] = {}
    side_path: Path | None = None
    if sidecar is not False:
        side_path = Path(sidecar) if sidecar is not None else p.with_suffix(".json")
        # absolute, so that the files it names (relative to it) are named in full in messages
        side_path = Path(os.path.abspath(side_path))
        if sidecar is not None or side_path.is_file():
            side = read_sidecar(side_path)
        else:
            side_path = None
    if spacing is not None:
        sp, calib = spacing, "user"
    elif "spacing_mm" in side:
        sp, calib = tuple(side["spacing_mm"]), "sidecar"
    else:
        sp, calib = None, None
    with _open(p) as im:
        try:
            n = int(getattr(im, "n_frames", 1) or 1)
        except (OSError, ValueError, SyntaxError, struct.error, EOFError) as e:
            raise CorruptFileError(f"cannot count the pages ({type(e).__name__}: {e})", p) from e
        check_claimed_pixels((n, im.size[1], im.size[0]), p, f"the {im.format} header")
    if colour == "refuse" and "colour" in side:    # the sidecar may ask for the conversion
        colour = side["colour"]
    reader = _ImageFrames(p, sp, calib, side, side_path, colour)
    first = reader(0)  # decode the first page now, so a bad file fails here
    cache = {0: first}

    def load(i: int) -> Frame:
        return cache.pop(i) if i in cache else reader(i)

    return FrameSeries(n, load, source=str(p))


class _ImageFrames:
    """Decodes page ``i`` of an image into a Frame (a picklable callable)."""

    def __init__(self, path, spacing, calib, side, side_path, colour):
        self.path, self.spacing, self.calib = path, spacing, calib
        self.side, self.side_path, self.colour = side, side_path, colour
        self._bar = None

    def __call__(self, i: int) -> Frame:
        p, side = self.path, self.side
        with _open(p) as im:
            try:
                im.seek(i)
            except EOFError:
                raise CorruptFileError(f"page {i} is missing", p) from None
            raw, info = _page_array(im, p, i)
        el = side.get("elasto")
        colour_overlay = el is not None and "map" not in el
        shape = raw.shape[:2]
        bbox = _box(side["bmode_box"], "bmode_box", shape, self.side_path) \
            if "bmode_box" in side else (0, 0) + shape
        obox = None
        if colour_overlay:
            obox = _box(el["overlay_box"], "elasto overlay_box", shape, self.side_path) \
                if "overlay_box" in el else bbox
        b_raw = raw[bbox[0]:bbox[2], bbox[1]:bbox[3]]
        col = self.colour
        if colour_overlay and raw.ndim == 3 and _overlaps(bbox, obox):
            col = "luminance"  # the overlay lies on the B-mode: its luminance is the B-mode
            info["bmode_under_overlay"] = "luminance of the overlay"
        grey, intensity = _to_grey(b_raw, info, col, p, i, side.get("intensity", "display"))
        elasto = valid = kind = None
        if el is not None:
            kind = el.get("kind", "swe_kpa")
            if "map" in el:
                elasto = self._numeric_map(el["map"], grey.shape)
            else:
                elasto, valid = self._decode_overlay(raw, el, bbox, obox)
        meta = FrameMeta(source=str(p), frame_index=i, frequency_mhz=side.get("frequency_mhz"),
                         device=side.get("device"), calibration=self.calib,
                         region=side.get("region"),
                         extra={**info, "page": i,
                                **({"sidecar": str(self.side_path)} if self.side_path else {}),
                                **({"bmode_box": list(bbox)} if "bmode_box" in side else {}),
                                **({"spacing_override": True} if self.calib == "user" else {})})
        try:
            return Frame(grey, self.spacing, intensity=intensity,
                         dynamic_range_db=side.get("dynamic_range_db"), elasto=elasto,
                         elasto_kind=kind, elasto_valid=valid, meta=meta)
        except CalibrationError as e:
            if self.calib == "sidecar" and "spacing" in e.problem:
                raise CalibrationError(f"sidecar {e.problem}", self.side_path) from None
            raise

    def _numeric_map(self, rel, shape) -> np.ndarray:
        mp = Path(rel)
        if not mp.is_absolute():
            mp = self.side_path.parent / mp
        try:
            m = np.load(mp, allow_pickle=False)
        except FileNotFoundError:
            raise MissingFileError("elastography map named in the sidecar does not exist",
                                   mp) from None
        except (OSError, ValueError) as e:
            raise CorruptFileError(f"elastography map cannot be read as .npy ({e})", mp) from e
        if m.shape != shape:
            raise InvalidImageError(f"elastography map shape {m.shape} differs from the B-mode "
                                    f"shape {shape}", mp)
        if m.dtype.kind not in "iuf":
            raise InvalidImageError(f"elastography map type {m.dtype} is not numeric", mp)
        return m.astype(np.float32)

    def _colour_bar(self, raw):
        from . import colour as _colour  # scipy.spatial only when an overlay is decoded
        if self._bar is not None:
            return self._bar
        el, sp = self.side["elasto"], self.side_path
        vmin, vmax = el.get("vmin"), el.get("vmax")
        if "lut" in el:
            if el["lut"] == "default":
                if vmin is None or vmax is None:
                    raise CorruptFileError("sidecar elasto with lut 'default' needs vmin and vmax "
                                           "(the scale's end values)", sp)
                bar = _colour.default_colour_bar(float(vmin), float(vmax))
            else:
                lp = Path(el["lut"])
                bar = _colour.load_lut(lp if lp.is_absolute() else sp.parent / lp)
                if vmin is not None and vmax is not None:
                    bar = bar.rescaled(float(vmin), float(vmax))
        else:
            if raw.ndim != 3:
                raise ColourBarError("sidecar names a colour bar box, but the image is grey",
                                     self.path)
            if vmin is None or vmax is None:
                raise CorruptFileError("sidecar elasto bar_box needs vmin and vmax (the bar's end "
                                       "values)", sp)
            box = _box(el["bar_box"], "elasto bar_box", raw.shape[:2], sp)
            bar = _colour.sample_colour_bar(raw, box, float(vmin), float(vmax),
                                            el.get("orientation", "vertical"),
                                            bool(el.get("top_is_max", True)), source=str(self.path))
        self._bar = bar
        return bar

    def _decode_overlay(self, raw, el, bbox, obox):
        if raw.ndim != 3:
            raise ColourBarError("sidecar describes a colour elastography overlay, but the image "
                                 "is grey", self.path)
        from . import colour as _colour
        bar = self._colour_bar(raw)
        kw = {"source": str(self.path)}
        if "max_distance" in el:
            kw["max_distance"] = float(el["max_distance"])
        if "bleed_px" in el:
            kw["bleed_px"] = int(el["bleed_px"])
        bh, bw = bbox[2] - bbox[0], bbox[3] - bbox[1]
        if _overlaps(bbox, obox):
            if not (bbox[0] <= obox[0] and bbox[1] <= obox[1] and obox[2] <= bbox[2]
                    and obox[3] <= bbox[3]):
                raise CalibrationError(f"elasto overlay_box {list(obox)} overlaps the B-mode box "
                                       f"{list(bbox)} without lying inside it", self.side_path)
            sub = raw[bbox[0]:bbox[2], bbox[1]:bbox[3], :3]
            mask = np.zeros((bh, bw), bool)
            mask[obox[0] - bbox[0]:obox[2] - bbox[0], obox[1] - bbox[1]:obox[3] - bbox[1]] = True
            return _colour.decode_colour(sub, bar, mask=mask, **kw)
        oh, ow = obox[2] - obox[0], obox[3] - obox[1]
        if (oh, ow) != (bh, bw):
            raise CalibrationError(f"side-by-side elastography box {list(obox)} is {oh} x {ow} "
                                   f"pixels but the B-mode box {list(bbox)} is {bh} x {bw}; they "
                                   "must match to be registered", self.side_path)
        return _colour.decode_colour(raw[obox[0]:obox[2], obox[1]:obox[3], :3], bar, **kw)


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
