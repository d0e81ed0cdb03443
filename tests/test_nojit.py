"""The second pass of scripts/test.sh (``NUMBA_DISABLE_JIT=1 LAYERSEG_NOJIT_PASS=1 pytest -m
nojit``) really runs the Numba kernels as plain Python, and the main pass really compiles them.

The nojit-marked tests (tests/filters, tests/layers, the simulator's kernel references) compare
each kernel with an independent reference on small arrays; run without the JIT, they execute the
kernels' bodies line by line, so coverage sees them and errors Numba would hide (out-of-bounds
indexing, wrong dtypes) raise."""

import importlib
import os
import types

import numba
import pytest
from numba.core.dispatcher import Dispatcher

from layerseg.filters import _box, median, nlm, srad
from layerseg.layers import search, surfaces, thickness
from layerseg.segmentation import classical
from layerseg.simulate import acoustics

# the module (`layerseg.layers.decode` is the function of that name)
_decode_mod = importlib.import_module("layerseg.layers.decode")

KERNELS = {
    "filters._box._adaptive_kernel": _box._adaptive_kernel,
    "filters._box._frost_kernel": _box._frost_kernel,
    "filters.median._median_network_kernel": median._median_network_kernel,
    "filters.median._median_kernel": median._median_kernel,
    "filters.nlm._nlm_kernel": nlm._nlm_kernel,
    "filters.srad._srad_step": srad._srad_step,
    "layers.search._column_dp": search._column_dp,
    "layers.search._per_column_tiles": search._per_column_tiles,
    "layers.search._surface_pass": search._surface_pass,
    "layers.search._free_surface_pass": search._free_surface_pass,
    "layers.search._pass_box": search._pass_box,
    "layers.search._fit_surface": search._fit_surface,
    "layers.search._allowed_span": search._allowed_span,
    "layers.search._block_sums": search._block_sums,
    "layers.decode._below_plane_kernel": _decode_mod._below_plane_kernel,
    "layers.surfaces._labels_to_surfaces": surfaces._labels_to_surfaces,
    "layers.surfaces._surfaces_to_labels": surfaces._surfaces_to_labels,
    "layers.thickness._thickness_normal": thickness._thickness_normal,
    "simulate.acoustics._axial_conv": acoustics._axial_conv,
    "segmentation.classical._label_planes": classical._label_planes,
    "segmentation.classical._two_mode_ll": classical._two_mode_ll,
}


@pytest.mark.nojit
def test_kernels_are_plain_python_exactly_in_the_nojit_pass():
    nojit_pass = os.environ.get("LAYERSEG_NOJIT_PASS") == "1"
    assert bool(numba.config.DISABLE_JIT) is nojit_pass, (
        "the nojit pass needs NUMBA_DISABLE_JIT=1; the main pass must run with the JIT")
    for name, k in KERNELS.items():
        if nojit_pass:
            assert isinstance(k, types.FunctionType) and not isinstance(k, Dispatcher), name
        else:
            assert isinstance(k, Dispatcher), name
