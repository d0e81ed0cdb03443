"""Write simulated exams as a scanner exports them: a multi-frame ultrasound DICOM.

`write_exam_dicom` writes one Ultrasound Multi-frame Image (SOP class 1.2.840.10008.5.1.4.1.1.3.1,
Modality US), uncompressed RGB or JPEG baseline (YBR_FULL_422), each frame a screen image: the grey
B-mode on the left, the elastography colour overlay on the right and its colour bar beside it,
described by a Sequence of Ultrasound Regions, so the readers (`layerseg.io.read`) and the batch
command are exercised on realistic files.

Screen layout (``layout="side_by_side"``), all rows starting at row 0, frame ``rows x cols``::

    columns [0, cols)                       B-mode, grey                 region 0: tissue (1)
    columns [cols + GAP, 2 cols + GAP)      B-mode + colour overlay      region 1: tissue (1)
    columns [2 cols + GAP + BAR_GAP, +BAR_WIDTH), rows [BAR_MARGIN, rows - BAR_MARGIN)
                                            the colour bar, max on top   region 2: colour bar (14)
    RIGHT_MARGIN columns after the bar      its end values as white text (outside every region)

With ``layout="overlay"`` the colour lies over the B-mode in one view (region 0) and the bar
follows at ``cols + BAR_GAP``. Frames without elastography show grey in the overlay view.

Regions 0 and 1 have RegionSpatialFormat 1 (2D), PhysicalUnitsX/YDirection 3 (cm), PhysicalDeltaX/Y
= lateral/axial spacing in cm, inclusive RegionLocationMin/Max bounds and reference pixel (0, 0) at
physical (0, 0) cm: the two views show the same field, pixel for pixel. The elastography view is a
tissue region too (DICOM has no elastography RegionDataType; Colour Flow, 2, means Doppler); readers
tell it from the B-mode by its colour. The colour-bar region (RegionDataType 14, spatial format 5,
graphics) carries the bar's value scale in its Y calibration: PhysicalUnitsYDirection 0 (none: kPa
has no DICOM unit code) or 1 (percent, for strain), ReferencePixelY0 = 0 (the bar's top row,
relative to the region) with ReferencePixelPhysicalValueY = the top value (vmax, in percent for
strain) and PhysicalDeltaY = -(vmax - vmin) / (bar rows - 1).

The bar is also recorded exactly in a private block, so a reader can decode without guessing
(group 0x0011, private creator ``"LAYERSEG_SIM 1"``; element offsets within the block, i.e. tags
(0011,10xx) when the block gets slot 0x10)::

    0x01  LO  elastography kind: 'swe_kpa' or 'strain'
    0x02  LO  unit of the bar values: 'kPa' or '1' (unitless strain)
    0x03  FD  bar end values, VM 2: vmin, vmax
    0x04  US  bar box in the frame, VM 4: row0, col0, row1, col1 (end-exclusive; the box
              `layerseg.io.colour.sample_colour_bar` takes), vertical, top row = vmax
    0x05  FD  the bar's LUT values, VM n (increasing)
    0x06  OB  the bar's LUT colours, n x 3 uint8 RGB, row-major
    0x07  US  elastography view box, VM 4: row0, col0, row1, col1 (end-exclusive)
    0x08  LO  layout: 'side_by_side' or 'overlay'

``ColourBar(np.frombuffer(colours, uint8).reshape(-1, 3), values)`` rebuilds the exact bar.

The patient name and ID in the header are synthetic (the simulator makes them up); readers must
never put them in any output. UIDs are derived deterministically from the patient ID, the study UID
and the file name, and no wall-clock dates are written, so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io._private import SIM_PRIVATE_CREATOR, SIM_PRIVATE_GROUP
from ..frame import Frame
from .elasto import draw_colour_bar, render_elasto_overlay

__all__ = ["write_exam_dicom", "PRIVATE_CREATOR", "PRIVATE_GROUP", "MANUFACTURER",
           "default_exam_bar", "screen_layout", "US_MULTIFRAME_SOP_CLASS"]

US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"
"""Ultrasound Multi-frame Image Storage."""
PRIVATE_GROUP = SIM_PRIVATE_GROUP
PRIVATE_CREATOR = SIM_PRIVATE_CREATOR
"""Aliases of `layerseg.io._private.SIM_PRIVATE_GROUP`/``SIM_PRIVATE_CREATOR`` (their one owner,
shared with the reader `layerseg.io.dicom`)."""
MANUFACTURER = "layerseg-sim"

GAP = 16
"""Columns of black between the B-mode view and the elastography view."""
BAR_GAP = 12
"""Columns of black between the elastography view and the colour bar."""
BAR_WIDTH = 16
BAR_MARGIN_FRAC = 0.1
"""The bar spans the view's rows less this fraction at the top and at the bottom."""
RIGHT_MARGIN = 44
"""Columns right of the bar; the bar's end values are printed there in white, as on a screen."""

_DEFAULT_RANGE = {"swe_kpa": (0.0, 40.0), "strain": (0.0, 0.05)}
_UNIT = {"swe_kpa": "kPa", "strain": "1"}


def default_exam_bar(kind: str):
    """The bar `write_exam_dicom` uses when none is given: layerseg's jet map over 0-40 kPa (shear
    wave; simulated facial tissue stays below about 30 kPa) or 0-0.05 strain (our choices)."""
    from ..io.colour import default_colour_bar

    if kind not in _DEFAULT_RANGE:
        raise ConfigError(f"elastography kind must be 'swe_kpa' or 'strain', got {kind!r}")
    return default_colour_bar(*_DEFAULT_RANGE[kind])


def screen_layout(rows: int, cols: int, layout: str = "side_by_side") -> dict:
    """Where everything sits on the screen image of a ``rows x cols`` view.

    Returns
    -------
    dict
        ``screen`` (rows, cols) of the whole frame; ``bmode``, ``elasto`` and ``bar`` boxes as
        (row0, col0, row1, col1), end-exclusive (``elasto`` equals ``bmode`` for ``overlay``).
    """
    if layout not in ("side_by_side", "overlay"):
        raise ConfigError(f"layout must be 'side_by_side' or 'overlay', got {layout!r}")
    bm = (0, 0, rows, cols)
    el = (0, cols + GAP, rows, 2 * cols + GAP) if layout == "side_by_side" else bm
    m = max(1, int(round(rows * BAR_MARGIN_FRAC)))
    if rows - 2 * m < 8:
        m = 0
    c0 = el[3] + BAR_GAP
    bar = (m, c0, rows - m, c0 + BAR_WIDTH)
    return {"screen": (rows, bar[3] + RIGHT_MARGIN), "bmode": bm, "elasto": el, "bar": bar}


def _frames_common(frames: Sequence[Frame]):
    if len(frames) == 0:
        raise ConfigError("write_exam_dicom needs at least one frame")
    shape = spacing = kind = None
    for i, f in enumerate(frames):
        if not isinstance(f, Frame):
            raise ConfigError(f"frame {i} is a {type(f).__name__}, not a layerseg Frame")
        if f.spacing_mm is None:
            raise ConfigError(f"frame {i} has no pixel spacing; a DICOM export needs it")
        if shape is None:
            shape, spacing = f.shape, f.spacing_mm
        elif f.shape != shape or not np.allclose(f.spacing_mm, spacing, rtol=1e-9):
            raise ConfigError(f"frame {i} has shape {f.shape} and spacing {f.spacing_mm}, the "
                              f"first {shape} and {spacing}; one multi-frame file holds one "
                              "geometry")
        if f.elasto is not None:
            if kind is None:
                kind = f.elasto_kind
            elif f.elasto_kind != kind:
                raise ConfigError(f"frame {i} holds {f.elasto_kind} elastography, an earlier "
                                  f"one {kind}; one file holds one kind")
    return shape, spacing, kind


def _grey(f: Frame) -> np.ndarray:
    g = f.display() if f.intensity == "envelope" else f.bmode
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)


def _background(lay: dict, bar, kind) -> np.ndarray:
    """The screen without the views: black, the colour bar and its end values printed beside."""
    out = np.zeros(lay["screen"] + (3,), np.uint8)
    if bar is None:
        return out
    r0, c0, r1, c1 = lay["bar"]
    out[r0:r1, c0:c1] = draw_colour_bar(r1 - r0, c1 - c0, bar)
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(out)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=10)
    unit = " kPa" if kind == "swe_kpa" else ""
    draw.text((c1 + 3, r0), f"{bar.vmax:g}{unit}", fill=(255, 255, 255), font=font)
    draw.text((c1 + 3, max(r0, r1 - 11)), f"{bar.vmin:g}", fill=(255, 255, 255), font=font)
    text = np.array(img)
    # text never touches the bar itself
    text[r0:r1, c0:c1] = out[r0:r1, c0:c1]
    return np.ascontiguousarray(text)


def _screen(f: Frame, lay: dict, bar, background: np.ndarray) -> np.ndarray:
    out = background.copy()
    grey = _grey(f)
    r0, c0, r1, c1 = lay["bmode"]
    out[r0:r1, c0:c1] = grey[..., None]
    if bar is not None:
        r0, c0, r1, c1 = lay["elasto"]
        if f.elasto is not None:
            out[r0:r1, c0:c1] = render_elasto_overlay(grey, f.elasto, f.elasto_valid, bar)
        else:
            out[r0:r1, c0:c1] = grey[..., None]
    return out


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # subsampling=1 is 4:2:2 (horizontal chroma halving), matching YBR_FULL_422
    Image.fromarray(rgb, "RGB").save(buf, format="JPEG", quality=quality, subsampling=1,
                                     optimize=False)
    return buf.getvalue()


def _region(x0, y0, x1, y1, data_type, spatial, *, units_x=0, units_y=0, dx=0.0, dy=0.0,
            ref_y_value=None, freq_khz=None):
    from pydicom.dataset import Dataset

    it = Dataset()
    it.RegionSpatialFormat = spatial
    it.RegionDataType = data_type
    it.RegionFlags = 0
    it.RegionLocationMinX0 = int(x0)
    it.RegionLocationMinY0 = int(y0)
    it.RegionLocationMaxX1 = int(x1)
    it.RegionLocationMaxY1 = int(y1)
    it.PhysicalUnitsXDirection = units_x
    it.PhysicalUnitsYDirection = units_y
    it.PhysicalDeltaX = float(dx)
    it.PhysicalDeltaY = float(dy)
    it.ReferencePixelX0 = 0
    it.ReferencePixelY0 = 0
    it.ReferencePixelPhysicalValueX = 0.0
    it.ReferencePixelPhysicalValueY = 0.0 if ref_y_value is None else float(ref_y_value)
    if freq_khz is not None:
        it.TransducerFrequency = int(round(freq_khz))
    return it


def write_exam_dicom(path: str | os.PathLike, frames: Sequence[Frame], *, patient_name: str,
                     patient_id: str, study_uid: str | None = None, jpeg: bool = False,
                     layout: str = "side_by_side", bar=None, frequency_mhz: float | None = None,
                     jpeg_quality: int = 92, frame_time_ms: float = 50.0,
                     patient_sex: str | None = None, patient_age: float | None = None) -> Path:
    """Write frames as one multi-frame ultrasound DICOM, B-mode beside its colour elastography.

    See the module docstring for the screen layout, the regions and the private block that
    records the colour bar.

    Parameters
    ----------
    path : path
        The ``.dcm`` file to write (parent folders are created).
    frames : sequence of Frame
        Same shape and spacing; display grey B-modes (envelope ones are log-compressed); their
        ``elasto`` (one kind for the whole file) is drawn through `bar`. Without elastography in
        any frame only the B-mode region is written.
    patient_name, patient_id : str
        Synthetic identifiers for the header (never real ones).
    study_uid : str, optional
        StudyInstanceUID; derived from `patient_id` when None.
    jpeg : bool
        JPEG baseline (1.2.840.10008.1.2.4.50, Pillow, 4:2:2, YBR_FULL_422) instead of
        uncompressed explicit-VR little-endian RGB.
    layout : {'side_by_side', 'overlay'}
    bar : layerseg.io.colour.ColourBar, optional
        Default `default_exam_bar` of the frames' elastography kind.
    frequency_mhz : float, optional
        Probe frequency; written as TransducerFrequency (kHz) in the regions and in a
        description. Default: the first frame's ``meta.frequency_mhz``, if any.
    jpeg_quality : int
        Pillow JPEG quality (1-95).
    frame_time_ms : float
        FrameTime (ms), the frame increment pointer's target.
    patient_sex : {'F', 'M'} or None
        PatientSex (empty when None).
    patient_age : float or None
        PatientAge in whole years (``"045Y"``; empty when None).

    Returns
    -------
    Path
        `path`.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    p = Path(path)
    frames = list(frames)
    (rows, cols), (ay, ax), kind = _frames_common(frames)
    if kind is not None and bar is None:
        bar = default_exam_bar(kind)
    elif kind is None:
        bar = None
    lay = screen_layout(rows, cols, layout)
    if bar is None:
        lay = {**lay, "screen": (rows, cols)}
    if frequency_mhz is None:
        frequency_mhz = frames[0].meta.frequency_mhz
    if frequency_mhz is not None:
        frequency_mhz = float(frequency_mhz)
        if not (math.isfinite(frequency_mhz) and frequency_mhz > 0):
            raise ConfigError(f"frequency_mhz must be a positive number, got {frequency_mhz}")
    if not (1 <= int(jpeg_quality) <= 95):
        raise ConfigError(f"jpeg_quality must lie in 1-95, got {jpeg_quality}")
    if not (str(patient_name).strip() and str(patient_id).strip()):
        raise ConfigError("patient_name and patient_id must be non-empty (synthetic) strings")

    study = study_uid or generate_uid(entropy_srcs=["layerseg-sim study", str(patient_id)])
    series = generate_uid(entropy_srcs=["layerseg-sim series", study, p.name])
    sop = generate_uid(entropy_srcs=["layerseg-sim instance", study, p.name])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    meta.ImplementationVersionName = "LAYERSEG_SIM"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID = US_MULTIFRAME_SOP_CLASS
    ds.SOPInstanceUID = sop
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.Modality = "US"
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = "layerseg simulator"
    ds.ReferringPhysicianName = ""
    desc = "simulated facial HFUS"
    if frequency_mhz is not None:
        desc += f" {frequency_mhz:g} MHz"
    if kind is not None:
        desc += f" + {kind} elastography"
    ds.SeriesDescription = desc[:64]
    ds.PatientName = str(patient_name)
    ds.PatientID = str(patient_id)
    ds.PatientBirthDate = ""
    sex = "" if patient_sex is None else str(patient_sex).strip().upper()[:1]
    if sex not in ("", "F", "M", "O"):
        raise ConfigError(f"patient_sex must be 'F', 'M', 'O' or None, got {patient_sex!r}")
    ds.PatientSex = sex
    if patient_age is not None:
        age = float(patient_age)
        if not (math.isfinite(age) and 0 <= age < 1000):
            raise ConfigError(f"patient_age must be a number of years, got {patient_age!r}")
        ds.PatientAge = f"{int(age):03d}Y"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ContentDate = ""
    ds.ContentTime = ""
    ds.BurnedInAnnotation = "NO"

    srows, scols = lay["screen"]
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = srows, scols
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = len(frames)
    ds.FrameTime = float(frame_time_ms)
    ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")

    freq_khz = None if frequency_mhz is None else frequency_mhz * 1000.0
    r0, c0, r1, c1 = lay["bmode"]
    regions = [_region(c0, r0, c1 - 1, r1 - 1, 1, 1, units_x=3, units_y=3, dx=ax / 10.0,
                       dy=ay / 10.0, freq_khz=freq_khz)]
    if bar is not None:
        if layout == "side_by_side":
            r0, c0, r1, c1 = lay["elasto"]
            regions.append(_region(c0, r0, c1 - 1, r1 - 1, 1, 1, units_x=3, units_y=3,
                                   dx=ax / 10.0, dy=ay / 10.0, freq_khz=freq_khz))
        br0, bc0, br1, bc1 = lay["bar"]
        scale = 100.0 if kind == "strain" else 1.0
        regions.append(_region(bc0, br0, bc1 - 1, br1 - 1, 14, 5,
                               units_y=1 if kind == "strain" else 0,
                               dy=-(bar.vmax - bar.vmin) * scale / (br1 - br0 - 1),
                               ref_y_value=bar.vmax * scale))
        blk = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
        blk.add_new(0x01, "LO", kind)
        blk.add_new(0x02, "LO", _UNIT[kind])
        blk.add_new(0x03, "FD", [float(bar.vmin), float(bar.vmax)])
        blk.add_new(0x04, "US", [int(v) for v in lay["bar"]])
        blk.add_new(0x05, "FD", [float(v) for v in bar.values])
        blk.add_new(0x06, "OB", np.clip(np.rint(bar.colours), 0, 255).astype(np.uint8).tobytes())
        blk.add_new(0x07, "US", [int(v) for v in lay["elasto"]])
        blk.add_new(0x08, "LO", layout)
    ds.SequenceOfUltrasoundRegions = regions

    background = _background(lay, bar, kind)
    screens = [_screen(f, lay, bar, background) for f in frames]
    if jpeg:
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate([_jpeg(s, int(jpeg_quality)) for s in screens])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = np.stack(screens).tobytes()
        ds["PixelData"].VR = "OB"
    p.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(p, enforce_file_format=True)
    return p
