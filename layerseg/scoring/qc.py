"""Quality control of a scored frame: coverage, order violations under the region profile,
calibration provenance and segmentation confidence. A frame that fails is flagged
(``qc_pass`` False with every reason in ``qc_reason``) and still scored, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QCThresholds", "frame_qc", "confidence_summary"]


@dataclass(frozen=True)
class QCThresholds:
    """When a frame fails QC.

    Attributes
    ----------
    min_coverage : float
        Fewest share of image columns holding labelled tissue.
    max_order_violation_fraction : float
        Most share of labelled columns that may break the profile's layer order.
    min_confidence : float
        Lowest mean segmentation confidence (where the label source gives one).
    require_dermis : bool
        Fail a frame with no dermis (the skin is not labelled).
    """

    min_coverage: float = 0.8
    max_order_violation_fraction: float = 0.0
    min_confidence: float = 0.5
    require_dermis: bool = True


def confidence_summary(confidence, labels: np.ndarray) -> tuple[float | None, str | None]:
    """Mean segmentation confidence over the labelled pixels.

    Parameters
    ----------
    confidence : None, float, ndarray (rows, cols) or ndarray (classes, rows, cols)
        A scalar, a per-pixel confidence in [0, 1], or per-class probabilities (the maximum over
        classes is the pixel's confidence).
    labels : ndarray of int, shape (rows, cols)

    Returns
    -------
    (mean, reason)
    """
    if confidence is None:
        return None, "the label source gives no confidence"
    c = np.asarray(confidence, dtype=np.float64)
    if c.ndim == 0:
        v = float(c)
    else:
        if c.ndim == 3:
            c = c.max(axis=0)
        if c.shape != labels.shape:
            raise ValueError(f"confidence map shape {c.shape} differs from the label map shape "
                             f"{labels.shape}")
        m = labels > 0
        if not m.any():
            return None, "no labelled pixel"
        v = float(c[m].mean())
    if not np.isfinite(v) or v < 0 or v > 1:
        raise ValueError(f"confidence must lie in [0, 1], got mean {v}")
    return v, None


def frame_qc(*, n_cols: int, labelled_cols: np.ndarray, bad_cols: np.ndarray,
             spacing_mm, calibration: str | None, spacing_override: bool,
             confidence_mean: float | None, has_dermis: bool, profile_region: str,
             region_known: bool, thresholds: QCThresholds = QCThresholds(),
             image_problem: str | None = None, source_fails=None) -> dict:
    """QC fields of one frame.

    Parameters
    ----------
    n_cols : int
        Image width in columns.
    labelled_cols : ndarray of bool, shape (cols,)
        Columns holding at least one labelled pixel (in profile order).
    bad_cols : ndarray of bool, shape (cols,)
        Columns that break the profile's layer order.

    image_problem : str, optional
        Why the image itself cannot be measured (`layerseg.checks.contrast_problem`): a fail.
    source_fails : str or sequence of str, optional
        Fails named by the label source (a segmenter that did not understand the frame).

    Returns
    -------
    dict
        ``qc_pass``, ``qc_reason``, ``qc_coverage``, ``qc_order_violations`` (columns),
        ``qc_calibration`` (provenance, 'none' without spacing), ``qc_spacing_override``,
        ``qc_confidence``, ``qc_profile``, ``qc_notes``.
    """
    fails, notes = [], []
    n_lab = int(labelled_cols.sum()) + int(bad_cols.sum())
    coverage = float(labelled_cols.sum()) / n_cols
    n_bad = int(bad_cols.sum())
    if spacing_mm is None:
        fails.append("no pixel spacing: physical measures are empty")
    if coverage < thresholds.min_coverage:
        fails.append(f"labelled tissue in {coverage:.0%} of columns "
                     f"(need {thresholds.min_coverage:.0%})")
    if n_lab and n_bad / n_lab > thresholds.max_order_violation_fraction:
        fails.append(f"{n_bad} column(s) break the {profile_region} layer order (left out of the "
                     "measures)")
    if confidence_mean is not None and confidence_mean < thresholds.min_confidence:
        fails.append(f"mean segmentation confidence {confidence_mean:.2f} below "
                     f"{thresholds.min_confidence:g}")
    if image_problem:
        fails.append(image_problem)
    if source_fails:
        extra = [source_fails] if isinstance(source_fails, str) else list(source_fails)
        for why in extra:
            if not isinstance(why, str) or not why.strip():
                raise ValueError(f"a QC fail reason must be a non-empty string, got {why!r}")
        fails.extend(extra)
    if thresholds.require_dermis and not has_dermis:
        fails.append("no dermis labelled")
    if spacing_override:
        notes.append("spacing given by the user (calibration override)")
    if not region_known:
        notes.append("region unknown: default layer profile, no region-specific reference ranges")
    return {"qc_pass": not fails, "qc_reason": "; ".join(fails) or None,
            "qc_coverage": coverage, "qc_order_violations": n_bad,
            "qc_calibration": (calibration or "unknown") if spacing_mm is not None else "none",
            "qc_spacing_override": bool(spacing_override), "qc_confidence": confidence_mean,
            "qc_profile": profile_region, "qc_notes": "; ".join(notes) or None}
