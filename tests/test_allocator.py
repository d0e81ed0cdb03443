"""`layerseg.tune_allocator`: large freed buffers stay in the process (glibc), measured by the
page faults a pipeline-like pattern of allocations costs."""

import subprocess
import sys

import pytest

from layerseg import tune_allocator

_PATTERN = """
import resource, numpy as np, layerseg
print(layerseg.tune_allocator())
def run():
    for _ in range(10):   # three 8 MB arrays at a time, then all freed (a frame's temporaries)
        a = [np.ones(1 << 20) for _ in range(3)]
        del a
run()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
run()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _faults(env_value):
    env = {"LAYERSEG_ALLOCATOR": env_value, "PATH": ""}
    out = subprocess.run([sys.executable, "-c", _PATTERN], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    return out[0] == "True", int(out[1])


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("LAYERSEG_ALLOCATOR", "system")
    assert tune_allocator() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    tuned, tuned_faults = _faults("")
    plain_on, plain_faults = _faults("system")
    if not tuned:
        pytest.skip("not glibc")
    assert not plain_on
    if plain_faults < 1000:
        pytest.skip(f"{plain_faults} faults untuned: pages larger than 4 KB (transparent huge "
                    "pages), nothing to measure")
    # 8 MB arrays are 2048 pages of 4 KB each: untuned, freeing three at once trims the heap and
    # the next ones fault in again (thousands of faults over 10 rounds); tuned, they are reused
    assert tuned_faults < plain_faults / 20
