import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("layerseg_filters_naive",
                                               Path(__file__).with_name("naive.py"))
_naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_naive)


@pytest.fixture(scope="session")
def naive():
    """The loop-based twins of the filter kernels (tests/filters/naive.py)."""
    return _naive


def rayleigh_speckle(rng, shape, scale=1.0):
    """Fully developed speckle envelope: |complex Gaussian|, Rayleigh amplitude."""
    return (scale * np.abs(rng.normal(size=shape) + 1j * rng.normal(size=shape)) / np.sqrt(2))


@pytest.fixture
def speckle():
    return rayleigh_speckle
