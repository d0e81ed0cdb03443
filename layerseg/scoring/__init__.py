"""Scoring: per-layer aging markers in physical units, reference ranges, QC and agreement
statistics. Never imports torch, MONAI or Lightning; takes labels from anyone.

- `score(frame, labels)` -> `FrameScores` (``.to_long()`` / ``.to_wide()``);
- `score_dataset(data_dir, out_csv, ...)`: a labelled dataset folder -> tables (the CLI's core);
- `agreement(table_a, table_b)`: Bland-Altman and ICC per marker.

Tables (`FrameScores.to_long` / ``to_wide``; ``layerseg score`` writes the same):

- long: one row per frame and present layer: ``id``, ``subject_id``, ``region``, ``sex``, ``age``,
  ``layer``; thickness along the normal (``thickness_mean_mm``, ``_median_mm``, ``_sd_mm``,
  ``_p05_mm``, ``_p95_mm``; ``thickness_vertical_mean_mm``; ``thickness_truncated`` where the layer
  reaches the image bottom or begins in its top row), ``area_mm2``, ``coverage_fraction`` (SMAS
  continuity for the SMAS), ``depth_mm`` (below the skin surface; bone surface depth for bone), echogenicity
  (``echo_mean_db``/``echo_median_db`` only where the log compression is known, always
  ``echo_mean_grey``/``echo_median_grey``, ``echo_ratio_to_dermis``, ``low_echo_fraction``,
  ``echo_cv``), GLCM texture (``glcm_contrast``, ``_homogeneity``, ``_energy``, ``_correlation``),
  roughness of the layer's lower surface (``roughness_ra_um``, ``roughness_rq_um`` with
  ``roughness_cutoff_mm`` and ``roughness_short_cutoff_mm``), elastography over valid pixels
  (``stiffness_median_kpa`` ... or ``strain_mean``, ``strain_ratio``;
  ``elasto_below_resolution``), reference z-scores (``<marker>_z``, ``<marker>_ref``), and QC.
- wide: one row per frame: frame-level markers (``skin_thickness_mean_mm``, SLEB
  ``sleb_present``/``sleb_thickness_mm``/``sleb_fraction_of_dermis``,
  ``dermis_echo_ratio_upper_lower``, ``fat_septa_per_mm``, ``aging_profile``,
  ``composite_index``), QC, and ``<layer>_<measure>`` for all seven layers (so deep fat
  thickness is ``deep_fat_thickness_mean_mm``, muscle echo ``muscle_echo_mean_db``...).

An empty measure is an empty cell with its reason in the ``*_reason`` column of its group, never
0 or a silent NaN. A frame failing QC is scored and flagged (``qc_pass`` False, ``qc_reason``); a
frame that cannot be scored has ``frame_status`` 'failed' and ``frame_reason``. The composite index
exists only with an explicit weighting (``composite_weights``; see `composite_index`).
"""

from .agreement import agreement, bland_altman
from .batch import score_dataset, score_items
from .markers import ScoreOptions, score
from .qc import QCThresholds
from .reference import (ReferenceRanges, aging_profile, composite_index, load_reference_ranges)
from .roughness import roughness_ra_rq
from .table import FRAME_COLUMNS, LAYER_COLUMNS, FrameScores, write_table

__all__ = ["score", "score_dataset", "score_items", "agreement", "bland_altman", "FrameScores",
           "ScoreOptions", "QCThresholds", "ReferenceRanges", "load_reference_ranges",
           "aging_profile", "composite_index", "roughness_ra_rq", "write_table",
           "LAYER_COLUMNS", "FRAME_COLUMNS"]
