"""Layers: the label map, region profiles, label map <-> surfaces, order checks, thickness and the
ordered search. The one home of the two forms of a segmentation (DESIGN.md)."""

from .profiles import (LABEL_INDEX, LABEL_NAMES, LABELS, N_LABELS, Profile, canonical_region,
                       get_profile, region_names)

__all__ = ["LABELS", "LABEL_NAMES", "LABEL_INDEX", "N_LABELS", "Profile", "get_profile",
           "region_names", "canonical_region"]
