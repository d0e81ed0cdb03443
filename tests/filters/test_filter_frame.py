import numpy as np
import pytest

from layerseg import Frame, FrameMeta
from layerseg.errors import FilterInputError, SpacingRequiredError
from layerseg.filters import (compensate_attenuation, despeckle_srad, filter_frame, filter_lee,
                              median_filter)

# also run with NUMBA_DISABLE_JIT=1 (scripts/test.sh): the kernels' bodies as plain Python
pytestmark = pytest.mark.nojit


def test_envelope_frame(rng):
    env = rng.random((30, 40)).astype(np.float32)
    fr = Frame(env, spacing_mm=(0.02, 0.05), intensity="envelope")
    out = filter_frame(fr, "lee", window=5)
    assert out is not fr and out.spacing_mm == fr.spacing_mm and out.intensity == "envelope"
    np.testing.assert_array_equal(out.bmode, filter_lee(env, 5))
    assert out.meta.extra["filters"] == [{"method": "lee", "window": 5}]
    out2 = filter_frame(out, "median", size=3)
    assert [r["method"] for r in out2.meta.extra["filters"]] == ["lee", "median"]


def test_display_frame_goes_through_envelope(rng):
    grey = rng.uniform(0, 255, (30, 30)).astype(np.float32)
    fr = Frame(grey, intensity="display", dynamic_range_db=50.0)
    out = filter_frame(fr, "srad", n_iter=3, dt=0.1)
    np.testing.assert_array_equal(out.bmode, despeckle_srad(grey, 3, 0.1, input="log",
                                                            dynamic_range_db=50.0))
    np.testing.assert_array_equal(filter_frame(fr, "median", size=5).bmode,
                                  median_filter(grey, 5))


def test_display_frame_without_dynamic_range_refused(rng):
    fr = Frame(rng.uniform(0, 255, (20, 20)), intensity="display")
    with pytest.raises(FilterInputError, match="dynamic range"):
        filter_frame(fr, "kuan")
    assert filter_frame(fr, "nlm", distance="l2", patch=3, search=2, h=10.0).shape == (20, 20)


def test_attenuation_uses_frame_spacing_and_frequency(rng):
    env = rng.random((25, 8)).astype(np.float32)
    fr = Frame(env, spacing_mm=(0.03, 0.05), intensity="envelope",
               meta=FrameMeta(frequency_mhz=24.0))
    out = filter_frame(fr, "attenuation", alpha_db_cm_mhz=1.0)
    np.testing.assert_array_equal(out.bmode, compensate_attenuation(env, 0.03, 1.0, 24.0))
    with pytest.raises(SpacingRequiredError):
        filter_frame(Frame(env, intensity="envelope"), "attenuation", alpha_db_cm_mhz=1.0)


def test_bad_method_and_domain_override(rng):
    fr = Frame(rng.random((10, 10)), intensity="envelope")
    with pytest.raises(FilterInputError, match="unknown filter"):
        filter_frame(fr, "bilateral")
    with pytest.raises(FilterInputError, match="sets input"):
        filter_frame(fr, "lee", input="log")
