"""`layerseg.segmentation.pipeline.resample_to_shape` against a plain reference: scipy's zoom over
every axis at once (factor 1 on the leading ones), on random inputs."""

import numpy as np
import pytest
import scipy.ndimage as ndi

from layerseg.segmentation.pipeline import resample_to_shape


def _reference(arr, shape, order):
    lead = arr.shape[:-2]
    zoom = [1.0] * len(lead) + [o / i for o, i in zip(shape, arr.shape[-2:])]
    src = arr if order == 0 else arr.astype(np.float32)
    out = ndi.zoom(src, zoom, order=order, mode="nearest", grid_mode=True, prefilter=False)
    out = out[..., :shape[0], :shape[1]]
    pad = [(0, 0)] * len(lead) + [(0, shape[0] - out.shape[-2]), (0, shape[1] - out.shape[-1])]
    return np.pad(out, pad, mode="edge").astype(arr.dtype)


@pytest.mark.parametrize("lead", [(), (1,), (3,), (2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("order", [0, 1])
def test_plane_by_plane_zoom_equals_zoom_over_all_axes(lead, dtype, order):
    rng = np.random.default_rng(hash((lead, np.dtype(dtype).str, order)) % 2**32)
    for _ in range(12):
        src_shape = tuple(int(v) for v in rng.integers(3, 70, 2))
        to = tuple(int(v) for v in rng.integers(2, 110, 2))
        arr = (rng.random(lead + src_shape) * 255).astype(dtype)
        out = resample_to_shape(arr, to, order=order)
        ref = _reference(arr, to, order)
        assert out.shape == lead + to and out.dtype == arr.dtype
        np.testing.assert_array_equal(out, ref)


def test_same_shape_is_a_copy_and_constant_stays_constant():
    arr = np.full((2, 40, 30), 7.5, dtype=np.float32)
    same = resample_to_shape(arr, (40, 30))
    assert same is not arr and np.array_equal(same, arr)
    np.testing.assert_allclose(resample_to_shape(arr, (97, 13)), 7.5, rtol=0, atol=1e-6)
