"""Scalar maths for Numba kernels that must give NumPy's values bit for bit."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["logaddexp"]


@njit(cache=True)
def logaddexp(x, y, ln2):
    """``log(exp(x) + exp(y))`` as NumPy's `np.logaddexp` computes it, step by step in the
    precision of `x` and `y` (float32 or float64; `ln2` = log 2 in that precision): the same
    value bit for bit where the C library's exp and log1p are NumPy's (compiled; as plain
    Python, NumPy's scalar loops may round the last bit otherwise)."""
    if x == y:
        return x + ln2          # infinities of one sign included
    d = x - y
    if d > 0:
        return x + np.log1p(np.exp(-d))
    if d <= 0:
        return y + np.log1p(np.exp(d))
    return d                    # NaN
