"""Transforms of the trained segmenters: array and dictionary classes agree, augmentations do what
they say, resampling by spacing keeps labels 0-7 and anatomy in millimetres."""

import numpy as np
import pytest

pytest.importorskip("monai")

from layerseg.segmentation.trained import transforms as T  # noqa: E402

AUGS = [(T.RandGain, T.RandGaind), (T.RandDynamicRange, T.RandDynamicRanged),
        (T.RandTGCSlope, T.RandTGCSloped), (T.RandSpeckle, T.RandSpeckled),
        (T.RandLowerFrequency, T.RandLowerFrequencyd)]


@pytest.fixture
def grey(rng):
    img = np.clip(rng.normal(0.5, 0.15, (1, 40, 30)), 0, 1).astype(np.float32)
    img[:, 10:20] += 0.2          # an edge, so blur changes something
    return np.clip(img, 0, 1)


@pytest.mark.parametrize("arr_cls, dict_cls", AUGS, ids=[a.__name__ for a, _ in AUGS])
def test_array_and_dict_agree(arr_cls, dict_cls, grey):
    a = arr_cls(prob=1.0)
    a.set_random_state(7)
    d = dict_cls(["image"], prob=1.0)
    d.set_random_state(7)
    out_a = a(grey)
    out_d = d({"image": grey, "label": np.zeros((1, 40, 30), np.uint8)})
    np.testing.assert_array_equal(out_a, out_d["image"])
    assert out_a.dtype == np.float32 and out_a.shape == grey.shape
    assert 0.0 <= out_a.min() and out_a.max() <= 1.0
    assert not np.allclose(out_a, grey)                      # it did something
    np.testing.assert_array_equal(out_d["label"], 0)          # other keys untouched
    # prob 0: the identity
    np.testing.assert_array_equal(arr_cls(prob=0.0)(grey), grey)


def test_augmentations_by_their_physics():
    flat = np.full((1, 11, 5), 0.5, np.float32)
    g = T.RandGain(prob=1.0, gain_range_db=(6.0, 6.0))
    np.testing.assert_allclose(g(flat), 0.5 + 6 / 60, atol=1e-6)
    dr = T.RandDynamicRange(prob=1.0, range_db=(30.0, 30.0))
    np.testing.assert_allclose(dr(flat), 0.0, atol=1e-6)      # 1 - 0.5 * 60/30
    np.testing.assert_allclose(dr(np.ones_like(flat)), 1.0)   # white stays white
    tgc = T.RandTGCSlope(prob=1.0, slope_range_db=(6.0, 6.0))(flat)
    np.testing.assert_allclose(tgc[0, 0], 0.5, atol=1e-6)
    np.testing.assert_allclose(tgc[0, -1], 0.6, atol=1e-6)
    assert np.all(np.diff(tgc[0, :, 0]) > 0)
    blur = T.RandLowerFrequency(prob=1.0, axial_sigma_range_px=(2.0, 2.0))
    step = np.zeros((1, 20, 5), np.float32)
    step[:, 10:] = 1
    out = blur(step)
    assert 0.1 < out[0, 9, 2] < 0.5 < out[0, 10, 2] < 0.9       # edge smoothed axially
    np.testing.assert_allclose(out.sum(), step.sum(), rtol=1e-3)


def test_resampled_labels_stay_integer_0_7(rng):
    lab = rng.integers(0, 8, (1, 37, 23)).astype(np.uint8)
    r = T.ResampleToSpacingd(["image", "label"], (0.05, 0.04), mode=["linear", "nearest"])
    out = r({"image": lab.astype(np.float32), "label": lab, "spacing_mm": (0.02, 0.05)})
    assert out["label"].dtype == np.uint8
    assert out["label"].shape == (1, 15, 29)
    assert set(np.unique(out["label"])) <= set(range(8))
    assert out["spacing_mm"] == (0.05, 0.04) and out["spacing_mm_orig"] == (0.02, 0.05)
    assert out["image"].shape == out["label"].shape


def _phantom(spacing, depth_mm=6.0, width_mm=6.0):
    """Analytic layers (surfaces in mm as smooth functions of the lateral position) rendered at
    `spacing`: label of a pixel = number of surfaces above its centre."""
    rows, cols = int(round(depth_mm / spacing[0])), int(round(width_mm / spacing[1]))
    z = (np.arange(rows) + 0.5)[:, None] * spacing[0]
    x = (np.arange(cols) + 0.5)[None, :] * spacing[1]
    tops = [0.4, 0.6, 1.8, 3.2, 3.6, 4.2, 5.3]
    lab = np.zeros((rows, cols), np.uint8)
    for k, t in enumerate(tops):
        surf = t + 0.25 * np.sin(2 * np.pi * x / width_mm)   # parallel, never crossing
        lab[z >= surf] = k + 1
    return lab


def _within_one_pixel(a, b):
    ok = np.zeros(a.shape, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ok |= np.roll(np.roll(b, dy, 0), dx, 1) == a
    return ok[1:-1, 1:-1].all()


def test_two_spacings_agree_after_resampling():
    # the example: 0.02 x 0.05 mm and 0.03 x 0.03 mm frames reach the net at one scale
    target = (0.04, 0.04)
    a, b = _phantom((0.02, 0.05)), _phantom((0.03, 0.03))
    ra = T.ResampleToSpacing(target, "nearest")(a[None], (0.02, 0.05))[0]
    rb = T.ResampleToSpacing(target, "nearest")(b[None], (0.03, 0.03))[0]
    assert ra.shape == rb.shape == (150, 150)
    assert _within_one_pixel(ra, rb)
    # ... and back on each frame's own grid, within one pixel of the original
    back = T.resample_to_shape(ra[None], a.shape, order=0)[0]
    assert _within_one_pixel(back, a)
    # a wrong spacing (axial 0.025 instead of 0.02 mm) fails the check
    wrong = T.ResampleToSpacing(target, "nearest")(a[None], (0.025, 0.05))[0]
    assert wrong.shape == (188, 150)
    assert not _within_one_pixel(wrong[:150], rb)


def test_simulated_anatomy_at_two_axial_spacings():
    from layerseg.simulate import simulate_frame

    a = simulate_frame(3, shape=(240, 256), vary=False, with_elasto=False)   # 0.05 x 0.05 mm
    b = simulate_frame(3, shape=(400, 256), vary=False, with_elasto=False)   # 0.03 x 0.05 mm
    target = (0.04, 0.05)
    ra = T.ResampleToSpacing(target, "nearest")(a.labels[None], a.frame.spacing_mm)[0]
    rb = T.ResampleToSpacing(target, "nearest")(b.labels[None], b.frame.spacing_mm)[0]
    assert ra.shape == rb.shape == (300, 256)
    assert _within_one_pixel(ra, rb)


def test_normalise_elasto():
    e = np.array([[[np.nan, 50.0, 400.0]]], np.float32)
    out = T.NormaliseElastod(["elasto"])({"elasto": e, "elasto_kind": "swe_kpa"})["elasto"]
    np.testing.assert_allclose(out, [[[0.0, 0.5, 3.0]]])
    np.testing.assert_allclose(T.NormaliseElasto()(np.array([0.01]), "strain"), [0.01], rtol=1e-6)
