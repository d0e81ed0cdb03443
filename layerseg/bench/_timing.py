"""The one timing helper of the benchmarks: best of `repeat` single calls with `timeit`."""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

__all__ = ["best_time"]


def best_time(fn: Callable[[], Any], repeat: int) -> float:
    """Best of `repeat` single calls of `fn` (``timeit.Timer.repeat``, number=1), in seconds.

    The minimum, because a shared machine's other load only ever slows a call down."""
    return min(timeit.Timer(fn).repeat(repeat=max(1, int(repeat)), number=1))
