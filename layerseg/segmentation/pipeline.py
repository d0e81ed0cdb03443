"""What every segmenter shares around its scores: the frame checks, the region profile, and the
one decode (`layerseg.layers.decode`). A segmenter is a function ``scores(frame, profile) ->
(8, rows, cols)`` (higher is better); `segment_with` does the rest, so a classical answer and a
network's answer are decoded, ordered and flagged the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi

from ..checks import contrast_problem, no_echo_columns
from ..errors import InvalidImageError, SpacingRequiredError
from ..frame import DEFAULT_DYNAMIC_RANGE_DB, Frame
from ..errors import ScoreMapError
from ..layers.decode import (SegmentationResult, column_confidence, confidence_flag, decode,
                             load_priors, refine_surfaces, thickness_limits_mm)
from ..layers.junction import refine_dermis_junction
from ..layers.surfaces import resample_surfaces, surfaces_to_labels
from ..layers.profiles import Profile, resolve_profile

__all__ = ["segment_with", "check_frame", "frame_spacing", "resample_to_shape", "image_part"]


def check_frame(frame) -> "Frame":
    """The checks every segmenter needs: a `Frame`, with spacing, with usable contrast.

    Returns
    -------
    Frame
        The frame as display grey levels (`Frame.as_display`: the frame itself when it already
        is one), converted once here so no segmenter converts an envelope frame again.

    Raises
    ------
    InvalidImageError
        Not a Frame, or no usable contrast (`layerseg.checks.contrast_problem`).
    SpacingRequiredError
        No spacing.
    """
    frame_spacing(frame)
    disp = frame.as_display()
    why = contrast_problem(disp.bmode)
    if why:
        raise InvalidImageError(f"cannot segment: {why}", frame.meta.source)
    return disp


def frame_spacing(frame) -> tuple[float, float]:
    """The spacing of a `Frame` that a segmenter needs; `InvalidImageError` for anything but a
    Frame, `SpacingRequiredError` for a frame without spacing."""
    if not isinstance(frame, Frame):
        raise InvalidImageError(f"segment takes a layerseg.Frame, got {type(frame).__name__}; "
                                "wrap an array as layerseg.Frame(array, spacing_mm=(axial, "
                                "lateral))")
    if frame.spacing_mm is None:
        raise SpacingRequiredError("segmentation needs the frame's pixel spacing (thickness "
                                   "limits, filters and networks work in mm); give spacing_mm",
                                   frame.meta.source)
    return frame.spacing_mm


def segment_with(scores: Callable[[Frame, Profile], np.ndarray], frame: Frame, *,
                 region: str | None = None, priors=None, return_scores: bool = False,
                 model: str = "", log_probabilities: bool = False,
                 other_grid: bool = False,
                 field_depth_mm: float | None = None) -> SegmentationResult:
    """Check the frame, resolve its profile, score it with `scores` and decode.

    A frame with screen margins or side panels beside the image (`image_part`) is segmented
    between them alone (`scores` gets that crop) and the margins are left unlabelled, with a
    flag.

    Parameters
    ----------
    scores : callable(frame, profile) -> ndarray, shape (8, rows, cols)
        The segmenter's per-label scores, higher is better; it gets the frame as display grey
        levels (`check_frame`). A probabilistic model (`log_probabilities`) may answer on its
        own grid over the same field of view (8, r, c): the decode then runs on that grid (its
        spacing is the frame's extent over (r, c)), the boundaries are placed to sub-pixel
        depth where the model's probabilities cross (`layerseg.layers.decode.refine_surfaces`)
        and the surfaces are taken onto the frame's grid (`resample_surfaces`).
    frame : Frame
    region : str, optional
        Overrides ``frame.meta.region``; unknown names take the default profile with a flag.
    priors : dict or path, optional
        Decode priors overrides.
    return_scores : bool
        Keep the scores in the result.
    model : str
        The segmenter's name, recorded in the result.
    log_probabilities : bool
        The scores are a model's log-probabilities: the result then carries the per-column
        confidence (`layerseg.layers.decode.column_confidence`) and a QC flag when too many
        columns are uncertain (`confidence_flag`).
    other_grid : bool
        Scores that are not log-probabilities may also come on a grid of their own over the
        same field of view (the classical segmenter's working grid): decoded there, their
        surfaces are taken onto the frame's grid as a model's are (no sub-pixel refinement,
        no confidence).
    field_depth_mm : float, optional
        The depth of field a trained model was trained on
        (`layerseg.segmentation.trained.predict.TrainedSegmenter.field_depth_mm`): a frame
        deeper than this gets a QC flag (`field_depth_flag`).

    Returns
    -------
    SegmentationResult
    """
    full = check_frame(frame)
    disp, part = image_part(full)
    if part is not None:         # margins beside the image: segment the image alone
        res = segment_with(scores, disp, region=region, priors=priors,
                           return_scores=return_scores, model=model,
                           log_probabilities=log_probabilities, other_grid=other_grid,
                           field_depth_mm=field_depth_mm)
        return _padded(res, full, part)
    prof, note = resolve_profile(region if region is not None else frame.meta.region)
    deep = field_depth_flag(disp, field_depth_mm)
    sc = scores(disp, prof)
    rows, cols = disp.shape
    if sc.ndim == 3 and sc.shape[1:] != (rows, cols) and (log_probabilities or other_grid):
        res = _decode_on_own_grid(sc, disp, prof, priors=priors, model=model,
                                  return_scores=return_scores,
                                  log_probabilities=log_probabilities)
    elif sc.ndim == 3 and sc.shape[1:] != (rows, cols):
        raise ScoreMapError(f"the segmenter gave scores of shape {sc.shape} for a frame of "
                            f"{rows} x {cols}; only log-probabilities or a segmenter that says so "
                             "(other_grid) may come on another grid")
    else:
        res = decode(sc, prof, disp.spacing_mm, frequency_mhz=frame.meta.frequency_mhz,
                     priors=priors, keep_scores=return_scores, model=model,
                     log_probabilities=log_probabilities,
                     image=_image(disp) if log_probabilities else None)
        if log_probabilities:
            res.column_confidence = column_confidence(sc, res.labels)
            _flag_uncertain(res, res.column_confidence, priors)
    if log_probabilities:
        _dermis_junction(res, disp, prof, priors)
    res.flags.extend(f for f in (note, deep) if f)
    return res


def image_part(disp: Frame) -> tuple[Frame, slice | None]:
    """The part of a display frame between its side margins (`layerseg.checks.no_echo_columns`:
    the screen margins or side panels of a capture), and the columns it spans.

    Parameters
    ----------
    disp : Frame
        Display grey levels (`check_frame`).

    Returns
    -------
    (Frame, slice or None)
        The frame cropped to those columns (elastography with it) and their slice; the frame
        itself and None when it has no margins, or when every column is flat (then nothing
        tells image from margin).
    """
    blank = no_echo_columns(disp.bmode)
    if not blank.any() or blank.all():
        return disp, None
    inner = np.nonzero(~blank)[0]
    part = slice(int(inner[0]), int(inner[-1]) + 1)
    crop = replace(disp, bmode=disp.bmode[:, part],
                   elasto=None if disp.elasto is None else disp.elasto[:, part],
                   elasto_valid=None if disp.elasto_valid is None
                   else disp.elasto_valid[:, part])
    return crop, part


def _padded(res: SegmentationResult, full: Frame, part: slice) -> SegmentationResult:
    """A segmentation of the image part (`image_part`) on the whole frame: the margins
    unlabelled (label 0, every surface at the frame's bottom, confidence and scores NaN), and
    a flag."""
    rows, cols = full.shape
    labels = np.zeros((rows, cols), dtype=res.labels.dtype)
    labels[:, part] = res.labels
    surfaces = np.full((res.surfaces.shape[0], cols), float(rows))
    surfaces[:, part] = res.surfaces
    conf = None
    if res.column_confidence is not None:
        conf = np.full(cols, np.nan)
        conf[part] = res.column_confidence
    sc = None
    if res.scores is not None:
        sc = np.full(res.scores.shape[:1] + (rows, cols), np.nan)
        sc[:, :, part] = res.scores
    n = cols - (part.stop - part.start)
    flag = (f"{n} of {cols} columns hold no echo (a screen margin or a panel beside the image): "
            "left unlabelled, the image between them segmented alone; crop the frame to the "
            "B-mode image (bmode_box in its sidecar) so that QC coverage counts the image alone")
    return SegmentationResult(labels, surfaces, res.profile, [flag] + list(res.flags), sc,
                              res.model, conf, res.uncertain)


def _flag_uncertain(res: SegmentationResult, conf: np.ndarray, priors) -> None:
    """The QC flag of a frame the model does not understand (`confidence_flag` of the
    confidence of the image's columns), into ``res.flags`` and ``res.uncertain``."""
    flag = confidence_flag(conf, priors)
    if flag:
        res.flags.append(flag)
        res.uncertain = flag


def _dermis_junction(res: SegmentationResult, disp: Frame, prof: Profile, priors) -> None:
    """Put a probabilistic model's dermis-fat junction on the image's echo step near it
    (``dermis_junction`` of the decode priors, `layerseg.layers.junction`), on the frame's
    grid, in place."""
    pri = load_priors(priors)
    dj = pri["dermis_junction"]
    if not dj["enabled"] or "dermis" not in prof.layers or "fat" not in prof.layers:
        return
    mn, mx = thickness_limits_mm(pri, prof, disp.meta.frequency_mhz)
    grey, dr = _image(disp)
    surfaces, moved = refine_dermis_junction(
        res.surfaces, prof, grey, dr, disp.spacing_mm, window_mm=dj["window_mm"],
        step_mm=dj["step_mm"], lateral_sigma_mm=dj["lateral_sigma_mm"],
        min_drop_db=dj["min_drop_db"], margin_db=dj["margin_db"], median_mm=dj["median_mm"],
        dermis_mm=(mn["dermis"], mx["dermis"]), min_fat_mm=mn["fat"],
        max_slope_deg=pri["max_slope_deg"])
    if moved:
        res.surfaces = surfaces
        res.labels = surfaces_to_labels(surfaces, prof, grey.shape[0])


FIELD_DEPTH_MARGIN = 1.25
"""A frame is flagged as deeper than a model's training field when its depth exceeds that field
by this factor (the training frames are padded to the patch, and a few millimetres of tissue
under the anatomy are in them)."""


def field_depth_flag(frame, field_depth_mm: float | None) -> str | None:
    """The QC flag of a frame deeper than the field a trained model was trained on, or None.

    Parameters
    ----------
    frame : Frame
        With its pixel spacing.
    field_depth_mm : float or None
        The model's training field depth in mm (None: no check).

    Returns
    -------
    str or None
        The flag, when the frame's depth (rows x axial spacing) exceeds `field_depth_mm` by
        more than `FIELD_DEPTH_MARGIN`.
    """
    if field_depth_mm is None or not field_depth_mm > 0:
        return None
    depth = frame.shape[0] * frame.spacing_mm[0]
    if depth <= FIELD_DEPTH_MARGIN * field_depth_mm:
        return None
    return (f"field {depth:.1f} mm deep, deeper than the model's training field "
            f"({field_depth_mm:.1f} mm): the tissue under the anatomy may be taken for a layer; "
            "check the deep layers (muscle, bone) on the overlay")


def _decode_on_own_grid(sc: np.ndarray, disp: Frame, prof: Profile, *,
                          priors, model: str, return_scores: bool,
                          log_probabilities: bool = True) -> SegmentationResult:
    """Decode scores on their own grid (a model's, or the classical working grid), refine
    log-probabilities to sub-pixel depth, and take the answer onto the frame's grid (see
    `segment_with`)."""
    rows, cols = disp.shape
    r, c = sc.shape[1:]
    ay, ax = disp.spacing_mm
    grid_spacing = (ay * rows / r, ax * cols / c)
    res = decode(sc, prof, grid_spacing, frequency_mhz=disp.meta.frequency_mhz, priors=priors,
                 model=model, log_probabilities=log_probabilities,
                 image=_image(disp) if log_probabilities else None)
    conf = column_confidence(sc, res.labels) if log_probabilities else None
    fine = refine_surfaces(res.surfaces, sc, res.labels) if log_probabilities else res.surfaces
    surfaces = resample_surfaces(fine, r, (rows, cols))
    labels = surfaces_to_labels(surfaces, prof, rows)
    x_from = (np.arange(c) + 0.5) * (cols / c) - 0.5
    out = SegmentationResult(labels, surfaces, prof, list(res.flags), None, model,
                             None if conf is None else
                             np.interp(np.arange(cols, dtype=np.float64), x_from, conf))
    if conf is not None:   # judged on the grid it was computed on
        _flag_uncertain(out, conf, priors)
    if return_scores and not log_probabilities:
        out.scores = resample_to_shape(sc, (rows, cols), order=1).astype(np.float64)
    elif return_scores:
        # log-probabilities come from a trained model, so torch and MONAI are loaded already
        import torch

        from .trained.predict import to_frame_grid
        out.scores = to_frame_grid(torch.from_numpy(np.ascontiguousarray(sc)), (rows, cols))
    return out


def _image(disp: Frame) -> tuple[np.ndarray, float]:
    """A display frame's grey levels and the dynamic range mapping them (the default when the
    frame does not say), as the decode's image evidence takes them."""
    dr = disp.display_dynamic_range_db
    return disp.bmode, float(dr if dr else DEFAULT_DYNAMIC_RANGE_DB)


def resample_to_shape(arr: np.ndarray, shape: Sequence[int], order: int = 1) -> np.ndarray:
    """Resample the last two axes of `arr` to `shape`, keeping the physical extent.

    Parameters
    ----------
    arr : ndarray, shape (..., rows, cols)
    shape : (rows_out, cols_out)
    order : int
        0 nearest (label maps: values kept exactly), 1 linear (images, scores).

    Returns
    -------
    ndarray, shape (..., rows_out, cols_out)
        Same dtype as `arr`. Pixel edges map to pixel edges (``grid_mode``), so going to another
        grid and back lands each pixel within one pixel of where it was.
    """
    arr = np.asarray(arr)
    lead = arr.shape[:-2]
    shape = tuple(int(v) for v in shape)
    if tuple(arr.shape[-2:]) == shape:
        return arr.copy()
    zoom = [o / i for o, i in zip(shape, arr.shape[-2:])]
    src = arr if order == 0 else arr.astype(np.float32, copy=False)
    src = src.reshape((-1,) + src.shape[-2:])
    out = np.empty((src.shape[0],) + shape, dtype=src.dtype)
    # one 2-D zoom per plane: the same values as a zoom over the leading axes too (factor 1
    # there), at a third of the time (scipy interpolates every axis it is given)
    for i, plane in enumerate(src):
        z = ndi.zoom(plane, zoom, order=order, mode="nearest", grid_mode=True, prefilter=False)
        if z.shape != shape:        # zoom rounds; force the asked size
            z = z[:shape[0], :shape[1]]
            z = np.pad(z, [(0, shape[0] - z.shape[0]), (0, shape[1] - z.shape[1])], mode="edge")
        out[i] = z
    return out.reshape(lead + shape).astype(arr.dtype, copy=False)
