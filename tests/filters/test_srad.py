import math

import numpy as np
import pytest

from layerseg.errors import FilterInputError
from layerseg.filters import despeckle_srad, estimate_speckle_cv
from layerseg.filters._config import ATOL_REL, RAYLEIGH_CV, RTOL, SRAD_EPS_REL

# also run with NUMBA_DISABLE_JIT=1 (scripts/test.sh): the kernels' bodies as plain Python
pytestmark = pytest.mark.nojit


def _eps(img):
    return SRAD_EPS_REL * float(img.max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_naive_decaying_q0(naive, rng, dtype):
    img = (rng.random((13, 17)) + 0.05).astype(dtype)
    n_iter, dt, q0 = 6, 0.2, 0.4
    out = despeckle_srad(img, n_iter, dt, q0=q0)
    ref = naive.srad(img, n_iter, dt, lambda it, I: (q0 * math.exp(-it * dt / 6)) ** 2, _eps(img))
    assert out.dtype == dtype and out.shape == img.shape
    np.testing.assert_allclose(out, ref, rtol=RTOL[np.dtype(dtype)],
                               atol=ATOL_REL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_naive_box_q0(naive, rng, dtype):
    img = (rng.random((12, 15)) + 0.05).astype(dtype)
    box = (2, 3, 8, 10)

    def q0sq(it, I):
        reg = I[2:8, 3:10].astype(np.float64)
        return reg.var() / reg.mean() ** 2

    out = despeckle_srad(img, 5, 0.25, q0=box)
    ref = naive.srad(img, 5, 0.25, q0sq, _eps(img))
    np.testing.assert_allclose(out, ref, rtol=RTOL[np.dtype(dtype)],
                               atol=ATOL_REL[np.dtype(dtype)])


def test_zero_pixels_stay_finite(naive, rng):
    img = rng.random((10, 11))
    img[4:6, 4:6] = 0.0
    out = despeckle_srad(img, 4, 0.1)
    assert np.isfinite(out).all()
    ref = naive.srad(img, 4, 0.1, lambda it, I: (RAYLEIGH_CV * math.exp(-it * 0.1 / 6)) ** 2,
                     _eps(img))
    np.testing.assert_allclose(out, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_image_unchanged(dtype):
    img = np.full((16, 20), 2.5, dtype=dtype)
    out = despeckle_srad(img, 10, 0.2)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, img)


def test_zero_iterations_is_a_copy(rng):
    img = rng.random((8, 9))
    out = despeckle_srad(img, 0)
    np.testing.assert_array_equal(out, img)
    assert out is not img


def test_speckle_index_falls_and_edge_kept(speckle):
    rng = np.random.default_rng(7)
    env = speckle(rng, (96, 96)).astype(np.float32)
    out = despeckle_srad(env, 60, 0.2, q0=(10, 10, 80, 80))
    assert out.std() / out.mean() < 0.5 * (env.std() / env.mean())
    rows, cols, edge = 96, 64, 32
    scale = np.where(np.arange(cols) < edge, 1.0, 4.0)[None, :]
    env = speckle(rng, (rows, cols)) * scale
    out = despeckle_srad(env, 30, 0.2)
    prof = out.mean(axis=0)
    assert int(np.argmax(np.diff(prof))) + 1 in (edge - 1, edge, edge + 1)
    c_in = env[:, edge:edge + 3].mean() / env[:, edge - 3:edge].mean()
    c_out = out[:, edge:edge + 3].mean() / out[:, edge - 3:edge].mean()
    assert c_out > 0.6 * c_in


def test_auto_q0_uses_whole_image_estimate(rng, speckle):
    env = speckle(rng, (40, 40))
    est = estimate_speckle_cv(env)
    np.testing.assert_allclose(despeckle_srad(env, 3, 0.1, q0="auto"),
                               despeckle_srad(env, 3, 0.1, q0=est))


def test_log_input(rng, speckle):
    from layerseg.frame import envelope_to_display
    grey = envelope_to_display(speckle(rng, (30, 30)) * 0.1, 50.0, reference=1.0)
    out = despeckle_srad(grey, 5, 0.1, input="log", dynamic_range_db=50.0)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 255
    assert out.std() < grey.std()


@pytest.mark.parametrize("kw, match", [
    (dict(dt=0.3), "at most 0.25"), (dict(dt=0), "positive"), (dict(n_iter=-1), "n_iter"),
    (dict(n_iter=2.5), "n_iter"), (dict(q0="robust"), "q0 must be"),
    (dict(q0=(0, 0, 50, 50)), "not inside"), (dict(q0=-0.1), "positive"),
])
def test_bad_parameters(kw, match):
    with pytest.raises(FilterInputError, match=match):
        despeckle_srad(np.ones((10, 10)), **kw)


def test_negative_envelope_rejected():
    with pytest.raises(FilterInputError, match="negative"):
        despeckle_srad(-np.ones((5, 5)), 2)
