"""Trained checkpoints as segmenters: safe loading and the network's scores for the shared decode.

A checkpoint is read with ``torch.load(..., weights_only=True)`` (tensors and plain data only: a
file holding any other pickled object is refused, never executed), its hyperparameters checked
(8 classes, 1 or 2 input channels) and its network rebuilt with `SegmentationTask`. The scores
of a frame are the network's log-softmax at the frame resampled to the training spacing, taken
back onto the frame's own grid (`scores_for_frame`); `layerseg.segment(frame, model=PATH)`
hands them to `layerseg.segmentation.pipeline.segment_with`, so the answer goes through the
same decode as the classical segmenter's.

On the CPU the network runs as an exported graph (`layerseg.segmentation.trained.export`: ONNX
Runtime, else a frozen TorchScript graph, else the eager network), made once per loaded
checkpoint and kept in memory; ``TrainedSegmenter(path, exported=False)`` or
``LAYERSEG_BACKEND=eager`` in the environment runs the eager network instead.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError
from ...layers.profiles import N_LABELS
from .data import frame_sample
from .export import (BACKENDS, Predictor, device_predictor, export_task, inference_threads,
                     resolve_device)
from .task import SegmentationTask
from .transforms import NormaliseElasto, ResampleToSpacing

__all__ = ["load_checkpoint", "load_task", "scores_for_frame", "scores_for_frames",
           "to_frame_grid", "TrainedSegmenter", "BACKEND_ENV"]

BACKEND_ENV = "LAYERSEG_BACKEND"
"""Environment variable naming the inference backend of `TrainedSegmenter` when it is not given:
``auto`` (default), ``openvino``, ``onnxruntime``, ``torchscript`` or ``eager``."""


def _require_checkpoint_file(p: Path) -> None:
    """`ConfigError` naming `p` unless it is an existing file (a folder is named as one)."""
    if p.is_dir():
        raise ConfigError("is a folder, not a checkpoint file (give the .ckpt file)", p)
    if not p.is_file():
        raise ConfigError("checkpoint does not exist", p)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a Lightning checkpoint safely: ``torch.load(weights_only=True)`` on the CPU.

    Parameters
    ----------
    path : path
        A ``.ckpt`` file written by ``layerseg fit``.

    Returns
    -------
    dict
        The checkpoint (``state_dict``, ``hyper_parameters``, ...).

    Raises
    ------
    ConfigError
        The file does not exist, is truncated or corrupt, holds pickled objects other than
        tensors and plain data (refused), or lacks a state dict or hyperparameters.
    """
    p = Path(path)
    _require_checkpoint_file(p)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ConfigError("checkpoint refused: it holds pickled objects other than tensors and "
                          "plain data, which are never loaded (weights_only); "
                          f"{str(e).splitlines()[0]}", p) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError,
            IndexError, TypeError, AttributeError, UnicodeDecodeError) as e:
        # torch's legacy (pre-zip) reader meets a text or random file with whatever error its
        # first byte leads it to
        raise ConfigError(f"not a checkpoint, or a truncated or corrupt one ({type(e).__name__}"
                          f": {str(e).splitlines()[0] if str(e) else ''})", p) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) \
            or not isinstance(ckpt.get("hyper_parameters"), dict):
        raise ConfigError("not a layerseg checkpoint (no state_dict and hyper_parameters; write "
                          "checkpoints with 'layerseg fit')", p)
    return ckpt


def load_task(path: str | os.PathLike) -> SegmentationTask:
    """Rebuild a `SegmentationTask` from a checkpoint (network in eval mode, on the CPU).

    Raises
    ------
    ConfigError
        As `load_checkpoint`; a checkpoint for another number of classes or input channels, or
        whose weights do not fit the network its hyperparameters describe.
    """
    p = Path(path)
    ckpt = load_checkpoint(p)
    hp = {k: v for k, v in ckpt["hyper_parameters"].items()
          if k not in ("_instantiator", "_class_path")}
    # the weights are this checkpoint's own: where it was fine-tuned from (its record, kept in
    # the file) is not read again when the rebuilt task is fitted further
    hp.pop("init_from", None)
    if hp.get("num_classes", N_LABELS) != N_LABELS:
        raise ConfigError(f"checkpoint is for {hp['num_classes']} classes; layerseg segments "
                          f"{N_LABELS} (labels 0-7)", p)
    if hp.get("in_channels", 1) not in (1, 2):
        raise ConfigError(f"checkpoint takes {hp['in_channels']} input channels; layerseg "
                          "networks take 1 (B-mode) or 2 (B-mode and elastography)", p)
    try:
        task = SegmentationTask(**hp)
        task.load_state_dict(ckpt["state_dict"], strict=True)
    except ConfigError as e:
        raise ConfigError(e.problem, p) from None
    except (TypeError, RuntimeError) as e:
        raise ConfigError("checkpoint weights do not fit the network its hyperparameters "
                          f"describe ({str(e).splitlines()[0]})", p) from None
    return task.eval()


@lru_cache(maxsize=4)
def _cached_task(path: str, mtime_ns: int, size: int) -> SegmentationTask:
    return load_task(path)


@lru_cache(maxsize=16)
def _cached_sha256(path: str, mtime_ns: int, size: int) -> str:
    """SHA-256 of a checkpoint file's bytes (cached by path, modification time and size)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=4)
def _cached_device_predictor(path: str, mtime_ns: int, size: int, device: str) -> Predictor:
    """One copy of the network per loaded checkpoint and accelerator."""
    return device_predictor(_cached_task(path, mtime_ns, size), device)


@lru_cache(maxsize=8)
def _cached_predictor(path: str, mtime_ns: int, size: int, backend: str,
                      threads: int) -> Predictor:
    """One export per loaded checkpoint, backend and thread count."""
    return export_task(_cached_task(path, mtime_ns, size), backend=backend, threads=threads)


def scores_for_frame(task: SegmentationTask, frame, predictor=None,
                     grid: str = "frame", region: str | None = None) -> np.ndarray:
    """The network's log-probabilities on a frame's own grid (or on the network's).

    Parameters
    ----------
    task : SegmentationTask
    frame : layerseg.Frame
        With spacing (and elastography when the network takes two channels).
    predictor : callable, optional
        Runs the network (an exported graph, `layerseg.segmentation.trained.export.Predictor`);
        default the task's eager network.
    grid : {'frame', 'model'}
        ``frame``: resampled linearly back to the frame's (rows, cols) (`to_frame_grid`);
        ``model``: left on the network's grid, the frame's field of view at the training
        spacing (`layerseg.segmentation.pipeline.segment_with` decodes there).
    region : str, optional
        The region whose layer order a surface head's answer follows (default the frame's
        ``meta.region``); a per-pixel head ignores it.

    Returns
    -------
    ndarray, shape (8, rows, cols) or (8, r, c)
        Float64 on the frame's grid, float32 on the network's. Log-probabilities of the network
        at the training spacing (sliding window over the training patch, or one whole-frame
        pass; `SegmentationTask.log_probabilities`).
    """
    return scores_for_frames(task, [frame], predictor=predictor, grid=grid,
                             regions=[region])[0]


def _network_input(task: SegmentationTask, frame) -> torch.Tensor:
    """A frame as the network takes it: (C, r, c) float32 at the training spacing, grey 0-1
    (and the normalised elastography as a second channel when the network takes two)."""
    hp = task.hparams
    two = hp.in_channels == 2
    if two and frame.elasto is None:
        raise ConfigError("the network takes elastography as a second channel but the frame has "
                          "none", frame.meta.source)
    d = frame_sample(frame, None, with_elasto=two)
    target = tuple(hp.spacing_mm)
    img = ResampleToSpacing(target)(d["image"], d["spacing_mm"]) / np.float32(255.0)
    chans = [np.clip(img, 0.0, 1.0)]
    if two:
        el = NormaliseElasto()(d["elasto"], d["elasto_kind"])
        chans.append(ResampleToSpacing(target)(el, d["spacing_mm"]))
    return torch.from_numpy(np.concatenate(chans, 0).astype(np.float32))


def scores_for_frames(task: SegmentationTask, frames, predictor=None, grid: str = "frame",
                      max_batch: int | None = None, regions=None) -> list[np.ndarray]:
    """`scores_for_frame` of several frames, the frames of one shape on the network's grid run
    as one batch (a multi-frame exam: all of them).

    Parameters
    ----------
    task, predictor, grid
        As `scores_for_frame`.
    frames : sequence of layerseg.Frame
    max_batch : int, optional
        At most this many frames per network call (default: all frames of one shape).
    regions : sequence of str or None, optional
        Per frame, as `scores_for_frame`'s `region` (None: the frame's own).

    Returns
    -------
    list of ndarray, shape (8, rows, cols) or (8, r, c)
        One per frame, in order (float64 on the frame's grid, float32 as the network gave them
        on its own: the decode sums them in float64); each the same as `scores_for_frame` of
        that frame alone (up to float rounding of the batched convolutions).
    """
    if grid not in ("frame", "model"):
        raise ValueError(f"grid must be 'frame' or 'model', got {grid!r}")
    xs = [_network_input(task, f) for f in frames]
    regions = [None] * len(frames) if regions is None else list(regions)
    regions = [r if r is not None else f.meta.region for r, f in zip(regions, frames)]
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(xs):
        groups.setdefault(tuple(x.shape), []).append(i)
    out: list = [None] * len(xs)
    step = max(1, int(max_batch)) if max_batch else len(xs) or 1
    with torch.inference_mode():
        for idx in groups.values():
            for k in range(0, len(idx), step):
                part = idx[k:k + step]
                logits = task.infer(torch.stack([xs[i] for i in part]), predictor=predictor)
                logp = task.log_probabilities(logits, [regions[i] for i in part])
                for j, i in enumerate(part):
                    out[i] = (logp[j].numpy() if grid == "model"
                              else to_frame_grid(logp[j], frames[i].shape))
    return out


def to_frame_grid(scores: torch.Tensor, shape) -> np.ndarray:
    """Per-label maps (K, r, c) taken onto a frame's (rows, cols) grid, as float64.

    Linear, pixel edges on pixel edges and edge values held beyond the centres: the mapping of
    `resample_to_shape(..., order=1)`, computed by torch in float64 (`interpolate`, bilinear,
    ``align_corners=False``), which on the 8 score maps of a 512 x 512 frame is several times
    faster than scipy's zoom and agrees with it within float32 rounding.
    """
    if tuple(scores.shape[-2:]) == tuple(shape):
        return scores.double().numpy()
    return torch.nn.functional.interpolate(scores[None].double(), size=tuple(shape),
                                           mode="bilinear", align_corners=False)[0].numpy()


class TrainedSegmenter:
    """A checkpoint as a segmenter: ``scores(frame, profile) -> (8, rows, cols)``.

    Parameters
    ----------
    path : path
        Checkpoint written by ``layerseg fit``; loaded once (cached by path, size and time).
    exported : bool or str
        True: the fast CPU backend (``LAYERSEG_BACKEND``, default ``auto``: see
        `layerseg.segmentation.trained.export.export_task`); False: the eager network; or a
        backend name (``openvino``, ``onnxruntime``, ``torchscript``, ``eager``). The export is
        made at the first frame, once per checkpoint, backend and thread count.
    threads : int, optional
        CPU threads (default `layerseg.segmentation.trained.export.inference_threads`).
    grid : {'model', 'frame'}
        Where `scores` answers: on the network's grid (default; the shared decode then runs
        there and places the boundaries to sub-pixel depth, 2-3x fewer pixels to decode for
        a 24 MHz frame) or resampled onto the frame's grid.
    device : {'cpu', 'auto', 'cuda', 'cuda:N'}
        ``cpu`` (default): the CPU backends above. A CUDA device: the eager network there in
        mixed precision (bfloat16 where supported, else float16;
        `layerseg.segmentation.trained.export.device_predictor`). ``auto``: CUDA when torch
        sees it, else the CPU.

    Raises
    ------
    ConfigError
        As `load_task`; an unknown backend; a device torch does not see.
    """

    def __init__(self, path: str | os.PathLike, exported: bool | str = True,
                 threads: int | None = None, grid: str = "model", device: str = "cpu"):
        p = Path(path)
        _require_checkpoint_file(p)
        st = p.stat()
        self.path = str(p)
        self._key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
        self.task = _cached_task(*self._key)
        if exported is True:
            backend = os.environ.get(BACKEND_ENV, "").strip() or "auto"
        else:
            backend = "eager" if exported is False else str(exported)
        if backend not in ("auto", *BACKENDS):
            raise ConfigError(f"backend must be 'auto' or one of {', '.join(BACKENDS)}, got "
                              f"{backend!r}" + (f" (from {BACKEND_ENV})" if exported is True
                                                 else ""))
        self.backend = backend
        self.threads = threads
        if grid not in ("frame", "model"):
            raise ConfigError(f"grid must be 'frame' or 'model', got {grid!r}")
        self.grid = grid
        self.device = resolve_device(device)

    @property
    def checkpoint_sha256(self) -> str:
        """SHA-256 of the checkpoint file's bytes: which weights, whatever the file is called
        (read once per file version)."""
        return _cached_sha256(*self._key)

    @property
    def field_depth_mm(self) -> float | None:
        """Depth in mm of the field the network was trained on: its training patches' rows at
        its spacing (``patch_size[0] * spacing_mm[0]`` of the checkpoint), None when the
        checkpoint does not say. Frames deeper than this hold tissue no training patch showed
        (`layerseg.segmentation.pipeline.segment_with` flags them)."""
        hp = self.task.hparams
        try:
            return float(hp["patch_size"][0]) * float(hp["spacing_mm"][0])
        except (KeyError, TypeError, IndexError, ValueError):
            return None

    @property
    def predictor(self) -> Predictor:
        """The network as it runs: on the CPU exported at the first use, or on the accelerator
        (cached)."""
        if self.device != "cpu":
            return _cached_device_predictor(*self._key, self.device)
        return _cached_predictor(*self._key, self.backend, inference_threads(self.threads))

    def scores(self, frame, profile=None) -> np.ndarray:
        """Log-probabilities of `frame` on the network's grid (8, r, c) or the frame's (8, rows,
        cols), as `grid` says; a surface head follows `profile`'s layer order (default the
        frame's region)."""
        return scores_for_frame(self.task, frame, predictor=self.predictor, grid=self.grid,
                                region=None if profile is None else profile.region)

    def scores_many(self, frames, max_batch: int | None = None,
                    regions=None) -> list[np.ndarray]:
        """`scores` of several frames, those of one shape run through the network as one batch
        (`scores_for_frames`; `regions` per frame, None for the frame's own)."""
        return scores_for_frames(self.task, frames, predictor=self.predictor, grid=self.grid,
                                 max_batch=max_batch, regions=regions)
