"""The one `LightningCLI` of the trained segmenters, behind ``layerseg fit|validate|test|predict``.

``layerseg fit --config configs/unet_small_cpu.yaml`` runs
``LightningCLI(model_class=SegmentationTask, datamodule_class=FrameDataModule, args=[...])``.
The data module's pixel spacing, patch size and input channels are linked to the task's (set
once, under ``data``), so a checkpoint's hyperparameters hold everything needed to rebuild its
network (`layerseg.segmentation.trained.predict.load_task`).
"""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from ...errors import ConfigError
from .data import FrameDataModule
from .task import SegmentationTask

__all__ = ["SegmentationCLI", "run_cli", "LIGHTNING_COMMANDS"]

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
"""The LightningCLI subcommands that ``layerseg`` passes through."""


class SegmentationCLI(LightningCLI):
    """`LightningCLI` with the data module's geometry linked to the task."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.spacing_mm", "model.spacing_mm")
        parser.link_arguments("data.patch_size", "model.patch_size")
        parser.link_arguments("data.elasto", "model.in_channels",
                              compute_fn=lambda elasto: 2 if elasto else 1)


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
