import numpy as np
import pytest

from layerseg.errors import FilterInputError
from layerseg.filters import attenuation_gain_db, compensate_attenuation

# also run with NUMBA_DISABLE_JIT=1 (scripts/test.sh): the kernels' bodies as plain Python
pytestmark = pytest.mark.nojit


def test_gain_formula(naive):
    g = attenuation_gain_db(50, (0.02, 0.05), 1.06, 24.0)
    np.testing.assert_allclose(g, naive.attenuation_gain_db(50, 0.02, 1.06, 24.0))
    # 1 cm deep at 1 dB/cm/MHz and 24 MHz: 48 dB round trip
    assert attenuation_gain_db(1000, 0.02, 1.0, 24.0)[499] == pytest.approx(2 * 24 * 0.999, rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slope_flattens_an_attenuated_envelope(rng, dtype):
    rows, dy, a, f = 200, 0.02, 1.0, 24.0
    loss = attenuation_gain_db(rows, dy, a, f)
    flat = rng.random((rows, 30)) + 0.5
    att = (flat * 10 ** (-loss / 20)[:, None]).astype(dtype)
    out = compensate_attenuation(att, dy, alpha_db_cm_mhz=a, f_mhz=f)
    assert out.dtype == dtype and out.shape == att.shape
    np.testing.assert_allclose(out, flat, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_log_input_adds_grey_levels():
    grey = np.full((100, 4), 100.0, np.float32)
    out = compensate_attenuation(grey, (0.05, 0.1), 0.5, 20.0, input="log", dynamic_range_db=60)
    expected = 100 + attenuation_gain_db(100, 0.05, 0.5, 20.0) / 60 * 255
    np.testing.assert_allclose(out[:, 0], np.clip(expected, 0, 255), rtol=1e-6)
    assert out.max() <= 255


def test_profile_flattens_it(rng):
    prof = np.linspace(1.0, 0.1, 40)
    img = rng.random((40, 10)) * prof[:, None]
    out = compensate_attenuation(img, profile=prof)
    np.testing.assert_allclose(out, img / prof[:, None], rtol=1e-12)


def test_constant_zero_slope_unchanged():
    img = np.full((20, 5), 3.0)
    np.testing.assert_array_equal(compensate_attenuation(img, 0.02, 0.0, 24.0), img)


@pytest.mark.parametrize("kw, match", [
    (dict(), "either"), (dict(alpha_db_cm_mhz=1.0, f_mhz=24.0, profile=np.ones(10)), "either"),
    (dict(alpha_db_cm_mhz=1.0, f_mhz=24.0), "spacing_mm"),
    (dict(alpha_db_cm_mhz=1.0, spacing_mm=0.02), "f_mhz"),
    (dict(profile=np.ones(5)), "one value per image row"),
    (dict(profile=np.zeros(10)), "> 0"),
    (dict(alpha_db_cm_mhz=-1.0, f_mhz=24.0, spacing_mm=0.02), "non-negative"),
    (dict(alpha_db_cm_mhz=1.0, f_mhz=24.0, spacing_mm=0.02, input="log"), "dynamic_range_db"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(FilterInputError, match=match):
        compensate_attenuation(np.ones((10, 4)), **kw)
