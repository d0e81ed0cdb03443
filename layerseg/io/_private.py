"""The DICOM private block in which the simulator's exam export records its colour bar exactly.

One owner for both sides: `layerseg.simulate.dicom_export` writes the block and
`layerseg.io.dicom` reads it; both import these constants from here. Dependency-free, so the
exporter can import it without pulling in a reader.
"""

from __future__ import annotations

__all__ = ["SIM_PRIVATE_GROUP", "SIM_PRIVATE_CREATOR"]

SIM_PRIVATE_GROUP = 0x0011
"""Odd (private) DICOM group of the block."""

SIM_PRIVATE_CREATOR = "LAYERSEG_SIM 1"
"""Private creator string reserving the block in `SIM_PRIVATE_GROUP` (elements 0x01-0x07: kind,
unit, LUT values and colours, view box; see `layerseg.simulate.dicom_export`)."""
