"""Keep large freed buffers in the process instead of returning them to the system (glibc).

A frame's pipeline allocates and frees many arrays of a few MB (score maps, filter outputs,
NumPy temporaries). glibc serves blocks above its mmap threshold (128 KB at start, raised
adaptively) with fresh ``mmap`` pages and gives them back on ``free``, so every such array is
faulted in page by page again; on virtual machines a page fault is expensive, and the cost grows
faster than the pixels once the arrays outgrow the adaptive threshold. Measured on the 2-core VM
(classical segmenter, 512 x 512 and a 1024 x 1024 frame over twice the field): 20-25 % less time,
and the large frame's time ratio 4.25 -> 3.9 (`benchmarks/RESULTS.md`).

`tune_allocator` raises the mmap threshold to glibc's 64-bit maximum (32 MB) and the heap trim
threshold to 256 MB: blocks below 32 MB come from the heap and are reused. The ``layerseg``
command calls it at start; library users may call it themselves. ``LAYERSEG_ALLOCATOR=system``
leaves the allocator alone. Elsewhere than glibc (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (see the module docstring).

    Returns
    -------
    bool
        True when both thresholds were set; False when switched off
        (``LAYERSEG_ALLOCATOR=system``), not on glibc, or refused.
    """
    if os.environ.get("LAYERSEG_ALLOCATOR", "").strip().lower() == "system":
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # both are asked for, whatever the first answers (each helps alone)
    mmap_ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    trim_ok = bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return mmap_ok and trim_ok
