"""One envelope-to-grey conversion: the segmenter sees the grey image the scorer measures."""

import numpy as np
import pytest

import layerseg.filters as filters
from layerseg import Frame
from layerseg.frame import DEFAULT_DYNAMIC_RANGE_DB
from layerseg.scoring.echo import display_grey, frame_dynamic_range_db
from layerseg.segmentation import segment
from layerseg.segmentation.classical import frame_features, input_grey


def _envelope_frame(dr=None, seed=0):
    rng = np.random.default_rng(seed)
    env = rng.rayleigh(1.0, (120, 80)).astype(np.float32)
    env[40:60] *= 4.0                        # a bright band
    env[5, 5] = env[90, 70] = 500.0          # specular spots: a max reference would darken all
    return Frame(env, spacing_mm=(0.03, 0.06), intensity="envelope", dynamic_range_db=dr)


@pytest.mark.parametrize("dr", [None, 45.0])
def test_segmenter_and_scorer_see_the_same_grey(dr):
    f = _envelope_frame(dr)
    seg_grey = input_grey(f)
    score_grey = display_grey(f)
    np.testing.assert_array_equal(seg_grey, score_grey)
    assert abs(seg_grey.mean() - score_grey.mean()) < 1e-9
    # the specular spots do not set the reference: the band is near the top of the scale
    assert np.median(seg_grey[40:60]) > 200
    assert frame_dynamic_range_db(f) == (dr or DEFAULT_DYNAMIC_RANGE_DB)
    assert f.as_display().dynamic_range_db == (dr or DEFAULT_DYNAMIC_RANGE_DB)
    np.testing.assert_array_equal(f.as_display().bmode, f.display())


def test_display_frame_is_passed_through():
    g = np.random.default_rng(1).uniform(0, 255, (30, 20)).astype(np.float32)
    f = Frame(g, spacing_mm=(0.03, 0.06))
    assert f.as_display() is f
    assert f.display_dynamic_range_db is None
    np.testing.assert_array_equal(input_grey(f), display_grey(f))


@pytest.mark.parametrize("method, kw", [("median", "size"), ("lee", "window")])
def test_classical_filters_through_filter_frame(monkeypatch, method, kw):
    calls = []
    real = filters.filter_frame

    def spy(frame, m, **kwargs):
        calls.append((m, frame.intensity, frame.dynamic_range_db, sorted(kwargs)))
        return real(frame, m, **kwargs)

    monkeypatch.setattr(filters, "filter_frame", spy)
    f = _envelope_frame(None)
    frame_features(f, None if method == "median" else _cfg(method))
    assert calls and calls[0] == (method, "display", DEFAULT_DYNAMIC_RANGE_DB, [kw])


def _cfg(method):
    from layerseg.segmentation import load_config
    return load_config({"filter": {"method": method}})


def test_envelope_and_its_display_segment_alike():
    """An envelope frame and the display frame made from it give the same answer."""
    from layerseg.simulate import simulate_frame
    sim = simulate_frame(3, shape=(256, 128))
    f = sim.frame if hasattr(sim, "frame") else sim[0]
    env = Frame(f.envelope(), spacing_mm=f.spacing_mm, intensity="envelope",
                dynamic_range_db=f.dynamic_range_db, meta=f.meta)
    a = segment(env)
    b = segment(env.as_display())
    np.testing.assert_array_equal(a, b)
