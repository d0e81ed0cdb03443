from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from layerseg.errors import FilterInputError
from layerseg.filters import median as median_module
from layerseg.filters import median_filter
from layerseg.filters.median import (NETWORK_MAX, UNROLLED, UNROLLED_MODULE, median_network,
                                     median_schedule, unrolled_source)

# also run with NUMBA_DISABLE_JIT=1 (scripts/test.sh): the kernels' bodies as plain Python
pytestmark = pytest.mark.nojit


@pytest.mark.parametrize("n", [9, 15, 25, 49])
def test_network_selects_the_median(n, rng):
    a, b, op, out = median_network(n)
    for _ in range(200):
        v = rng.permutation(n).astype(float)
        buf = v.copy()
        for x, y, o in zip(a, b, op):
            lo, hi = min(buf[x], buf[y]), max(buf[x], buf[y])
            if o in (0, 1):
                buf[x] = lo
            if o in (0, 2):
                buf[y] = hi
        assert buf[out] == np.median(v)


@pytest.mark.parametrize("n", [9, 15, 25, 49])
def test_out_of_place_schedule_selects_the_median(n, rng):
    sa, sb, dmin, dmax, op, out_row, n_rows = median_schedule(n)
    assert n_rows == n + 2
    for _ in range(100):
        v = rng.permutation(n).astype(float)
        buf = np.full(n_rows, np.nan)
        buf[:n] = v
        for a, b, lo, hi, o in zip(sa, sb, dmin, dmax, op):
            assert a != b and lo not in (a, b) and hi not in (a, b)
            if o in (0, 1):
                buf[lo] = min(buf[a], buf[b])
            if o in (0, 2):
                buf[hi] = max(buf[a], buf[b])
        assert buf[out_row] == np.median(v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [3, 5, 7, 9, (3, 5), (7, 1)])
@pytest.mark.parametrize("shape", [(23, 31), (40, 17)])
def test_equals_scipy_exactly(rng, dtype, size, shape):
    img = rng.normal(size=shape).astype(dtype)
    img[3, 4:9] = img[3, 4]                  # ties
    out = median_filter(img, size)
    assert out.dtype == dtype and out.shape == img.shape
    np.testing.assert_array_equal(out, ndi.median_filter(img, size=size))


def test_unrolled_kernels_are_the_generators_output():
    # the committed kernels cannot drift from the network they were generated from
    path = Path(median_module.__file__).with_name(UNROLLED_MODULE)
    assert path.read_text(encoding="utf-8") == unrolled_source()
    assert UNROLLED == (3, 5, 7)


@pytest.mark.parametrize("size", [3, 5, 7])
def test_unrolled_and_row_schedule_paths_agree(rng, size):
    # the same network through the unrolled kernel (median_filter) and the row schedule
    img = rng.random((19, 26)).astype(np.float32)
    sa, sb, dmin, dmax, sop, out_row, n_rows = median_schedule(size * size)
    P = np.pad(img, size // 2, mode="symmetric")
    ref = np.empty_like(img)
    median_module._median_network_kernel(P, size, size, sa, sb, dmin, dmax, sop, out_row, n_rows,
                                         2, ref)
    np.testing.assert_array_equal(median_filter(img, size), ref)


def test_large_window_path_equals_scipy(rng):
    img = rng.random((30, 33)).astype(np.float32)
    assert 17 * 17 > NETWORK_MAX
    np.testing.assert_array_equal(median_filter(img, 17), ndi.median_filter(img, size=17))
    np.testing.assert_array_equal(median_filter(img, 15), ndi.median_filter(img, size=15))


def test_integer_input_and_constant(rng):
    img = rng.integers(0, 255, (21, 22), dtype=np.uint8)
    out = median_filter(img, 5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ndi.median_filter(img.astype(np.float32), size=5))
    const = np.full((10, 12), 7.5)
    np.testing.assert_array_equal(median_filter(const, 3), const)


@pytest.mark.parametrize("size", [2, 4, (5, 6), 0, -3])
def test_even_or_bad_window(size):
    with pytest.raises(FilterInputError, match="odd"):
        median_filter(np.ones((20, 20)), size)


def test_too_large_window_and_bad_pixels():
    with pytest.raises(FilterInputError, match="larger than the image"):
        median_filter(np.ones((5, 40)), 7)
    with pytest.raises(FilterInputError, match="NaN"):
        median_filter(np.full((6, 6), np.nan), 3)
    with pytest.raises(FilterInputError, match="float16"):
        median_filter(np.ones((6, 6), np.float16), 3)
