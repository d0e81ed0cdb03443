"""DICOM Sequence of Ultrasound Regions (C.8.5.5): parsing, unit conversion and layout choice.

Private helpers of `layerseg.io.dicom`. Region bounds in DICOM are inclusive pixel indices
(``RegionLocationMinX0 .. RegionLocationMaxX1`` columns, ``MinY0 .. MaxY1`` rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import CalibrationError

# RegionSpatialFormat (0018,6012)
SPATIAL_2D = 1
SPATIAL_NAMES = {0: "none", 1: "2D", 2: "M-mode", 3: "spectral", 4: "waveform", 5: "graphics"}

# RegionDataType (0018,6014)
DATA_TISSUE = 1
DATA_COLOUR_FLOW = 2
DATA_GREY_BAR = 13
DATA_COLOUR_BAR = 14
DATA_NAMES = {0: "none", 1: "tissue", 2: "colour flow", 3: "PW spectral Doppler",
              4: "CW spectral Doppler", 5: "Doppler mean trace", 6: "Doppler mode trace",
              7: "Doppler max trace", 8: "volume trace", 9: "d(volume)/dt trace",
              10: "ECG trace", 11: "pulse trace", 12: "phonocardiogram trace", 13: "grey bar",
              14: "colour bar", 15: "integrated backscatter", 16: "area trace",
              17: "d(area)/dt trace", 18: "other physiological input"}

# PhysicalUnitsX/YDirection (0018,6024 / 0018,6026): the complete list of codes in C.8.5.5.1.15
UNIT_NONE = 0
UNIT_PERCENT = 1
UNIT_CM = 3
UNIT_NAMES = {0: "none", 1: "percent", 2: "dB", 3: "cm", 4: "seconds", 5: "hertz",
              6: "dB/seconds", 7: "cm/sec", 8: "cm^2", 9: "cm^2/sec", 10: "cm^3",
              11: "cm^3/sec", 12: "degrees"}


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of the Sequence of Ultrasound Regions, with inclusive pixel bounds."""

    index: int
    spatial_format: int | None
    data_type: int | None
    x0: int | None
    y0: int | None
    x1: int | None
    y1: int | None
    units_x: int | None
    units_y: int | None
    delta_x: float | None
    delta_y: float | None
    ref_x0: int | None = None
    ref_y0: int | None = None
    ref_value_x: float | None = None
    ref_value_y: float | None = None
    frequency_khz: float | None = None

    @property
    def is_2d(self) -> bool:
        return self.spatial_format == SPATIAL_2D

    def describe(self) -> str:
        sf = SPATIAL_NAMES.get(self.spatial_format, f"format {self.spatial_format}")
        dt = DATA_NAMES.get(self.data_type, f"data type {self.data_type}")
        return (f"region {self.index} ({sf}, {dt}, columns {self.x0}-{self.x1}, "
                f"rows {self.y0}-{self.y1})")

    def check_bounds(self, rows: int, cols: int, path) -> None:
        """Raise `CalibrationError` unless the bounds lie inside a ``rows x cols`` image."""
        b = (self.x0, self.y0, self.x1, self.y1)
        if any(v is None for v in b):
            raise CalibrationError(f"ultrasound {self.describe()} lacks its "
                                   "RegionLocationMinX0/MinY0/MaxX1/MaxY1 bounds", path)
        x0, y0, x1, y1 = b
        if not (0 <= x0 <= x1 < cols and 0 <= y0 <= y1 < rows):
            raise CalibrationError(
                f"ultrasound {self.describe()} falls outside the {rows} x {cols} pixel image "
                "(the file was probably resized or cropped after export, so its calibration no "
                "longer applies); pass spacing=(axial_mm, lateral_mm) to read it anyway", path)
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise CalibrationError(f"ultrasound {self.describe()} is smaller than 2 x 2 pixels",
                                   path)

    def box(self) -> tuple[slice, slice]:
        """``(row_slice, col_slice)`` of the region (bounds made exclusive)."""
        return slice(self.y0, self.y1 + 1), slice(self.x0, self.x1 + 1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0 + 1, self.x1 - self.x0 + 1

    def spacing_mm(self, path) -> tuple[float, float]:
        """``(axial_mm, lateral_mm)`` from PhysicalDeltaY/X; only centimetres are spatial."""
        for axis, unit, delta in (("Y", self.units_y, self.delta_y),
                                  ("X", self.units_x, self.delta_x)):
            if unit is None or delta is None:
                raise CalibrationError(f"ultrasound {self.describe()} lacks PhysicalUnits{axis}"
                                       f"Direction or PhysicalDelta{axis}", path)
            if unit != UNIT_CM:
                name = UNIT_NAMES.get(unit, f"unknown code {unit}")
                raise CalibrationError(
                    f"ultrasound {self.describe()} states PhysicalUnits{axis}Direction = {unit} "
                    f"({name}); a tissue image needs centimetres (3) to give a spacing in mm",
                    path)
            if not (math.isfinite(delta) and delta > 0):
                raise CalibrationError(f"ultrasound {self.describe()} has PhysicalDelta{axis} = "
                                       f"{delta}; it must be a positive number of cm", path)
        return abs(self.delta_y) * 10.0, abs(self.delta_x) * 10.0


def _num(item, keyword, kind=float):
    v = item.get(keyword)
    if v is None or v == "":
        return None
    try:
        return kind(v)
    except (TypeError, ValueError):
        return None


def parse_regions(ds) -> list[UltrasoundRegion]:
    """All items of ``ds.SequenceOfUltrasoundRegions`` (empty list when absent)."""
    seq = ds.get("SequenceOfUltrasoundRegions")
    if not seq:
        return []
    out = []
    for i, it in enumerate(seq):
        out.append(UltrasoundRegion(
            index=i,
            spatial_format=_num(it, "RegionSpatialFormat", int),
            data_type=_num(it, "RegionDataType", int),
            x0=_num(it, "RegionLocationMinX0", int), y0=_num(it, "RegionLocationMinY0", int),
            x1=_num(it, "RegionLocationMaxX1", int), y1=_num(it, "RegionLocationMaxY1", int),
            units_x=_num(it, "PhysicalUnitsXDirection", int),
            units_y=_num(it, "PhysicalUnitsYDirection", int),
            delta_x=_num(it, "PhysicalDeltaX"), delta_y=_num(it, "PhysicalDeltaY"),
            ref_x0=_num(it, "ReferencePixelX0", int), ref_y0=_num(it, "ReferencePixelY0", int),
            ref_value_x=_num(it, "ReferencePixelPhysicalValueX"),
            ref_value_y=_num(it, "ReferencePixelPhysicalValueY"),
            frequency_khz=_num(it, "TransducerFrequency"),
        ))
    return out


def physical_origin_mm(region: UltrasoundRegion, spacing_mm: tuple[float, float]
                       ) -> tuple[float, float]:
    """Physical ``(y_mm, x_mm)`` of the region's top-left pixel.

    Uses the reference pixel (relative to the region's top-left) and its physical value where the
    header gives them; otherwise the region's top-left pixel is taken as the physical origin (the
    convention of side-by-side views that show the same field).
    """
    ay, ax = spacing_mm
    if region.ref_x0 is None or region.ref_y0 is None:
        return 0.0, 0.0
    vy = (region.ref_value_y or 0.0) * 10.0
    vx = (region.ref_value_x or 0.0) * 10.0
    return vy - region.ref_y0 * ay, vx - region.ref_x0 * ax
