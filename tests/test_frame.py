import numpy as np
import pytest

from layerseg import Frame, FrameMeta, FrameSeries
from layerseg.errors import (CalibrationError, FilterInputError, InvalidImageError,
                             SpacingRequiredError)
from layerseg.frame import display_to_envelope, envelope_to_display


def test_frame_converts_to_float32_and_keeps_spacing():
    f = Frame(np.arange(12, dtype=np.uint8).reshape(3, 4), (0.02, 0.05))
    assert f.bmode.dtype == np.float32 and f.shape == (3, 4)
    assert f.spacing_mm == (0.02, 0.05)
    assert f.extent_mm == pytest.approx((0.06, 0.2))


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((1, 5)), "too small"),
    (np.zeros((4,)), "2-D"),
    (np.zeros((4, 4, 3)), "colour"),
    (np.array([[0, np.nan], [1, 2]]), "NaN"),
    (np.array([[0, np.inf], [1, 2]]), "NaN/inf"),
])
def test_bad_images_raise_naming_file(bad, msg):
    with pytest.raises(InvalidImageError, match=msg) as e:
        Frame(bad, meta=FrameMeta(source="x.png"))
    assert "x.png" in str(e.value)


@pytest.mark.parametrize("sp", [(0, 0.05), (-1, 1), (np.nan, 1), (25.0, 0.1), ("a", 1)])
def test_bad_spacing(sp):
    with pytest.raises(CalibrationError, match="spacing"):
        Frame(np.zeros((4, 4)), sp, meta=FrameMeta(source="x.png"))


def test_negative_envelope_refused():
    with pytest.raises(InvalidImageError, match=">= 0"):
        Frame(-np.ones((4, 4)), intensity="envelope")


def test_require_spacing_and_override_provenance():
    f = Frame(np.zeros((4, 4)))
    with pytest.raises(SpacingRequiredError, match="thickness"):
        f.require_spacing("thickness")
    g = f.with_spacing((0.03, 0.04))
    assert g.spacing_mm == (0.03, 0.04) and g.meta.calibration == "user"
    assert f.spacing_mm is None  # original untouched


def test_elasto_validity_mask_applied():
    e = np.full((3, 3), 10.0)
    valid = np.ones((3, 3), bool)
    valid[0, 0] = False
    f = Frame(np.zeros((3, 3)), elasto=e, elasto_kind="swe_kpa", elasto_valid=valid)
    assert np.isnan(f.elasto[0, 0]) and not f.elasto_valid[0, 0]
    assert f.elasto_valid.sum() == 8
    with pytest.raises(InvalidImageError, match="elasto_kind"):
        Frame(np.zeros((3, 3)), elasto=e)
    with pytest.raises(InvalidImageError, match="shape"):
        Frame(np.zeros((3, 3)), elasto=np.zeros((2, 3)), elasto_kind="strain")


def test_log_compression_round_trip(rng):
    env = rng.rayleigh(1.0, (50, 40)).astype(np.float32) + 0.05
    ref = float(env.max())
    grey = envelope_to_display(env, 60.0, reference=ref)
    back = display_to_envelope(grey, 60.0) * ref
    # grey levels quantise nothing here (float32), so the round trip is exact to float precision
    np.testing.assert_allclose(back, env, rtol=1e-4)
    # 20 dB below the reference lies 20/60 of the scale below 255
    g = envelope_to_display(np.array([[ref, ref / 10]]), 60.0, reference=ref)
    np.testing.assert_allclose(g, [[255.0, 255.0 * (1 - 20 / 60)]], rtol=1e-6)


def test_envelope_of_display_needs_dynamic_range():
    f = Frame(np.full((4, 4), 255.0))
    with pytest.raises(FilterInputError, match="dynamic range"):
        f.envelope()
    g = Frame(np.full((4, 4), 255.0), dynamic_range_db=50)
    np.testing.assert_allclose(g.envelope(), 1.0)


def test_frame_series_is_lazy():
    loaded = []

    def load(i):
        loaded.append(i)
        return Frame(np.full((2, 2), float(i)))

    s = FrameSeries(5, load, "cine.dcm")
    assert len(s) == 5 and loaded == []
    assert s[-1].bmode[0, 0] == 4 and loaded == [4]
    assert [f.bmode[0, 0] for f in s[1:3]] == [1, 2]
    with pytest.raises(IndexError, match="cine.dcm"):
        s[5]
