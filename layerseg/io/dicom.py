"""DICOM ultrasound reader: calibrated, lazily decoded frames with optional elastography.

Spacing comes from the Sequence of Ultrasound Regions (PhysicalDeltaX/Y in cm), the image is
cropped to the tissue region, and a colour/elastography view beside (or over) the B-mode is
decoded through a colour bar and registered to the B-mode grid. Frames of a multi-frame file are
decoded one at a time, when asked for.

Layout rules
------------
- Only 2D regions (RegionSpatialFormat 1) are images. A tissue region (RegionDataType 1) is the
  B-mode; its PhysicalDeltaX/Y must be in cm (PhysicalUnitsX/YDirection 3) and are converted to
  mm; the frame is cropped to its inclusive bounds RegionLocationMinX0..MaxX1, MinY0..MaxY1.
- A colour-flow region (RegionDataType 2), or a second tissue region whose pixels are in colour
  while the other is grey, is the elastography view of a side-by-side layout. With a colour bar
  it is decoded and resampled onto the B-mode grid through physical coordinates (reference pixel
  and its physical value where given, else the two regions' top-left corners coincide).
- Colour inside the B-mode region: an overlay, decoded in place when a colour bar is given.

Elastography colour bar, first found of:

1. ``colour_bar=`` from the caller (always wins);
2. the exact record `layerseg.simulate.write_exam_dicom` writes in a private block (group
   0x0011, creator ``"LAYERSEG_SIM 1"``: kind, unit, LUT values and colours, view box); its view
   box also tells the elastography view from the B-mode when frame 0 shows none;
3. the colour-bar region (RegionDataType 14) when its value axis is calibrated in a standard unit
   code that names an elastography quantity: only percent (PhysicalUnitsY/XDirection 1), read as
   strain (value / 100); the bar is sampled from the image along that axis with the values of its
   calibration (``ReferencePixelPhysicalValue + (k - ReferencePixel0) * PhysicalDelta``). DICOM
   has no unit code for kPa, so a shear-wave bar with unit 0 (none) gives no values; cm/sec is
   left out as well (it is Doppler velocity as often as shear-wave speed);
4. none: the elastography is left out, ``meta.extra['elasto_ignored']`` says why.

A bar found in the file (2, 3) that does not fit the pixels is recorded in
``meta.extra['elasto_ignored']`` rather than raised; a caller's bar that does not fit raises
`ColourBarError`. ``meta.extra['colour_bar_source']`` names where a decoded map's bar came from
(``caller``, ``private_block`` or ``colour_bar_region``).
- Several grey tissue regions: the same spacing -> the leftmost (noted in ``meta.extra``);
  different spacings -> `CalibrationError` (choose with ``region=``).
- No tissue region: PixelSpacing (provenance ``dicom_pixel_spacing``), else `CalibrationError`.
- Any region used whose bounds leave the image (a resized export) -> `CalibrationError`.
- ``spacing=`` from the caller overrides all of it (provenance ``user``; the header spacing, if
  any, is kept in ``meta.extra['header_spacing_mm']``); the B-mode is still cropped to a usable
  tissue region, or is the whole image when the regions are unusable.

Grey levels: MONOCHROME1 is inverted; more than 8 stored bits are scaled linearly onto 0-255;
PALETTE COLOR goes through its lookup table; YBR is converted to RGB by pydicom. An RGB region
counts as grey by the rule every reader shares (`layerseg.io._grey.is_effectively_grey`: at most
`GREY_FRACTION_MAX` of its pixels with a chroma above `GREY_CHROMA_MAX`; JPEG chroma noise and
small coloured markers stay below), and is then converted as `layerseg.io._grey.rgb_to_grey`
does.

Patient identity never enters a `Frame`: subject and study keys are `deidentify_key` hashes.

Never imports torch or MONAI.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..checks import check_spacing
from ..errors import (CalibrationError, ColourBarError, CorruptFileError, InvalidImageError,
                      LayersegError, MissingFileError, ReadError, UnsupportedFormatError,
                      WrongModalityError)
from ..frame import Frame, FrameMeta, FrameSeries
from ._grey import (GREY_CHROMA_MAX, GREY_FRACTION_MAX, coloured_fraction, is_effectively_grey,
                    rgb_to_grey)
from ._limits import check_claimed_pixels
from ._private import SIM_PRIVATE_CREATOR, SIM_PRIVATE_GROUP
from ._regions import (DATA_COLOUR_BAR, DATA_COLOUR_FLOW, DATA_TISSUE, UNIT_NAMES, UNIT_NONE,
                       UNIT_PERCENT, UltrasoundRegion, parse_regions, physical_origin_mm)
from ._salt import resolve_salt

__all__ = ["read_dicom", "deidentify_key", "is_effectively_grey", "COLOUR_CHROMA_MIN",
           "COLOUR_FRACTION_MAX", "US_SOP_CLASSES", "SIM_PRIVATE_GROUP", "SIM_PRIVATE_CREATOR"]

# SIM_PRIVATE_GROUP / SIM_PRIVATE_CREATOR (imported above from ._private, their one owner): the
# private block in which `layerseg.simulate.write_exam_dicom` records its colour bar exactly;
# `read_dicom` decodes the elastography through it.

COLOUR_CHROMA_MIN = GREY_CHROMA_MAX
"""Alias of `layerseg.io._grey.GREY_CHROMA_MAX` (the one owner of the grey/colour rule)."""

COLOUR_FRACTION_MAX = GREY_FRACTION_MAX
"""Alias of `layerseg.io._grey.GREY_FRACTION_MAX`."""

US_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.6.2": "Enhanced US Volume Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.6": "Ultrasound Image Storage (retired)",
    "1.2.840.10008.5.1.4.1.1.3": "Ultrasound Multi-frame Image Storage (retired)",
}

_SUPPORTED_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422",
                          "PALETTE COLOR", "YBR_RCT", "YBR_ICT")


# ---------------------------------------------------------------------------- de-identification
def deidentify_key(*parts: object, salt: str | None = None, length: int = 16) -> str | None:
    """A pseudonymous key for a subject or study: a truncated, salted SHA-256.

    Parameters
    ----------
    *parts : str
        Identifying values (for example PatientID and IssuerOfPatientID, or StudyInstanceUID).
        Empty or None parts are skipped; when all are empty the result is None.
    salt : str, optional
        Secret salt. Default: the ``LAYERSEG_SALT`` environment variable, else a random salt
        made once per installation and kept (mode 0600) in the user's configuration folder
        (see `layerseg.io._salt`). There is no public default: IDs are guessable, and a known
        salt would let anyone re-identify a subject. Give the same secret salt on every machine
        whose keys must agree.
    length : int
        Number of hex characters kept (default 16, i.e. 64 bits).

    Returns
    -------
    str or None
        ``length`` lowercase hex characters; the identifying values cannot be read back.

    Raises
    ------
    ConfigError
        An empty explicit salt, or a salt file that is malformed or cannot be created.
    """
    vals = [str(p).strip() for p in parts if p is not None and str(p).strip()]
    if not vals:
        return None
    key_salt = resolve_salt(salt)
    h = hashlib.sha256()
    h.update(key_salt.encode("utf-8"))
    for v in vals:
        h.update(b"\x1f")
        h.update(v.encode("utf-8"))
    return h.hexdigest()[: int(length)]


# ---------------------------------------------------------------------------- colour helpers
def _luminance(rgb: np.ndarray) -> np.ndarray:
    """Grey levels of an RGB frame, as `layerseg.io._grey.rgb_to_grey` makes them for every
    reader (the grey level itself for grey stored as colour, else ITU-R BT.601 luminance), so that
    DICOM and PNG exports of one screen read alike."""
    return rgb_to_grey(rgb, colour="luminance")


# ---------------------------------------------------------------------------- header handling
def _err_name(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _read_header(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = pydicom.dcmread(str(path), stop_before_pixels=False, defer_size="256 KB")
            except InvalidDicomError:
                ds = pydicom.dcmread(str(path), force=True, defer_size="256 KB")
    except FileNotFoundError:
        raise MissingFileError("file not found", path) from None
    except IsADirectoryError:
        raise ReadError("is a directory, not a DICOM file", path) from None
    except Exception as e:  # pydicom raises many types on malformed input
        raise CorruptFileError(f"cannot parse the DICOM header ({_err_name(e)}); the file is "
                               "truncated or malformed", path) from e
    eof = [str(w.message) for w in caught if "end of file" in str(w.message).lower()]
    if eof:
        raise CorruptFileError(f"the file is truncated: {eof[0]}", path)
    has_dicm = _has_dicm_prefix(path)
    if len(ds) == 0 or not any(tag.group >= 0x0008 for tag in ds.keys()):
        if has_dicm:
            raise CorruptFileError("the DICOM file stops after its file meta header: it holds no "
                                   "data set (truncated?)", path)
        raise UnsupportedFormatError("not a DICOM file (no DICOM data elements found)", path)
    _check_truncation(ds, path)
    return ds


def _check_dicom_content(path: Path) -> None:
    from .read import _looks_like_bare_dicom

    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError as e:
        raise ReadError(f"cannot open the file ({e.strerror or e})", path) from e
    if not head:
        raise UnsupportedFormatError("not a DICOM file: the file is empty", path)
    if head[128:132] != b"DICM" and not _looks_like_bare_dicom(head):
        raise UnsupportedFormatError(f"not a DICOM file (no 'DICM' marker at byte 128 and no "
                                     f"DICOM data set at the start; first bytes "
                                     f"{head[:8]!r})", path)


def _has_dicm_prefix(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _check_truncation(ds, path: Path) -> None:
    """Raise `CorruptFileError` when an element's value is shorter than its declared length
    (pydicom reads a truncated file silently)."""
    size = path.stat().st_size
    for tag in ds.keys():
        raw = ds.get_item(tag)
        length = getattr(raw, "length", None)
        if length is None or length == 0xFFFFFFFF:
            continue
        value = getattr(raw, "value", None)
        tell = getattr(raw, "value_tell", None)
        short = (isinstance(value, bytes) and len(value) < length) or \
            (value is None and tell is not None and tell + length > size)
        if short:
            raise CorruptFileError(f"the file is truncated: element {tag} declares {length} "
                                   f"bytes but the file ends before them ({size} bytes in all)",
                                   path)


def _transfer_syntax(ds):
    from pydicom.uid import (UID, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                             ImplicitVRLittleEndian)

    fm = getattr(ds, "file_meta", None)
    ts = fm.get("TransferSyntaxUID") if fm is not None else None
    if ts:
        return UID(ts)
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _check_modality(ds, path, allow_other_modality: bool) -> None:
    modality = str(ds.get("Modality", "") or "").strip().upper()
    sop = str(ds.get("SOPClassUID", "") or "")
    if allow_other_modality or modality == "US":
        return
    if not modality and (sop in US_SOP_CLASSES or "SequenceOfUltrasoundRegions" in ds):
        return
    what = f"modality {modality!r}" if modality else "no Modality (0008,0060)"
    if sop:
        import pydicom.uid

        what += f", SOP class {pydicom.uid.UID(sop).name}"
    raise WrongModalityError(f"not an ultrasound image ({what}); layerseg reads ultrasound (US) "
                             "DICOM only (pass allow_other_modality=True to force)", path)


def _check_image_header(ds, path) -> tuple[int, int, int, str, int]:
    has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    if not has_pixels:
        raise WrongModalityError("holds no pixel data (7FE0,0010): not an image (a report or "
                                 "presentation state?), or the file is truncated", path)
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        n = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError) as e:
        raise CorruptFileError(f"image header incomplete or malformed ({_err_name(e)})",
                               path) from e
    if rows < 2 or cols < 2:
        raise InvalidImageError(f"image is {rows} x {cols} pixels; a frame needs at least "
                                "2 x 2", path)
    if n < 1:
        raise InvalidImageError(f"NumberOfFrames is {n}: the file holds no frame", path)
    check_claimed_pixels((n, rows, cols), path, "the header (NumberOfFrames x Rows x Columns)")
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if pi not in _SUPPORTED_PHOTOMETRIC:
        raise UnsupportedFormatError(f"photometric interpretation {pi!r} is not supported "
                                     f"(supported: {', '.join(_SUPPORTED_PHOTOMETRIC)})", path)
    return rows, cols, n, pi, spp


# ---------------------------------------------------------------------------- layout
@dataclass
class _Layout:
    """How each frame is cut: B-mode box, optional colour box, spacings, provenance."""

    bmode_region: UltrasoundRegion | None
    spacing_mm: tuple[float, float] | None
    calibration: str | None
    colour_region: UltrasoundRegion | None = None
    colour_spacing_mm: tuple[float, float] | None = None
    colour_bar_region: UltrasoundRegion | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _region_spacing_or_none(r: UltrasoundRegion, path):
    try:
        return r.spacing_mm(path), None
    except CalibrationError as e:
        return None, e


def _plan_layout(ds, regions: list[UltrasoundRegion], rows: int, cols: int, path,
                 spacing, region: int | None, first_rgb, elasto_box=None) -> _Layout:
    """Choose the B-mode (tissue) region, the colour region and the spacing.

    `first_rgb` is a callable returning frame 0 as (rows, cols, 3) float RGB, or None for grey
    images; it is called only when grey/colour content must decide between tissue regions.
    `elasto_box` ``(row0, col0, row1, col1)`` (end-exclusive), where the file names its
    elastography view (the simulator's private block), settles two tissue regions without
    looking at their colour (frame 0 may have no elastography).
    """
    user = spacing is not None
    two_d = [r for r in regions if r.is_2d]
    bar = next((r for r in regions if r.data_type == DATA_COLOUR_BAR), None)

    def finish(bm, colour, notes):
        hs = None
        if user:
            sp, cal = tuple(float(s) for s in spacing), "user"
            if bm is not None:
                hs, _ = _region_spacing_or_none(bm, path)
                if hs is not None:
                    notes["header_spacing_mm"] = list(hs)
        else:
            sp, cal = bm.spacing_mm(path), "dicom_region"
        csp = None
        if colour is not None:
            csp, err = _region_spacing_or_none(colour, path)
            if csp is None:
                if not user:
                    raise err
                csp = sp  # the caller's spacing for both views
            elif user:
                # the caller corrects the scale: apply the same correction to the colour view
                ratio = (1.0, 1.0) if hs is None else (sp[0] / hs[0], sp[1] / hs[1])
                csp = (csp[0] * ratio[0], csp[1] * ratio[1]) if hs is not None else sp
        return _Layout(bm, sp, cal, colour, csp, bar, notes)

    if region is not None:
        if not 0 <= region < len(regions):
            raise CalibrationError(f"region={region} asked for, but the file has "
                                   f"{len(regions)} ultrasound region(s)", path)
        bm = regions[region]
        bm.check_bounds(rows, cols, path)
        others = [r for r in two_d if r is not bm and r.data_type in (DATA_TISSUE,
                                                                       DATA_COLOUR_FLOW)]
        colour = None
        for r in others:
            try:
                r.check_bounds(rows, cols, path)
                colour = r
                break
            except CalibrationError:
                continue
        return finish(bm, colour, {"region_choice": f"region {region} chosen by the caller"})

    tissue = [r for r in two_d if r.data_type == DATA_TISSUE]
    flow = [r for r in two_d if r.data_type == DATA_COLOUR_FLOW]

    if not tissue:
        # no tissue region: PixelSpacing, or the caller's spacing, or nothing
        notes: dict[str, Any] = {}
        if regions:
            notes["regions_ignored"] = ("no 2D tissue region among: "
                                        + "; ".join(r.describe() for r in regions))
        if user:
            return _Layout(None, tuple(float(s) for s in spacing), "user", notes=notes)
        ps = ds.get("PixelSpacing")
        if ps is not None:      # one value is read as a number, several as a sequence
            from pydicom.multival import MultiValue
            ps = list(ps) if isinstance(ps, (list, tuple, MultiValue)) else [ps]
        if ps is not None and len(ps) == 2:
            try:
                sp = (float(ps[0]), float(ps[1]))
            except (TypeError, ValueError):
                sp = None
            if sp is not None and all(np.isfinite(sp)) and min(sp) > 0:
                notes["calibration_note"] = ("spacing from PixelSpacing (0028,0030); the file "
                                             "has no ultrasound tissue region")
                return _Layout(None, sp, "dicom_pixel_spacing", notes=notes)
        if regions:
            why = ("its ultrasound regions hold no 2D tissue region ("
                   + "; ".join(r.describe() for r in regions) + ")")
        elif ps is None:
            why = "it has neither a Sequence of Ultrasound Regions nor PixelSpacing"
        else:
            why = "it has no Sequence of Ultrasound Regions"
        if ps is not None:          # there, but unusable: say so, with its value
            why += (f"; its PixelSpacing (0028,0030) {[str(v) for v in ps]} is not two "
                    "positive numbers")
        raise CalibrationError(f"no physical calibration: {why}; pass spacing=(axial_mm, "
                               "lateral_mm) to read it with your own calibration", path)

    # validate tissue regions' bounds (a user spacing lets broken regions be skipped)
    good, bound_errors = [], []
    for r in tissue:
        try:
            r.check_bounds(rows, cols, path)
            good.append(r)
        except CalibrationError as e:
            bound_errors.append(e)
    if not good:
        if user:
            return _Layout(None, tuple(float(s) for s in spacing), "user",
                           notes={"regions_ignored": str(bound_errors[0].problem)})
        raise bound_errors[0]
    if bound_errors and not user:
        raise bound_errors[0]

    colour_cands = []
    for r in flow:
        try:
            r.check_bounds(rows, cols, path)
            colour_cands.append(r)
        except CalibrationError as e:
            if not user:
                raise
            del e

    notes = {}
    named = [r for r in good if elasto_box is not None
             and (r.y0, r.x0, r.y1 + 1, r.x1 + 1) == tuple(int(v) for v in elasto_box)]
    if len(good) == 1:
        bm = good[0]
    elif len(good) == 2 and len(named) == 1:
        bm = next(r for r in good if r is not named[0])
        colour_cands = named + colour_cands
        notes["region_choice"] = (f"region {bm.index}: the B-mode; region {named[0].index} is the "
                                  "elastography view the file's private block names")
    else:
        # several tissue regions: the grey one is the B-mode, a colourful one the elastography
        rgb = first_rgb() if first_rgb is not None else None
        if rgb is not None:
            greyness = [is_effectively_grey(rgb[r.box()]) for r in good]
        else:
            greyness = [True] * len(good)
        grey = [r for r, g in zip(good, greyness) if g]
        colourful = [r for r, g in zip(good, greyness) if not g]
        if len(grey) == 1:
            bm = grey[0]
            colour_cands = colourful + colour_cands
            notes["region_choice"] = (f"region {bm.index}: the only grey one of "
                                      f"{len(good)} tissue regions")
        else:
            pool = grey or colourful
            spacings = {}
            for r in pool:
                s, err = _region_spacing_or_none(r, path)
                spacings[r.index] = s
            distinct = {s for s in spacings.values()}
            if len(distinct) > 1 and not user:
                desc = "; ".join(f"{r.describe()} spacing {spacings[r.index]}" for r in pool)
                raise CalibrationError(
                    f"contradictory ultrasound regions: {len(pool)} "
                    f"{'grey' if grey else 'colour'} tissue regions with different spacings "
                    f"({desc}); choose one with region=<index>", path)
            bm = min(pool, key=lambda r: (r.x0, r.y0))
            notes["region_choice"] = (f"region {bm.index}: the first (leftmost) of "
                                      f"{len(pool)} tissue regions with the same spacing")
            if grey and colourful:
                colour_cands = colourful + colour_cands
    colour = colour_cands[0] if colour_cands else None
    return finish(bm, colour, notes)


# ---------------------------------------------------------------------------- colour bar
def _resolve_colour_bar(colour_bar, path, layout: _Layout):
    """The caller's colour bar as a ColourBar, a callable(rgb_full) -> ColourBar, or None."""
    if colour_bar is None:
        return None
    from . import colour as _colour

    if isinstance(colour_bar, _colour.ColourBar):
        return colour_bar
    if isinstance(colour_bar, (str, os.PathLike)):
        return _colour.load_lut(colour_bar)
    if isinstance(colour_bar, dict):
        opts = dict(colour_bar)
        try:
            vmin, vmax = float(opts.pop("vmin")), float(opts.pop("vmax"))
        except KeyError as e:
            raise ColourBarError(f"colour_bar dict needs 'vmin' and 'vmax' (the values at the "
                                 f"bar's ends); missing {e}", path) from None
        box = opts.pop("box", None)
        if box is None:
            r = layout.colour_bar_region
            if r is None:
                raise ColourBarError("colour_bar gives no 'box' and the file has no colour-bar "
                                     "ultrasound region (RegionDataType 14) to sample", path)
            box = (r.y0, r.x0, r.y1 + 1, r.x1 + 1)
        cache: dict[str, Any] = {}

        def sample(rgb_full):
            if "bar" not in cache:
                cache["bar"] = _colour.sample_colour_bar(rgb_full, box, vmin, vmax,
                                                        source=str(path), **opts)
            return cache["bar"]

        return sample
    raise ColourBarError(f"colour_bar must be a ColourBar, a LUT file path, or a dict with "
                         f"'box', 'vmin', 'vmax'; got {type(colour_bar).__name__}", path)


@dataclass
class _BarPlan:
    """Where the elastography colour bar comes from.

    ``source``: a ColourBar, a callable(rgb_full) -> ColourBar, or None. ``kind``: the kind the
    bar's values are. ``origin``: 'caller', 'private_block' or 'colour_bar_region'. ``auto``: the
    bar was found in the file, so a bar that fails on the pixels is recorded in
    ``meta.extra['elasto_ignored']`` instead of raised. ``reason``: why there is no bar.
    """

    source: Any = None
    kind: str | None = None
    origin: str | None = None
    auto: bool = False
    reason: str | None = None
    elasto_box: tuple[int, int, int, int] | None = None


def _private_value(blk, offset: int, vr: str):
    """A private element's value as Python/NumPy data (VR UN bytes from implicit-VR files are
    unpacked as little-endian `vr`); None when absent."""
    try:
        v = blk[offset].value
    except KeyError:
        return None
    if isinstance(v, (bytes, bytearray)) and vr in ("FD", "US"):
        return np.frombuffer(bytes(v), "<f8" if vr == "FD" else "<u2")
    if isinstance(v, (bytes, bytearray)) and vr == "LO":
        return bytes(v).decode("latin-1").strip(" \x00")
    if vr in ("FD", "US"):
        return np.atleast_1d(np.asarray(v, dtype=np.float64))
    return v


def _private_colour_bar(ds, path) -> _BarPlan | None:
    """The colour bar `write_exam_dicom` records exactly in its private block, or None when the
    file has no such block. A malformed block raises `ColourBarError`."""
    from .colour import ColourBar

    try:
        blk = ds.private_block(SIM_PRIVATE_GROUP, SIM_PRIVATE_CREATOR)
    except (KeyError, ValueError):
        return None
    where = (f"the private colour-bar block ({SIM_PRIVATE_GROUP:04X}, "
             f"{SIM_PRIVATE_CREATOR!r})")
    fix = "; pass colour_bar=... to decode the elastography with your own bar"
    try:
        kind = str(_private_value(blk, 0x01, "LO") or "").strip()
        unit = str(_private_value(blk, 0x02, "LO") or "").strip()
        values = _private_value(blk, 0x05, "FD")
        colours = _private_value(blk, 0x06, "OB")
        ebox = _private_value(blk, 0x07, "US")
    except Exception as e:  # noqa: BLE001 - pydicom value conversion of a damaged element
        raise ColourBarError(f"{where} cannot be parsed ({_err_name(e)}){fix}", path) from e
    if kind not in ("swe_kpa", "strain"):
        raise ColourBarError(f"{where} states elastography kind {kind!r}, not 'swe_kpa' or "
                             f"'strain'{fix}", path)
    scale = {("swe_kpa", "kPa"): 1.0, ("strain", "1"): 1.0, ("strain", "%"): 0.01}.get(
        (kind, unit))
    if scale is None:
        raise ColourBarError(f"{where} gives {kind} values in unit {unit!r} (expected 'kPa' for "
                             f"swe_kpa, '1' or '%' for strain){fix}", path)
    if values is None or colours is None:
        raise ColourBarError(f"{where} lacks the bar's values (0x05) or colours (0x06){fix}",
                             path)
    raw = np.frombuffer(bytes(colours), np.uint8)
    if raw.size != 3 * len(values):
        raise ColourBarError(f"{where} holds {raw.size} colour bytes for {len(values)} values "
                             f"(expected 3 per value){fix}", path)
    try:
        bar = ColourBar(raw.reshape(-1, 3).astype(np.float64), np.asarray(values) * scale,
                        name=f"{path}: private block {SIM_PRIVATE_CREATOR}")
    except ColourBarError as e:
        raise ColourBarError(f"{where}: {e.problem}{fix}", path) from None
    box = None
    if ebox is not None and len(ebox) == 4:
        box = tuple(int(v) for v in ebox)
    return _BarPlan(bar, kind, "private_block", auto=True, elasto_box=box)


def _region_colour_bar(r: UltrasoundRegion | None, rows: int, cols: int, path) -> _BarPlan:
    """A colour bar sampled from the colour-bar region (RegionDataType 14) with the values of its
    physical calibration, where the standard can express them.

    The value axis is the one whose PhysicalUnits code is percent (1): strain in percent, the
    only elastography quantity with a DICOM unit code (C.8.5.5.1.15 has no pressure unit, so kPa
    cannot be stated; cm/sec is Doppler velocity as much as shear-wave speed). The value of
    pixel ``k`` along that axis (``k`` counted from the region's top/left) is
    ``ReferencePixelPhysicalValue + (k - ReferencePixel0) * PhysicalDelta``. Anything else
    gives a plan with no source and the reason.
    """
    if r is None:
        return _BarPlan(reason="the file has no colour-bar region (RegionDataType 14) and no "
                               "colour-bar record, so its colours have no values; give "
                               "colour_bar=... to decode it")
    try:
        r.check_bounds(rows, cols, path)
    except CalibrationError as e:
        return _BarPlan(reason=f"its colour-bar {e.problem}")
    axes = {"Y": (r.units_y, r.delta_y, r.ref_y0, r.ref_value_y, r.y1 - r.y0 + 1),
            "X": (r.units_x, r.delta_x, r.ref_x0, r.ref_value_x, r.x1 - r.x0 + 1)}
    usable = [a for a, (u, d, *_rest) in axes.items()
              if u == UNIT_PERCENT and d is not None and np.isfinite(d) and d != 0]
    if not usable:
        scaled = [(a, u) for a, (u, d, *_rest) in axes.items()
                  if d is not None and np.isfinite(d) and d != 0]
        if not scaled:
            why = "carries no value scale (PhysicalDeltaX/Y are zero or absent)"
        else:
            a, u = scaled[0]
            if u in (None, UNIT_NONE):
                why = (f"states its scale with PhysicalUnits{a}Direction {u} (none), so the "
                       "unit of its values is unknown (DICOM has no unit code for kPa)")
            else:
                why = (f"is in {UNIT_NAMES.get(u, f'unit code {u}')} (PhysicalUnits{a}Direction "
                       f"{u}), not an elastography unit layerseg decodes (percent = strain)")
        return _BarPlan(reason=f"its colour-bar {r.describe()} {why}; give colour_bar=... to "
                               "decode the elastography")
    axis = usable[0]
    _, delta, ref0, ref_value, n = axes[axis]
    if ref_value is None:
        return _BarPlan(reason=f"its colour-bar {r.describe()} has a percent scale but no "
                               f"ReferencePixelPhysicalValue{axis}; give colour_bar=...")
    ref0 = 0 if ref0 is None else ref0
    first = (ref_value + (0 - ref0) * delta) / 100.0
    last = (ref_value + (n - 1 - ref0) * delta) / 100.0
    vmin, vmax = min(first, last), max(first, last)
    box = (r.y0, r.x0, r.y1 + 1, r.x1 + 1)
    orientation = "vertical" if axis == "Y" else "horizontal"
    # vertical: is the top row the max?  horizontal: is the right end the max?
    top_is_max = first > last if axis == "Y" else last > first
    cache: dict[str, Any] = {}

    def sample(rgb_full):
        from .colour import sample_colour_bar

        if "bar" not in cache:
            cache["bar"] = sample_colour_bar(rgb_full, box, vmin, vmax, orientation=orientation,
                                             top_is_max=top_is_max, source=str(path))
        return cache["bar"]

    return _BarPlan(sample, "strain", "colour_bar_region", auto=True)


def _plan_colour_bar(colour_bar, elasto_kind, private: _BarPlan | None, path,
                     layout: _Layout, rows: int, cols: int) -> _BarPlan:
    """The caller's bar, else the private block's, else one from the colour-bar region."""
    if colour_bar is not None:
        kind = elasto_kind or (private.kind if private is not None else None) or "swe_kpa"
        return _BarPlan(_resolve_colour_bar(colour_bar, path, layout), kind, "caller")
    plan = private if private is not None else _region_colour_bar(
        layout.colour_bar_region, rows, cols, path)
    if plan.source is not None and elasto_kind is not None and elasto_kind != plan.kind:
        what = ("private block" if plan.origin == "private_block"
                else "colour-bar region (percent scale)")
        raise ColourBarError(f"elasto_kind={elasto_kind!r} was given, but the file's colour bar "
                             f"({what}) holds {plan.kind} values; pass colour_bar=... with "
                             "elasto_kind to decode with your own bar", path)
    return plan


def _register(values: np.ndarray, valid: np.ndarray, src_region: UltrasoundRegion,
              src_spacing, dst_region: UltrasoundRegion | None, dst_spacing,
              dst_shape) -> tuple[np.ndarray, np.ndarray]:
    """Resample a colour region's values onto the B-mode grid through physical coordinates."""
    from scipy import ndimage

    ay, ax = dst_spacing
    by, bx = src_spacing
    if dst_region is not None:
        oy, ox = physical_origin_mm(dst_region, dst_spacing)
    else:
        oy, ox = 0.0, 0.0
    sy, sx = physical_origin_mm(src_region, src_spacing)
    rows = (oy + np.arange(dst_shape[0]) * ay - sy) / by
    cols = (ox + np.arange(dst_shape[1]) * ax - sx) / bx
    if (np.allclose(rows, np.round(rows), atol=1e-6) and np.allclose(cols, np.round(cols),
                                                                        atol=1e-6)):
        ri, ci = np.round(rows).astype(int), np.round(cols).astype(int)
        inr = (ri >= 0) & (ri < values.shape[0])
        inc = (ci >= 0) & (ci < values.shape[1])
        out = np.full(dst_shape, np.nan, np.float32)
        ok = np.zeros(dst_shape, bool)
        sub = np.ix_(ri[inr], ci[inc])
        out[np.ix_(inr, inc)] = values[sub]
        ok[np.ix_(inr, inc)] = valid[sub]
        return out, ok
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    filled = np.where(valid, values, 0).astype(np.float64)
    v = ndimage.map_coordinates(filled, [rr, cc], order=1, mode="constant", cval=0.0)
    w = ndimage.map_coordinates(valid.astype(np.float64), [rr, cc], order=1, mode="constant",
                                cval=0.0)
    ok = w > 1 - 1e-6
    return np.where(ok, v, np.nan).astype(np.float32), ok


# ---------------------------------------------------------------------------- the reader
_EOI_SYNTAX_SUFFIXES = frozenset({"50", "51", "57", "70", "80", "81", "90", "91", "92", "93",
                                  "201", "202", "203"})
"""Last UID components (under 1.2.840.10008.1.2.4.) of the JPEG, JPEG-LS, JPEG 2000 and HTJ2K
transfer syntaxes, whose frame streams end with the marker ``FF D9`` (EOI / EOC)."""
_EOI_TAIL_BYTES = 16
"""The marker must lie in a frame's last bytes (item padding and encoder fill may follow it)."""


class _Decoder:
    """Decodes frame i of a DICOM file to float32 grey (rows, cols) or RGB (rows, cols, 3),
    0-255 scale, one frame at a time."""

    def __init__(self, path: Path, ds, pi: str, n: int):
        self.path, self.pi, self.n = path, pi, n
        self.header = ds
        self.ts = _transfer_syntax(ds)
        self.has_meta = bool(getattr(ds, "file_meta", None)
                             and ds.file_meta.get("TransferSyntaxUID"))
        self.bits_stored = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
        self.signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        self.is_float = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
        self._ds_full = None
        self._unterminated: set[int] | None = None
        self._check_decoder()
        self.complete, self.frame_bytes, self.data_bytes = self._complete_frames(ds)

    def _complete_frames(self, ds) -> tuple[int, int | None, int | None]:
        """How many frames the native (uncompressed) pixel data hold whole, checked against the
        header's Rows x Columns x SamplesPerPixel x BitsAllocated before any frame is decoded.

        Frames wholly present stay readable (the series is lazy); a file whose pixel data do
        not hold even frame 0 is refused here with `CorruptFileError`. Encapsulated
        (compressed) data are checked frame by frame by the decoder instead.
        """
        if self.ts.is_compressed:
            return self.n, None, None
        tag = next(t for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if t in ds)
        elem = ds.get_item(tag)
        length = getattr(elem, "length", None)
        value = getattr(elem, "value", None)
        if isinstance(value, (bytes, bytearray)):
            length = len(value)
        if length is None or length == 0xFFFFFFFF:
            return self.n, None, None
        bits = {"FloatPixelData": 32, "DoubleFloatPixelData": 64}.get(
            tag, int(ds.get("BitsAllocated", 8) or 8))
        rows, cols = int(ds.Rows), int(ds.Columns)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        if bits % 8:
            return self.n, None, None  # bit-packed (1-bit) frames share bytes
        frame_bytes = rows * cols * spp * (bits // 8)
        if self.pi == "YBR_FULL_422":
            frame_bytes = frame_bytes // 3 * 2  # two samples per pixel, chroma subsampled
        complete = min(self.n, int(length) // frame_bytes)
        if complete == 0:
            raise CorruptFileError(
                f"the pixel data hold {int(length):,} bytes, less than one frame: the header "
                f"claims {self.n} frame(s) of {rows} x {cols} pixels x {spp} sample(s) x "
                f"{bits} bits = {frame_bytes:,} bytes each ({self.n * frame_bytes:,} in all); "
                "the file is truncated or its header is wrong", self.path)
        return complete, frame_bytes, int(length)

    def _check_decoder(self) -> None:
        from pydicom.pixels import get_decoder

        try:
            dec = get_decoder(self.ts)
        except NotImplementedError:
            raise UnsupportedFormatError(f"pixel data in transfer syntax {self.ts.name} "
                                         f"({self.ts}), which pydicom cannot decode",
                                         self.path) from None
        if not dec.is_available:
            missing = "; ".join(getattr(dec, "missing_dependencies", [])) or "a decoder plugin"
            raise UnsupportedFormatError(f"no decoder installed for transfer syntax "
                                         f"{self.ts.name}; install one of ({missing})",
                                         self.path)

    def _raw(self, i: int) -> np.ndarray:
        from pydicom.pixels import pixel_array

        index = i if self.n > 1 else None
        if self.has_meta:
            arr = pixel_array(str(self.path), index=index)
        else:
            if self._ds_full is None:
                import pydicom
                from pydicom.dataset import FileMetaDataset

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = pydicom.dcmread(str(self.path), force=True)
                ds.file_meta = FileMetaDataset()
                ds.file_meta.TransferSyntaxUID = self.ts
                self._ds_full = ds
            arr = pixel_array(self._ds_full, index=index)
        return arr

    def _unterminated_frames(self) -> set[int]:
        """Frames whose JPEG-family stream (JPEG, JPEG-LS, JPEG 2000, HTJ2K) lacks its
        end-of-image marker (``FF D9``) in its last bytes: a stream cut short inside a
        well-formed item, which the decoders fill with grey instead of failing. Read once."""
        if self._unterminated is None:
            from pydicom.encaps import generate_frames

            bad: set[int] = set()
            if self.ts.is_compressed and self.ts.rsplit(".", 1)[-1] in _EOI_SYNTAX_SUFFIXES \
                    and str(self.ts).startswith("1.2.840.10008.1.2.4."):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        data = self.header.PixelData
                        for k, frame in enumerate(generate_frames(data, number_of_frames=self.n)):
                            if b"\xff\xd9" not in bytes(frame[-_EOI_TAIL_BYTES:]):
                                bad.add(k)
                except Exception:  # noqa: BLE001 - malformed items: the decoder names them
                    bad = set()
            self._unterminated = bad
        return self._unterminated

    def __call__(self, i: int) -> np.ndarray:
        if i >= self.complete:
            raise CorruptFileError(
                f"frame {i} is truncated: the pixel data hold {self.data_bytes:,} bytes, enough "
                f"for frames 0-{self.complete - 1} of {self.n} ({self.frame_bytes:,} bytes each)",
                self.path)
        if i in self._unterminated_frames():
            raise CorruptFileError(
                f"frame {i} is truncated: its compressed stream ({self.ts.name}) ends without "
                "the end-of-image marker", self.path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arr = self._raw(i)
        except LayersegError:
            raise
        except MemoryError:
            raise
        except Exception as e:  # pydicom and its plugins raise many types; name it, chain it
            raise CorruptFileError(f"cannot decode frame {i} ({self.ts.name}): {_err_name(e)}; "
                                   "the pixel data are truncated or malformed", self.path) from e
        return self._to_display(arr, i)

    def _to_display(self, arr: np.ndarray, i: int) -> np.ndarray:
        if self.is_float:
            a = np.asarray(arr, dtype=np.float32)
            if not np.isfinite(a).all():
                bad = int((~np.isfinite(a)).sum())
                raise InvalidImageError(f"frame {i} holds {bad} NaN/inf pixel(s)", self.path)
            return a
        if self.pi == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            try:
                rgb = apply_color_lut(arr, self.header)
            except Exception as e:
                raise CorruptFileError(f"cannot apply the palette colour lookup table "
                                       f"({_err_name(e)})", self.path) from e
            desc = self.header.get("RedPaletteColorLookupTableDescriptor")
            bits = int(desc[2]) if desc is not None and len(desc) == 3 else 8
            bits = 8 if bits not in (8, 16) else bits
            return (rgb.astype(np.float32) * np.float32(255.0 / (2 ** bits - 1)))
        a = arr.astype(np.float32)
        if arr.dtype.kind == "i" or self.signed:
            a = a + np.float32(2 ** (self.bits_stored - 1))
        top = float(2 ** self.bits_stored - 1)
        if self.pi == "MONOCHROME1":
            a = np.float32(top) - a
        if self.bits_stored != 8:
            a = a * np.float32(255.0 / top)
        return a


def read_dicom(path: str | os.PathLike, spacing: tuple[float, float] | None = None,
               frames: Sequence[int] | slice | None = None, *,
               colour: Literal["refuse", "luminance"] = "refuse",
               colour_bar: Any = None, elasto_kind: Literal["swe_kpa", "strain"] | None = None,
               max_colour_distance: float | None = None, region: int | None = None,
               allow_other_modality: bool = False, salt: str | None = None) -> FrameSeries:
    """Read an ultrasound DICOM file as a lazy series of calibrated frames.

    Parameters
    ----------
    path : str or path-like
        A DICOM file (with or without the 128-byte preamble); single- or multi-frame;
        uncompressed, JPEG baseline, JPEG 2000 or another transfer syntax pydicom can decode.
    spacing : (float, float), optional
        ``(axial_mm, lateral_mm)``. Overrides the header and is recorded as
        ``meta.calibration == "user"``; required for files without calibration.
    frames : sequence of int or slice, optional
        The frame indices to expose (default: all). Frames are decoded only when indexed.
    colour : {'refuse', 'luminance'}
        What to do with a B-mode region that holds colour and no `colour_bar` was given:
        refuse (`InvalidImageError`) or convert to luminance. Effectively grey colour images
        (see `is_effectively_grey`) are always converted to luminance.
    colour_bar : ColourBar, path, or dict, optional
        Colour bar of the elastography overlay; without it the file's own bar is used where it
        states one (see the module docstring). A `layerseg.io.colour.ColourBar`, a LUT file for
        `layerseg.io.colour.load_lut`, or
        ``{"box": (row0, col0, row1, col1), "vmin": ..., "vmax": ..., **options}`` for
        `layerseg.io.colour.sample_colour_bar`, sampled once from the first decoded frame
        (the full screen image, end-exclusive box; it defaults to the file's colour-bar region,
        RegionDataType 14). With it, a colour region beside the B-mode (or colour over
        it) becomes `Frame.elasto`, registered to the B-mode grid.
    elasto_kind : {'swe_kpa', 'strain'}, optional
        What the colour bar's values are. Default: what the file states (private block, or a
        percent scale = strain), else ``'swe_kpa'``. Contradicting the file's own bar (with no
        `colour_bar` given) raises `ColourBarError`.
    max_colour_distance : float, optional
        Passed to `layerseg.io.colour.decode_colour` as ``max_distance``.
    region : int, optional
        Index (in the Sequence of Ultrasound Regions) of the B-mode region, to settle an
        ambiguous layout.
    allow_other_modality : bool
        Read a non-US DICOM (for example a secondary capture of an ultrasound screen).
    salt : str, optional
        Salt of the de-identified subject/study keys (see `deidentify_key`).

    Returns
    -------
    FrameSeries
        Frames with ``bmode`` float32 (rows, cols) display grey levels 0-255 cropped to the
        tissue region, ``spacing_mm`` (axial, lateral) and metadata.

    Raises
    ------
    MissingFileError
        Missing file (a `ReadError`). `UnsupportedFormatError`: not DICOM, or an unsupported
        pixel encoding.
    CorruptFileError
        Truncated or malformed header or pixel data.
    WrongModalityError
        Another modality (CT, MR...) or no pixel data.
    CalibrationError
        No calibration, region bounds outside the image, non-centimetre units, or
        contradictory tissue regions (unless `spacing` is given).
    ColourBarError
        A malformed caller bar, one that does not match the overlay, a malformed private
        colour-bar record, or `elasto_kind` contradicting the file's bar.
    InvalidImageError
        Empty or 1-pixel image, NaN/inf pixels, colour where grey is expected.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError("file not found", p)
    if p.is_dir():
        raise ReadError("is a directory, not a DICOM file", p)
    if colour not in ("refuse", "luminance"):
        raise ValueError(f"colour must be 'refuse' or 'luminance', got {colour!r}")
    _check_dicom_content(p)
    if spacing is not None:
        spacing = check_spacing(spacing, "the DICOM frames", p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns on odd values as it converts them
            ds = _read_header(p)
            _check_modality(ds, p, allow_other_modality)
            rows, cols, n, pi, spp = _check_image_header(ds, p)
            decoder = _Decoder(p, ds, pi, n)
            is_colour = pi != "MONOCHROME1" and pi != "MONOCHROME2"

            def first_rgb():
                a = decoder(0)
                return a if a.ndim == 3 else None

            try:
                private = _private_colour_bar(ds, p)
            except ColourBarError:
                if colour_bar is None:
                    raise
                private = None  # the caller's bar wins; a damaged record does not matter
            layout = _plan_layout(ds, parse_regions(ds), rows, cols, p, spacing, region,
                                  first_rgb if is_colour else None,
                                  None if private is None else private.elasto_box)
            plan = _plan_colour_bar(colour_bar, elasto_kind, private, p, layout, rows, cols)
            meta_common = _common_meta(ds, p, layout, salt)
    except (LayersegError, MemoryError):
        raise
    except Exception as e:  # a malformed element pydicom only converts when it is accessed
        raise CorruptFileError(f"malformed DICOM header ({_err_name(e)})", p) from e

    if frames is None:
        indices = list(range(n))
    elif isinstance(frames, (int, np.integer)):
        indices = [int(frames) % n] if -n <= int(frames) < n else None
        if indices is None:
            raise IndexError(f"{p}: frame {frames} out of range for {n} frame(s)")
    elif isinstance(frames, slice):
        indices = list(range(n))[frames]
    else:
        indices = [int(i) for i in frames]
        bad = [i for i in indices if not -n <= i < n]
        if bad:
            raise IndexError(f"{p}: frame(s) {bad} out of range for {n} frame(s)")
        indices = [i % n for i in indices]

    def load(k: int) -> Frame:
        i = indices[k]
        img = decoder(i)
        return _make_frame(img, i, p, layout, plan, colour, max_colour_distance, meta_common)

    return FrameSeries(len(indices), load, source=str(p))


def _common_meta(ds, path: Path, layout: _Layout, salt) -> dict[str, Any]:
    maker = str(ds.get("Manufacturer", "") or "").strip()
    model = str(ds.get("ManufacturerModelName", "") or "").strip()
    device = " ".join(s for s in (maker, model) if s) or None
    freq = None
    r = layout.bmode_region
    if r is not None and r.frequency_khz:
        freq = r.frequency_khz / 1000.0
    elif ds.get("TransducerFrequency"):
        try:
            freq = float(ds.TransducerFrequency) / 1000.0
        except (TypeError, ValueError):
            freq = None
    extra: dict[str, Any] = dict(layout.notes)
    sex, age = _sex_and_age(ds)
    if sex is not None:
        extra["sex"] = sex            # for the reference ranges; not identifying on their own
    if age is not None:
        extra["age_years"] = age
    extra["transfer_syntax"] = str(_transfer_syntax(ds).name)
    extra["photometric"] = str(ds.get("PhotometricInterpretation", ""))
    if r is not None:
        extra["bmode_region"] = {"index": r.index, "x0": r.x0, "y0": r.y0, "x1": r.x1,
                                 "y1": r.y1}
    if layout.colour_region is not None:
        c = layout.colour_region
        extra["colour_region"] = {"index": c.index, "x0": c.x0, "y0": c.y0, "x1": c.x1,
                                  "y1": c.y1}
    return dict(
        source=str(path), frequency_mhz=freq, device=device, calibration=layout.calibration,
        subject_key=deidentify_key(ds.get("PatientID"), ds.get("IssuerOfPatientID"), salt=salt),
        study_key=deidentify_key(ds.get("StudyInstanceUID"), salt=salt),
        extra=extra)


def _sex_and_age(ds) -> tuple[str | None, float | None]:
    """PatientSex ('F' or 'M', else None) and PatientAge (DICOM AS ``nnnD/W/M/Y``) in years (None
    when absent or malformed; ages of 90 and over are reported as 90, as de-identification
    rules do)."""
    sex = str(ds.get("PatientSex", "") or "").strip().upper()
    age_s = str(ds.get("PatientAge", "") or "").strip().upper()
    age = None
    if len(age_s) == 4 and age_s[:3].isdigit() and age_s[3] in "DWMY":
        age = int(age_s[:3]) / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[age_s[3]]
        age = min(age, 90.0)
    return (sex if sex in ("F", "M") else None), age


def _make_frame(img: np.ndarray, i: int, path: Path, layout: _Layout, plan: _BarPlan, colour,
                max_distance, meta_common) -> Frame:
    full = img
    r = layout.bmode_region
    crop = full[r.box()] if r is not None else full
    elasto = valid = None
    extra = dict(meta_common["extra"])

    def unusable(e: ColourBarError):
        if not plan.auto:
            raise e
        extra["elasto_ignored"] = (f"the file's colour bar ({plan.origin}) does not fit its "
                                   f"pixels: {e.problem}; give colour_bar=... to decode it")

    bar = None
    if plan.source is not None and (full.ndim == 3 or not plan.auto):
        try:
            bar = plan.source(full) if callable(plan.source) else plan.source
        except ColourBarError as e:
            unusable(e)

    def decode(rgb):
        try:
            return _decode(rgb, bar, max_distance, path)
        except ColourBarError as e:
            unusable(e)
            return None

    if crop.ndim == 3:
        grey = is_effectively_grey(crop)
        res = None
        if not grey and bar is not None and layout.colour_region is None:
            res = decode(crop)
        if grey:
            bmode = _luminance(crop)
        elif res is not None:
            elasto, valid = res
            bmode = _luminance(crop)
            extra["elasto_layout"] = "overlay"
        elif colour == "luminance":
            bmode = _luminance(crop)
            extra["colour_converted"] = "luminance"
            if bar is None and plan.reason:
                extra.setdefault("elasto_ignored", plan.reason)
        else:
            frac = coloured_fraction(crop)
            why = extra.get("elasto_ignored") or plan.reason
            raise InvalidImageError(
                f"frame {i}: the B-mode region holds colour ({100 * frac:.1f}% of its pixels "
                "are coloured), where a grey B-mode is expected; give the elastography colour "
                "bar (colour_bar=...) to decode it, or colour='luminance' to convert to grey"
                + (f" (the file's own colour bar cannot be used: {why})" if why else ""), path)
    else:
        bmode = crop
    if bar is not None and layout.colour_region is not None and full.ndim == 3:
        c = layout.colour_region
        res = decode(full[c.box()])
        if res is not None:
            elasto, valid = _register(res[0], res[1], c, layout.colour_spacing_mm, r,
                                      layout.spacing_mm, bmode.shape)
            extra["elasto_layout"] = "side_by_side"
    elif layout.colour_region is not None and "elasto_ignored" not in extra:
        extra["elasto_ignored"] = (f"a colour region is present but no colour_bar was given, "
                                   f"and {plan.reason or 'the file states no usable colour bar'}")
    if elasto is not None:
        extra["colour_bar_source"] = plan.origin
    meta = FrameMeta(source=meta_common["source"], frame_index=i,
                     frequency_mhz=meta_common["frequency_mhz"], device=meta_common["device"],
                     calibration=meta_common["calibration"],
                     subject_key=meta_common["subject_key"], study_key=meta_common["study_key"],
                     extra=extra)
    return Frame(bmode=bmode, spacing_mm=layout.spacing_mm, intensity="display",
                 elasto=elasto, elasto_kind=plan.kind if elasto is not None else None,
                 elasto_valid=valid, meta=meta)


def _decode(rgb: np.ndarray, bar, max_distance, path):
    from .colour import decode_colour

    kw = {} if max_distance is None else {"max_distance": max_distance}
    values, valid = decode_colour(rgb, bar, source=str(path), **kw)
    return np.asarray(values, np.float32), np.asarray(valid, bool)
