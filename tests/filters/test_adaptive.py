import numpy as np
import pytest
from scipy import ndimage as ndi

from layerseg.errors import FilterInputError
from layerseg.filters import (estimate_speckle_cv, filter_frost, filter_kuan, filter_lee,
                              local_cv)
from layerseg.filters._config import ATOL_REL, RAYLEIGH_CV, RTOL

DTYPES = [np.float32, np.float64]

# also run with NUMBA_DISABLE_JIT=1 (scripts/test.sh): the kernels' bodies as plain Python
pytestmark = pytest.mark.nojit


def _close(a, b, dtype, peak):
    dt = np.dtype(dtype)
    np.testing.assert_allclose(a, b, rtol=RTOL[dt], atol=ATOL_REL[dt] * peak)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("window", [3, 5, (3, 7)])
def test_lee_kuan_match_naive(naive, rng, dtype, window):
    img = (rng.random((17, 23)) * 3).astype(dtype)
    wr, wc = (window, window) if np.isscalar(window) else window
    for fn, kuan in ((filter_lee, False), (filter_kuan, True)):
        for cu in (0.3, 0.8):
            out = fn(img, window, cu=cu)
            assert out.dtype == dtype and out.shape == img.shape
            _close(out, naive.lee(img, wr, wc, cu, kuan=kuan), dtype, 3.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lee_matches_uniform_filter_statistics(rng, dtype):
    # independent reference: scipy's box statistics (reflect boundary), Lee's formula
    img = (rng.random((31, 40)) + 0.1).astype(np.float64)
    m = ndi.uniform_filter(img, 5)
    var = np.maximum(ndi.uniform_filter(img * img, 5) - m * m, 0)
    w = np.clip(1 - 0.5 ** 2 * m * m / var, 0, 1)
    ref = m + w * (img - m)
    out = filter_lee(img.astype(dtype), 5, cu=0.5)
    np.testing.assert_allclose(out, ref, rtol=1e-4 if dtype == np.float32 else 1e-7, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("window", [3, 5])
def test_frost_matches_naive(naive, rng, dtype, window):
    img = (rng.random((15, 19)) * 2).astype(dtype)
    for damping in (0.5, 2.0):
        out = filter_frost(img, window, damping)
        assert out.dtype == dtype
        _close(out, naive.frost(img, window, window, damping), dtype, 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_local_cv_matches_naive(naive, rng, dtype):
    img = rng.random((14, 18)).astype(dtype)
    _close(local_cv(img, 5), naive.local_cv(img, 5, 5), dtype, 1.0)


@pytest.mark.parametrize("fn", [filter_lee, filter_kuan, filter_frost])
@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_image_unchanged(fn, dtype):
    img = np.full((20, 30), 3.25, dtype=dtype)
    out = fn(img, 5)
    assert out.dtype == dtype and out.shape == img.shape
    np.testing.assert_allclose(out, img, rtol=1e-6)


@pytest.mark.parametrize("fn", [filter_lee, filter_kuan, filter_frost])
def test_speckle_index_falls(fn, speckle):
    env = speckle(np.random.default_rng(3), (128, 128)).astype(np.float32)
    si_before = env.std() / env.mean()
    assert abs(si_before - RAYLEIGH_CV) < 0.02
    out = fn(env, 7)
    assert out.std() / out.mean() < 0.6 * si_before


@pytest.mark.parametrize("fn", [filter_lee, filter_kuan, filter_frost])
def test_step_edge_kept(fn, speckle):
    rng = np.random.default_rng(4)
    rows, cols, edge = 96, 64, 32
    scale = np.where(np.arange(cols) < edge, 1.0, 4.0)[None, :]
    env = (speckle(rng, (rows, cols)) * scale).astype(np.float64)
    out = fn(env, 5)
    prof = out.mean(axis=0)
    assert int(np.argmax(np.diff(prof))) + 1 in (edge - 1, edge, edge + 1)
    contrast_in = env[:, edge:edge + 3].mean() / env[:, edge - 3:edge].mean()
    contrast_out = out[:, edge:edge + 3].mean() / out[:, edge - 3:edge].mean()
    assert contrast_out > 0.6 * contrast_in  # most of the 12 dB step survives within 3 px


def test_cu_options(rng, speckle):
    env = speckle(rng, (64, 64))
    est = estimate_speckle_cv(env)
    assert 0.4 < est < 0.6
    box_cv = estimate_speckle_cv(env, box=(0, 0, 32, 32))
    sub = env[:32, :32]
    assert box_cv == pytest.approx(sub.std() / sub.mean())
    np.testing.assert_allclose(filter_lee(env, 5, cu="auto"), filter_lee(env, 5, cu=est))
    np.testing.assert_allclose(filter_lee(env, 5, cu=(0, 0, 32, 32)), filter_lee(env, 5, cu=box_cv))
    np.testing.assert_allclose(filter_lee(env, 5), filter_lee(env, 5, cu=RAYLEIGH_CV))


def test_log_input_round_trip(rng, speckle):
    from layerseg.frame import display_to_envelope, envelope_to_display
    env = speckle(rng, (40, 40)).astype(np.float32) * 0.1 + 0.01
    grey = envelope_to_display(env, 60.0, reference=1.0)
    out = filter_lee(grey, 5, input="log", dynamic_range_db=60.0)
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 255
    ref = envelope_to_display(filter_lee(display_to_envelope(grey, 60.0), 5), 60.0, reference=1.0)
    np.testing.assert_allclose(out, ref, atol=1e-3)


def test_integer_input_converted(rng):
    img = rng.integers(1, 255, (20, 20)).astype(np.uint8)
    out = filter_lee(img, 3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, filter_lee(img.astype(np.float32), 3))


@pytest.mark.parametrize("bad, match", [
    (np.full((8, 8), np.nan), "NaN"),
    (np.array([[1.0, np.inf], [1.0, 1.0]]), "NaN/inf"),
    (-np.ones((8, 8)), "negative"),
    (np.ones((8, 8), dtype=np.float16), "float16"),
    (np.ones((8, 8), dtype=complex), "pixel type"),
    (np.ones(8), "2-D"),
])
def test_bad_images(bad, match):
    with pytest.raises(FilterInputError, match=match):
        filter_lee(bad, 3)


@pytest.mark.parametrize("window, match", [(4, "odd"), ((3, 6), "odd"), (0, "odd"),
                                           (11, "larger than the image"), ("5", "odd int")])
def test_bad_windows(window, match):
    with pytest.raises(FilterInputError, match=match):
        filter_kuan(np.ones((8, 20)), window)


def test_bad_options():
    img = np.ones((8, 8))
    with pytest.raises(FilterInputError, match="dynamic_range_db"):
        filter_lee(img, 3, input="log")
    with pytest.raises(FilterInputError, match="input='envelope'"):
        filter_lee(img, 3, dynamic_range_db=60)
    with pytest.raises(FilterInputError, match="grey levels"):
        filter_lee(img * 300, 3, input="log", dynamic_range_db=60)
    with pytest.raises(FilterInputError, match="input must be"):
        filter_lee(img, 3, input="linear")
    with pytest.raises(FilterInputError, match="damping"):
        filter_frost(img, 3, damping=-1)
    with pytest.raises(FilterInputError, match="cu must be"):
        filter_lee(img, 3, cu="rayleigh")
    with pytest.raises(FilterInputError, match="smaller than 3 x 3"):
        filter_lee(img, 3, cu=(0, 0, 2, 2))


def test_speckle_cv_of_flat_image_refused():
    with pytest.raises(FilterInputError, match="flat or zero"):
        estimate_speckle_cv(np.zeros((10, 10)))
    with pytest.raises(FilterInputError, match="zero mean"):
        filter_lee(np.zeros((10, 10)), 3, cu=(0, 0, 5, 5))
