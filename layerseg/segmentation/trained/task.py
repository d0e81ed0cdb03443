"""The Lightning task of the trained segmenters: a MONAI network, its loss and metrics.

A thin typed `LightningModule` (torchgeo style): every init argument typed, choices as
``Literal``, `save_hyperparameters`, the network, loss and metrics built in `configure_models`,
`configure_losses`, `configure_metrics`, no file paths inside. Validation infers whole frames by
sliding window and logs, per layer, MONAI's Dice, 95 % Hausdorff distance and average surface
distance (mm, with the network's pixel spacing) of the network's arg-max, and the Dice of the
answer after the shared decode (`layerseg.layers.decode` on the log-probabilities), which is the
answer `layerseg.segment` gives.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import LightningModule
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss, DiceLoss
from monai.metrics import DiceMetric, HausdorffDistanceMetric, SurfaceDistanceMetric
from monai.networks import nets as monai_nets
from monai.networks.utils import one_hot

from ...errors import ConfigError
from ...layers.decode import decode
from ...layers.profiles import LABEL_NAMES, N_LABELS, resolve_profile

__all__ = ["SegmentationTask", "NETWORKS", "build_network", "whole_frame_inference"]

NETWORKS = ("UNet", "AttentionUnet", "SegResNet", "DynUNet", "SwinUNETR")
"""`monai.networks.nets` classes the task can build (all 2-D)."""

NetName = Literal["UNet", "AttentionUnet", "SegResNet", "DynUNet", "SwinUNETR"]


def build_network(net: str, in_channels: int, num_classes: int, channels: tuple[int, ...],
                  dropout: float = 0.0, norm: str = "instance",
                  num_res_units: int = 2) -> torch.nn.Module:
    """A 2-D network of `monai.networks.nets` by name.

    Parameters
    ----------
    net : {'UNet', 'AttentionUnet', 'SegResNet', 'DynUNet', 'SwinUNETR'}
    in_channels : int
        1 (B-mode) or 2 (B-mode and elastography).
    num_classes : int
        Output channels (the 8 labels).
    channels : tuple of int
        Feature widths per level (UNet, AttentionUnet, DynUNet); the first is SegResNet's
        ``init_filters`` and, rounded up to a multiple of 12, SwinUNETR's ``feature_size``.
    dropout : float
    norm : {'instance', 'batch'}
        Normalisation layers of UNet (MONAI's ``norm``); batch norm folds into the convolutions
        of a frozen graph for fast CPU inference, instance norm does not. The other networks
        keep their own (AttentionUnet batch, SegResNet group, DynUNet instance, SwinUNETR
        layer norm).
    num_res_units : int
        Residual units per UNet level (MONAI's ``num_res_units``).

    Returns
    -------
    torch.nn.Module
        Maps (B, in_channels, rows, cols) to logits (B, num_classes, rows, cols); rows and cols
        must be divisible by ``2 ** (len(channels) - 1)`` (32 for SwinUNETR, 8 for SegResNet).

    Raises
    ------
    ConfigError
        Unknown name or unusable sizes.
    """
    if net not in NETWORKS:
        raise ConfigError(f"unknown network {net!r}; choose one of {', '.join(NETWORKS)}")
    ch = tuple(int(c) for c in channels)
    if len(ch) < 2 or min(ch) < 1:
        raise ConfigError(f"channels must list at least two positive widths, got {channels!r}")
    strides = (2,) * (len(ch) - 1)
    if norm not in ("instance", "batch"):
        raise ConfigError(f"norm must be 'instance' or 'batch', got {norm!r}")
    if int(num_res_units) < 0:
        raise ConfigError(f"num_res_units must be 0 or more, got {num_res_units!r}")
    if net == "SegResNet" and ch[0] % 8:
        raise ConfigError(f"SegResNet needs channels[0] divisible by 8 (group norm), got {ch[0]}")
    if net == "UNet":
        return monai_nets.UNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes,
                               channels=ch, strides=strides, num_res_units=int(num_res_units),
                               dropout=dropout, norm=norm)
    if net == "AttentionUnet":
        return monai_nets.AttentionUnet(spatial_dims=2, in_channels=in_channels,
                                        out_channels=num_classes, channels=ch, strides=strides,
                                        dropout=dropout)
    if net == "SegResNet":
        return monai_nets.SegResNet(spatial_dims=2, in_channels=in_channels,
                                    out_channels=num_classes, init_filters=ch[0],
                                    dropout_prob=dropout or None)
    if net == "DynUNet":
        return monai_nets.DynUNet(spatial_dims=2, in_channels=in_channels,
                                  out_channels=num_classes, kernel_size=[3] * len(ch),
                                  strides=[1, *strides], upsample_kernel_size=list(strides),
                                  filters=list(ch), dropout=dropout or None, res_block=True)
    return monai_nets.SwinUNETR(spatial_dims=2, in_channels=in_channels,
                                out_channels=num_classes,
                                feature_size=12 * max(1, math.ceil(ch[0] / 12)),
                                drop_rate=dropout)


def whole_frame_inference(x: torch.Tensor, predictor, multiple: int) -> torch.Tensor:
    """Run `predictor` on whole frames in one pass, padded (edge values) at the bottom and
    right to a multiple of `multiple`, the answer cropped back.

    Parameters
    ----------
    x : Tensor, shape (B, C, rows, cols)
    predictor : callable
        (B, C, r, c) -> (B, K, r, c).
    multiple : int

    Returns
    -------
    Tensor, shape (B, K, rows, cols)
    """
    rows, cols = x.shape[-2:]
    pr, pc = (-rows) % multiple, (-cols) % multiple
    xp = torch.nn.functional.pad(x, (0, pc, 0, pr), mode="replicate") if pr or pc else x
    return predictor(xp)[..., :rows, :cols]


class SegmentationTask(LightningModule):
    """Semantic segmentation of the 8 labels by a MONAI network.

    Parameters
    ----------
    net : {'UNet', 'AttentionUnet', 'SegResNet', 'DynUNet', 'SwinUNETR'}
        Network of `monai.networks.nets` (2-D).
    in_channels : int
        1 (B-mode) or 2 (with elastography; the data module's ``elasto``).
    num_classes : int
        Must be 8 (the label map); kept so a checkpoint states it.
    channels : tuple of int
        Feature widths per level (see `build_network`).
    dropout : float
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm the network sees; must equal the data module's.
    patch_size : (int, int)
        Training patch and sliding-window size (rows, cols) at `spacing_mm`.
    loss : {'dice_ce', 'dice', 'ce'}
        MONAI `DiceCELoss` (default), `DiceLoss`, or cross-entropy alone.
    lr, weight_decay : float
        AdamW settings.
    lr_schedule : {'constant', 'cosine'}
        Constant `lr`, or a cosine decay from `lr` to zero over the run's optimiser steps
        (Lightning's ``estimated_stepping_batches``, i.e. ``trainer.max_steps``), stepped every
        step.
    sw_batch_size : int
        Windows per forward pass in sliding-window inference.
    sw_overlap : float
        Overlap of the sliding windows (0-1).
    decode_val : bool
        Also decode the validation answers with the shared decode and log their Dice.
    norm : {'instance', 'batch'}
        Normalisation of UNet (see `build_network`).
    num_res_units : int
        Residual units per UNet level.
    infer_mode : {'sliding', 'whole'}
        Whole frames by sliding windows of `patch_size` (``sliding``), or in one pass padded to
        the network's size multiple (``whole``: fastest; for networks trained on patches that
        span the frame depth, with batch norm, whose answer does not depend on the window).
    head : {'pixel', 'surface'}
        ``pixel``: the 8 output channels are per-pixel class scores (softmax over channels,
        loss `loss`). ``surface``: they are the 8 layer surfaces, each a softmax over the rows
        of a column (`layerseg.segmentation.trained.surface_head`: trained with its
        `SurfaceLoss`, turned into per-pixel class log-probabilities for the shared decode);
        needs ``infer_mode='whole'`` and patches that span the frame depth.
    init_from : str, optional
        A layerseg checkpoint whose weights this run starts from (a fine-tune: a new run with
        its own optimiser, schedule and steps, unlike Lightning's ``ckpt_path``, which resumes
        a run). Read with ``weights_only=True`` when fitting starts; its network must be this
        task's (same architecture and hyperparameters that shape it). Kept in the
        hyperparameters as a record; loading a checkpoint for inference never reads it.
    """

    def __init__(self, net: NetName = "UNet", in_channels: int = 1, num_classes: int = 8,
                 channels: tuple[int, ...] = (16, 32, 64, 128), dropout: float = 0.0,
                 spacing_mm: tuple[float, float] = (0.05, 0.05),
                 patch_size: tuple[int, int] = (128, 128),
                 loss: Literal["dice_ce", "dice", "ce"] = "dice_ce", lr: float = 1e-3,
                 weight_decay: float = 1e-5,
                 lr_schedule: Literal["constant", "cosine"] = "constant",
                 sw_batch_size: int = 4, sw_overlap: float = 0.25,
                 decode_val: bool = True, norm: Literal["instance", "batch"] = "instance",
                 num_res_units: int = 2,
                 infer_mode: Literal["sliding", "whole"] = "sliding",
                 head: Literal["pixel", "surface"] = "pixel", init_from: str | None = None):
        super().__init__()
        if num_classes != N_LABELS:
            raise ConfigError(f"num_classes must be {N_LABELS} (the label map 0-7), got "
                              f"{num_classes}")
        if in_channels not in (1, 2):
            raise ConfigError(f"in_channels must be 1 (B-mode) or 2 (with elastography), got "
                              f"{in_channels}")
        if lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
        if infer_mode not in ("sliding", "whole"):
            raise ConfigError(f"infer_mode must be 'sliding' or 'whole', got {infer_mode!r}")
        if head not in ("pixel", "surface"):
            raise ConfigError(f"head must be 'pixel' or 'surface', got {head!r}")
        if head == "surface" and infer_mode != "whole":
            raise ConfigError("head 'surface' needs infer_mode 'whole': each surface is a "
                              "softmax over the rows of a whole column, which sliding windows "
                              "would cut (set --model.infer_mode=whole)")
        self.save_hyperparameters()
        m = self.size_multiple
        # SwinUNETR's deepest stage works on 1/32 of the patch, and instance norm needs more
        # than one pixel there when training
        least = 2 * m if net == "SwinUNETR" else m
        if any(int(v) % m or int(v) < least for v in patch_size):
            raise ConfigError(f"patch_size {list(patch_size)}: {net} with channels "
                              f"{list(channels)} needs rows and cols that are multiples of {m}"
                              + (f", at least {least}" if least > m else "")
                              + " (set --data.patch_size)")
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    # torchgeo-style hooks -------------------------------------------------------------
    def configure_models(self) -> None:
        """Build the network from the hyperparameters."""
        h = self.hparams
        self.net = build_network(h.net, h.in_channels, h.num_classes, tuple(h.channels),
                                 h.dropout, h.norm, h.num_res_units)

    def configure_losses(self) -> None:
        """The training loss (logits and integer labels (B, 1, rows, cols))."""
        if self.hparams.get("head", "pixel") == "surface":
            from .surface_head import SurfaceLoss
            self.criterion = SurfaceLoss()
        elif self.hparams.loss == "dice_ce":
            self.criterion = DiceCELoss(to_onehot_y=True, softmax=True)
        elif self.hparams.loss == "dice":
            self.criterion = DiceLoss(to_onehot_y=True, softmax=True)
        else:
            self.criterion = DiceCELoss(to_onehot_y=True, softmax=True, lambda_dice=0.0)

    def configure_metrics(self) -> None:
        """MONAI metrics per layer (background excluded)."""
        kw = dict(include_background=False, reduction="mean_batch")
        self.metrics = {"dice": DiceMetric(**kw), "hd95_mm": HausdorffDistanceMetric(
            percentile=95, **kw), "assd_mm": SurfaceDistanceMetric(symmetric=True, **kw),
            "decoded_dice": DiceMetric(**kw)}

    def setup(self, stage: str) -> None:
        """Before fitting, start from `init_from`'s weights where one is given."""
        if stage == "fit" and self.hparams.get("init_from"):
            self.load_initial_weights(self.hparams.init_from)

    def load_initial_weights(self, path) -> None:
        """Copy the weights of the layerseg checkpoint `path` into this task's network.

        Raises
        ------
        ConfigError
            As `layerseg.segmentation.trained.predict.load_task`, or a checkpoint whose network
            differs from this one (named with the file and the first differing setting).
        """
        from .predict import load_task

        src = load_task(path)
        shape_keys = ("net", "in_channels", "channels", "num_res_units", "norm", "head")
        for k in shape_keys:
            mine, theirs = self.hparams.get(k), src.hparams.get(k)
            if (list(mine) if isinstance(mine, (list, tuple)) else mine) != \
                    (list(theirs) if isinstance(theirs, (list, tuple)) else theirs):
                raise ConfigError(f"init_from: its network has {k}={theirs!r}, this run's "
                                  f"{k}={mine!r}; a fine-tune starts from the same network",
                                  path)
        try:
            self.load_state_dict(src.state_dict(), strict=True)
        except RuntimeError as e:
            raise ConfigError("init_from: its weights do not fit this run's network "
                              f"({str(e).splitlines()[0]})", path) from None

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr,
                                weight_decay=self.hparams.weight_decay)
        if self.hparams.lr_schedule == "constant":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # forward --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 8, rows, cols) of images (B, C, rows, cols)."""
        return self.net(x)

    def log_probabilities(self, logits: torch.Tensor, regions=None) -> torch.Tensor:
        """Per-pixel class log-probabilities (B, 8, rows, cols) of the network's output: the
        log-softmax over the channels (pixel head), or the surfaces' row distributions turned
        into class probabilities in each frame's region order (surface head,
        `surface_head.surface_log_probabilities`; `regions` one per frame, default the
        default profile)."""
        if self.hparams.get("head", "pixel") == "surface":
            from .surface_head import surface_log_probabilities
            return surface_log_probabilities(logits, regions)
        return torch.log_softmax(logits.float(), dim=1)

    def _loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        if self.hparams.get("head", "pixel") == "surface":
            return self.criterion(logits, batch["label"], batch.get("region"))
        return self.criterion(logits, batch["label"])

    @property
    def size_multiple(self) -> int:
        """Rows and cols of a whole-frame pass must be multiples of this (the network's total
        down-sampling)."""
        h = self.hparams
        return 32 if h.net == "SwinUNETR" else 8 if h.net == "SegResNet" else \
            2 ** (len(h.channels) - 1)

    def infer(self, x: torch.Tensor, predictor=None) -> torch.Tensor:
        """Logits of whole frames: sliding windows of `patch_size`, or one padded pass
        (``infer_mode='whole'``).

        Parameters
        ----------
        x : Tensor, shape (B, C, rows, cols)
            Frames at `spacing_mm`, any size.
        predictor : callable, optional
            Runs the network on a (B, C, r, c) tensor (default `self.net`; an exported graph of
            it in `layerseg.segmentation.trained.export`).

        Returns
        -------
        Tensor, shape (B, 8, rows, cols)
        """
        predictor = self.net if predictor is None else predictor
        if self.hparams.infer_mode == "whole":
            return whole_frame_inference(x, predictor, self.size_multiple)
        return sliding_window_inference(x, roi_size=tuple(self.hparams.patch_size),
                                        sw_batch_size=self.hparams.sw_batch_size,
                                        predictor=predictor, overlap=self.hparams.sw_overlap,
                                        mode="gaussian")

    # steps ----------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch["image"])
        loss = self._loss(logits, batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[np.ndarray]:
        """Decoded label maps (uint8, (rows, cols) at `spacing_mm`), one per frame."""
        logp = self.log_probabilities(self.infer(batch["image"]), batch.get("region"))
        return [self._decode(logp[b], batch["region"][b]) for b in range(logp.shape[0])]

    def _decode(self, logp: torch.Tensor, region: str | None) -> np.ndarray:
        prof, _ = resolve_profile(region or None)
        return decode(logp.detach().cpu().numpy(), prof, tuple(self.hparams.spacing_mm)).labels

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        x, y = batch["image"], batch["label"]
        logits = self.infer(x).float()
        self.log(f"{stage}/loss", self._loss(logits, batch), batch_size=x.shape[0],
                 sync_dist=True)
        y1 = one_hot(y, N_LABELS)
        logp = self.log_probabilities(logits, batch.get("region"))
        pred = one_hot(logp.argmax(1, keepdim=True), N_LABELS)
        spacing = [list(self.hparams.spacing_mm)] * x.shape[0]
        with warnings.catch_warnings():   # absent layers: NaN, left out of the means
            warnings.simplefilter("ignore")
            self.metrics["dice"](pred, y1)
            self.metrics["hd95_mm"](pred, y1, spacing=spacing)
            self.metrics["assd_mm"](pred, y1, spacing=spacing)
            if self.hparams.decode_val:
                dec = np.stack([self._decode(logp[b], batch["region"][b])
                                for b in range(x.shape[0])])
                dec_t = torch.as_tensor(dec, dtype=torch.long, device=y.device)[:, None]
                self.metrics["decoded_dice"](one_hot(dec_t, N_LABELS), y1)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_metrics(self, stage: str) -> None:
        for name, metric in self.metrics.items():
            if name == "decoded_dice" and not self.hparams.decode_val:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    per_layer = metric.aggregate()
            except (ValueError, RuntimeError):   # nothing accumulated
                metric.reset()
                continue
            # MONAI's cumulative metrics gather every rank's buffer before aggregating (DDP), so
            # the figures are already global; sync_dist only averages equal values
            vals = per_layer.detach().float().cpu()
            for layer, v in zip(LABEL_NAMES[1:], vals.tolist()):
                if math.isfinite(v):
                    self.log(f"{stage}/{name}/{layer}", v, sync_dist=True)
            finite = vals[torch.isfinite(vals)]
            if finite.numel():
                self.log(f"{stage}/{name}", finite.mean().item(), prog_bar=name == "dice",
                         sync_dist=True)
            metric.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the hyperparameters plain: no instantiator or class path, so the checkpoint
        loads with ``weights_only=True`` and ``SegmentationTask.load_from_checkpoint(path)``
        rebuilds the network from the saved arguments alone."""
        hp = checkpoint.get("hyper_parameters")
        if isinstance(hp, dict):
            hp = {k: v for k, v in hp.items() if k not in ("_instantiator", "_class_path")}
            checkpoint["hyper_parameters"] = {k: (list(v) if isinstance(v, tuple) else v)
                                              for k, v in hp.items()}
