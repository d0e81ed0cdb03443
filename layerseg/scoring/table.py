"""`FrameScores` (the result of `layerseg.score`) and the long / wide tables and their writers.

Long form: one row per frame and present layer, the per-layer measures (``LAYER_COLUMNS``).
Wide form: one row per frame: the frame-level markers (SLEB, dermis upper/lower ratio, septa,
skin thickness, aging profile, QC) and every per-layer measure as ``<layer>_<measure>`` for all seven
layers of the label map (``<layer>_present`` False, measures empty, where a layer is absent), so a
wide table has the same columns for every frame and region.

Empty measures are None (written as empty cells) with their reason in the matching ``*_reason``
column; no measure is ever 0 or NaN for "could not compute".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..layers.profiles import LABEL_NAMES
from .echo import GLCM_PROPS

__all__ = ["FrameScores", "LAYER_COLUMNS", "FRAME_COLUMNS", "KEY_COLUMNS", "failed_scores",
           "write_table", "REFERENCE_LAYER_MARKERS"]

KEY_COLUMNS = ("id", "subject_id", "region", "sex", "age")
"""Frame keys carried into every table (pseudonymous; no patient identifiers, no file paths)."""

REFERENCE_LAYER_MARKERS = ("thickness_mean_mm", "stiffness_median_kpa")
"""Per-layer markers that get ``<marker>_z`` / ``<marker>_ref`` columns (the markers the reference
file can hold for a layer)."""

LAYER_COLUMNS = (
    "thickness_mean_mm", "thickness_median_mm", "thickness_sd_mm", "thickness_p05_mm",
    "thickness_p95_mm", "thickness_vertical_mean_mm", "thickness_columns", "thickness_truncated",
    "thickness_reason",
    "area_mm2", "area_reason", "coverage_fraction", "depth_mm", "depth_reason",
    "echo_mean_db", "echo_median_db", "echo_db_reason", "echo_mean_grey", "echo_median_grey",
    "echo_ratio_to_dermis", "low_echo_fraction", "echo_cv", "echo_reason",
    *(f"glcm_{p}" for p in GLCM_PROPS), "glcm_distance_mm", "glcm_reason",
    "roughness_ra_um", "roughness_rq_um", "roughness_cutoff_mm", "roughness_short_cutoff_mm",
    "roughness_length_mm", "roughness_reason",
    "stiffness_median_kpa", "stiffness_mean_kpa", "stiffness_iqr_kpa", "strain_mean",
    "strain_median", "strain_ratio", "elasto_valid_fraction", "elasto_below_resolution",
    "stiffness_reason", "strain_reason",
    *(c for m in REFERENCE_LAYER_MARKERS for c in (f"{m}_z", f"{m}_ref")), "reference_reason",
)
"""Per-layer measure columns, in table order."""

QC_COLUMNS = ("frame_status", "frame_reason", "qc_pass", "qc_reason", "qc_coverage",
              "qc_order_violations", "qc_calibration", "qc_spacing_override", "qc_confidence",
              "qc_profile", "qc_notes")

FRAME_COLUMNS = (
    "skin_thickness_mean_mm", "skin_thickness_reason", "skin_thickness_mean_mm_z",
    "skin_thickness_mean_mm_ref", "skin_reference_reason",
    "sleb_present", "sleb_thickness_mm", "sleb_fraction_of_dermis", "sleb_coverage",
    "sleb_reason", "dermis_echo_ratio_upper_lower", "dermis_echo_ratio_reason",
    "fat_septa_per_mm", "fat_septa_per_mm2", "fat_septa_count", "fat_septa_width_mm",
    "fat_septa_reason",
    "aging_profile", "markers_outside_range", "markers_with_reference", "composite_index",
    "composite_index_reason", *QC_COLUMNS,
)
"""Frame-level columns of the wide form, in table order."""


@dataclass
class FrameScores:
    """Aging markers of one frame.

    Attributes
    ----------
    id : str or None
        Frame key.
    keys : dict
        ``subject_id``, ``region``, ``sex``, ``age`` (pseudonymous).
    layers : list of dict
        One dict per present layer: ``layer`` plus the `LAYER_COLUMNS` measures.
    frame : dict
        Frame-level markers and QC (`FRAME_COLUMNS`).
    arrays : dict
        Per-column results behind the summaries (not written to the tables): ``profile`` (layer
        names, profile order), ``present`` ((K, cols) bool, the layer's own columns),
        ``surfaces_rows`` ((K+1, cols) surfaces measured, float64) and
        ``thickness_normal_mm`` ((K, cols), NaN where a layer is absent or the measure is
        undefined); empty without spacing.
    """

    id: str | None
    keys: dict = field(default_factory=dict)
    layers: list = field(default_factory=list)
    frame: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict, repr=False)

    @property
    def qc_pass(self) -> bool:
        """Whether the frame passed QC."""
        return bool(self.frame.get("qc_pass"))

    @property
    def failed(self) -> bool:
        """Whether the frame could not be scored at all."""
        return self.frame.get("frame_status") == "failed"

    def _key_row(self) -> dict:
        return {"id": self.id, **{k: self.keys.get(k) for k in KEY_COLUMNS[1:]}}

    def to_long(self) -> pd.DataFrame:
        """Long form: one row per present layer (a failed frame: one row, layer empty), with the
        frame keys and QC columns repeated."""
        qc = {k: self.frame.get(k) for k in QC_COLUMNS}
        base = self._key_row()
        rows = [{**base, "layer": r["layer"], **{c: r.get(c) for c in LAYER_COLUMNS}, **qc}
                for r in self.layers]
        if not rows:
            rows = [{**base, "layer": None, **{c: None for c in LAYER_COLUMNS}, **qc}]
        cols = [*KEY_COLUMNS, "layer", *LAYER_COLUMNS, *QC_COLUMNS]
        return tidy_dtypes(pd.DataFrame(rows, columns=cols))

    def to_wide(self) -> pd.DataFrame:
        """Wide form: one row, frame-level markers then ``<layer>_<measure>`` for every layer of
        the label map."""
        row = self._key_row()
        row.update({c: self.frame.get(c) for c in FRAME_COLUMNS})
        by_layer = {r["layer"]: r for r in self.layers}
        for name in LABEL_NAMES[1:]:
            r = by_layer.get(name)
            row[f"{name}_present"] = None if self.failed else r is not None
            for c in LAYER_COLUMNS:
                row[f"{name}_{c}"] = None if r is None else r.get(c)
        return tidy_dtypes(pd.DataFrame([row]))


def failed_scores(frame_id: str | None, reason: str, keys: dict | None = None) -> FrameScores:
    """The `FrameScores` of a frame that could not be scored at all (status 'failed')."""
    frame = {c: None for c in FRAME_COLUMNS}
    frame.update(frame_status="failed", frame_reason=reason, qc_pass=False,
                 qc_reason=f"not scored: {reason}")
    return FrameScores(frame_id, dict(keys or {}), [], frame)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


_COUNT_COLUMNS = ("thickness_columns", "qc_order_violations", "fat_septa_count",
                  "markers_outside_range", "markers_with_reference")


def tidy_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding only numbers (and empties) become float64, only booleans become
    pandas ``boolean``, counts nullable ``Int64``; empties stay missing (never 0)."""
    out = df.copy()
    for c in out.columns:
        if c.endswith(_COUNT_COLUMNS):
            num = pd.to_numeric(out[c], errors="coerce")
            if num.notna().sum() == out[c].notna().sum():
                out[c] = num.round().astype("Int64")
    for c in out.columns:
        if out[c].dtype != object:
            continue
        vals = out[c].dropna()
        if len(vals) == 0:
            continue
        if all(isinstance(v, (bool, np.bool_)) for v in vals):
            out[c] = out[c].astype("boolean")
        elif all(_is_number(v) for v in vals):
            out[c] = pd.to_numeric(out[c]).astype("float64") if any(
                isinstance(v, (float, np.floating)) for v in vals) else out[c].astype("Int64")
    return out


def _clean_for_arrow(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            vals = out[c].dropna()
            if len(vals) and all(isinstance(v, bool) for v in vals):
                out[c] = out[c].astype("boolean")
            elif len(vals) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                   for v in vals):
                out[c] = pd.to_numeric(out[c])
            elif len(vals):
                out[c] = out[c].astype("string")
            else:
                out[c] = out[c].astype("string")
    return out


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a score table as CSV (``.csv``) or Parquet (``.parquet``/``.pq``, pyarrow).

    Empty measures are written as empty CSV cells / Parquet nulls. The file is written
    atomically (`layerseg.io.safe_write.atomic_write`): an existing file is replaced whole or
    not at all.
    """
    from ..io.safe_write import atomic_write
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        with atomic_write(p, "wb") as f:
            _clean_for_arrow(df).to_parquet(f, engine="pyarrow", index=False)
    else:
        with atomic_write(p, "w", newline="", encoding="utf-8") as f:
            df.to_csv(f, index=False)
    return p
