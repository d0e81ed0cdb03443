"""`run_infer`: the batch inference run behind ``layerseg infer``: a folder of exams in; label
maps, overlays, scores and a readable report out.

Layout of the output folder ``DIR``::

    DIR/exams/<exam key>/labels.nii.gz      every frame's label map 0-7 stacked as one 3-D volume
                                            (cols, rows, frames), spacing in the header (mm);
                                            a frame that failed is all 0 there (see done.json)
    DIR/exams/<exam key>/labels_fNNN.png    label map of frame NNN, grey values 0-7
    DIR/exams/<exam key>/overlay_fNNN.png   layer outlines and names on the B-mode (elastography
                                            beside it when the frame has it)
    DIR/exams/<exam key>/scores.csv         per-frame, per-layer scores of the exam (long form;
    DIR/exams/<exam key>/scores.parquet     also as Parquet: the run's tables are built from it)
    DIR/exams/<exam key>/report.html        self-contained report (images embedded)
    DIR/exams/<exam key>/done.json          written LAST: the exam is complete
    DIR/scores.csv, DIR/scores.parquet      every exam's scores, one row per frame and layer
    DIR/summary.json                        what succeeded, what failed and why
    DIR/run.log                             one line per exam, time-stamped
    DIR/key_map.csv                         exam key -> input file, only with write_key_map

The exam key is a salted pseudonymous key of the input file (`exam_key`): no file name, path or
DICOM header field reaches any output unless ``keep_ids``. An exam whose every frame failed
leaves nothing under ``exams/``; a run is resumable: an exam whose ``done.json`` exists and whose
input is unchanged (size and modification time) is skipped, an incomplete one is redone.

The files carrying the time of the run are ``run.log`` and the ``run`` block of
``summary.json``; every other file is byte-identical for the same inputs and options, whether
the run was resumed or not.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..batch import run_each
from ..errors import ConfigError, LayersegError, OutputError, ReadError
from ..checks import check_spacing
from ..io.safe_write import check_outputs, check_writable, write_text_atomic
from .pipeline import (ExamResult, FrameResult, check_model, exam_key, find_inputs, group_exams,
                       is_output_folder,
                       infer_frames, redact)
from .writers import png_bytes, render_overlay, write_bytes, write_label_nifti

__all__ = ["run_infer", "write_exam", "read_done", "DONE_FILE", "TIMED_FIELDS"]

DONE_FILE = "done.json"
"""The file that marks an exam folder complete (written last)."""

TIMED_FIELDS = ("run",)
"""Top-level keys of ``summary.json`` that depend on the time of the run (and on resuming)."""

_SLEEP_ENV = "LAYERSEG_INFER_TEST_SLEEP_S"
"""Test hook: seconds to sleep after each exam is written (lets a test interrupt a run)."""


class _NoFrameScored(LayersegError):
    """Every frame of an exam failed (the message is the first frame's reason)."""


def _input_stat(path: Path) -> dict:
    st = os.stat(path)
    return {"input_size": int(st.st_size), "input_mtime_ns": int(st.st_mtime_ns)}


def _json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n"


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")


def read_done(folder: str | os.PathLike) -> dict | None:
    """The ``done.json`` of an exam folder, or None when it is missing or unreadable."""
    try:
        d = json.loads((Path(folder) / DONE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _frame_failure(fr: FrameResult, keep_ids: bool) -> dict:
    err = fr.error if keep_ids else redact(fr.error, fr.path)
    return {"frame_index": fr.frame_index if fr.frame_index >= 0 else None, "error": err,
            "error_type": fr.error_type}


def _exam_table(exam: ExamResult, keep_ids: bool) -> pd.DataFrame:
    from ..scoring.table import failed_scores
    parts = []
    for fr in exam.frames:
        if fr.frame_index < 0:
            continue
        sc = fr.scores if fr.ok else failed_scores(
            fr.frame_id, fr.error if keep_ids else redact(fr.error, fr.path))
        t = sc.to_long()
        t.insert(0, "frame_index", fr.frame_index)
        t.insert(0, "exam", exam.key)
        if fr.ok:
            # the model's uncertainty flag is a QC fail reason already (qc_reason)
            t["segmentation_flags"] = "; ".join(
                f for f in fr.flags if f != fr.segmentation.uncertain) or None
            t["model"] = fr.segmentation.model
        parts.append(t)
    df = pd.concat(parts, ignore_index=True)
    for c in ("segmentation_flags", "model"):
        if c not in df:
            df[c] = None
    return df


def write_exam(exam: ExamResult, folder: str | os.PathLike, *, model: str, region: str | None,
               keep_ids: bool = False) -> dict:
    """Write one exam's outputs into `folder`, ``done.json`` last.

    Parameters
    ----------
    exam : ExamResult
        The exam's frames (at least one scored).
    folder : path
        ``DIR/exams/<exam key>``; anything already there (an incomplete earlier attempt) is
        removed first.
    model : str
        The model name, recorded.
    region : str or None
        The region asked for, recorded.
    keep_ids : bool
        Record the input path in ``done.json`` and keep file names in error messages.

    Returns
    -------
    dict
        The content of ``done.json``: ``exam``, ``input_size``, ``input_mtime_ns``, ``frames``,
        ``frames_scored``, ``frames_failed`` ([{frame_index, error, error_type}]), ``model``,
        ``model_sha256`` (`model_weights`), ``region``, ``layerseg_version``, ``files``.

    Raises
    ------
    _NoFrameScored
        No frame was scored: nothing is written (the folder is not created).
    OSError
        A write failed; the exam folder is removed.
    """
    ok = exam.ok_frames
    if not ok:
        first = exam.frames[0]
        raise _NoFrameScored(first.error if keep_ids else redact(first.error, exam.path))
    from .report import exam_report_html
    folder = Path(folder)
    stat = _input_stat(exam.path)  # before the writes: a changed input is redone next time
    weights = model_weights(model)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        files = []
        spacing = ok[0].frame.spacing_mm
        shape = ok[0].labels.shape
        stack = []
        for fr in exam.frames:
            if fr.frame_index < 0:
                continue
            if fr.ok and fr.labels.shape != shape:
                raise ReadError(f"frame {fr.frame_index} has another shape ({fr.labels.shape}) "
                                f"than frame {ok[0].frame_index} ({shape})", None)
            stack.append(fr.labels if fr.ok else np.zeros(shape, np.uint8))
        write_label_nifti(folder / "labels.nii.gz", stack, spacing)
        files.append("labels.nii.gz")
        overlays = {}
        for fr in ok:
            name = f"labels_f{fr.frame_index:03d}.png"
            write_bytes(folder / name, png_bytes(fr.labels))
            over = png_bytes(render_overlay(fr.frame, fr.labels, fr.segmentation.profile.layers))
            oname = f"overlay_f{fr.frame_index:03d}.png"
            write_bytes(folder / oname, over)
            overlays[fr.frame_index] = over
            files += [name, oname]
        table = _exam_table(exam, keep_ids)
        from ..scoring import write_table
        write_table(table, folder / "scores.csv")
        write_table(table, folder / "scores.parquet")
        files += ["scores.csv", "scores.parquet"]
        failed = [_frame_failure(fr, keep_ids) for fr in exam.failed_frames]
        done = {"exam": exam.key, **stat, "frames": len([f for f in exam.frames
                                                          if f.frame_index >= 0]),
                "frames_scored": len(ok), "frames_failed": failed, "model": model,
                "model_sha256": weights, "region": region, "layerseg_version": __version__}
        html = exam_report_html(exam, overlays, model=model + (
            f" (weights sha256 {weights[:12]})" if weights else ""), version=__version__,
            failures=failed)
        write_text_atomic(folder / "report.html", html)
        files.append("report.html")
        done["files"] = files
        if keep_ids:
            done["input"] = str(exam.path)
        write_text_atomic(folder / DONE_FILE, _json(done))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return done


class _RunLog:
    """``DIR/run.log``: time-stamped lines, rewritten atomically after each line; `deferred`
    keeps them until `flush` (a distributed run writes its log once, after every exam is done
    and the records are gathered, each exam's line stamped with its own time; a run that
    crashes midway leaves its exam folders, complete ones marked by done.json, but no new log
    lines)."""

    def __init__(self, path: Path, append: bool, deferred: bool = False):
        self.path = path
        self.deferred = deferred
        self.enabled = True
        self.lines: list[str] = []
        if append and path.is_file():
            self.lines = path.read_text(encoding="utf-8").splitlines()

    def __call__(self, msg: str, at: float | None = None) -> None:
        stamp = time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(at))
        self.lines.append(f"{stamp} {msg}")
        if not self.deferred:
            self.flush()

    def flush(self) -> None:
        if self.enabled:
            write_text_atomic(self.path, "\n".join(self.lines) + "\n")


def _quiet(msg: str) -> None:
    """An echo that says nothing (the processes of a distributed run other than rank 0)."""


def _resumable(folder: Path, key: str, f: Path, model: str, region: str | None) -> bool:
    """The exam folder holds a complete run of this input (unchanged), model (the same weights:
    a checkpoint replaced under the same name, or another release's default model, is not) and
    region."""
    done = read_done(folder)
    return done is not None and done.get("exam") == key and \
        {k: done.get(k) for k in ("input_size", "input_mtime_ns")} == _input_stat(f) and \
        done.get("model") == model and done.get("model_sha256") == model_weights(model) and \
        done.get("region") == region


def model_weights(model: str) -> str | None:
    """SHA-256 of the checkpoint `model` names (``default`` or a path), None for the classical
    segmenter: what ``done.json`` and ``summary.json`` record as ``model_sha256``."""
    from ..segmentation import model_info
    return model_info(model, runtime=False).get("checkpoint_sha256")


def exam_entry(outcome, exam: ExamResult, shown: str, *, keep_ids: bool,
               echo: Callable[[str], None]) -> dict:
    """What the run keeps of one processed exam: its status for ``summary.json`` and its
    ``run.log`` lines (the failures are echoed to the terminal, naming `shown`).

    Parameters
    ----------
    outcome : layerseg.batch.Outcome
        Of writing the exam (`write_exam`), its value the ``done.json`` content.
    exam : ExamResult
        The exam's frames.
    shown : str
        The input file as the user gave it (terminal lines only).
    keep_ids : bool
        Keep file names in the recorded error messages.
    echo : callable(str)
        The terminal.

    Returns
    -------
    dict
        ``{"exam": key, "status": {...}, "log": [lines], "at": time.time()}``; plain values only
        (it travels between the processes of a distributed run).
    """
    lines = []
    if outcome.ok:
        st = {"status": "done", "resumed": False, "done": outcome.value}
        n_bad = len(outcome.value["frames_failed"])
        lines.append(f"exam {outcome.key}: {outcome.value['frames_scored']}/"
                     f"{outcome.value['frames']} frame(s) scored ({outcome.seconds:.1f} s)")
        for fail in outcome.value["frames_failed"]:
            echo(f"FAILED {shown} frame {fail['frame_index']}: {fail['error']}")
        if n_bad:
            lines.append(f"exam {outcome.key}: {n_bad} frame(s) failed")
    else:
        err = outcome.error if keep_ids else redact(outcome.error, exam.path)
        etype = exam.frames[0].error_type if outcome.error_type == "_NoFrameScored" \
            else outcome.error_type
        st = {"status": "failed", "error": err, "error_type": etype,
              "frames": len([x for x in exam.frames if x.frame_index >= 0])}
        lines.append(f"exam {outcome.key}: FAILED ({etype}): {err}")
        echo(f"FAILED {shown} (exam {outcome.key}): {outcome.error}")
    return {"exam": outcome.key, "status": st, "log": lines, "at": time.time()}


def write_exams(exams: Iterable[ExamResult], out: Path, *, model: str, region: str | None,
                keep_ids: bool, echo: Callable[[str], None]) -> Iterator[dict]:
    """Write each exam under ``out/exams/<key>`` (`write_exam`), one `exam_entry` per exam;
    an exam that cannot be written is recorded and the next one goes on."""
    sleep_s = float(os.environ.get(_SLEEP_ENV, "0") or 0)

    def work(exam: ExamResult) -> dict:
        done = write_exam(exam, out / "exams" / exam.key, model=model, region=region,
                          keep_ids=keep_ids)
        if sleep_s > 0:
            time.sleep(sleep_s)
        return done

    pending: dict[str, ExamResult] = {}

    def remember(ex: ExamResult) -> str:
        pending[ex.key] = ex
        return ex.key

    for o in run_each(exams, work, key=remember):
        ex = pending.pop(o.key)
        yield exam_entry(o, ex, str(ex.path), keep_ids=keep_ids, echo=echo)


def _process(todo: list[Path], keys: dict[Path, str], out: Path, *, model, region, spacing,
             keep_ids, progress, workers, batch_size, device, echo) -> Iterator[dict]:
    """The run in this process: `infer_frames` over `todo`, each exam written as it ends."""
    frames = infer_frames(todo, model=model, region=region, spacing=spacing,
                          keys={f: keys[f] for f in todo},
                          progress="infer" if progress else None, workers=workers,
                          batch_size=batch_size, device=device)
    yield from write_exams(group_exams(frames), out, model=model, region=region,
                           keep_ids=keep_ids, echo=echo)


def _check_out_folder(out: Path, inputs: list[Path], resume: bool = False) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError("the output must be a folder; a file of that name exists", out)
    if not resume and out.is_dir() and is_output_folder(out):
        raise OutputError("the output folder holds an earlier run (summary.json, exams/); "
                          "nothing is overwritten: give --resume to continue it, or another "
                          "output folder", out)
    ro = Path(os.path.realpath(out))
    for i in inputs:
        ri = Path(os.path.realpath(i))
        if ri == ro or ro in ri.parents:
            raise OutputError(f"the input {i} lies inside the output folder; the run would read "
                              "its own outputs. Choose another output folder", out)


def _unique_keys(files: list[Path], keep_ids: bool) -> dict[Path, str]:
    keys: dict[Path, str] = {}
    used: set[str] = set()
    for f in files:
        k = exam_key(f, keep_ids=keep_ids)
        if k in used:  # two files with one stem (keep_ids): tell them apart
            k = f"{k}-{exam_key(f)[:8]}"
        used.add(k)
        keys[f] = k
    return keys


def run_infer(inputs: Iterable[str | os.PathLike], out: str | os.PathLike, *,
              model: str = "default", region: str | None = None,
              spacing: tuple[float, float] | None = None, resume: bool = False,
              keep_ids: bool = False, write_key_map: bool = False, progress: bool = True,
              echo: Callable[[str], None] | None = None, workers: int = 1,
              batch_size: int = 1, device: str = "cpu", devices: int | None = None,
              num_nodes: int = 1) -> dict:
    """Run batch inference over files and folders and write everything to `out`.

    Parameters
    ----------
    inputs : iterable of path
        Files and folders (walked recursively; hidden files and ``.json`` sidecars skipped; the
        output folder skipped when it lies inside an input folder).
    out : path
        Output folder (created); see the module docstring for its layout.
    model : str
        ``default`` (the shipped network, default), ``classical`` or a checkpoint; refused
        before any work when it cannot run.
    region : str, optional
        Facial region for every frame.
    spacing : (float, float), optional
        ``(axial_mm, lateral_mm)`` for files that carry none (overrides any calibration).
    resume : bool
        Skip exams whose ``done.json`` exists and whose input is unchanged.
    keep_ids : bool
        Key exams by file stem and keep file paths in messages (identifying!).
    write_key_map : bool
        Write ``DIR/key_map.csv`` (exam key -> input path).
    progress : bool
        tqdm progress bar on stderr (frames/s).
    echo : callable(str), optional
        Receives the failure lines and the summary for the terminal (default: stderr). These
        lines name the input files, as the user gave them.
    workers : int
        1, or N > 1 to read and decode the next files and frames in N - 1 background threads
        while segmenting and scoring (`infer_frames`); every output is the same either way.
    batch_size : int
        For a trained model, up to this many frames of one exam per network call
        (`infer_frames`); every output is the same either way.
    device : {'cpu', 'auto', 'cuda', 'cuda:N'}
        Where a trained network runs (`infer_frames`); refused before any work when torch does
        not see it.
    devices : int, optional
        Run under Lightning's predict loop (`layerseg.infer.distributed`) on this many devices
        per node (processes: CPUs or GPUs as `device` says), exams shared out between them, one
        writer per process; None (default): this process alone. Every output but the run log's
        timing is the same either way.
    num_nodes : int
        Machines in a distributed run (launched by torchrun or SLURM on each; the output folder
        on a file system they share).

    Returns
    -------
    dict
        The content of ``summary.json`` (in a distributed run, every process returns it; rank 0
        writes it).

    Raises
    ------
    OutputError, ReadError, ConfigError
        Before any work: `workers` or `batch_size` below 1, the model cannot run, an input is
        missing or lies inside `out`, no input file found, or an output cannot be written.
    """
    t0 = time.time()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    echo = echo or (lambda msg: print(msg, file=sys.stderr))
    if int(workers) != workers or workers < 1:
        raise ConfigError(f"workers must be a whole number, 1 or more, not {workers!r}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError(f"batch size must be a whole number, 1 or more, not {batch_size!r}")
    workers, batch_size = int(workers), int(batch_size)
    check_model(model, device=device)
    where = ""
    if model != "classical":            # a trained network: say where it ran (provenance)
        from ..segmentation.trained.export import resolve_device
        where = f", device {resolve_device(device)}"
    out = Path(out)
    inputs = [Path(i) for i in inputs]
    _check_out_folder(out, inputs, resume)
    if spacing is not None:
        try:
            spacing = check_spacing(spacing, source="--spacing")
        except LayersegError as e:
            raise ConfigError(e.problem, "--spacing") from None
    skipped: list[tuple[Path, str]] = []
    files = find_inputs(inputs, exclude=[out], skipped=skipped)
    for d, why in skipped:
        echo(f"skipped folder {d}: {why}")
    if not files:
        raise ReadError("no input file found (hidden files and .json sidecars are skipped)",
                        ", ".join(str(i) for i in inputs))
    keys = _unique_keys(files, keep_ids)
    names = ["scores.csv", "scores.parquet", "summary.json", "run.log"]
    if write_key_map:
        names.append("key_map.csv")
    check_outputs([out / n for n in names], files)
    check_writable(out / "exams")
    distributed = None
    if devices is not None or num_nodes != 1:
        from .distributed import check_distributed
        distributed = check_distributed(devices, num_nodes, device, workers)
        where += f", {distributed['label']}"
    log = _RunLog(out / "run.log", append=resume, deferred=distributed is not None)
    log(f"layerseg {__version__} infer: {len(files)} input file(s), model {model}{where}"
        + (f", region {region}" if region else "") + (", resume" if resume else ""))
    for d, why in skipped:       # the folder's name only with --keep-ids (a patient's, often)
        log(f"skipped {'folder ' + str(d) if keep_ids else 'a folder under the inputs'}: {why}")

    status: dict[Path, dict] = {}
    todo = []
    for f in files:
        if resume and _resumable(out / "exams" / keys[f], keys[f], f, model, region):
            status[f] = {"status": "done", "resumed": True,
                         "done": read_done(out / "exams" / keys[f])}
            log(f"exam {keys[f]}: already done, skipped")
        else:
            todo.append(f)

    run_info: dict = {}
    writer = True                         # this process writes the run-level files
    if distributed is None:
        by_key = {keys[f]: f for f in files}
        for entry in _process(todo, keys, out, model=model, region=region, spacing=spacing,
                              keep_ids=keep_ids, progress=progress, workers=workers,
                              batch_size=batch_size, device=device, echo=echo):
            status[by_key[entry["exam"]]] = entry["status"]
            for line in entry["log"]:
                log(line)
    else:
        from .distributed import predict_exams
        plan = {"files": [str(f) for f in files], "keys": [keys[f] for f in files],
                "todo": [str(f) for f in todo], "status": {str(f): v for f, v in status.items()},
                "log": list(log.lines)}
        entries, plan, is_zero, run_info = predict_exams(
            plan, out, model=model, region=region, spacing=spacing, keep_ids=keep_ids,
            progress=progress, batch_size=batch_size, device=device, echo=echo, **distributed)
        # rank 0's plan is the run's (its keys and its reading of done.json)
        files = [Path(x) for x in plan["files"]]
        keys = dict(zip(files, plan["keys"]))
        todo = [Path(x) for x in plan["todo"]]
        status = {Path(k): v for k, v in plan["status"].items()}
        log.lines = list(plan["log"])
        by_key = {keys[f]: f for f in files}
        for entry in entries:             # in file order, whichever process did the exam
            status[by_key[entry["exam"]]] = entry["status"]
            for line in entry["log"]:
                log(line, at=entry["at"])
        if not is_zero:                   # one writer: the run-level files are rank 0's
            writer = log.enabled = False
            echo = _quiet
        log.deferred = False
        log.flush()

    # ---- run-level tables and summary, from the exam folders (fresh or resumed alike)
    tables = []
    for f in files:
        st = status.get(f)
        if st is not None and st["status"] == "done":
            tables.append(pd.read_parquet(out / "exams" / keys[f] / "scores.parquet"))
    outputs = {"summary": "summary.json", "log": "run.log", "exams": "exams"}
    if tables:
        from ..scoring import write_table
        combined = pd.concat(tables, ignore_index=True)
        if writer:
            write_table(combined, out / "scores.csv")
            write_table(combined, out / "scores.parquet")
        outputs.update(scores_csv="scores.csv", scores_parquet="scores.parquet")
    if write_key_map:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")   # CSV quoting, not JSON's backslashes
        w.writerow(["exam", "input"])
        w.writerows([keys[f], str(f)] for f in files)
        if writer:
            write_text_atomic(out / "key_map.csv", buf.getvalue())
        outputs["key_map"] = "key_map.csv"

    failures, exam_rows = [], []
    n_frames = n_scored = n_qc = 0
    for f in files:
        st = status.get(f) or {"status": "failed", "error": "not processed", "frames": 0,
                               "error_type": None}
        row = {"exam": keys[f], "status": st["status"]}
        if keep_ids:
            row["input"] = str(f)
        if st["status"] == "done":
            d = st["done"]
            row.update(frames=d["frames"], frames_scored=d["frames_scored"])
            n_frames += d["frames"]
            n_scored += d["frames_scored"]
            for fail in d["frames_failed"]:
                failures.append({"exam": keys[f], **({"input": str(f)} if keep_ids else {}),
                                 **fail})
        else:
            row.update(frames=st["frames"], frames_scored=0, error=st["error"])
            n_frames += st["frames"]
            failures.append({"exam": keys[f], **({"input": str(f)} if keep_ids else {}),
                             "frame_index": None, "error": st["error"],
                             "error_type": st["error_type"]})
        exam_rows.append(row)
    for d, why in skipped:           # a folder whose exams could not even be listed
        if why.startswith("cannot be read"):
            failures.append({"exam": None, **({"input": str(d)} if keep_ids else {}),
                             "frame_index": None, "error_type": "ReadError",
                             "error": (f"{d}: " if keep_ids else "a folder under the inputs ")
                             + f"{why}: its files are not in this run"})
    if tables:
        w = combined.drop_duplicates(["exam", "frame_index"])
        n_qc = int(((w["frame_status"] == "scored") & (w["qc_pass"] == False)).sum())  # noqa: E712
    n_ok = sum(1 for r in exam_rows if r["status"] == "done")
    summary = {
        "layerseg_version": __version__, "model": model, "model_sha256": model_weights(model),
        "region": region,
        "spacing_mm": list(spacing) if spacing is not None else None,
        "keep_ids": bool(keep_ids),
        "exams": {"total": len(files), "done": n_ok, "failed": len(files) - n_ok},
        "frames": {"total": n_frames, "scored": n_scored, "failed": n_frames - n_scored,
                   "qc_flagged": n_qc},
        "failed": len(failures),
        "failures": failures,
        "exam_status": exam_rows,
        "outputs": outputs,
        "run": {"started_at": started, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.time() - t0, 3),
                "exams_resumed": sum(1 for s in status.values() if s.get("resumed")),
                "exams_processed": len(todo), **run_info},
    }
    if writer:
        write_text_atomic(out / "summary.json", _json(summary))
    msg = (f"{len(files)} exam(s): {n_ok} done, {len(files) - n_ok} failed; {n_frames} frame(s):"
           f" {n_scored} scored ({n_qc} flagged by QC), {n_frames - n_scored} failed")
    log(msg)
    if failures:
        echo(f"{len(failures)} failure(s):")
        for fl in failures:
            if fl["exam"] is None:
                echo(f"  {fl['error']}")
                continue
            where = by_key[fl["exam"]]
            fi = "" if fl["frame_index"] is None else f" frame {fl['frame_index']}"
            echo(f"  {where}{fi}: {fl['error']}")
    echo(msg + f" -> {out}")
    return summary
