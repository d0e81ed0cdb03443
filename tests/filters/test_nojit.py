"""The kernels run as plain Python with NUMBA_DISABLE_JIT=1 (so coverage sees their bodies) and
give the same answers there: the reference comparisons re-run in a subprocess without the JIT."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_reference_comparisons_pass_without_jit():
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    here = Path(__file__).parent
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", str(here),
           "-k", "naive or scipy or skimage or network or constant", "--ignore", __file__]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
