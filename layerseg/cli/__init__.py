"""The ``layerseg`` command. One module per subcommand in this package, each with
``register(subparsers)``; the core packages know no command line."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from .._allocator import tune_allocator
from ..errors import LayersegError
from .train import PASS_THROUGH   # fit|validate|test|predict, handed to LightningCLI

# subcommand modules of this package, in the order `layerseg --help` lists them
SUBCOMMANDS = ["info", "simulate", "score", "infer", "compare", "repeatability", "bench",
               "train"]


def exit_status(n_failed: int) -> int:
    """The exit status of a batch command: 0 when nothing failed, 1 when any item failed (the
    run went on past it); 2 is kept for a run refused before any work (bad options, an output
    that would overwrite an input, an unwritable folder: `main` maps a `LayersegError` to 2)."""
    return 1 if n_failed else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="layerseg",
        description="Layer segmentation and aging markers for high-frequency facial ultrasound "
                    "(research software, not a medical device).")
    p.add_argument("--version", action="version", version=f"layerseg {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``layerseg`` console command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    tune_allocator()
    if argv and argv[0] in PASS_THROUGH:
        # LightningCLI parses its own options (--config, --trainer.*, --help, --print_config)
        from .train import run_lightning
        command, run = argv[0], (lambda: run_lightning(argv))
    else:
        args = build_parser().parse_args(argv)
        command, run = args.command, (lambda: args.func(args))
    try:
        return int(run() or 0)
    except LayersegError as e:
        print(f"layerseg {command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
