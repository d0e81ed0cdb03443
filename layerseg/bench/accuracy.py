"""Accuracy of a segmenter on a labelled dataset: the code behind ``layerseg bench accuracy``.

Per frame and layer (labels 1-7 of the label map; background is not a layer):

* Dice of the layer's masks, 95 % Hausdorff distance (HD95) and average symmetric surface
  distance (ASSD) in mm between the layers' surfaces, all from `layerseg.metrics.layer_metrics`,
  so they equal MONAI's figures (``DiceMetric(ignore_empty=False)``,
  ``compute_hausdorff_distance(percentile=95)``, ``compute_average_surface_distance(symmetric=
  True)``), image border counted as background (see that module for the border and empty-mask
  conventions). A layer in neither truth nor answer is not scored (NaN); a layer in one of them
  only has Dice 0 and non-finite distances (HD95 NaN, ASSD inf), which are not averaged;
* thickness: the frame's mean thickness of the layer along the local normal of its top surface
  (`layerseg.layers.thickness_normal_mm` on the surfaces of the label map; columns where the
  layer is absent count as 0 mm), for truth and answer; the error is their absolute difference.

Over the dataset, each metric is the mean over the frames where it is defined: Dice and thickness
over the frames where the layer is in the truth or the answer, distances where both have it. A
layer absent from both truth and answer in every frame is left out. Order violations are the
columns of the answers that break the region's layer order (`layerseg.layers.order_violations`).

One code path for every model: the answer of a frame is ``layerseg.segmentation.segment(frame,
model=model)``, so trained checkpoints plug in there later.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..batch import run_each
from ..errors import DatasetError, LayersegError
from ..io.safe_write import atomic_write, check_outputs, write_text_atomic
from ..layers.profiles import LABEL_NAMES, resolve_profile
from ..layers.surfaces import check_spacing, labels_to_surfaces, order_violations
from ..layers.thickness import thickness_normal_mm
from ..metrics import layer_metrics
from ..segmentation import model_info

__all__ = ["mean_thickness_mm", "frame_metrics", "summarise", "evaluate_dataset",
           "write_accuracy", "LAYER_NAMES", "CSV_METRICS"]

LAYER_NAMES = LABEL_NAMES[1:]
"""The layers scored: labels 1-7 (background is not a layer)."""

CSV_METRICS = ("dice", "hd95_mm", "assd_mm", "thickness_truth_mm", "thickness_pred_mm",
               "thickness_abs_err_mm")
"""Per-layer columns of the per-frame CSV (``<layer>_<metric>``)."""

def mean_thickness_mm(labels, profile, spacing_mm) -> dict[str, float]:
    """Mean thickness of each layer of a label map along the normal of its top surface, in mm.

    Parameters
    ----------
    labels : ndarray of int, shape (rows, cols)
        Label map obeying `profile` (columns that do not are read as `labels_to_surfaces` with
        ``strict=False`` reads them).
    profile : Profile or str or None
    spacing_mm : (float, float)

    Returns
    -------
    dict
        Layer name -> mean over columns (absent columns count 0 mm; columns whose normal leaves
        the frame are skipped); NaN when no column is measurable.
    """
    prof = resolve_profile(profile)[0] if not hasattr(profile, "layers") else profile
    sp = check_spacing(spacing_mm, "thickness in mm")
    S = labels_to_surfaces(labels, prof, strict=False)
    th = thickness_normal_mm(S, sp)
    absent = (S[1:] - S[:-1]) <= 0
    th = np.where(absent, 0.0, th)
    out = {}
    for k, name in enumerate(prof.layers):
        v = th[k]
        v = v[np.isfinite(v)]
        out[name] = float(v.mean()) if v.size else float("nan")
    return out


def frame_metrics(truth, pred, spacing_mm, region=None) -> dict[str, Any]:
    """Every per-frame metric of one answer against its truth.

    Parameters
    ----------
    truth, pred : ndarray of int, shape (rows, cols)
        Label maps 0-7.
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm.
    region : str, optional
        Region profile for order violations and thickness.

    Returns
    -------
    dict
        ``order_violations`` (int, columns of `pred` out of order) and ``layers``: layer name ->
        dict with ``present_truth``, ``present_pred`` (bool) and the `CSV_METRICS` values.
    """
    t = np.asarray(truth)
    p = np.asarray(pred)
    if t.shape != p.shape or t.ndim != 2:
        raise DatasetError(f"answer shape {p.shape} differs from the label map shape {t.shape}")
    sp = check_spacing(spacing_mm, "accuracy metrics in mm")
    prof, _ = resolve_profile(region)
    th_t = mean_thickness_mm(t, prof, sp)
    th_p = mean_thickness_mm(p, prof, sp)
    scores = layer_metrics(p, t, sp)
    layers = {}
    for lab, name in enumerate(LABEL_NAMES):
        if lab == 0:
            continue
        s = scores[lab]
        pa, pb = s["present_truth"], s["present_pred"]
        m: dict[str, Any] = {"present_truth": pa, "present_pred": pb}
        m["dice"] = s["dice"] if (pa or pb) else float("nan")   # in neither map: not scored
        m["hd95_mm"] = s["hd95_mm"]
        m["assd_mm"] = s["assd_mm"]
        tt = th_t.get(name, float("nan")) if pa else 0.0
        tp = th_p.get(name, float("nan")) if pb else 0.0
        m["thickness_truth_mm"] = tt
        m["thickness_pred_mm"] = tp
        m["thickness_abs_err_mm"] = abs(tt - tp) if (pa or pb) else float("nan")
        layers[name] = m
    return {"order_violations": int(order_violations(p, prof)), "layers": layers}


def _nanmean(v: list[float]) -> float | None:
    a = np.asarray([x for x in v if x is not None and math.isfinite(x)], dtype=np.float64)
    return float(a.mean()) if a.size else None


def summarise(per_frame: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The DESIGN.md accuracy summary of `frame_metrics` results.

    Returns
    -------
    dict
        ``{"frames": n, "order_violations": n, "layers": {name: {"dice", "hd95_mm", "assd_mm",
        "thickness_mae_mm"}}}``; a layer absent from truth and answer in every frame is left
        out; a metric defined in no frame is None (JSON null).
    """
    per_frame = list(per_frame)
    out: dict[str, Any] = {"frames": len(per_frame),
                           "order_violations": int(sum(f["order_violations"] for f in per_frame)),
                           "layers": {}}
    for name in LAYER_NAMES:
        rows = [f["layers"][name] for f in per_frame
                if f["layers"][name]["present_truth"] or f["layers"][name]["present_pred"]]
        if not rows:
            continue
        out["layers"][name] = {
            "dice": _nanmean([r["dice"] for r in rows]),
            "hd95_mm": _nanmean([r["hd95_mm"] for r in rows]),
            "assd_mm": _nanmean([r["assd_mm"] for r in rows]),
            "thickness_mae_mm": _nanmean([r["thickness_abs_err_mm"] for r in rows]),
        }
    return out


def evaluate_dataset(data, model: str = "classical", config=None,
                     predict: Callable | None = None, progress: bool = False
                     ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Segment every labelled frame of a dataset and measure the answers against the labels.

    Parameters
    ----------
    data : path or Dataset
        A dataset folder in the DESIGN.md layout (any image format it allows, spacing from the
        header or the manifest), or an opened `layerseg.io.dataset.Dataset`.
    model : str
        Passed to `layerseg.segmentation.segment` (``"classical"`` now; checkpoints later).
    config : dict or path, optional
        Segmenter configuration overrides.
    predict : callable, optional
        ``predict(frame) -> labels`` replacing `segment` (for tests and custom models).
    progress : bool
        Show a progress bar (tqdm) on stderr.

    Returns
    -------
    summary : dict
        As `summarise`, and ``segmenter`` (`layerseg.segmentation.model_info`; ``model`` and
        ``error`` when the model cannot run) when `predict` is not given.
    rows : list of dict
        One per frame: ``id``, ``region``, ``status`` (``ok`` / ``failed``), ``error``,
        ``order_violations``, ``seconds`` and ``<layer>_<metric>`` for `CSV_METRICS`.
        A frame that fails (unreadable, no label map, no spacing, segmenter error) is recorded
        with its reason and the loop goes on.
    """
    from ..io.dataset import Dataset, read_dataset
    # frames are checked one by one as they are read: one bad frame is a failed row, not a
    # refused run
    ds = data if isinstance(data, Dataset) else read_dataset(data, validate=False)
    custom = predict
    if predict is None:
        from ..segmentation import segment

        def predict(frame):
            return segment(frame, model=model, config=config)

    def work(i: int) -> tuple[dict[str, Any], float, str | None]:
        item = ds[i]
        if item.label is None:
            raise DatasetError("no label map in the manifest; accuracy needs one",
                               ds.root / ds.rows[i]["image"])
        t0 = time.perf_counter()
        pred = np.asarray(predict(item.frame))
        seconds = time.perf_counter() - t0
        _, note = resolve_profile(item.frame.meta.region)
        return frame_metrics(item.label, pred, item.frame.spacing_mm,
                             item.frame.meta.region), seconds, note

    per_frame, rows = [], []
    for i, out in enumerate(run_each(range(len(ds)), work, key=lambda i: ds.rows[i]["id"],
                                     progress="bench accuracy" if progress else None)):
        row: dict[str, Any] = {"id": out.key, "region": ds.rows[i].get("region") or "",
                               "status": "ok", "error": "", "notes": "",
                               "order_violations": "", "seconds": ""}
        if not out.ok:
            row["status"] = "failed"
            row["error"] = out.error
            rows.append(row)
            continue
        m, seconds, note = out.value
        row["seconds"] = round(seconds, 4)
        row["notes"] = note or ""
        per_frame.append(m)
        row["order_violations"] = m["order_violations"]
        for name in LAYER_NAMES:
            for k in CSV_METRICS:
                v = m["layers"][name][k]
                row[f"{name}_{k}"] = "" if v is None or not math.isfinite(v) else round(v, 6)
        rows.append(row)
    summary = summarise(per_frame)
    if custom is None:
        try:
            summary["segmenter"] = model_info(model)
        except LayersegError as e:   # every frame has failed with the same reason
            summary["segmenter"] = {"model": str(model), "error": str(e)}
    return summary, rows


def write_accuracy(summary: dict, rows: list[dict], json_path, csv_path=None) -> tuple[Path, Path]:
    """Write the summary JSON and the per-frame CSV (default: the JSON path with ``.csv``).

    Returns
    -------
    (json_path, csv_path)
    """
    jp = Path(json_path)
    cp = Path(csv_path) if csv_path is not None else jp.with_suffix(".csv")
    check_outputs([jp, cp])
    write_text_atomic(jp, json.dumps(summary, indent=2) + "\n")
    cols = ["id", "region", "status", "error", "notes", "order_violations", "seconds"] + \
        [f"{n}_{k}" for n in LAYER_NAMES for k in CSV_METRICS]
    with atomic_write(cp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    return jp, cp
