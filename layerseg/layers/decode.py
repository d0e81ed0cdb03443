"""The one decode step: any segmenter's per-pixel class scores -> an answer in layer order.

Every segmenter (the training-free classical one, a MONAI network) ends here (DESIGN.md data
flow): it hands over per-pixel scores for the eight labels, higher is better (a network's
log-probabilities, or the classical segmenter's image-feature scores), and gets back the same
`SegmentationResult`: label map, surfaces, region profile and QC flags. What a face's anatomy
says about the answer lives here and in ``layerseg/data/decode_priors.json``, not in a segmenter:

- per-region thickness limits of each layer (``thickness_mm``; the entry echo scaled with the
  probe frequency; layers that are either absent or at least their minimum thick);
- the lateral slope limit of every surface (``max_slope_deg``, turned into a per-column jump in
  rows with the frame's own spacing), the bottom surface optionally free of it;
- the fallback to the per-column optimum when the slope-limited search is stuck in a local
  optimum (``smooth_fallback_per_column``, with a QC flag);
- bone, the periosteal line with its shadow, running to the frame bottom (``bone_to_bottom``);
- for a probabilistic model, evidence for the layers that may be absent (``absent_evidence``):
  a lateral run of columns where such a layer was placed is kept only when the model's mean
  probability of that layer over the run's pixels reaches ``min_probability``; otherwise the
  layer is taken out of those columns and the frame is decoded again (a few pixels of bone or
  deep fat that the network barely believes in are not a measurement). The second search starts
  from the first one's answer as well as from the guided start, reuses its gain tables and
  solves again only the columns whose scores changed (`layerseg.layers.search._Warm`);
- for a probabilistic model given the frame's image, an echo for bone (``bone_echo``): a run of
  bone columns is kept only where the image shows a bone surface, a bright periosteal echo over
  the tissue above it or an acoustic shadow under it (`unechoic_bone_runs`); a run with neither
  is taken out in the same second search (deep soft tissue that a network took for bone);
  with ``rejected_bone_to_background``, that search reads the bone probability of every column
  left without bone as background below the deepest layer (label 0, the unmodelled deep
  tissue), so the deep tissue does not become muscle or deep fat and no bone is drawn into the
  columns beside a run taken out;
- for a probabilistic model given the frame's image, the dermis-fat junction on the image's
  echo step near where the model put it (``dermis_junction``, `layerseg.layers.junction`;
  applied by `layerseg.segmentation.pipeline.segment_with` on the frame's own grid).

The search itself is `layerseg.layers.ordered_search` (exact dynamic programming in Numba).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numba import njit, prange

from .._jsonconfig import merge, number, packaged_json, read_override
from .._nbmath import logaddexp
from ..checks import check_spacing
from ..errors import ConfigError, ScoreMapError
from .profiles import LABEL_NAMES, N_LABELS, Profile
from .search import SearchResult, _search, _Warm, ordered_search
from .surfaces import as_profile, surfaces_to_labels

__all__ = ["SegmentationResult", "decode", "default_priors", "load_priors", "refine_surfaces",
           "thickness_limits_mm", "unsupported_runs", "unechoic_bone_runs", "PRIORS_FILE"]

PRIORS_FILE = "decode_priors.json"
"""Name of the default priors in the ``layerseg.data`` package."""

_REF_FREQUENCY_MHZ = 24.0
"""Frequency at which the epidermis (entry-echo) limits of the priors are stated."""


@dataclass
class SegmentationResult:
    """What a segmenter found in one frame, after the decode.

    Attributes
    ----------
    labels : ndarray of uint8, shape (rows, cols)
        Label map 0-7, ordered under `profile` in every column.
    surfaces : ndarray of float64, shape (K+1, cols)
        Surface depths in rows (`layerseg.layers` conventions).
    profile : Profile
        The region profile used.
    flags : list of str
        QC flags (limits dropped by the search, the per-column fallback, an unknown region...).
    scores : ndarray of float64, shape (8, rows, cols) or None
        The per-label scores given to the decode (higher is better), when asked for.
    model : str
        Which segmenter produced the scores.
    column_confidence : ndarray of float64, shape (cols,) or None
        For a model whose scores are log-probabilities (the trained networks): per column, the
        mean probability the model gave to the decoded label over the tissue (skin surface to
        the deepest layer's bottom), 0-1; None for the classical segmenter (`column_confidence`).
    uncertain : str or None
        The flag of a frame the model does not understand (`confidence_flag`; also in `flags`),
        None when it understands it or gives no confidence. Scoring fails the frame's QC with it
        (`layerseg.score`'s ``qc_fail``), so such a frame is never measured silently.
    """

    labels: np.ndarray
    surfaces: np.ndarray
    profile: Profile
    flags: list[str] = field(default_factory=list)
    scores: np.ndarray | None = None
    model: str = "classical"
    column_confidence: np.ndarray | None = None
    uncertain: str | None = None


def default_priors() -> dict[str, Any]:
    """The packaged decode priors as a fresh dict (comments removed)."""
    return packaged_json(PRIORS_FILE)


def load_priors(priors: dict | str | os.PathLike | None = None) -> dict[str, Any]:
    """The decode priors: the packaged defaults merged key by key with an override.

    Parameters
    ----------
    priors : dict or path or None
        Any subset of the keys of ``layerseg/data/decode_priors.json`` (a dict, or a JSON file
        holding one). Thickness tables may name new regions.

    Returns
    -------
    dict
        The full priors, validated.

    Raises
    ------
    ConfigError
        Unreadable file, malformed JSON, unknown key or a value out of range (named).
    """
    over, src = read_override(priors)
    if over is None:
        return copy.deepcopy(_defaults())
    cfg = merge(_defaults(), over, "", src, open_keys=("thickness_mm",))
    _validate(cfg, src)
    return cfg


@lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    cfg = default_priors()
    _validate(cfg, PRIORS_FILE)
    return cfg


def _section(cfg: dict, name: str, keys: tuple[str, ...], src) -> dict:
    """The priors section `name`, which must hold exactly `keys` (``_doc`` keys aside)."""
    sec = cfg[name]
    if not isinstance(sec, dict) or set(k for k in sec if not k.startswith("_")) != set(keys):
        names = keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]
        raise ConfigError(f"{name} must hold {names}", src)
    return sec


def _flag(v, where: str, src) -> bool:
    """`v` when it is true or false, else a `ConfigError` naming `where`."""
    if not isinstance(v, bool):
        raise ConfigError(f"{where} must be true or false, got {v!r}", src)
    return v


def _validate(cfg: dict, src) -> None:
    cfg["max_slope_deg"] = number(cfg["max_slope_deg"], "max_slope_deg", src, lo=0.0, hi=89.0)
    cfg["smooth_fallback_per_column"] = number(cfg["smooth_fallback_per_column"],
                                               "smooth_fallback_per_column", src, lo=0.0)
    conf = _section(cfg, "confidence", ("column_min", "max_low_fraction"), src)
    conf["column_min"] = number(conf["column_min"], "confidence.column_min", src, lo=0.0, hi=1.0)
    conf["max_low_fraction"] = number(conf["max_low_fraction"], "confidence.max_low_fraction",
                                      src, lo=0.0, hi=1.0)
    for key in ("free_bottom_surface", "bone_to_bottom", "rejected_bone_to_background"):
        _flag(cfg[key], key, src)
    ev = _section(cfg, "absent_evidence", ("min_probability",), src)
    ev["min_probability"] = number(ev["min_probability"], "absent_evidence.min_probability", src,
                                   lo=0.0, hi=1.0)
    be = _section(cfg, "bone_echo", ("enabled", "min_line_db", "min_shadow_db"), src)
    _flag(be["enabled"], "bone_echo.enabled", src)
    be["min_line_db"] = number(be["min_line_db"], "bone_echo.min_line_db", src)
    be["min_shadow_db"] = number(be["min_shadow_db"], "bone_echo.min_shadow_db", src)
    keys = ("window_mm", "step_mm", "lateral_sigma_mm", "min_drop_db", "margin_db", "median_mm")
    dj = _section(cfg, "dermis_junction", ("enabled",) + keys, src)
    _flag(dj["enabled"], "dermis_junction.enabled", src)
    for key in keys:
        dj[key] = number(dj[key], f"dermis_junction.{key}", src, lo=0.0,
                         allow_zero=key != "step_mm")
    th = cfg["thickness_mm"]
    for region, table in th.items():
        if region == "epidermis_frequency_scaled":
            continue
        if region == "may_be_absent":
            bad = [x for x in table if x not in LABEL_NAMES or x == "background"]
            if bad:
                raise ConfigError(f"thickness_mm.may_be_absent names unknown layer(s) {bad}", src)
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"thickness_mm.{region} must map layer names to [min, max]", src)
        for layer, mm in table.items():
            if layer not in LABEL_NAMES or layer == "background":
                raise ConfigError(f"thickness_mm.{region} names unknown layer {layer!r}", src)
            if not (isinstance(mm, (list, tuple)) and len(mm) == 2):
                raise ConfigError(f"thickness_mm.{region}.{layer} must be [min, max] in mm, got "
                                  f"{mm!r}", src)
            lo = number(mm[0], f"thickness_mm.{region}.{layer}[0]", src, lo=0.0)
            hi = number(mm[1], f"thickness_mm.{region}.{layer}[1]", src, lo=0.0)
            if lo > hi:
                raise ConfigError(f"thickness_mm.{region}.{layer}: minimum {lo} exceeds maximum "
                                  f"{hi}", src)


def thickness_limits_mm(priors: dict, profile: Profile, frequency_mhz: float | None = None
                        ) -> tuple[dict[str, float], dict[str, float]]:
    """Per-layer (min, max) thickness in mm for a profile: the region's table over the default.

    Parameters
    ----------
    priors : dict
        From `load_priors` (anything with a ``thickness_mm`` table of that shape).
    profile : Profile
        The frame's region profile.
    frequency_mhz : float, optional
        Probe frequency; scales the epidermis (entry-echo) limits by 24 / f when the priors ask.

    Returns
    -------
    min_mm, max_mm : dict of str to float
        Keyed by layer name, for the profile's layers.
    """
    th = priors["thickness_mm"]
    table = dict(th["default"])
    table.update(th.get(profile.region, {}))
    mn, mx = {}, {}
    for layer in profile.layers:
        lo, hi = table.get(layer, (0.0, math.inf))
        lo, hi = float(lo), float(hi)
        if layer == "epidermis" and th.get("epidermis_frequency_scaled") and frequency_mhz:
            scale = _REF_FREQUENCY_MHZ / float(frequency_mhz)
            lo, hi = lo * scale, hi * scale
        mn[layer], mx[layer] = lo, hi
    return mn, mx


def decode(scores: np.ndarray, profile: Profile | str | None, spacing_mm, *,
           frequency_mhz: float | None = None, priors: dict | str | None = None,
           keep_scores: bool = False, model: str = "",
           log_probabilities: bool = False, image=None) -> SegmentationResult:
    """Turn per-pixel class scores into an ordered label map under the region's priors.

    Parameters
    ----------
    scores : ndarray, shape (8, rows, cols)
        Per-label scores, higher is better, finite (log-probabilities or costs with the sign
        flipped); label order of the label map (0 background ... 7 bone). Float32 scores
        are used as they are (sums in float64), others as float64.
    profile : Profile or str or None
        The region profile (or a region name; None is the default profile).
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm: thickness limits and the slope limit are in mm.
    frequency_mhz : float, optional
        Probe frequency (scales the entry-echo limits).
    priors : dict or path, optional
        Overrides of the packaged decode priors (see `load_priors`).
    keep_scores : bool
        Keep `scores` (as float64) in the result.
    model : str
        Name of the segmenter, recorded in the result.
    log_probabilities : bool
        The scores are a model's log-probabilities: lateral runs of a layer that may be absent
        with too little evidence are taken out and the frame decoded again
        (``absent_evidence`` of the priors, `unsupported_runs`).
    image : (ndarray, float), optional
        With `log_probabilities`: the frame's display grey levels (0-255, shape (rows', cols'),
        any grid over the same field of view as `scores`) and the dynamic range in dB that maps
        them; runs of bone with neither a periosteal echo nor a shadow in it are taken out with
        the weak runs (``bone_echo`` of the priors, `unechoic_bone_runs`).

    Returns
    -------
    SegmentationResult

    Raises
    ------
    ScoreMapError
        Scores of the wrong shape or not finite.
    CalibrationError, SpacingRequiredError
        Bad or missing spacing.
    ConfigError
        Malformed priors.
    """
    sc = _scores_array(scores)
    if sc.ndim != 3 or sc.shape[0] != N_LABELS or sc.shape[1] < 1 or sc.shape[2] < 1:
        raise ScoreMapError(f"decode takes scores of shape ({N_LABELS}, rows, cols), got "
                            f"{sc.shape}")
    if not np.isfinite(sc).all():
        raise ScoreMapError("decode takes finite scores; found NaN or infinite values "
                            "(clip log-probabilities, e.g. at log(1e-12))")
    prof = as_profile(profile)
    ay, ax = check_spacing(spacing_mm, "the decode's thickness and slope limits")
    pri = load_priors(priors)
    rows = sc.shape[1]
    mn, mx = thickness_limits_mm(pri, prof, frequency_mhz)
    absent_ok = [ly for ly in pri["thickness_mm"].get("may_be_absent", ()) if ly in prof.layers]
    kw = dict(spacing_mm=(ay, ax), min_thickness_mm=mn, max_thickness_mm=mx, absent_ok=absent_ok)
    min_p = float(pri["absent_evidence"]["min_probability"])
    second = log_probabilities and ((min_p > 0 and absent_ok) or image is not None)
    # a second search only lowers layers that may be absent: the first per-column solve keeps
    # its DP rows at the top of the first of them, where the second one starts
    keep_from = min(prof.layers.index(ly) for ly in absent_ok) if second and absent_ok else -1
    res, first_pc = _decode_once(sc, prof, pri, kw, ax / ay, rows, keep_from=keep_from)
    labels, surfaces = _finish(res, prof, pri, rows)
    if second:
        weak = unsupported_runs(sc, labels, prof, absent_ok, min_p) if min_p > 0 else {}
        if image is not None and pri["bone_echo"]["enabled"] and "bone" in absent_ok:
            grey, dr = image
            grey = np.asarray(grey)
            kb = prof.layers.index("bone")
            be = pri["bone_echo"]
            unechoic = unechoic_bone_runs(
                grey, dr, (ay * rows / grey.shape[0], ax * sc.shape[2] / grey.shape[1]),
                labels == LABEL_NAMES.index("bone"), surfaces[kb], be["min_line_db"],
                be["min_shadow_db"])
            if unechoic.any():
                weak["bone"] = unechoic | weak.get("bone", False)
        if weak:
            # the layer cannot be chosen in those columns (a large finite penalty: the search
            # takes finite scores); 'may be absent' lets the search close it there
            floor = float(sc.min()) - 1e4
            dtype = sc.dtype
            if abs(floor) < float(np.finfo(np.float32).max):
                # a float32 value: float32 and float64 scores of the same values decode alike
                floor = float(np.float32(floor))
            else:
                dtype = np.float64
            changed_labels = tuple(weak)
            to_background = "bone" in weak and pri["rejected_bone_to_background"]
            # with the rule below, a ninth plane: the background below the deepest layer
            sc2 = np.empty((N_LABELS + to_background,) + sc.shape[1:], dtype=dtype)
            sc2[:N_LABELS] = sc
            if to_background:
                # the bone probability of every column left without bone goes to the
                # background below the deepest layer (the deep tissue a network took for
                # bone), not to the layers above; the background above the skin keeps its own
                # scores, so the search resumes from the first one's kept DP rows
                kb = LABEL_NAMES.index("bone")
                no_bone = weak["bone"] | ~(labels == kb).any(axis=0)
                _below_plane(sc[0], sc[kb], no_bone, sc2[N_LABELS])
                weak["bone"] = no_bone
                changed_labels += ("background_below",)
            for layer, cols in weak.items():
                sc2[LABEL_NAMES.index(layer)][:, cols] = floor
            # same limits, scores changed in the weak runs' columns only: the second search
            # also starts from the first one's answer (feasible under the same limits), reuses
            # its gain tables and solves only those columns again (unless the first answer was
            # the per-column fallback, which need not meet the slope limit)
            warm = None
            if res.method.startswith("smooth") and first_pc is not None \
                    and first_pc.gains is not None:
                changed = np.zeros(sc.shape[2], dtype=bool)
                for cols in weak.values():
                    changed[cols] = True
                warm = _Warm(res.surfaces, first_pc.surfaces, first_pc.totals, first_pc.gains,
                             changed, changed_labels, first_pc.kept, first_pc.start)
            res, _ = _decode_once(sc2, prof, pri, kw, ax / ay, rows, warm)
            labels, surfaces = _finish(res, prof, pri, rows)
    return SegmentationResult(np.asarray(labels, dtype=np.uint8), surfaces, prof,
                              list(res.flags),
                              sc.astype(np.float64, copy=False) if keep_scores else None, model)


def _below_plane(bg, bone, cols, out):
    """The background-below plane of the decode's second search: ``log(exp(bg) + exp(bone))``
    in the columns `cols` (bool, (cols,)), `bg` elsewhere. bg, bone and out: (rows, cols), one
    float dtype. NumPy's `logaddexp` step by step in the inputs' own precision (the same values
    bit for bit), in one parallel pass without the column gathers' copies (a tenth of the
    time on a 600 x 640 grid)."""
    _below_plane_kernel(bg, bone, cols, bg.dtype.type(math.log(2.0)), out)


@njit(cache=True, parallel=True)
def _below_plane_kernel(bg, bone, cols, ln2, out):
    rows, n_cols = bg.shape
    for r in prange(rows):
        for c in range(n_cols):
            out[r, c] = logaddexp(bg[r, c], bone[r, c], ln2) if cols[c] else bg[r, c]


def _scores_array(scores) -> np.ndarray:
    """Scores as float64, or as float32 when they come as float32 (a network's
    log-probabilities): every sum and difference of them in the decode is taken in float64, so
    the answer is the one of the same values in float64, at half the memory traffic."""
    sc = np.asarray(scores)
    return sc if sc.dtype == np.float32 else sc.astype(np.float64, copy=False)


def _finish(res: SearchResult, prof: Profile, pri: dict, rows: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and surfaces of a search, bone run out to the frame bottom when the priors ask."""
    labels, surfaces = res.labels, res.surfaces
    if pri["bone_to_bottom"] and "bone" in prof.layers:
        moved = _bone_to_bottom(surfaces, prof, rows)
        if not np.array_equal(moved, surfaces):     # the labels change only with the surfaces
            surfaces = moved
            labels = surfaces_to_labels(surfaces, prof, rows)
    return labels, surfaces


def _decode_once(sc: np.ndarray, prof: Profile, pri: dict, kw: dict, aspect: float,
                 rows: int, warm: _Warm | None = None, keep_from: int = -1):
    """One ordered search under the priors (slope limit and its per-column fallback); `warm`:
    what the search reuses from an earlier one under the same limits, `keep_from`: what it
    keeps for a later one (`_search`).

    Returns ``(result, per_column)``: the `SearchResult` and the per-column answer of `_search`
    (None without a slope limit)."""
    if pri["max_slope_deg"] > 0:
        jump = [int(math.ceil(math.tan(math.radians(pri["max_slope_deg"])) * aspect))] * \
            (prof.n_layers + 1)
        if pri["free_bottom_surface"]:
            # the bottom of the deepest present layer steps where a bone (or a deep layer)
            # begins or ends: that surface is left free
            jump[-1] = rows
        # the jump-limited answer, and the per-column optimum it starts from (one solve of the
        # columns for both)
        smooth, pc = _search(sc, prof, max_jump_px=jump, warm=warm, keep_from=keep_from, **kw)
        gap = (pc.score - smooth.score) / sc.shape[2]
        pc_surfaces, pc_score, pc_flags = pc.surfaces, pc.score, pc.flags
        if gap <= pri["smooth_fallback_per_column"]:
            return smooth, pc
        res = SearchResult(surfaces_to_labels(pc_surfaces, prof, rows), pc_surfaces,
                           pc_flags, pc_score, "per-column exact")
        res.flags.append(f"jump-limited search fell {gap:.1f} per column below the "
                         "per-column optimum (a local optimum); per-column answer kept")
        return res, pc
    return ordered_search(sc, prof, **kw), None


def unsupported_runs(log_probs: np.ndarray, labels: np.ndarray, profile: Profile,
                     layers, min_probability: float) -> dict[str, np.ndarray]:
    """Lateral runs of a layer with too little evidence in a model's probabilities.

    Parameters
    ----------
    log_probs : ndarray, shape (8, rows, cols)
        The model's log-probabilities.
    labels : ndarray of int, shape (rows, cols)
        A decoded label map.
    profile : Profile
        Its region profile.
    layers : iterable of str
        The layers to check (those that may be absent).
    min_probability : float
        A run (neighbouring columns where the layer is present) is unsupported when the mean
        probability of the layer over the run's pixels of it is below this.

    Returns
    -------
    dict of str to ndarray of bool, shape (cols,)
        Per layer with at least one unsupported run: the columns of those runs.
    """
    lab = np.asarray(labels)
    out: dict[str, np.ndarray] = {}
    for layer in layers:
        k = LABEL_NAMES.index(layer)
        mask = lab == k
        rows_with = np.flatnonzero(mask.any(axis=1))
        if not rows_with.size:
            continue
        present = mask.any(axis=0)
        # only the rows the layer occupies somewhere: the others would add exact zeros to the
        # column sums (taken row after row), so the sums are the same bit for bit
        r0, r1 = int(rows_with[0]), int(rows_with[-1]) + 1
        mask = mask[r0:r1]
        p = np.exp(np.asarray(log_probs[k, r0:r1], dtype=np.float64))
        psum = (p * mask).sum(axis=0)
        n = mask.sum(axis=0)
        weak = np.zeros(lab.shape[1], dtype=bool)
        for a, b in _column_runs(present):
            if psum[a:b].sum() / n[a:b].sum() < min_probability:
                weak[a:b] = True
        if weak.any():
            out[layer] = weak
    return out


_BONE_BANDS_MM = {"above": (-1.3, -0.3), "below": (0.3, 1.3), "line": (-0.15, 0.15)}
"""Depth bands around a bone surface (mm, positive deeper) read by `unechoic_bone_runs`: the
tissue above it, under it, and the periosteal echo itself."""


def unechoic_bone_runs(grey: np.ndarray, dynamic_range_db: float, spacing_mm,
                       bone: np.ndarray, bone_top: np.ndarray, min_line_db: float,
                       min_shadow_db: float) -> np.ndarray:
    """Lateral runs of bone that the image does not show as bone.

    A bone surface is a strong specular reflector that little sound passes: the periosteal
    echo stands out above the speckle of the soft tissue over it, or the tissue under it lies
    in an acoustic shadow. Deep soft tissue that a network took for bone shows neither: a
    speckle maximum a few dB over its mean and no darker band under it.

    For each run of neighbouring columns with bone, the mean over its columns of: the
    brightest grey level within 0.15 mm of the bone surface (the line), the mean over 0.3-1.3
    mm above it and the mean over 0.3-1.3 mm under it (bands cut by the frame's edges),
    converted to dB with the display's dynamic range. The run is kept when the line is at
    least `min_line_db` over the tissue above or the tissue under it at least `min_shadow_db`
    darker than above; a run whose bands all fall outside the frame is kept.

    Parameters
    ----------
    grey : ndarray, shape (rows', cols')
        The frame's display grey levels 0-255, on its own grid (which may differ from the
        decode's: both cover the same field of view).
    dynamic_range_db : float
        Dynamic range mapping grey 0-255, dB.
    spacing_mm : (float, float)
        Pixel spacing of `grey` (axial, lateral), mm.
    bone : ndarray of bool, shape (rows, cols)
        Where the decode placed bone, on the decode's grid.
    bone_top : ndarray, shape (cols,)
        Depth of the bone surface per column of the decode's grid, in its rows.
    min_line_db, min_shadow_db : float
        The thresholds above (dB).

    Returns
    -------
    ndarray of bool, shape (cols,)
        The columns (decode grid) of the runs to take out.
    """
    out = np.zeros(np.shape(bone)[1], dtype=bool)
    for a, b, line_db, shadow_db in bone_run_echoes(grey, dynamic_range_db, spacing_mm, bone,
                                                    bone_top):
        if np.isnan(line_db) and np.isnan(shadow_db):
            continue                                      # nothing to judge by: kept
        if not (line_db >= min_line_db or shadow_db >= min_shadow_db):
            out[a:b] = True
    return out


def bone_run_echoes(grey: np.ndarray, dynamic_range_db: float, spacing_mm, bone: np.ndarray,
                    bone_top: np.ndarray) -> list[tuple[int, int, float, float]]:
    """Per run of bone columns, its periosteal echo and its shadow in dB (`unechoic_bone_runs`,
    same parameters): a list of ``(first column, last column + 1, line_db, shadow_db)``, NaN
    where a band falls outside the frame."""
    g = np.asarray(grey)        # read where the bands are, in float64 there only
    rows_g, cols_g = g.shape
    rows, cols = bone.shape
    present = bone.any(axis=0)
    out: list[tuple[int, int, float, float]] = []
    if not present.any():
        return out
    ay = float(spacing_mm[0])
    to_db = float(dynamic_range_db) / 255.0
    # each decode column's column of grey and its bone surface in grey rows
    j = np.flatnonzero(present)
    fc = np.clip(np.rint((j + 0.5) * cols_g / cols - 0.5).astype(np.int64), 0, cols_g - 1)
    top = np.asarray(bone_top, dtype=np.float64)[j] * rows_g / rows

    def band(key):
        lo_mm, hi_mm = _BONE_BANDS_MM[key]
        r0 = np.clip(np.rint(top + lo_mm / ay).astype(np.int64), 0, rows_g)
        r1 = np.clip(np.rint(top + hi_mm / ay).astype(np.int64), 0, rows_g)
        return r0, r1

    # only the rows the bands read: a window from the top of the band above to the bottom of
    # the band under, per column (not the whole column of a deep frame)
    start, _ = band("above")
    _, stop = band("below")
    width = int(max((stop - start).max(initial=0), 1))
    cols_i = np.arange(j.size)
    rows_i = np.minimum(start[None, :] + np.arange(width)[:, None], rows_g - 1)
    sub = g[rows_i, fc[None, :]].astype(np.float64)      # (window rows, n present columns)
    csum = np.vstack([np.zeros((1, j.size)), np.cumsum(sub, axis=0)])

    def mean(key):
        r0, r1 = band(key)
        n = r1 - r0
        tot = csum[r1 - start, cols_i] - csum[r0 - start, cols_i]
        return np.where(n > 0, tot / np.maximum(n, 1), np.nan)

    above, below = mean("above"), mean("below")
    r0, r1 = band("line")
    line = np.full(j.size, -np.inf)
    for d in range(int((r1 - r0).max(initial=0))):
        r = r0 + d
        ok = r < r1
        line = np.where(ok, np.maximum(line, sub[np.clip(r - start, 0, width - 1), cols_i]),
                        line)
    line[~np.isfinite(line)] = np.nan
    col_pos = np.full(cols, -1, dtype=np.int64)
    col_pos[j] = np.arange(j.size)
    for a, b in _column_runs(present):
        k = col_pos[a:b]
        m_above, m_below, m_line = (_nanmean(v[k]) for v in (above, below, line))
        out.append((int(a), int(b), (m_line - m_above) * to_db, (m_above - m_below) * to_db))
    return out


def _column_runs(present: np.ndarray):
    """Runs of neighbouring True columns of `present` (bool, (cols,)): ``(first, last + 1)``
    pairs, left to right (starts where it turns on, ends where it turns off)."""
    edges = np.diff(np.concatenate(([0], np.asarray(present).astype(np.int8), [0])))
    return zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))


def _nanmean(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def column_confidence(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-column confidence of a probabilistic model in its decoded answer.

    Parameters
    ----------
    log_probs : ndarray, shape (8, rows, cols)
        The model's log-probabilities (log-softmax over the 8 labels).
    labels : ndarray of int, shape (rows, cols)
        The decoded label map.

    Returns
    -------
    ndarray of float64, shape (cols,)
        Mean over the tissue rows of each column (first to last non-background pixel) of the
        probability the model gave to the decoded label; 0 where a column has no tissue.
    """
    lp = _scores_array(log_probs)
    lab = np.asarray(labels).astype(np.intp)
    p = np.exp(np.take_along_axis(lp, lab[None], axis=0)[0].astype(np.float64))  # (rows, cols)
    tissue = lab > 0
    rows = np.arange(lab.shape[0])[:, None]
    any_t = tissue.any(axis=0)
    top = np.where(any_t, tissue.argmax(axis=0), lab.shape[0])
    bottom = np.where(any_t, lab.shape[0] - 1 - tissue[::-1].argmax(axis=0), -1)
    inside = (rows >= top) & (rows <= bottom)
    n = inside.sum(axis=0)
    return np.where(n > 0, (p * inside).sum(axis=0) / np.maximum(n, 1), 0.0)


def confidence_flag(conf: np.ndarray, priors: dict | str | None = None) -> str | None:
    """The QC flag of a frame the model does not understand, from `column_confidence`.

    Parameters
    ----------
    conf : ndarray, shape (cols,)
    priors : dict or path, optional
        Decode priors overrides (``confidence.column_min``, ``confidence.max_low_fraction``).

    Returns
    -------
    str or None
        A flag naming the share of low-confidence columns and the mean confidence when that
        share exceeds ``max_low_fraction``; None otherwise.
    """
    c = load_priors(priors)["confidence"]
    conf = np.asarray(conf, dtype=np.float64)
    low = float(np.mean(conf < c["column_min"])) if conf.size else 1.0
    if low > c["max_low_fraction"]:
        return (f"model uncertain: {100 * low:.0f} % of columns below confidence "
                f"{c['column_min']:.2f} (mean {float(conf.mean()) if conf.size else 0:.2f}); "
                "frame unlike the training frames, check by eye")
    return None


def refine_surfaces(surfaces: np.ndarray, log_probs: np.ndarray, labels: np.ndarray
                    ) -> np.ndarray:
    """Sub-pixel surface depths from a probabilistic model's scores.

    Each boundary the decode put at an integer row edge ``s`` (label A in row ``s - 1`` above,
    label B in row ``s`` below) moves to where the model's log-probabilities of A and B cross,
    interpolated linearly between the two row centres: ``s - 0.5 + t`` with
    ``t = d(s-1) / (d(s-1) - d(s))`` and ``d = log p_A - log p_B``; so a boundary moves by at
    most half a row, and only where the model agrees with the decode on both sides (``d(s-1) > 0
    > d(s)``). Surfaces that coincide (absent layers) move together; order is kept.

    Parameters
    ----------
    surfaces : ndarray, shape (K+1, cols)
        Integer depths from `decode` (rows).
    log_probs : ndarray, shape (8, rows, cols)
        The model's log-probabilities on the same grid.
    labels : ndarray of uint8, shape (rows, cols)
        The decoded label map (`surfaces` as labels).

    Returns
    -------
    ndarray of float64, shape (K+1, cols)
    """
    s = np.asarray(surfaces, dtype=np.float64)
    lp = _scores_array(log_probs)
    lab = np.asarray(labels).astype(np.intp)
    rows, cols = lab.shape
    c = np.arange(cols)
    out = s.copy()
    for k in range(s.shape[0]):
        e = np.rint(s[k]).astype(np.intp)
        ok = (e >= 1) & (e <= rows - 1) & (np.abs(s[k] - e) < 1e-9)
        ea, eb = np.clip(e - 1, 0, rows - 1), np.clip(e, 0, rows - 1)
        a, b = lab[ea, c], lab[eb, c]
        ok &= a != b
        d0 = lp[a, ea, c].astype(np.float64) - lp[b, ea, c]
        d1 = lp[a, eb, c].astype(np.float64) - lp[b, eb, c]
        ok &= (d0 > 0) & (d1 < 0)
        t = np.where(ok, d0 / np.where(ok, d0 - d1, 1.0), 0.5)
        out[k] = np.where(ok, e - 0.5 + t, s[k])
    # coincident surfaces (absent layers) share the move of the one that found its boundary;
    # then order is restored down each column
    for k in range(1, s.shape[0]):
        same = s[k] == s[k - 1]
        out[k] = np.where(same, out[k - 1], out[k])
    return np.maximum.accumulate(np.clip(out, 0.0, rows), axis=0)


def _bone_to_bottom(surfaces: np.ndarray, prof: Profile, rows: int) -> np.ndarray:
    """Nothing is seen under bone: where a column has bone, it runs to the frame bottom.

    Bone is the profile's last layer, so order holds."""
    S = surfaces.copy()
    kb = prof.layers.index("bone")
    present = S[kb + 1] > S[kb]
    S[kb + 1:, present] = rows
    return S
