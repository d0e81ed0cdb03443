"""The batch inference pipeline as a Python API: paths in, one result per frame out.

`find_inputs` walks files and folders; `exam_key` names an exam (one input file) without
identifiers; `infer_frames` reads every frame through `layerseg.io.read`, segments it
(`layerseg.segment`, the model passed straight through) and scores it (`layerseg.score`),
yielding a `FrameResult` per frame, failures included (the one batch loop,
`layerseg.batch.run_each`); `group_exams` gathers consecutive frames of one file into an
`ExamResult`. Notebooks use these directly; `layerseg.infer.run.run_infer` (the ``layerseg infer``
command) writes their results to disk.

Never imports torch for the classical model.
"""

from __future__ import annotations

import os
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..batch import run_each
from ..errors import ConfigError, InvalidImageError, ReadError

__all__ = ["FrameResult", "ExamResult", "infer_frames", "group_exams", "find_inputs",
           "is_output_folder",
           "exam_key", "exam_region", "check_model", "redact", "EXAM_SIDECAR_KEYS"]

SKIPPED_SUFFIXES = (".json",)
"""Files the folder walk leaves out: sidecars (``<stem>.json`` holds an image's spacing)."""


@dataclass
class FrameResult:
    """What inference made of one frame (or of a file that could not be read at all).

    Attributes
    ----------
    exam : str
        The exam key (`exam_key` of the input file).
    path : Path
        The input file.
    frame_index : int
        Index of the frame in the file; -1 when the file could not be read at all.
    frame : layerseg.Frame or None
        The frame as read (B-mode, spacing in mm, elastography, metadata); None on failure.
    segmentation : SegmentationResult or None
        Labels ``(rows, cols)`` uint8 0-7, surfaces ``(K+1, cols)`` in rows, profile, QC flags.
    scores : FrameScores or None
        Per-layer aging markers (``.to_long()`` / ``.to_wide()``).
    error, error_type : str or None
        Why the frame failed (None when it succeeded).
    seconds : float
        Wall time of reading, segmenting and scoring the frame, s (with ``workers > 1`` the
        wait for the frame decoded ahead stands for its reading).
    """

    exam: str
    path: Path
    frame_index: int
    frame: Any = None
    segmentation: Any = None
    scores: Any = None
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the frame was segmented and scored."""
        return self.error is None

    @property
    def labels(self):
        """The label map, ndarray of uint8, shape (rows, cols), or None on failure."""
        return None if self.segmentation is None else self.segmentation.labels

    @property
    def flags(self) -> list[str]:
        """QC flags of the segmentation (empty on failure)."""
        return [] if self.segmentation is None else list(self.segmentation.flags)

    @property
    def frame_id(self) -> str:
        """The frame's key in the tables: ``<exam>-f<index:03d>``."""
        return f"{self.exam}-f{max(self.frame_index, 0):03d}"


@dataclass
class ExamResult:
    """The frames of one input file, in order.

    Attributes
    ----------
    key : str
        The exam key.
    path : Path
        The input file.
    frames : list of FrameResult
    """

    key: str
    path: Path
    frames: list[FrameResult] = field(default_factory=list)

    @property
    def ok_frames(self) -> list[FrameResult]:
        """The frames that were segmented and scored."""
        return [f for f in self.frames if f.ok]

    @property
    def failed_frames(self) -> list[FrameResult]:
        """The frames (or the whole-file read) that failed."""
        return [f for f in self.frames if not f.ok]


def check_model(model: str, device: str = "cpu") -> str:
    """Refuse, before any work, a model `layerseg.segment` cannot run (or a device it cannot
    run on).

    Parameters
    ----------
    model : str
        ``classical``, ``default`` or a checkpoint path.
    device : str
        ``cpu``, ``auto``, ``cuda`` or ``cuda:N`` (checked for trained models only).

    Returns
    -------
    str
        `model`, unchanged.

    Raises
    ------
    ConfigError
        An unknown model name, a checkpoint that cannot be loaded
        (`layerseg.segmentation.check_model`), or a device torch does not see.
    """
    from ..segmentation import check_model as _check
    _check(model, device=device)
    return model


def _inside(p: Path, folder: Path) -> bool:
    try:
        p.relative_to(folder)
        return True
    except ValueError:
        return False


def is_output_folder(folder: str | os.PathLike) -> bool:
    """True when `folder` holds the outputs of a ``layerseg infer`` run (its ``summary.json``
    beside an ``exams`` folder, or a ``run.log`` beside it) or of one exam (``done.json``)."""
    d = Path(folder)
    return ((d / "exams").is_dir() and ((d / "summary.json").is_file()
                                        or (d / "run.log").is_file())) \
        or (d / "done.json").is_file()


def find_inputs(inputs: Iterable[str | os.PathLike], exclude: Iterable[str | os.PathLike] = (),
                skipped: list | None = None) -> list[Path]:
    """The input files of a run: files as given, folders walked recursively.

    Parameters
    ----------
    inputs : iterable of path
        Files and folders.
    exclude : iterable of path
        Folders whose content is never read (the run's output folder, when it lies inside an
        input folder).
    skipped : list, optional
        Receives ``(folder, reason)`` for each folder under an input folder that was not
        walked: one that holds layerseg outputs (`is_output_folder`: an earlier run's masks and
        tables are not exams), or one that cannot be read (permissions).

    Returns
    -------
    list of Path
        Files in input order, folders' files sorted by path; hidden files and folders (a name
        starting with ``.``) and sidecar ``.json`` files left out of folders; duplicates (the
        same file reached twice) kept once. Linked folders inside the input folder are
        followed, each real folder walked once (a link loop ends there); a link to a folder
        outside it (its parent, another patient's folder) is not followed, and is named in
        `skipped`.

    Raises
    ------
    ReadError
        An input does not exist.
    """
    ex = [Path(os.path.realpath(e)) for e in exclude]
    out: list[Path] = []
    seen: set[Path] = set()

    def add(f: Path) -> None:
        k = Path(os.path.realpath(f))
        if k not in seen and not any(_inside(k, e) for e in ex):
            seen.add(k)
            out.append(f)

    for i in inputs:
        p = Path(i)
        if p.is_dir():
            top = os.path.realpath(p)
            walked = {top}

            def unreadable(err: OSError, skipped=skipped) -> None:
                if skipped is not None:
                    skipped.append((Path(err.filename or p),
                                    f"cannot be read ({err.strerror or err})"))

            for root, dirs, files in os.walk(p, onerror=unreadable, followlinks=True):
                keep = []
                for d in sorted(dirs):
                    sub = Path(root) / d
                    real = os.path.realpath(sub)
                    if d.startswith(".") or real in walked \
                            or any(_inside(Path(real), e) for e in ex):
                        continue
                    if sub.is_symlink() and not _inside(Path(real), Path(top)):
                        if skipped is not None:
                            skipped.append((sub, "a link to a folder outside the input, not "
                                                 "followed (give that folder as an input)"))
                        continue
                    if is_output_folder(sub):
                        if skipped is not None:
                            skipped.append((sub, "it holds layerseg outputs (an earlier run), "
                                                 "not exams"))
                        continue
                    walked.add(real)
                    keep.append(d)
                dirs[:] = keep
                for name in sorted(files):
                    if name.startswith(".") or name.lower().endswith(SKIPPED_SUFFIXES):
                        continue
                    add(Path(root) / name)
        elif p.exists():
            add(p)
        else:
            raise ReadError("input not found", p)
    return out


def exam_key(path: str | os.PathLike, *, keep_ids: bool = False, salt: str | None = None) -> str:
    """The name of an exam (one input file) in every output.

    Parameters
    ----------
    path : path
        The input file.
    keep_ids : bool
        Use the file's stem (made safe for a folder name) instead of a pseudonymous key.
    salt : str, optional
        De-identification salt (default: ``LAYERSEG_SALT``, else the installation's).

    Returns
    -------
    str
        16 hex characters: `layerseg.io.deidentify_key` of the file's resolved path (a file
        name may carry a patient's name, so it never shows); with `keep_ids` the safe stem.
    """
    from ..io.dicom import deidentify_key
    p = Path(path)
    if keep_ids:
        stem = p.name[:-len(".nii.gz")] if p.name.lower().endswith(".nii.gz") else p.stem
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "exam"
        return safe
    return deidentify_key("layerseg-exam", os.path.realpath(p), salt=salt)


def redact(text: str | None, path: str | os.PathLike, replacement: str = "<input>") -> str | None:
    """`text` with every spelling of `path` (as given, absolute, resolved, and its file name)
    replaced, so an error message naming the input carries no file name into an output; the
    files beside it that a message may name (its sidecar ``<stem>.json``, an elastography map
    the sidecar points to) become ``<input folder>/<file>``, and the sidecar's name wherever it
    is left ``<sidecar>``."""
    if text is None:
        return None
    p = Path(path)
    for s in sorted({str(p), os.path.realpath(p), os.path.abspath(p), p.name}, key=len,
                    reverse=True):
        if s:
            text = text.replace(s, replacement)
    folders = {str(p.parent), os.path.dirname(os.path.realpath(p)),
               os.path.dirname(os.path.abspath(p))} - {"", "."}
    for d in sorted(folders, key=len, reverse=True):
        # a path ends where a message goes on: ': ' after an error's source, or a bracket
        text = re.sub(re.escape(d.rstrip(os.sep) + os.sep) + r"[^:;,'\"()<>\n]+",
                      "<input folder>/<file>", text)
    for side in {p.with_suffix(".json").name, p.name.split(".")[0] + ".json"}:
        text = text.replace(side, "<sidecar>")
    return text


@dataclass
class _Ref:
    path: Path
    exam: str
    index: int
    series: Any = None
    error: BaseException | None = None
    region: str | None = None
    decoded: Any = None  # a Future of the decoded frame when a reader thread decodes it
    scores: Any = None   # the model's scores when computed with the frames of its batch
    _frame: Any = None

    def frame(self):
        """The decoded frame: from the reader thread (its error re-raised here), or now
        (kept once decoded)."""
        if self._frame is None:
            self._frame = self.decoded.result() if self.decoded is not None \
                else self.series[self.index]
        return self._frame


EXAM_SIDECAR_KEYS = ("region", "side")
"""What a sidecar ``<exam>.json`` beside a DICOM or NIfTI exam may state (a scanner export
carries no facial region): ``{"region": "cheek", "side": "left"}``. Image and RF files have
sidecars of their own (spacing and more), read by their readers."""


def exam_region(path: str | os.PathLike) -> str | None:
    """The facial region a sidecar ``<exam>.json`` states for a DICOM/NIfTI/NRRD exam, or None.

    Raises
    ------
    CorruptFileError
        The sidecar is not a JSON object of `EXAM_SIDECAR_KEYS`.
    """
    from ..io.images import load_json_object
    from ..io.read import sniff_format
    p = Path(path)
    side = _sidecar_path(p)
    # images and RF files have sidecars of their own, read by their readers
    if not side.is_file() or sniff_format(p) not in ("dicom", "nifti", "nrrd"):
        return None
    known = EXAM_SIDECAR_KEYS
    if _shares_sidecar(p, side):
        # scan.dcm beside scan.png: the one scan.json is the image's too (its spacing and
        # display keys are the image reader's to check); the exam takes its region
        from ..io.images import SIDECAR_KEYS
        from ..io.rf import _SIDECAR_KEYS as RF_KEYS
        known = tuple(dict.fromkeys(EXAM_SIDECAR_KEYS + SIDECAR_KEYS + RF_KEYS))
    return load_json_object(side, known, "exam sidecar").get("region")


def _sidecar_path(p: Path) -> Path:
    """The sidecar ``<stem>.json`` of a file (``scan.nii.gz`` -> ``scan.json``)."""
    if p.name.endswith(".nii.gz"):
        return p.with_name(p.name[:-7] + ".json")
    return p.with_suffix(".json")


def _shares_sidecar(p: Path, side: Path) -> bool:
    """Whether another file beside `p` has the sidecar `side` as its own (same stem)."""
    try:
        return any(q != p and q != side and q.is_file() and _sidecar_path(q) == side
                   for q in p.parent.iterdir())
    except OSError:
        return False


def _open(p: Path, spacing) -> tuple[Any, int, str | None]:
    """Read a file: its lazy series, its number of frames and its sidecar region."""
    from ..io import read
    series = read(p, spacing=spacing)
    n = len(series)
    if n == 0:
        raise ReadError("the file holds no frame", p)
    return series, n, exam_region(p)


def _refs(paths: Iterable[Path], keys: dict[Path, str], spacing) -> Iterator[_Ref]:
    for p in paths:
        key = keys[p]
        try:
            series, n, reg = _open(p, spacing)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # noqa: BLE001 - recorded by the batch loop through _work
            yield _Ref(p, key, -1, None, e)
            continue
        for i in range(n):
            yield _Ref(p, key, i, series, region=reg)


def _prefetched_refs(paths: list[Path], keys: dict[Path, str], spacing, workers: int
                     ) -> Iterator[_Ref]:
    """`_refs` with the reading of files and the decoding of frames done ahead by
    ``workers - 1`` reader threads, while the caller segments and scores.

    The refs come in the same order as `_refs`, with the same errors (a failed read or decode is
    re-raised where the caller asks for it). At most `workers` files are read ahead and at most
    `workers` frames are decoded ahead, so memory stays a few frames. The frames of one file are
    decoded one at a time (its reader's caches are not shared between threads); different files
    are read in parallel.
    """
    from concurrent.futures import ThreadPoolExecutor
    depth = max(1, workers)
    pool = ThreadPoolExecutor(max_workers=max(1, workers - 1),
                              thread_name_prefix="layerseg-read")

    def opened() -> Iterator[tuple[Path, Any]]:
        ahead: deque = deque()
        todo = iter(paths)
        for p in todo:
            ahead.append((p, pool.submit(_open, p, spacing)))
            if len(ahead) >= depth:
                break
        while ahead:
            yield ahead.popleft()
            for p in todo:
                ahead.append((p, pool.submit(_open, p, spacing)))
                break

    def refs() -> Iterator[_Ref]:
        for p, fut in opened():
            key = keys[p]
            try:
                series, n, reg = fut.result()
            except Exception as e:  # noqa: BLE001 - recorded by the batch loop through _work
                yield _Ref(p, key, -1, None, e)
                continue
            lock = threading.Lock()

            def decode(i: int, series=series, lock=lock):
                with lock:
                    return series[i]

            for i in range(n):
                yield _Ref(p, key, i, series, region=reg, decoded=pool.submit(decode, i))

    window: deque[_Ref] = deque()
    it = refs()
    stopped_early = False
    try:
        for ref in it:
            window.append(ref)
            if len(window) > depth:
                yield window.popleft()
        while window:
            yield window.popleft()
    except GeneratorExit:
        stopped_early = True
        raise
    finally:
        it.close()
        # the caller stopped early: drop the decodes nobody will ask for. At the normal end the
        # refs already handed out may not have been decoded yet (a caller batching frames holds
        # several): their decodes finish
        pool.shutdown(wait=True, cancel_futures=stopped_early)


def _batched(refs: Iterator[_Ref], segmenter, batch_size: int,
             region: str | None = None) -> Iterator[_Ref]:
    """`refs` again, each frame's network scores computed ahead with up to `batch_size` frames
    of its own exam in one network call (`TrainedSegmenter.scores_many`). Batches never cross
    exams, so a resumed run batches every exam as an uninterrupted one does. A frame that cannot
    be read, or a batch whose network call fails, leaves its frames without scores: they are
    segmented one by one, and each failure is recorded on its own frame. `region` overrides
    the frames' regions as in `infer_frames` (a surface head follows the region's layer
    order)."""
    from ..segmentation.pipeline import check_frame, image_part
    buf: list[_Ref] = []

    def flush() -> Iterator[_Ref]:
        ok, frames, regions = [], [], []
        for r in buf:
            if r.error is not None:
                continue
            try:
                # the network sees what `segment_with` will ask it about: the image between
                # any screen margins
                frames.append(image_part(check_frame(r.frame()))[0])
                # as `infer_frames` does; None: the frame's own (`scores_for_frames`)
                regions.append(region if region is not None else r.region)
                ok.append(r)
            except Exception:  # noqa: BLE001 - raised again, and recorded, for this frame
                pass
        if frames:
            try:
                for r, sc in zip(ok, segmenter.scores_many(frames, regions=regions)):
                    r.scores = sc
            except Exception:  # noqa: BLE001 - each frame then runs alone, errors its own
                pass
        out = list(buf)
        buf.clear()
        yield from out

    for r in refs:
        if buf and (r.path != buf[0].path or len(buf) >= batch_size):
            yield from flush()
        buf.append(r)
    yield from flush()


def infer_frames(paths: Iterable[str | os.PathLike], *, model: str = "default",
                 region: str | None = None, spacing: tuple[float, float] | None = None,
                 keys: dict | None = None, keep_ids: bool = False,
                 progress: str | None = None, workers: int = 1,
                 batch_size: int = 1, device: str = "cpu") -> Iterator[FrameResult]:
    """Read, segment and score every frame of every file, one `FrameResult` per frame.

    Parameters
    ----------
    paths : iterable of path
        Input files (see `find_inputs` for folders), read with `layerseg.io.read`.
    model : str
        ``default`` (the shipped network, default), ``classical`` or a checkpoint path; the
        scores go through the shared decode as in `layerseg.segment`.
    region : str, optional
        Facial region for every frame (layer profile and reference ranges); default the exam's
        sidecar ``<exam>.json`` (`exam_region`), else each frame's own (``meta.region``); an
        unknown name takes the default profile with a QC note.
    spacing : (float, float), optional
        ``(axial_mm, lateral_mm)`` overriding every file's calibration (recorded as 'user').
    keys : dict of Path -> str, optional
        Exam keys by path (default `exam_key` of each path).
    keep_ids : bool
        Exam keys from file stems (see `exam_key`).
    progress : str, optional
        Show a tqdm bar on stderr with this description, counting frames (frames/s).
    workers : int
        1: read, decode, segment and score one frame after the other. N > 1: ``N - 1``
        background threads read the next files and decode the next frames (at most N of each
        ahead) while this thread segments and scores; the results, their order and their errors
        are the same as with 1.
    batch_size : int
        For a trained model: up to this many frames of one exam go through the network in one
        call (the decode and scoring stay per frame). 1: one frame per call. The classical
        segmenter has no network and ignores it. The answers are those of one frame at a time
        (batches never mix exams, so a resumed run gives the same bytes).
    device : {'cpu', 'auto', 'cuda', 'cuda:N'}
        Where a trained network runs: the CPU (exported graph), or a CUDA device in mixed
        precision (``auto``: CUDA when torch sees one). The classical segmenter ignores it.

    Yields
    ------
    FrameResult
        In file order then frame order. A file that cannot be read at all gives one failed
        result with ``frame_index`` -1; a frame that fails gives a failed result and the run
        goes on.
    """
    workers, batch_size = int(workers), int(batch_size)
    if workers < 1:
        raise ConfigError(f"workers must be 1 or more, not {workers}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be 1 or more, not {batch_size}")
    paths = [Path(p) for p in paths]
    keys = dict(keys) if keys is not None else {}
    for p in paths:
        keys.setdefault(p, exam_key(p, keep_ids=keep_ids))
    from ..scoring import score
    from ..segmentation import check_model as trained_model
    from ..segmentation import segment
    from ..segmentation.pipeline import segment_with
    segmenter = trained_model(model, device=device)   # None for the classical segmenter

    def work(ref: _Ref):
        if ref.error is not None:
            raise ref.error
        frame = ref.frame()
        reg = region if region is not None else ref.region   # command line, then sidecar,
        if segmenter is None:                                # then the frame's
            seg = segment(frame, model=model, region=reg, return_scores=True)
        else:   # scored with its batch, or alone when that failed (the error is its own then)
            cached, ref.scores = ref.scores, None
            seg = segment_with(segmenter.scores if cached is None else lambda d, p: cached,
                               frame, region=reg, return_scores=True, model=str(model),
                               log_probabilities=True,
                               field_depth_mm=segmenter.field_depth_mm)
        seg.scores = None  # the per-class scores are not kept: (8, rows, cols) float64 each
        fid = f"{ref.exam}-f{ref.index:03d}"
        conf = seg.column_confidence   # a trained model's; QC fails a frame it does not know
        sc = score(frame, seg.labels, region=reg, frame_id=fid,
                   subject_id=frame.meta.subject_key, surfaces=seg.surfaces,
                   sex=frame.meta.extra.get("sex"), age=frame.meta.extra.get("age_years"),
                   confidence=None if conf is None else float(np.nanmean(conf)),
                   qc_fail=seg.uncertain)
        if sc.frame.get("frame_status") == "failed":   # scored nothing: a failed frame
            raise InvalidImageError(f"nothing could be measured ({sc.frame.get('frame_reason')})",
                                    ref.path)
        return frame, seg, sc

    current: list[_Ref] = []  # run_each names an item right before working on it

    def key(ref: _Ref) -> str:
        current[:] = [ref]
        return f"{ref.exam}:{ref.index}"

    source = _refs(paths, keys, spacing) if workers == 1 else \
        _prefetched_refs(paths, keys, spacing, workers)
    refs = source if segmenter is None or batch_size == 1 else \
        _batched(source, segmenter, batch_size, region)
    try:
        for out in run_each(refs, work, key=key, progress=progress, unit="frame"):
            ref = current[0]
            if out.ok:
                frame, seg, sc = out.value
                yield FrameResult(ref.exam, ref.path, ref.index, frame, seg, sc,
                                  seconds=out.seconds)
            else:
                yield FrameResult(ref.exam, ref.path, ref.index, error=out.error,
                                  error_type=out.error_type, seconds=out.seconds)
    finally:
        refs.close()
        source.close()  # stops the reader threads when the caller stops early


def group_exams(results: Iterable[FrameResult]) -> Iterator[ExamResult]:
    """Gather consecutive `FrameResult` of one file into an `ExamResult` (lazily: an exam is
    yielded once its last frame is done).

    Parameters
    ----------
    results : iterable of FrameResult
        As `infer_frames` yields them.

    Yields
    ------
    ExamResult
    """
    cur: ExamResult | None = None
    for r in results:
        if cur is None or r.exam != cur.key or r.path != cur.path:
            if cur is not None:
                yield cur
            cur = ExamResult(r.exam, r.path)
        cur.frames.append(r)
    if cur is not None:
        yield cur
