"""Numerical settings shared by every filter kernel and by the tests (stumpy style: one place).

Kernels never carry literal fastmath flags or tolerances; they import them from here.
"""

from __future__ import annotations

import math

import numpy as np

#: LLVM fast-math flags for the arithmetic kernels (box statistics, Frost, SRAD, NLM). Inputs are
#: validated finite before any kernel runs, so ``nnan``/``ninf`` would be safe too, but they are
#: left out: they let LLVM drop the guards that keep divisions by a zero local mean finite.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: Kernels that only compare and copy (the median) need no fast-math; exactness matters there.
FASTMATH_NONE: set[str] = set()

#: Relative tolerance of a kernel against its loop-based twin (tests/filters/naive.py), by dtype.
#: Kernels accumulate box sums in float64 with running (add-new, drop-old) updates and reorder
#: sums under ``reassoc``; float32 outputs are rounded once at the end.
RTOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-8}

#: Absolute tolerance, relative to the image's peak value, for the same comparisons.
ATOL_REL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-10}

#: Smallest squared coefficient of variation treated as non-zero (a flat window or flat box).
CV2_FLOOR = 1e-12

#: Fraction of the image peak added to the intensity in SRAD's divisions by I (zero envelope).
SRAD_EPS_REL = 1e-6

#: SRAD stability limit for the time step with the 4-neighbour scheme (Yu & Acton 2002).
SRAD_DT_MAX = 0.25

#: Yu & Acton (2002) speckle-scale decay, q0(t) = q0 * exp(-rho * t), rho = 1/6.
SRAD_Q0_DECAY = 1.0 / 6.0

#: Coefficient of variation of fully developed speckle in the linear envelope (Rayleigh
#: amplitude): sqrt(4/pi - 1) = 0.5227.
RAYLEIGH_CV = math.sqrt(4.0 / math.pi - 1.0)

#: Standard deviation of fully developed speckle on a log (dB) scale: 5.57 dB.
RAYLEIGH_SD_DB = 5.57

#: Non-local means: weights below exp(-NLM_CUTOFF) are set to zero (scikit-image's convention).
NLM_CUTOFF = 5.0

#: Largest window (side, in pixels) a box/median filter accepts.
MAX_WINDOW = 101

#: Numba error model of the kernels: 'numpy' (IEEE division, no ZeroDivisionError check), which
#: lets LLVM vectorise loops with divisions. Every division in a kernel is guarded (eps floors,
#: zero-mean branches), so no inf/NaN can arise from validated input.
ERROR_MODEL = "numpy"
