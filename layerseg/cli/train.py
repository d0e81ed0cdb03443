"""``layerseg fit|validate|test|predict --config configs/NAME.yaml``: training and evaluation of
MONAI networks through the one LightningCLI (`layerseg.segmentation.trained.cli`).

Lightning, torch and MONAI are imported only when one of these subcommands runs."""

from __future__ import annotations

import argparse

PASS_THROUGH = ("fit", "validate", "test", "predict")
"""Subcommands whose arguments go to LightningCLI untouched (see `layerseg.cli.main`)."""

_HELP = {"fit": "train a network (LightningCLI; --config configs/NAME.yaml)",
         "validate": "validate a network on the val split (LightningCLI)",
         "test": "test a network on the test split (LightningCLI)",
         "predict": "predict label maps of the test split (LightningCLI)"}


def register(sub) -> None:
    for name in PASS_THROUGH:
        p = sub.add_parser(name, help=_HELP[name], add_help=False)
        p.add_argument("lightning_args", nargs=argparse.REMAINDER)
        p.set_defaults(func=run, lightning_command=name)


def run(args: argparse.Namespace) -> int:
    return run_lightning([args.lightning_command, *args.lightning_args])


def run_lightning(argv: list[str]) -> int:
    """Hand ``[subcommand, options...]`` to LightningCLI; returns the exit status."""
    from ..segmentation.trained.cli import run_cli
    return run_cli(argv)
