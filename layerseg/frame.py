"""`Frame`, one ultrasound frame with its physical calibration, and `FrameSeries`, a lazy sequence.

Geometry (DESIGN.md): arrays are ``(rows, cols) = (depth, lateral)``, row 0 at the transducer
face; spacing is ``(axial_mm, lateral_mm)`` as the scanner displays it (at 1540 m/s).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from .checks import check_image_2d, check_spacing
from .errors import FilterInputError, InvalidImageError, SpacingRequiredError

__all__ = ["Frame", "FrameMeta", "FrameSeries", "INTENSITY_KINDS", "ELASTO_KINDS",
           "CALIBRATION_SOURCES", "DEFAULT_DYNAMIC_RANGE_DB", "display_to_envelope",
           "envelope_to_display"]

DEFAULT_DYNAMIC_RANGE_DB = 60.0
"""Dynamic range (dB mapped onto grey 0-255) assumed wherever one is needed and not known: the
log compression of an envelope frame (`Frame.display`), RF input (`layerseg.io.rf`), and the
envelope a speckle filter recovers from a display frame of unknown compression (the classical
segmenter). The one place this default is written."""

INTENSITY_KINDS = ("display", "envelope")
"""``display``: log-compressed grey levels on a 0-255 scale, as a scanner shows them;
``envelope``: the linear (detected, not log-compressed) echo amplitude, >= 0."""

ELASTO_KINDS = ("swe_kpa", "strain")
"""``swe_kpa``: shear-wave Young's modulus E = 3 rho c_s^2 in kPa; ``strain``: unitless strain."""

CALIBRATION_SOURCES = ("dicom_region", "dicom_pixel_spacing", "header", "sidecar", "user",
                       "simulator", "manifest", "rf_sampling")
"""Where a frame's spacing came from (``FrameMeta.calibration``)."""


@dataclass
class FrameMeta:
    """Metadata of one frame. Carries no patient identifiers: subject and study keys are
    pseudonymous (a hash or a key the user gave), never names or IDs from a header.

    Attributes
    ----------
    source : str or None
        The file the frame came from.
    frame_index : int
        Index of the frame in a multi-frame source (0 for single frames).
    frequency_mhz : float or None
        Probe (transmit or centre) frequency in MHz, where known.
    device : str or None
        Manufacturer and model, where known.
    calibration : str or None
        Provenance of the spacing, one of `CALIBRATION_SOURCES`, or None when there is none.
    subject_key, study_key : str or None
        De-identified keys (see `layerseg.io.deidentify_key`).
    region : str or None
        Facial region name (selects the layer profile), where known.
    extra : dict
        Anything else a reader knows (region boxes, transfer syntax...). JSON-serialisable.
        ``extra["reader_notes"]`` (list of str), where present, says what the reader assumed
        or could not apply (an unstated unit, a header it corrected); scoring carries it into
        the frame's QC notes.
    """

    source: str | None = None
    frame_index: int = 0
    frequency_mhz: float | None = None
    device: str | None = None
    calibration: str | None = None
    subject_key: str | None = None
    study_key: str | None = None
    region: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Frame:
    """One B-mode frame, its spacing, its optional elastography and metadata.

    Parameters
    ----------
    bmode : ndarray, shape (rows, cols)
        The B-mode image; stored as float32 (converted on construction). Must be finite, at least
        2 x 2. ``display`` images are grey levels 0-255; ``envelope`` images are >= 0.
    spacing_mm : (float, float) or None
        Pixel spacing ``(axial, lateral)`` in mm, or None when unknown.
    intensity : {'display', 'envelope'}
        What the pixel values are (see `INTENSITY_KINDS`).
    dynamic_range_db : float or None
        For ``display`` images, the log-compression dynamic range in dB mapped onto 0-255
        (known for RF input, the simulator, or when the user states it); None when unknown.
    elasto : ndarray, shape (rows, cols), optional
        Elastography registered to the B-mode: kPa (``swe_kpa``) or strain; float32, NaN where
        invalid.
    elasto_kind : {'swe_kpa', 'strain'} or None
    elasto_valid : ndarray of bool, shape (rows, cols), optional
        Validity mask; defaults to ``isfinite(elasto)``. Invalid pixels of `elasto` are set to NaN.
    meta : FrameMeta
    """

    bmode: np.ndarray
    spacing_mm: tuple[float, float] | None = None
    intensity: Literal["display", "envelope"] = "display"
    dynamic_range_db: float | None = None
    elasto: np.ndarray | None = None
    elasto_kind: Literal["swe_kpa", "strain"] | None = None
    elasto_valid: np.ndarray | None = None
    meta: FrameMeta = field(default_factory=FrameMeta)

    def __post_init__(self):
        src = self.meta.source
        b = np.asarray(self.bmode)
        if b.ndim == 3 and b.shape[-1] in (3, 4):
            raise InvalidImageError(
                f"B-mode image is colour (shape {b.shape}); pass a grey image, or read the file "
                "with layerseg.io.read(..., colour='luminance') to convert it", src)
        check_image_2d(b, "B-mode image", src)
        if b.dtype.kind not in "biuf":
            raise InvalidImageError(f"B-mode pixel type {b.dtype} is not numeric", src)
        b = b.astype(np.float32, copy=False)
        if not np.isfinite(b).all():
            n = int((~np.isfinite(b)).sum())
            raise InvalidImageError(f"B-mode image holds {n} NaN/inf pixel(s)", src)
        if self.intensity not in INTENSITY_KINDS:
            raise InvalidImageError(f"intensity must be one of {INTENSITY_KINDS}, got "
                                    f"{self.intensity!r}", src)
        if self.intensity == "envelope" and b.min() < 0:
            raise InvalidImageError("an envelope image must be >= 0 (it is a linear amplitude); "
                                    "negative values found", src)
        self.bmode = b
        if self.spacing_mm is not None:
            self.spacing_mm = check_spacing(self.spacing_mm, "the frame", src)
        if self.dynamic_range_db is not None:
            dr = float(self.dynamic_range_db)
            if not (math.isfinite(dr) and dr > 0):
                raise InvalidImageError(f"dynamic range must be a positive number of dB, got {dr}",
                                        src)
            self.dynamic_range_db = dr
        if self.elasto is not None:
            e = np.asarray(self.elasto, dtype=np.float32)
            if e.shape != b.shape:
                raise InvalidImageError(f"elastography shape {e.shape} differs from the B-mode "
                                        f"shape {b.shape}; register it first", src)
            if self.elasto_kind not in ELASTO_KINDS:
                raise InvalidImageError(f"elasto_kind must be one of {ELASTO_KINDS} when an "
                                        f"elastography map is given, got {self.elasto_kind!r}", src)
            valid = np.isfinite(e)
            if self.elasto_valid is not None:
                v = np.asarray(self.elasto_valid, dtype=bool)
                if v.shape != b.shape:
                    raise InvalidImageError(f"elastography validity mask shape {v.shape} differs "
                                            f"from the B-mode shape {b.shape}", src)
                valid &= v
            e = np.where(valid, e, np.float32(np.nan)).astype(np.float32)
            self.elasto, self.elasto_valid = e, valid
        elif self.elasto_valid is not None or self.elasto_kind is not None:
            self.elasto_valid, self.elasto_kind = None, None

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the B-mode image."""
        return self.bmode.shape  # type: ignore[return-value]

    def require_spacing(self, what: str = "this measure") -> tuple[float, float]:
        """Return ``(axial_mm, lateral_mm)``, or raise `SpacingRequiredError` naming `what`."""
        if self.spacing_mm is None:
            raise SpacingRequiredError(
                f"{what} needs the pixel spacing in mm, and this frame has none; give it with "
                "spacing=(axial_mm, lateral_mm) (recorded as a user calibration)",
                self.meta.source)
        return self.spacing_mm

    @property
    def extent_mm(self) -> tuple[float, float]:
        """``(depth_mm, width_mm)`` of the image."""
        ay, ax = self.require_spacing("the image extent")
        return self.shape[0] * ay, self.shape[1] * ax

    def with_spacing(self, spacing_mm: tuple[float, float], provenance: str = "user") -> "Frame":
        """A copy with the spacing replaced and its provenance recorded in the metadata."""
        meta = replace(self.meta, calibration=provenance,
                       extra={**self.meta.extra, "spacing_override": provenance == "user"})
        return replace(self, spacing_mm=tuple(spacing_mm), meta=meta)

    # ------------------------------------------------------------------ intensity models
    def envelope(self) -> np.ndarray:
        """The linear envelope (float32, >= 0), converting a display image through its dynamic
        range: ``env = 10 ** ((grey / 255 - 1) * DR / 20)`` (1 at grey 255).

        Raises `FilterInputError` for a display image whose dynamic range is unknown.
        """
        if self.intensity == "envelope":
            return self.bmode
        if self.dynamic_range_db is None:
            raise FilterInputError(
                "the linear envelope of a display image needs its dynamic range; give "
                "dynamic_range_db (dB mapped onto 0-255)", self.meta.source)
        return display_to_envelope(self.bmode, self.dynamic_range_db)

    @property
    def display_dynamic_range_db(self) -> float | None:
        """The dynamic range (dB) that maps `display` grey 0-255: an envelope frame's own range,
        else `DEFAULT_DYNAMIC_RANGE_DB` (its compression is then known exactly); a display frame's
        own range, or None when it is unknown."""
        if self.intensity == "envelope":
            return float(self.dynamic_range_db or DEFAULT_DYNAMIC_RANGE_DB)
        return self.dynamic_range_db

    def display(self, dynamic_range_db: float | None = None) -> np.ndarray:
        """Grey levels 0-255 (float32), shape (rows, cols): the one envelope-to-grey conversion
        every stage uses (the segmenters see what the scorer measures).

        A display image is returned as it is. An envelope image is log-compressed over
        `dynamic_range_db` (default `display_dynamic_range_db`: its own range, else
        `DEFAULT_DYNAMIC_RANGE_DB`) below its 99.9th percentile (`envelope_to_display`), so a
        few specular spots do not darken the whole frame."""
        if self.intensity == "display":
            return self.bmode
        return envelope_to_display(self.bmode, dynamic_range_db or self.display_dynamic_range_db)

    def as_display(self) -> "Frame":
        """This frame with ``intensity='display'``: `display` grey levels and the dynamic range
        that maps them (`display_dynamic_range_db`); spacing, elastography and metadata kept."""
        if self.intensity == "display":
            return self
        return replace(self, bmode=self.display(), intensity="display",
                       dynamic_range_db=self.display_dynamic_range_db)


def display_to_envelope(grey: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """Invert log compression: grey 0-255 over `dynamic_range_db` dB -> linear amplitude, max 1."""
    g = np.asarray(grey, dtype=np.float32)
    return np.power(np.float32(10.0), (g / np.float32(255.0) - 1) * np.float32(dynamic_range_db / 20)
                    ).astype(np.float32)


def envelope_to_display(env: np.ndarray, dynamic_range_db: float,
                        reference: float | None = None) -> np.ndarray:
    """Log-compress a linear envelope to grey 0-255 over `dynamic_range_db` dB below `reference`
    (default: the 99.9th percentile of `env`); values below the range clip to 0."""
    e = np.asarray(env, dtype=np.float64)
    ref = float(np.percentile(e, 99.9)) if reference is None else float(reference)
    ref = ref if ref > 0 else 1.0
    db = 20 * np.log10(np.maximum(e, ref * 1e-12) / ref)
    return np.clip((db / dynamic_range_db + 1) * 255.0, 0, 255).astype(np.float32)


class FrameSeries(Sequence):
    """A lazy, indexable sequence of frames from one source (a cine loop, a volume).

    Each frame is decoded only when asked for, so a long cine loop never sits in memory whole.

    Parameters
    ----------
    n : int
        Number of frames.
    load : callable(int) -> Frame
        Decodes frame ``i``.
    source : str, optional
        The file, for messages and ``repr``.
    """

    def __init__(self, n: int, load: Callable[[int], Frame], source: str | None = None):
        self._n = int(n)
        self._load = load
        self.source = source

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"frame {i} out of range for {self._n} frame(s) in {self.source}")
        return self._load(i)

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self._n):
            yield self._load(i)

    def __repr__(self) -> str:
        return f"FrameSeries({self._n} frame(s) from {self.source!r})"
