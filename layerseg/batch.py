"""The one batch loop: do a piece of work per item, record a failure with its reason and go on.

Every command that walks many inputs (``layerseg info``, ``score``, ``bench accuracy`` and the
batch inference) runs its items through `run_each`, so they all catch the same errors and report
them the same way. Library code returns the outcomes; only `layerseg.cli` turns them into an exit
status (`layerseg.cli.exit_status`).

What is caught: every `LayersegError` (bad input, named by file), ``OSError`` (a file vanished or
a disk filled), ``ValueError``/``MemoryError`` from a library underneath, and as a last resort
any other ``Exception`` (recorded as an internal error with its type, so a bug shows but does not
end the run). ``KeyboardInterrupt`` and ``SystemExit`` are never caught.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import LayersegError

__all__ = ["Outcome", "run_each", "describe_error", "summarise_outcomes"]

T = TypeVar("T")


@dataclass
class Outcome:
    """What happened to one item of a batch.

    Attributes
    ----------
    key : str
        The item's name (frame id, file path).
    value : object
        What the work returned (None when it failed).
    error : str or None
        Why it failed, in words (None when it succeeded).
    error_type : str or None
        The exception class name.
    seconds : float
        Wall time of the work, s.
    """

    key: str
    value: Any = None
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the work succeeded."""
        return self.error is None


def describe_error(e: BaseException) -> str:
    """A one-line reason for a failed item: a layerseg error as it reads (it names the file and
    the problem), anything else with its type, marked internal when it is not an input error."""
    if isinstance(e, LayersegError):
        return str(e)
    if isinstance(e, (OSError, ValueError, MemoryError)):
        return f"{type(e).__name__}: {e}"
    return f"internal error ({type(e).__name__}: {e}); please report it"


def run_each(items: Iterable[T], work: Callable[[T], Any], *,
             key: Callable[[T], str] = str, progress: str | None = None,
             total: int | None = None, unit: str = "item") -> Iterator[Outcome]:
    """Run `work` on each item, yielding one `Outcome` per item, failures included.

    Parameters
    ----------
    items : iterable
        The items (paths, dataset indices...).
    work : callable(item) -> object
        The work; its return value becomes `Outcome.value`.
    key : callable(item) -> str
        The item's name in the outcome.
    progress : str, optional
        Show a tqdm progress bar on stderr with this description.
    total : int, optional
        Number of items, for the progress bar when `items` has no length.
    unit : str
        What an item is, for the progress bar's rate (``'frame'`` shows frames/s).

    Yields
    ------
    Outcome
    """
    it: Iterable[T] = items
    if progress:
        from tqdm import tqdm
        it = tqdm(items, desc=progress, unit=unit, total=total)
    for item in it:
        name = key(item)
        t0 = time.perf_counter()
        try:
            value = work(item)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # noqa: BLE001 - a batch never stops at one item
            yield Outcome(name, None, describe_error(e), type(e).__name__,
                          time.perf_counter() - t0)
            continue
        yield Outcome(name, value, None, None, time.perf_counter() - t0)


def summarise_outcomes(outcomes: Iterable[Outcome]) -> dict:
    """``{"items": n, "ok": n, "failed": n, "failures": [{"key", "error", "error_type"}]}``."""
    outcomes = list(outcomes)
    bad = [o for o in outcomes if not o.ok]
    return {"items": len(outcomes), "ok": len(outcomes) - len(bad), "failed": len(bad),
            "failures": [{"key": o.key, "error": o.error, "error_type": o.error_type}
                         for o in bad]}

