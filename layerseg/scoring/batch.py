"""`score_dataset`: score every frame of a labelled dataset folder (DESIGN.md layout) into long and
wide tables, optionally against a second label source with agreement statistics.

A frame that cannot be scored at all (unreadable file, label map of another shape, no label map)
is recorded with ``frame_status`` 'failed' and its reason and the batch goes on (the one batch
loop, `layerseg.batch.run_each`); the command line exits non-zero at the end. A frame that fails
QC is scored and flagged (``qc_pass`` False). Outputs are checked before any work (none may be
an input of the run or another output; their folders must be writable) and written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..batch import run_each
from ..errors import DatasetError
from ..io.safe_write import check_outputs, dataset_input_files
from ..io.dataset import load_array, read_dataset
from .agreement import agreement
from .markers import ScoreOptions, score
from .table import FrameScores, failed_scores, write_table

__all__ = ["score_dataset", "score_items", "dataset_tables"]

_LABEL_EXTS = (".png", ".npy", ".nii.gz", ".nii", ".tif", ".tiff")


def _num(v) -> float | None:
    if v is None or str(v).strip() == "":
        return None
    try:
        x = float(v)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _keys(row: dict) -> dict:
    return {"subject_id": row.get("subject_id") or None, "region": row.get("region") or None,
            "sex": row.get("sex") or None, "age": _num(row.get("age"))}


def _label_from_dir(label_dir: Path, frame_id: str) -> np.ndarray:
    for ext in _LABEL_EXTS:
        p = label_dir / f"{frame_id}{ext}"
        if p.is_file():
            arr, _ = load_array(p)
            return np.asarray(arr)
    raise DatasetError(f"no label file for frame {frame_id!r} (looked for "
                       f"{frame_id}{{{','.join(_LABEL_EXTS)}}})", label_dir)


def score_items(data_dir: str | Path, *, labels: str | Path | None = None,
                options: ScoreOptions | None = None) -> Iterator[FrameScores]:
    """Score each frame of a dataset, one `FrameScores` per manifest row (failed ones included).

    Parameters
    ----------
    data_dir : path
        Dataset folder with ``manifest.csv``.
    labels : path, optional
        A folder of label maps named ``<id>.png`` / ``.npy`` / ``.nii.gz`` to use instead of the
        dataset's own labels.
    options : ScoreOptions, optional
    """
    ds = read_dataset(data_dir, validate=False)
    label_dir = Path(labels) if labels is not None else None

    def work(i: int) -> FrameScores:
        row = ds.rows[i]
        fid, keys = row["id"], _keys(row)
        item = ds[i]
        lab = _label_from_dir(label_dir, fid) if label_dir is not None else item.label
        if lab is None:
            raise DatasetError("no label map in the manifest", ds.root / row["image"])
        return score(item.frame, lab, region=keys["region"], frame_id=fid, sex=keys["sex"],
                     age=keys["age"], subject_id=keys["subject_id"],
                     confidence=_num(row.get("confidence")), options=options)

    for i, out in enumerate(run_each(range(len(ds)), work, key=lambda i: ds.rows[i]["id"])):
        yield out.value if out.ok else failed_scores(out.key, out.error, _keys(ds.rows[i]))


def dataset_tables(scores: Iterable[FrameScores]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Concatenate `FrameScores` into ``(long, wide, n_failed)``."""
    scores = list(scores)
    if not scores:
        raise DatasetError("the dataset holds no frame")
    long = pd.concat([s.to_long() for s in scores], ignore_index=True)
    wide = pd.concat([s.to_wide() for s in scores], ignore_index=True)
    return long, wide, sum(s.failed for s in scores)


def _is_dataset(p: Path) -> bool:
    return p.is_dir() and (p / "manifest.csv").is_file()


def score_dataset(data_dir: str | Path, out_csv: str | Path, *, parquet: str | Path | None = None,
                  wide: str | Path | None = None, compare: str | Path | None = None,
                  agreement_out: str | Path | None = None, options: ScoreOptions | None = None,
                  log=None) -> dict:
    """Score a labelled dataset and write the tables; returns what happened.

    Parameters
    ----------
    data_dir : path
        Dataset folder (DESIGN.md layout) with label maps.
    out_csv : path
        Long table (one row per frame and layer), CSV.
    parquet : path, optional
        The long table again as Parquet.
    wide : path, optional
        Wide table (one row per frame); ``.parquet`` writes Parquet, anything else CSV.
    compare : path, optional
        A second label source for the same frames: a dataset folder (scored on its own frames)
        or a folder of label maps named by frame id (scored on this dataset's frames).
    agreement_out : path, optional
        Agreement table (default: ``<out_csv stem>_agreement.csv`` when `compare` is given).
    options : ScoreOptions, optional
    log : callable(str), optional
        Receives one line per failed frame and a summary.

    Returns
    -------
    dict
        ``frames``, ``scored``, ``failed`` (frames that could not be scored at all),
        ``qc_flagged`` (scored but failing QC), ``compare_failed`` (frames of the comparison
        source that failed), ``failures`` (``[{"key", "error"}]``) and ``outputs`` (paths
        written). The command line exits non-zero when ``failed`` or ``compare_failed``.

    Raises
    ------
    OutputError
        Before any work: an output is an input of the run or another output, or its folder
        cannot be written.
    DatasetError
        The dataset folder (or the `compare` source) cannot be read at all.
    """
    log = log or (lambda msg: None)
    cp = Path(compare) if compare is not None else None
    ap = None
    if cp is not None:
        ap = Path(agreement_out) if agreement_out is not None else \
            Path(out_csv).with_name(Path(out_csv).stem + "_agreement.csv")
    inputs = dataset_input_files(data_dir)
    if cp is not None:
        inputs += dataset_input_files(cp) if _is_dataset(cp) else [cp]
    outputs = check_outputs([out_csv, parquet, wide, ap], inputs)
    long, wide_t, n_failed = dataset_tables(score_items(data_dir, options=options))
    write_table(long, out_csv)
    if parquet is not None:
        write_table(long, parquet)
    if wide is not None:
        write_table(wide_t, wide)
    for _, r in wide_t[wide_t["frame_status"] == "failed"].iterrows():
        log(f"FAILED {r['id']}: {r['frame_reason']}")
    n_qc = int((wide_t["qc_pass"] == False).sum()) - n_failed  # noqa: E712
    n_failed_b = 0
    if cp is not None:
        if _is_dataset(cp):
            other = score_items(cp, options=options)
        elif cp.is_dir():
            other = score_items(data_dir, labels=cp, options=options)
        else:
            raise DatasetError("--compare must be a dataset folder or a folder of label maps", cp)
        long_b, _, n_failed_b = dataset_tables(other)
        ok_a = long[long["frame_status"] == "scored"]
        ok_b = long_b[long_b["frame_status"] == "scored"]
        agr = agreement(ok_a, ok_b)
        write_table(agr, ap)
        log(f"agreement of {ok_a['id'].nunique()} / {ok_b['id'].nunique()} scored frames -> {ap}")
        if n_failed_b:
            log(f"{n_failed_b} frame(s) of the comparison source failed")
    log(f"{len(wide_t)} frame(s): {len(wide_t) - n_failed} scored ({n_qc} flagged by QC), "
        f"{n_failed} failed")
    failed = wide_t[wide_t["frame_status"] == "failed"]
    return {"frames": len(wide_t), "scored": len(wide_t) - n_failed, "failed": n_failed,
            "qc_flagged": n_qc, "compare_failed": n_failed_b,
            "failures": [{"key": r["id"], "error": r["frame_reason"]} for _, r in failed.iterrows()],
            "outputs": [str(p) for p in outputs]}
