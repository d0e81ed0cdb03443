"""Segmentation: segmenters that turn a frame into per-pixel class scores, all ending in the one
decode (`layerseg.layers.decode`): `segment` picks the segmenter, gets its scores and decodes
(`pipeline.segment_with`). Today the training-free classical segmenter (``model="classical"``);
trained MONAI/Lightning models come behind the same call. Never imports torch for the classical
model."""

from __future__ import annotations

from .classical import (SegmentationResult, classical_scores, frame_features, label_scores,
                        segment_classical)
from .config import default_config, load_config, thickness_limits_mm
from ..errors import ConfigError

__all__ = ["segment", "SegmentationResult", "segment_classical", "frame_features",
           "label_scores", "classical_scores", "load_config", "default_config", "thickness_limits_mm", "MODELS",
           "check_model", "model_path", "model_info"]

MODELS = ("classical", "default")
"""Named models `segment` can run: ``classical`` (training-free) and ``default`` (the trained
network shipped in ``layerseg/data/models/default.ckpt``, its card beside it in
``default.md``); a checkpoint path (``.ckpt`` written by ``layerseg fit``) works wherever a name
does."""


def model_path(name: str):
    """The checkpoint file of a shipped model name.

    Parameters
    ----------
    name : str
        ``"default"``.

    Returns
    -------
    pathlib.Path
        ``layerseg/data/models/<name>.ckpt`` (its model card is ``<name>.md`` beside it).

    Raises
    ------
    ConfigError
        Not a shipped model name, or its checkpoint is missing from this installation.
    """
    from pathlib import Path

    if name not in MODELS or name == "classical":
        raise ConfigError(f"{name!r} is not a shipped trained model (shipped: default)")
    p = Path(__file__).resolve().parent.parent / "data" / "models" / f"{name}.ckpt"
    if not p.is_file():
        raise ConfigError(f"the shipped {name!r} model is missing from this installation "
                          "(reinstall layerseg, or train it with scripts/train_default.sh)", p)
    return p


def segment(frame, model: str = "classical", config=None, region: str | None = None,
            return_scores: bool = False, priors=None):
    """Segment a frame into the label map 0-7, ordered under its region's layer profile.

    Parameters
    ----------
    frame : layerseg.Frame
        B-mode frame with spacing (``frame.meta.region`` selects the profile).
    model : str or path
        ``"classical"`` (training-free), ``"default"`` (the shipped trained network, see
        `model_path`), or the path of a checkpoint written by ``layerseg fit`` (a MONAI
        network; torch, MONAI and Lightning are imported only for a trained model). Either way
        the scores go through the shared decode (`pipeline.segment_with`).
    config : dict or path, optional
        Overrides of the classical segmenter's configuration (see `load_config`); not taken
        with a checkpoint.
    region : str, optional
        Overrides ``frame.meta.region``.
    priors : dict or path, optional
        Overrides of the decode priors (``layerseg/data/decode_priors.json``: thickness limits per
        region, slope limit, per-column fallback, bone run-out), shared by every segmenter.
    return_scores : bool
        Return a `SegmentationResult` (labels, surfaces, profile, flags, scores) instead of the
        label map alone.

    Returns
    -------
    labels : ndarray of uint8, shape (rows, cols)
        Or a `SegmentationResult` when `return_scores`.

    Raises
    ------
    ConfigError
        An unknown model name, a checkpoint that is missing, corrupt, refused (pickled objects)
        or for another number of classes or channels, a `config` with a checkpoint, or a
        malformed configuration.
    SpacingRequiredError, InvalidImageError
        See `segment_classical`.
    """
    if isinstance(model, str) and model == "classical":
        res = segment_classical(frame, config=config, region=region,
                                return_scores=return_scores, priors=priors)
        return res if return_scores else res.labels
    if config is not None:
        raise ConfigError("config overrides the classical segmenter only; a checkpoint takes "
                          "none", model)
    from .pipeline import segment_with

    seg = check_model(model)
    res = segment_with(seg.scores, frame, region=region, priors=priors,
                       return_scores=return_scores, model=str(model), log_probabilities=True,
                       field_depth_mm=seg.field_depth_mm)
    return res if return_scores else res.labels


def model_info(model, runtime: bool = True) -> dict:
    """What a model name or path stands for, for a run's record.

    Parameters
    ----------
    model : str or path
        ``classical``, a shipped model name (``default``) or a checkpoint path.
    runtime : bool
        Also say how a trained network runs here: the CPU ``backend`` and ``threads`` of its
        exported graph (`layerseg.segmentation.trained.export`; made now if no frame has run
        yet) or its accelerator ``device``.

    Returns
    -------
    dict
        ``model`` (as given); for a trained model ``checkpoint`` (the file's name),
        ``checkpoint_sha256`` (of its bytes: which weights, whatever the file is called) and,
        with `runtime`, ``backend`` and ``threads`` or ``device``.

    Raises
    ------
    ConfigError
        As `check_model`.
    """
    from pathlib import Path

    info: dict = {"model": str(model)}
    seg = check_model(model)
    if seg is None:
        return info
    info.update(checkpoint=Path(seg.path).name, checkpoint_sha256=seg.checkpoint_sha256)
    if runtime:
        if seg.device != "cpu":
            info["device"] = seg.device
        else:
            pred = seg.predictor   # cached: the predictor the frames ran through
            info.update(backend=pred.backend, threads=pred.threads)
    return info


def check_model(model, device: str = "cpu"):
    """Check, before any frame is read, that `segment` can run `model`; returns the loaded
    trained segmenter for a checkpoint (cached), None for ``classical``.

    `device` (``cpu``, ``auto``, ``cuda``, ``cuda:N``) is where a trained network runs
    (`layerseg.segmentation.trained.predict.TrainedSegmenter`); the classical segmenter runs on
    the CPU whatever it says.

    Raises
    ------
    ConfigError
        An unknown name, or a checkpoint that is missing, corrupt, refused (pickled objects) or
        of the wrong shape (see `layerseg.segmentation.trained.predict.load_checkpoint`).
    """
    import os

    if isinstance(model, str) and model == "classical":
        return None
    if isinstance(model, str) and model in MODELS:
        model = model_path(model)
    looks_like_path = isinstance(model, os.PathLike) or (
        isinstance(model, str) and (os.sep in model or "/" in model or model.endswith(".ckpt")
                                    or os.path.exists(model)))
    if not looks_like_path:
        raise ConfigError(f"model {model!r} is not available: give 'classical', 'default' or "
                          "the path of a checkpoint written by 'layerseg fit'")
    from .trained.predict import TrainedSegmenter   # imports torch, MONAI, Lightning
    return TrainedSegmenter(model, device=device)
