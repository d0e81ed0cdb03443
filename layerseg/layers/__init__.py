"""Layers: the label map, region profiles, label map <-> surfaces, order checks, thickness and the
ordered search. The one home of the two forms of a segmentation (DESIGN.md)."""

from .profiles import (LABEL_INDEX, LABEL_NAMES, LABELS, N_LABELS, Profile, canonical_region,
                       get_profile, region_names, resolve_profile)
from .surfaces import (as_profile, check_spacing, check_surfaces, labels_to_surfaces,
                       layer_presence, order_violation_mask, order_violations, resample_surfaces,
                       smooth_surfaces, surfaces_to_labels)
from .search import SearchResult, labelling_score, ordered_search, search_limits_rows
from .thickness import thickness_normal_mm, thickness_vertical_mm
from .decode import SegmentationResult, decode, default_priors, load_priors

__all__ = ["LABELS", "LABEL_NAMES", "LABEL_INDEX", "N_LABELS", "Profile", "get_profile",
           "region_names", "canonical_region", "resolve_profile", "as_profile", "check_spacing", "check_surfaces",
           "labels_to_surfaces", "surfaces_to_labels", "resample_surfaces", "order_violations", "order_violation_mask",
           "smooth_surfaces", "layer_presence", "thickness_vertical_mm", "thickness_normal_mm",
           "SearchResult", "ordered_search", "search_limits_rows", "labelling_score",
           "SegmentationResult", "decode", "default_priors", "load_priors"]
