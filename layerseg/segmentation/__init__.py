"""Segmentation: segmenters that turn a frame into per-pixel class scores, all ending in the one
decode (`layerseg.layers.decode`): `segment` picks the segmenter, gets its scores and decodes
(`pipeline.segment_with`). Today the training-free classical segmenter (``model="classical"``);
trained MONAI/Lightning models come behind the same call. Never imports torch for the classical
model."""

from __future__ import annotations

from .classical import (SegmentationResult, classical_scores, frame_features, label_scores,
                        segment_classical)
from .config import default_config, load_config, thickness_limits_mm
from ..errors import ConfigError

__all__ = ["segment", "SegmentationResult", "segment_classical", "frame_features",
           "label_scores", "classical_scores", "load_config", "default_config", "thickness_limits_mm", "MODELS"]

MODELS = ("classical",)
"""Models `segment` can run now."""


def segment(frame, model: str = "classical", config=None, region: str | None = None,
            return_scores: bool = False, priors=None):
    """Segment a frame into the label map 0-7, ordered under its region's layer profile.

    Parameters
    ----------
    frame : layerseg.Frame
        B-mode frame with spacing (``frame.meta.region`` selects the profile).
    model : str
        ``"classical"`` (training-free; the only one available now).
    config : dict or path, optional
        Overrides of the classical segmenter's configuration (see `load_config`).
    region : str, optional
        Overrides ``frame.meta.region``.
    priors : dict or path, optional
        Overrides of the decode priors (``layerseg/data/decode_priors.json``: thickness limits per
        region, slope limit, per-column fallback, bone run-out), shared by every segmenter.
    return_scores : bool
        Return a `SegmentationResult` (labels, surfaces, profile, flags, scores) instead of the
        label map alone.

    Returns
    -------
    labels : ndarray of uint8, shape (rows, cols)
        Or a `SegmentationResult` when `return_scores`.

    Raises
    ------
    ConfigError
        A model other than ``classical`` (trained models are not yet available), or a malformed
        configuration.
    SpacingRequiredError, InvalidImageError
        See `segment_classical`.
    """
    if model != "classical":
        raise ConfigError(f"model {model!r} is not available: trained models are not yet "
                          f"available in this version of layerseg; use model='classical'")
    res = segment_classical(frame, config=config, region=region, return_scores=return_scores,
                            priors=priors)
    return res if return_scores else res.labels
