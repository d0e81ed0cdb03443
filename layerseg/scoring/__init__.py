"""Scoring: per-layer aging markers in physical units, reference ranges, QC and agreement
statistics. Never imports torch, MONAI or Lightning; takes labels from anyone.

- `score(frame, labels)` -> `FrameScores` (``.to_long()`` / ``.to_wide()``);
- `score_dataset(data_dir, out_csv, ...)`: a labelled dataset folder -> tables (the CLI's core);
- `agreement(table_a, table_b)`: Bland-Altman and ICC per marker.
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
