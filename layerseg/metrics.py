"""Segmentation metrics: Dice, 95 % Hausdorff distance and average symmetric surface distance.

The one owner of these figures (DESIGN.md: a concept has one owner): ``layerseg bench accuracy``,
the training loop and the report all call this module, and its figures equal those of
``monai.metrics`` (MONAI 1.6) for the same masks and spacing, so a trained model's logged figures
and the benchmark's agree. numpy and scipy only: importing it never imports torch or MONAI.

Masks are 2-D arrays ``(rows, cols) = (depth, lateral)``, nonzero = foreground; label maps hold the
labels 0-7 of DESIGN.md; the pixel spacing is ``(axial_mm, lateral_mm)`` and every distance is in
mm (anisotropic pixels handled exactly).

Border convention (as MONAI's ``get_mask_edges`` with ``spacing=None``, which pads the cropped
masks with background and takes ``mask ^ scipy.ndimage.binary_erosion(mask)``): the surface
(edge) of a mask is the set of its pixels that have a 4-neighbour outside the mask *or outside the
image*; the image border counts as background, so a mask touching the border has its border
pixels as edge (a layer spanning the frame's width has its left and right columns in its surface,
not only its top and bottom), and a mask filling the whole frame has the frame's outline as
surface. Surface distances are exact Euclidean distances in mm between edge-pixel centres
(``distance_metric="euclidean"``): for every edge pixel of one mask, the distance to the nearest
edge pixel of the other. HD95 is the larger of the two directed 95th percentiles (linear
interpolation, as ``torch.quantile`` and ``numpy.percentile``); ASSD is the mean of both
directions' distances pooled (``symmetric=True``: each direction weighted by its number of edge
pixels, not the mean of the two means).

Empty masks (MONAI's figures, pinned by tests against the installed MONAI): `dice` is NaN when the
truth is empty with ``ignore_empty=True`` (MONAI's default), and with ``ignore_empty=False`` 1.0 when
both are empty and 0.0 when only the truth is; an empty prediction against a non-empty truth is
0.0. `hausdorff95_mm` is NaN when either mask (or both) is empty. `assd_mm` is +inf when exactly one
mask is empty and NaN when both are. `layer_metrics` applies the same rules per label.
``layerseg bench accuracy`` scores a layer in a frame only where truth or answer holds it, with
``ignore_empty=False`` (a layer found where the truth has none scores Dice 0), and averages each
figure over the frames where it is finite: Dice over the frames holding the layer in truth or
answer, HD95 and ASSD over those holding it in both.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from .checks import check_label_map, check_spacing
from .errors import InvalidImageError

__all__ = ["dice", "mask_edges", "surface_distances_mm", "hausdorff95_mm", "assd_mm",
           "layer_metrics", "HD_PERCENTILE"]

HD_PERCENTILE = 95.0
"""Percentile of the directed surface distances taken by `hausdorff95_mm`."""

_CROSS = ndi.generate_binary_structure(2, 1)


def _check_masks(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred)
    t = np.asarray(truth)
    if p.ndim != 2 or p.shape != t.shape:
        raise InvalidImageError(f"masks must be 2-D (rows, cols) and of one shape, got {p.shape} "
                                f"and {t.shape}")
    return p.astype(bool, copy=False), t.astype(bool, copy=False)


def _dice(p: np.ndarray, t: np.ndarray, ignore_empty: bool) -> float:
    nt = int(np.count_nonzero(t))
    npred = int(np.count_nonzero(p))
    if nt > 0:
        return 2.0 * int(np.count_nonzero(p & t)) / (nt + npred)
    if ignore_empty:
        return float("nan")
    return 1.0 if npred == 0 else 0.0


def dice(pred, truth, *, ignore_empty: bool = True) -> float:
    """Dice coefficient of a predicted and a true mask, as MONAI's ``DiceMetric``.

    Parameters
    ----------
    pred, truth : array_like, shape (rows, cols)
        Masks; nonzero is foreground.
    ignore_empty : bool
        What an empty truth gives, as MONAI's argument of that name: NaN when True (MONAI's
        default); when False, 1.0 if `pred` is empty too, else 0.0.

    Returns
    -------
    float
        ``2 |P & T| / (|P| + |T|)`` when `truth` is not empty (0.0 for an empty `pred`).

    Raises
    ------
    InvalidImageError
        Masks not 2-D or not of one shape.
    """
    p, t = _check_masks(pred, truth)
    return _dice(p, t, ignore_empty)


def mask_edges(mask) -> np.ndarray:
    """The surface (edge pixels) of a mask, image border counted as background.

    Parameters
    ----------
    mask : array_like, shape (rows, cols)
        Nonzero is foreground.

    Returns
    -------
    ndarray of bool, shape (rows, cols)
        The mask's pixels with a 4-neighbour outside the mask or outside the image
        (``mask ^ binary_erosion(mask, border_value=0)``, MONAI's ``get_mask_edges``).
    """
    m = np.asarray(mask).astype(bool, copy=False)
    if m.ndim != 2:
        raise InvalidImageError(f"a mask must be 2-D (rows, cols), got shape {m.shape}")
    return m & ~ndi.binary_erosion(m, structure=_CROSS, border_value=0)


def _edge_points_mm(p: np.ndarray, t: np.ndarray, sp: tuple[float, float]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Edge-pixel centres of both masks, in mm, (n, 2) each.

    Both masks are cropped to the bounding box of their union before the erosion (as MONAI
    does); everything outside it is background in both, which ``border_value=0`` reproduces
    exactly, so the crop changes no edge and only saves time. Coordinates are relative to the
    crop, which shifts both sets alike and leaves every distance unchanged.
    """
    u = p | t
    rows = np.flatnonzero(u.any(axis=1))
    if rows.size == 0:
        z = np.empty((0, 2))
        return z, z
    cols = np.flatnonzero(u.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    scale = np.asarray(sp, dtype=np.float64)
    out = []
    for m in (p[box], t[box]):
        e = m & ~ndi.binary_erosion(m, structure=_CROSS, border_value=0)
        out.append(np.argwhere(e) * scale)
    return out[0], out[1]


def _directed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For every point of `a`, the distance to the nearest point of `b` (+inf when `b` is empty)."""
    if len(a) == 0:
        return np.empty(0)
    if len(b) == 0:
        return np.full(len(a), np.inf)
    return cKDTree(b, leafsize=32, balanced_tree=False).query(a, k=1)[0]


def _surface_distances(p, t, sp) -> tuple[np.ndarray, np.ndarray]:
    ep, et = _edge_points_mm(p, t, sp)
    return _directed(ep, et), _directed(et, ep)


def surface_distances_mm(pred, truth, spacing_mm) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances between two masks, in mm (see the module's border convention).

    Parameters
    ----------
    pred, truth : array_like, shape (rows, cols)
        Masks; nonzero is foreground.
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm.

    Returns
    -------
    d_pred_to_truth, d_truth_to_pred : 1-D ndarrays of float64
        For each edge pixel of one mask (in row-major order), the Euclidean distance in mm to the
        nearest edge pixel of the other. An empty mask has no edge pixel: its own array is empty
        and the other one is all +inf.

    Raises
    ------
    SpacingRequiredError, CalibrationError
        No spacing, or a bad one (`layerseg.checks.check_spacing`).
    InvalidImageError
        Masks not 2-D or not of one shape.
    """
    p, t = _check_masks(pred, truth)
    sp = check_spacing(spacing_mm, "surface distances in mm")
    return _surface_distances(p, t, sp)


def _hd95(d_pt: np.ndarray, d_tp: np.ndarray) -> float:
    if len(d_pt) == 0 or len(d_tp) == 0 or np.isinf(d_pt).any() or np.isinf(d_tp).any():
        return float("nan")
    return float(max(np.percentile(d_pt, HD_PERCENTILE), np.percentile(d_tp, HD_PERCENTILE)))


def _assd(d_pt: np.ndarray, d_tp: np.ndarray) -> float:
    n = len(d_pt) + len(d_tp)
    if n == 0:
        return float("nan")
    return float((d_pt.sum() + d_tp.sum()) / n)


def hausdorff95_mm(pred, truth, spacing_mm) -> float:
    """95 % Hausdorff distance between two masks' surfaces, in mm.

    As MONAI's ``compute_hausdorff_distance(percentile=95, spacing=spacing_mm)`` (symmetric,
    Euclidean): the larger of the two directed 95th percentiles of `surface_distances_mm`.

    Parameters
    ----------
    pred, truth : array_like, shape (rows, cols)
        Masks; nonzero is foreground.
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm.

    Returns
    -------
    float
        mm; NaN when either mask is empty (MONAI: the percentile of infinite distances is NaN).
    """
    return _hd95(*surface_distances_mm(pred, truth, spacing_mm))


def assd_mm(pred, truth, spacing_mm) -> float:
    """Average symmetric surface distance between two masks, in mm.

    As MONAI's ``compute_average_surface_distance(symmetric=True, spacing=spacing_mm)``: the mean
    of both directions' distances of `surface_distances_mm` pooled together.

    Parameters
    ----------
    pred, truth : array_like, shape (rows, cols)
        Masks; nonzero is foreground.
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm.

    Returns
    -------
    float
        mm; +inf when exactly one mask is empty, NaN when both are.
    """
    return _assd(*surface_distances_mm(pred, truth, spacing_mm))


def layer_metrics(pred_labels, true_labels, spacing_mm, labels: Iterable[int] | None = None,
                  *, ignore_empty: bool = False) -> dict[int, dict]:
    """Dice, HD95 and ASSD of every label of a predicted label map against the true one.

    One edge extraction and one pair of nearest-neighbour searches per label give both HD95
    and ASSD. The figures equal MONAI's ``DiceMetric(include_background=True,
    ignore_empty=ignore_empty)``, ``compute_hausdorff_distance(include_background=True,
    percentile=95)`` and ``compute_average_surface_distance(include_background=True,
    symmetric=True)`` on the one-hot maps restricted to `labels`.

    Parameters
    ----------
    pred_labels, true_labels : array_like of int, shape (rows, cols)
        Label maps 0-7 (`layerseg.checks.check_label_map`).
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm.
    labels : iterable of int, optional
        The labels to score; default 1-7 (every layer; background 0 is not a layer, as
        ``include_background=False``).
    ignore_empty : bool
        Passed to `dice`. False by default here, so that a label found where the truth has
        none scores 0.0 (True gives NaN there, MONAI's default).

    Returns
    -------
    dict
        label -> ``{"dice", "hd95_mm", "assd_mm"}`` (floats, empty-mask conventions of the
        module) and ``"present_pred"``, ``"present_truth"`` (bool: the label occurs in the map).

    Raises
    ------
    LabelMapError
        A map that is not 2-D integer 0-7, or maps of different shapes.
    SpacingRequiredError, CalibrationError
        No spacing, or a bad one.
    """
    p = check_label_map(pred_labels, what="predicted label map")
    t = check_label_map(true_labels, shape=p.shape, what="true label map")
    sp = check_spacing(spacing_mm, "layer metrics in mm")
    if labels is None:
        from .layers.profiles import N_LABELS  # lazy, as in checks: the core stays light
        labels = range(1, N_LABELS)
    out: dict[int, dict] = {}
    for lab in labels:
        lab = int(lab)
        a, b = p == lab, t == lab
        d_pt, d_tp = _surface_distances(a, b, sp)
        out[lab] = {"dice": _dice(a, b, ignore_empty), "hd95_mm": _hd95(d_pt, d_tp),
                    "assd_mm": _assd(d_pt, d_tp), "present_pred": bool(a.any()),
                    "present_truth": bool(b.any())}
    return out
