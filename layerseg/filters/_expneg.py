"""A branch-free, vectorisable exp(-x) for the kernels (Numba without SVML calls libm's exp one
element at a time, which kept the NLM and Frost loops scalar).

``exp_neg(x) = E[k] * p(r)`` with ``k = floor(8 x)``, ``r = x - k / 8`` in [0, 1/8),
``E[k] = exp(-k / 8)`` from a table and ``p`` the degree-6 Taylor polynomial of ``exp(-r)``
(truncation error below r**7 / 7! < 1e-10, relative). Valid for 0 <= x <= `EXP_NEG_MAX`;
callers clamp to it (exp(-40) = 4e-18 is negligible next to the weight 1 every kernel has).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import ERROR_MODEL, FASTMATH

EXP_NEG_MAX = 40.0
_TABLE = np.exp(-np.arange(int(8 * EXP_NEG_MAX) + 2) / 8.0)


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL, inline="always")
def exp_neg(x):
    """exp(-x) for 0 <= x <= EXP_NEG_MAX, relative error < 1e-10."""
    k = int(x * 8.0)
    r = x - k * 0.125
    p = 1.0 - r * (1.0 - r * (0.5 - r * (1.0 / 6.0 - r * (1.0 / 24.0 - r * (1.0 / 120.0
                                                                       - r / 720.0)))))
    return _TABLE[k] * p
