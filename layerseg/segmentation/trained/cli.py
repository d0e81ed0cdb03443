"""The one `LightningCLI` of the trained segmenters, behind ``layerseg fit|validate|test|predict``.

``layerseg fit --config configs/unet_small_cpu.yaml`` runs
``LightningCLI(model_class=SegmentationTask, datamodule_class=FrameDataModule, args=[...])``.
The data module's pixel spacing, patch size and input channels are linked to the task's (set
once, under ``data``), so a checkpoint's hyperparameters hold everything needed to rebuild its
network (`layerseg.segmentation.trained.predict.load_task`).
"""

from __future__ import annotations

import os

from lightning.pytorch.cli import LightningCLI

from ...errors import ConfigError
from .data import FrameDataModule
from .task import SegmentationTask

__all__ = ["SegmentationCLI", "run_cli", "write_last_checkpoint", "LIGHTNING_COMMANDS"]

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
"""The LightningCLI subcommands that ``layerseg`` passes through."""


class SegmentationCLI(LightningCLI):
    """`LightningCLI` with the data module's geometry linked to the task, and ``last.ckpt``
    written at the step a finished ``fit`` ended on (`after_fit`)."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.spacing_mm", "model.spacing_mm")
        parser.link_arguments("data.patch_size", "model.patch_size")
        parser.link_arguments("data.elasto", "model.in_channels",
                              compute_fn=lambda elasto: 2 if elasto else 1)

    def after_fit(self) -> None:
        """Write every ``save_last`` checkpoint callback's ``last.ckpt`` at the final step.

        Lightning 2.6 writes ``last.ckpt`` only beside a scheduled checkpoint, so a run whose
        ``max_steps`` is not a multiple of ``every_n_train_steps`` (our configs save every 500
        steps) would end with the last steps missing from it: a 750-step run left step 500
        there, and `scripts/ship_model.py` would have shipped that. An interrupted run is left
        as Lightning wrote it.
        """
        write_last_checkpoint(self.trainer)


def write_last_checkpoint(trainer) -> list[str]:
    """Save the trainer's state as the ``last`` checkpoint of each checkpoint callback with
    ``save_last`` whose last save was at an earlier step (replacing a link there, never
    writing through it).

    Parameters
    ----------
    trainer : lightning.pytorch.Trainer
        After ``fit``.

    Returns
    -------
    list of str
        The paths written: none when every such callback last saved at the final step, after
        an interrupted run or a ``fast_dev_run``, in the launching process of a spawned run
        (it holds no trained state: step 0), or on a run without such a callback.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    step = trainer.global_step
    if trainer.interrupted or trainer.fast_dev_run or step == 0:
        return []
    written = []
    for cb in trainer.checkpoint_callbacks:
        if not (isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath):
            continue
        if getattr(cb, "_last_global_step_saved", -1) == step and cb.last_model_path:
            continue                        # Lightning saved the final step itself
        # the file Lightning last wrote as `last` (last-v1.ckpt when a run reuses a folder)
        path = cb.last_model_path or cb.format_checkpoint_name({}, cb.CHECKPOINT_NAME_LAST)
        if trainer.is_global_zero and os.path.islink(path):
            os.unlink(path)
        trainer.strategy.barrier("layerseg_last_checkpoint")
        cb.last_model_path = path           # the saved callback state names the file
        # what the callback itself would write (a full state unless save_weights_only)
        trainer.save_checkpoint(path, weights_only=cb.save_weights_only)
        written.append(path)
    return written


def run_cli(args: list[str]) -> int:
    """Run ``layerseg <subcommand> ...`` through LightningCLI.

    Parameters
    ----------
    args : list of str
        The subcommand (``fit``, ``validate``, ``test`` or ``predict``) and its options, as on
        the command line (``--config FILE``, ``--trainer.max_epochs=2``, ...).

    Returns
    -------
    int
        0 on success (``--help`` and ``--print_config`` exit through ``SystemExit(0)``).

    Raises
    ------
    ConfigError
        An accelerator the machine does not have (named with the fix).
    """
    import warnings

    from lightning.fabric.utilities.exceptions import MisconfigurationException

    # `layerseg fit ...` hands its own argv on as `args`; Lightning's warning about sys.argv
    # holding arguments too does not apply
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    from argparse import ArgumentError

    args = list(args)
    config = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
    if "--config" in args[:-1]:
        config = args[args.index("--config") + 1]
    no_exit = {"exit_on_error": False}
    try:
        SegmentationCLI(model_class=SegmentationTask, datamodule_class=FrameDataModule,
                        subclass_mode_model=False, args=args,
                        parser_kwargs={"prog": "layerseg", **no_exit,
                                       **{c: dict(no_exit) for c in LIGHTNING_COMMANDS}},
                        save_config_kwargs={"overwrite": True})
    except ArgumentError as e:   # an unknown key, a value of the wrong type or choice
        raise ConfigError(f"invalid configuration: {' '.join(str(e).split())}", config) from None
    except MisconfigurationException as e:
        raise ConfigError(f"{e} (on a machine without a GPU add --trainer.accelerator=cpu "
                          "--trainer.devices=1 --trainer.precision=32-true)", config) from e
    return 0
