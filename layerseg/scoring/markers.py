"""`score`: the per-layer aging markers of one labelled frame, in physical units, with QC.

Labels come from anyone (a model, the classical segmenter, hand annotation); scoring never imports
a model. Thickness is measured by `layerseg.layers` (along the local normal of the layer's top
surface); everything else is computed here from the label map, the frame's B-mode, spacing and
elastography.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..checks import check_label_map, contrast_problem
from ..frame import Frame
from ..layers import LABEL_INDEX
from ..layers.profiles import resolve_profile
from ..layers.surfaces import check_surfaces, labels_to_surfaces, layer_presence, smooth_surfaces
from ..layers.thickness import thickness_normal_mm, thickness_vertical_mm
from .echo import LOW_ECHO_THRESHOLD_GREY, display_grey, echo_stats, frame_dynamic_range_db, \
    glcm_features
from .layer_markers import SEPTA_DEFAULTS, SLEB_DEFAULTS, dermis_upper_lower_ratio, \
    fat_septa_density, sleb_markers
from .qc import QCThresholds, confidence_summary, frame_qc
from .reference import Z_LIMIT, ReferenceRanges, composite_index, load_reference_ranges
from .roughness import ROUGHNESS_CUTOFF_MM, roughness_ra_rq
from .stiffness import ELASTO_RESOLUTION_MM, MIN_ELASTO_PIXELS, elasto_stats
from .table import REFERENCE_LAYER_MARKERS, FrameScores

__all__ = ["score", "ScoreOptions"]


@dataclass
class ScoreOptions:
    """Every tunable of `score` in one place (also accepted as keyword arguments of `score`).

    Attributes
    ----------
    roughness_cutoff_mm : float
        Long-wavelength cutoff of the roughness filter (mm), reported in ``roughness_cutoff_mm``.
    roughness_short_cutoff_mm : float or None
        Short-wavelength cutoff (mm); None = two lateral pixels.
    low_echo_threshold : float
        Grey level (0-255) under which a pixel is low-echogenic.
    reference_layer : str
        Layer whose mean strain is the strain-ratio reference.
    elasto_resolution_mm : float
        Elastography resolution; thinner layers are flagged.
    min_elasto_pixels : int
        Fewest valid elastography pixels per layer.
    surface_smooth_mm : float
        Gaussian SD (mm, along the width) of the smoothing that turns the label map's whole-row
        surfaces into sub-pixel surfaces for thickness (`layerseg.layers.smooth_surfaces`);
        without it the normal of a staircase surface jitters and inflates the thickness. Not
        applied to surfaces given by the caller, nor to roughness (see `roughness`).
    glcm_distance_mm : float
        Co-occurrence pixel-pair offset (mm).
    glcm_levels : int
        Grey bins for the co-occurrence matrix.
    sleb, septa : dict
        Overrides of `SLEB_DEFAULTS` / `SEPTA_DEFAULTS`.
    reference_ranges : ReferenceRanges, path, None or False
        Reference ranges (None: the packaged file; False: no z-scores).
    z_limit : float
        |z| above which a marker is outside its range.
    composite_weights : dict or None
        ``{"<layer>:<marker>": weight}``; a composite index is computed only when given.
    qc : QCThresholds
    """

    roughness_cutoff_mm: float = ROUGHNESS_CUTOFF_MM
    roughness_short_cutoff_mm: float | None = None
    low_echo_threshold: float = LOW_ECHO_THRESHOLD_GREY
    reference_layer: str = "fat"
    elasto_resolution_mm: float = ELASTO_RESOLUTION_MM
    min_elasto_pixels: int = MIN_ELASTO_PIXELS
    surface_smooth_mm: float = 0.1
    glcm_distance_mm: float = 0.1
    glcm_levels: int = 32
    sleb: dict = field(default_factory=dict)
    septa: dict = field(default_factory=dict)
    reference_ranges: object = None
    z_limit: float = Z_LIMIT
    composite_weights: dict | None = None
    qc: QCThresholds = field(default_factory=QCThresholds)


def _check_labels(labels, frame: Frame, name: str) -> np.ndarray:
    return check_label_map(labels, frame.shape, source=frame.meta.source,
                           what=f"frame {name}: label map", dtype=np.uint8)


def _stats(t: np.ndarray) -> dict:
    v = t[np.isfinite(t)]
    return {"thickness_mean_mm": float(v.mean()), "thickness_median_mm": float(np.median(v)),
            "thickness_sd_mm": float(v.std(ddof=1)) if v.size > 1 else None,
            "thickness_p05_mm": float(np.percentile(v, 5)),
            "thickness_p95_mm": float(np.percentile(v, 95)), "thickness_columns": int(v.size)}


TOP_EDGE_ROWS = 0.5
"""A layer whose top surface lies at or above this depth (rows: the centre of the first row)
holds the image's top row: nothing above it is in view, so the image may cut it
(``thickness_truncated``). Sub-pixel surfaces between 0.5 and 1 leave the first row's centre
in the gel above."""

TOP_EDGE_NOTE_FRACTION = 0.1
"""Share of the labelled columns whose skin begins in the top row above which a frame gets a
QC note."""


def _top_edge_note(S: np.ndarray, labelled_cols: np.ndarray) -> str | None:
    """The QC note of a frame whose skin (the first labelled surface) begins in the top row in
    more than `TOP_EDGE_NOTE_FRACTION` of its labelled columns; None otherwise."""
    n = int(labelled_cols.sum())
    if not n:
        return None
    cut = float(np.mean(S[0][labelled_cols] <= TOP_EDGE_ROWS))
    if cut <= TOP_EDGE_NOTE_FRACTION:
        return None
    return (f"skin at the image's top edge in {cut:.0%} of columns (no gel or stand-off above "
            "it): the entry echo and the layers under it may be cut off there, their thickness "
            "a lower bound (thickness_truncated)")


SATURATED_NOTE_FRACTION = 0.1
"""Share of the dermis's pixels at the display's top grey level above which a frame gets a QC
note (the gain drove the dermis into saturation: its echogenicity is clipped)."""


def _saturation_note(grey: np.ndarray, dermis: np.ndarray) -> str | None:
    """The QC note of a frame whose dermis is saturated: more than `SATURATED_NOTE_FRACTION`
    of its pixels at the top grey level (255 on the display scale); None otherwise."""
    if not dermis.any():
        return None
    top = float(np.mean(grey[dermis] >= 254.5))
    if top <= SATURATED_NOTE_FRACTION:
        return None
    return (f"dermis saturated: {top:.0%} of its pixels at the display's top grey level (gain "
            "too high?); its echogenicity, low-echo band and the echo ratios to it are clipped")


def score(frame: Frame, labels, *, region: str | None = None, frame_id: str | None = None,
          sex=None, age=None, subject_id: str | None = None, confidence=None, surfaces=None,
          qc_fail=None, options: ScoreOptions | None = None, **kwargs) -> FrameScores:
    """Per-layer aging markers of one labelled frame.

    Parameters
    ----------
    frame : Frame
        B-mode with spacing (mm), optional elastography and dynamic range.
    labels : ndarray of int, shape (rows, cols)
        Label map 0-7 (DESIGN.md), same shape as the frame.
    region : str, optional
        Facial region (selects the layer profile and reference ranges); default the frame's.
    frame_id : str, optional
        Frame key for the tables and messages (default: the dataset id in the frame's metadata).
    sex, age : optional
        For reference ranges ('M'/'F', years).
    subject_id : str, optional
        Pseudonymous subject key, carried into the tables.
    confidence : float or ndarray, optional
        Segmentation confidence: a scalar, a (rows, cols) map or (classes, rows, cols)
        probabilities.
    surfaces : ndarray of float, shape (K+1, cols), optional
        Sub-pixel surfaces of the same segmentation (e.g. from the ordered search); used for
        thickness and roughness instead of the label map's whole-row surfaces.
    qc_fail : str or sequence of str, optional
        Reasons from the label source for which the frame fails QC, each added to
        ``qc_reason``: the segmenter's flag that it did not understand the frame
        (`layerseg.layers.SegmentationResult.uncertain`). The frame is still scored.
    options : ScoreOptions, optional
        Tunables; keyword arguments with `ScoreOptions` field names override them
        (``roughness_cutoff_mm=``, ``low_echo_threshold=``, ``reference_layer=``...).

    Returns
    -------
    FrameScores
        ``.layers`` one dict per present layer, ``.frame`` the frame-level markers and QC;
        ``.to_long()`` / ``.to_wide()`` give DataFrames.

    Raises
    ------
    InvalidImageError
        Labels of another shape than the image, or not integers 0-7 (the message names the frame).
    ProfileError
        `surfaces` that do not fit the profile.

    Notes
    -----
    Thickness is `layerseg.layers.thickness_normal_mm` (along the normal of the layer's top
    surface), summarised over the columns where the layer is present. ``area_mm2`` counts the
    layer's pixels. ``depth_mm`` is the mean vertical depth of the layer's top below the skin
    surface (the first labelled surface); for bone it is the bone surface depth (bone has no
    thickness or area: its label is the periosteal line and the shadow under it).
    ``thickness_truncated`` is True where the layer reaches the image bottom, or begins in the
    image's top row, in some column (its thickness there is a lower bound: the image cuts it).
    A frame whose skin begins in the top row in more than `TOP_EDGE_NOTE_FRACTION` of the
    labelled columns gets a QC note (no gel or stand-off above the skin), and so does one whose
    dermis is saturated (more than `SATURATED_NOTE_FRACTION` of its pixels at grey 255).
    ``coverage_fraction`` is the share of labelled columns where the layer is present (SMAS
    continuity for the SMAS). Columns that break the profile's layer order are left out of every
    measure and counted in ``qc_order_violations``.
    """
    if not isinstance(frame, Frame):
        raise TypeError(f"frame must be a layerseg.Frame, got {type(frame).__name__}")
    opt = options or ScoreOptions()
    if kwargs:
        unknown = [k for k in kwargs if not hasattr(opt, k)]
        if unknown:
            raise TypeError(f"score() got unknown option(s) {unknown}")
        opt = ScoreOptions(**{**opt.__dict__, **kwargs})
    name = frame_id or frame.meta.extra.get("dataset_id") or frame.meta.source or "<frame>"
    lab = _check_labels(labels, frame, name)
    region = region if region is not None else frame.meta.region
    prof, region_note = resolve_profile(region)
    region_known = region is not None and str(region).strip() != "" and region_note is None
    n_rows, n_cols = lab.shape

    # ---- surfaces; columns out of profile order are left out of every measure
    s_lab = labels_to_surfaces(lab, prof, strict=False)
    bad = ~np.isfinite(s_lab[0])
    lab_ok = lab.copy()
    lab_ok[:, bad] = 0
    s_lab[:, bad] = n_rows
    if surfaces is not None:
        S = check_surfaces(surfaces, prof, n_rows).copy()
        S[:, bad] = n_rows
    else:
        S = s_lab
    present = layer_presence(S)                       # (K, cols)
    labelled_cols = S[-1] > S[0]
    spacing = frame.spacing_mm

    grey = display_grey(frame)
    dr = frame_dynamic_range_db(frame)
    masks = {name_: lab_ok == LABEL_INDEX[name_] for name_ in prof.layers}
    dermis_mean = float(grey[masks["dermis"]].mean()) if masks["dermis"].any() else None

    if spacing is not None:
        # sub-pixel surfaces for thickness: smoothed whole-row surfaces, or the caller's own
        S_t = S if surfaces is not None else smooth_surfaces(S, opt.surface_smooth_mm, spacing)
        t_norm = thickness_normal_mm(S_t, spacing)
        # smoothing spreads a layer into the columns next to its ends: keep its own columns only
        t_norm[~present] = np.nan
        t_vert = thickness_vertical_mm(S, spacing)
    ref_strain = None
    if frame.elasto is not None and frame.elasto_kind == "strain" and \
            opt.reference_layer in masks:
        m = masks[opt.reference_layer] & frame.elasto_valid
        if m.sum() >= opt.min_elasto_pixels:
            ref_strain = float(frame.elasto[m].mean())

    no_sp = "no pixel spacing"
    rows = []
    for k, lname in enumerate(prof.layers):
        mask = masks[lname]
        pres = present[k]
        if not (pres.any() or mask.any()):
            continue
        r = {"layer": lname}
        n_lab = int(labelled_cols.sum())
        r["coverage_fraction"] = float(pres[labelled_cols].mean()) if n_lab else None
        if spacing is None:
            r.update(thickness_reason=no_sp, area_reason=no_sp, depth_reason=no_sp)
        else:
            ay, ax = spacing
            t = t_norm[k]
            r["thickness_truncated"] = bool(np.any(pres & ((S[k + 1] >= n_rows)
                                                           | (S[k] <= TOP_EDGE_ROWS))))
            if lname == "bone":
                r["thickness_reason"] = r["area_reason"] = (
                    "bone is the periosteal line and its acoustic shadow: no thickness or area "
                    "(see depth_mm, the bone surface depth)")
                r["thickness_truncated"] = None
            elif np.isfinite(t).any():
                r.update(_stats(t))
                if r["thickness_sd_mm"] is None:
                    r["thickness_reason"] = "thickness_sd_mm: the layer spans one column"
            else:
                r["thickness_reason"] = ("thickness along the normal undefined in every column "
                                         "(the normal leaves the image before the bottom surface)")
            tv = t_vert[k]
            if np.isfinite(tv).any() and lname != "bone":
                r["thickness_vertical_mean_mm"] = float(np.nanmean(tv))
            if lname != "bone":
                r["area_mm2"] = float(mask.sum() * ay * ax)
            r["depth_mm"] = float(np.mean((S[k, pres] - S[0, pres]) * ay)) if pres.any() else None
            if r["depth_mm"] is None:
                r["depth_reason"] = "layer present in no column"
        r.update(echo_stats(grey, mask, dynamic_range_db=dr, dermis_mean_grey=dermis_mean,
                            low_echo_threshold=opt.low_echo_threshold))
        r.update(glcm_features(grey, mask, spacing, distance_mm=opt.glcm_distance_mm,
                               levels=opt.glcm_levels))
        # roughness of the layer's lower surface, where it is a real boundary (not the image end)
        if spacing is None:
            r.update(roughness_reason=no_sp)
        else:
            lower = S[k + 1]
            valid = pres & (lower < n_rows)
            if lname == "bone":
                r.update(roughness_reason="bone has no lower boundary (acoustic shadow)")
            elif not valid.any():
                r.update(roughness_reason="the layer's lower surface lies at the image bottom")
            else:
                r.update(roughness_ra_rq(lower, spacing, valid, cutoff_mm=opt.roughness_cutoff_mm,
                                         short_cutoff_mm=opt.roughness_short_cutoff_mm))
        r.update(elasto_stats(frame.elasto, frame.elasto_valid, frame.elasto_kind, mask,
                              thickness_median_mm=r.get("thickness_median_mm"),
                              resolution_mm=opt.elasto_resolution_mm,
                              reference_strain_mean=ref_strain,
                              reference_layer=opt.reference_layer,
                              min_pixels=opt.min_elasto_pixels))
        rows.append(r)

    fr: dict = {}
    # ---- frame-level markers
    if spacing is None:
        fr["skin_thickness_reason"] = no_sp
    else:
        ke, kd = prof.position("epidermis"), prof.position("dermis")
        if kd == ke + 1 and present[kd].any():
            skin = thickness_normal_mm(S_t[[ke, kd + 1]], spacing)[0]
            skin = skin[present[kd] & np.isfinite(skin)]
            if skin.size:
                fr["skin_thickness_mean_mm"] = float(skin.mean())
            else:
                fr["skin_thickness_reason"] = "skin thickness along the normal undefined"
        else:
            fr["skin_thickness_reason"] = "no dermis"
    fr.update(sleb_markers(grey, lab_ok, spacing, **{**SLEB_DEFAULTS, **opt.sleb}))
    fr.update(dermis_upper_lower_ratio(grey, lab_ok))
    fr.update(fat_septa_density(grey, lab_ok, spacing, **{**SEPTA_DEFAULTS, **opt.septa}))

    # ---- reference ranges, aging profile, composite
    refs = opt.reference_ranges
    if refs is not False:
        refs = refs if isinstance(refs, ReferenceRanges) else load_reference_ranges(refs)
        _apply_references(rows, fr, refs, region, sex, age, opt)
    else:
        for r in rows:
            r["reference_reason"] = "reference ranges switched off"
        fr["skin_reference_reason"] = "reference ranges switched off"

    # ---- QC
    conf, conf_reason = confidence_summary(confidence, lab_ok)
    fr.update(frame_qc(n_cols=n_cols, labelled_cols=labelled_cols, bad_cols=bad, spacing_mm=spacing,
                       calibration=frame.meta.calibration,
                       spacing_override=bool(frame.meta.extra.get("spacing_override")),
                       confidence_mean=conf, has_dermis=bool(masks["dermis"].any()),
                       profile_region=prof.region, region_known=region_known, thresholds=opt.qc,
                       image_problem=contrast_problem(grey), source_fails=qc_fail))
    reader_notes = frame.meta.extra.get("reader_notes") or []
    for extra in (*reader_notes, _top_edge_note(S, labelled_cols),
                  _saturation_note(grey, masks["dermis"])):
        if extra:
            fr["qc_notes"] = "; ".join(x for x in (fr.get("qc_notes"), extra) if x)
    if conf_reason and confidence is not None:
        fr["qc_notes"] = "; ".join(x for x in (fr.get("qc_notes"), conf_reason) if x)
    fr["frame_status"] = "scored" if rows else "failed"
    if not rows:
        fr["frame_reason"] = "no labelled layer in the frame"
        fr["qc_pass"] = False
        fr["qc_reason"] = "; ".join(x for x in (fr.get("qc_reason"), "no labelled layer") if x)
    keys = {"subject_id": subject_id, "region": region, "sex": sex,
            "age": None if age is None or (isinstance(age, float) and math.isnan(age)) else age}
    arrays = {"profile": prof.layers, "present": present}
    if spacing is not None:
        arrays.update(surfaces_rows=S_t, thickness_normal_mm=t_norm)
    return FrameScores(frame_id or frame.meta.extra.get("dataset_id"), keys, rows, fr, arrays)


def _apply_references(rows, fr, refs: ReferenceRanges, region, sex, age, opt: ScoreOptions):
    z_all: dict[str, float | None] = {}
    outside = []
    n_ref = 0
    for r in rows:
        reasons = []
        for m in REFERENCE_LAYER_MARKERS:
            z, rid, why = refs.zscore(r.get(m), m, r["layer"], region, sex, age)
            r[f"{m}_z"], r[f"{m}_ref"] = z, rid
            if why:
                reasons.append(f"{m}: {why}")
            if z is not None:
                n_ref += 1
                z_all[f"{r['layer']}:{m}"] = z
                if abs(z) > opt.z_limit:
                    outside.append(f"{r['layer']} {m} {'above' if z > 0 else 'below'} "
                                   f"(z={z:+.2f})")
        r["reference_reason"] = "; ".join(reasons) or None
    z, rid, why = refs.zscore(fr.get("skin_thickness_mean_mm"), "skin_thickness_mean_mm", "skin",
                              region, sex, age)
    fr.update(skin_thickness_mean_mm_z=z, skin_thickness_mean_mm_ref=rid,
              skin_reference_reason=why)
    if z is not None:
        n_ref += 1
        z_all["skin:skin_thickness_mean_mm"] = z
        if abs(z) > opt.z_limit:
            outside.append(f"skin skin_thickness_mean_mm {'above' if z > 0 else 'below'} "
                           f"(z={z:+.2f})")
    fr["markers_with_reference"] = n_ref
    fr["markers_outside_range"] = len(outside) if n_ref else None
    fr["aging_profile"] = ("; ".join(outside) if outside else "all within range") if n_ref \
        else "no marker has a published reference range for this frame"
    if opt.composite_weights:
        fr["composite_index"], fr["composite_index_reason"] = composite_index(
            z_all, opt.composite_weights)
    else:
        fr["composite_index_reason"] = "no composite weighting given (composite_weights)"

