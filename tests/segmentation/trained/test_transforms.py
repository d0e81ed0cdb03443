"""Transforms of the trained segmenters: array and dictionary classes agree, augmentations do what
they say, resampling by spacing keeps labels 0-7 and anatomy in millimetres."""

import numpy as np
import pytest

pytest.importorskip("monai")

from layerseg.segmentation.trained import transforms as T  # noqa: E402

AUGS = [(T.RandGain, T.RandGaind), (T.RandDynamicRange, T.RandDynamicRanged),
        (T.RandTGCSlope, T.RandTGCSloped), (T.RandSpeckle, T.RandSpeckled),
        (T.RandLowerFrequency, T.RandLowerFrequencyd), (T.RandSpeckleSize, T.RandSpeckleSized)]


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


def _corr_length(field: np.ndarray, axis: int) -> float:
    """Lag (pixels) where the autocorrelation of `field` along `axis` first falls under 1/e."""
    f = field - field.mean()
    n = f.shape[axis]
    for lag in range(1, n // 2):
        a = np.take(f, range(0, n - lag), axis=axis)
        b = np.take(f, range(lag, n), axis=axis)
        if (a * b).mean() / f.var() < np.exp(-1):
            return lag
    return n // 2


def test_speckle_of_another_grain_is_rayleigh_with_the_drawn_size():
    # the re-noising envelope: unit power, Rayleigh first-order statistics (SNR of the
    # amplitude 1.91, Burckhardt 1978), correlation lengths that follow the drawn sigmas
    img = np.full((1, 256, 256), 0.5, np.float32)
    sizes = {}
    for sig in (0.5, 3.0):
        t = T.RandSpeckleSize(prob=1.0, axial_sigma_range_px=(sig, sig),
                              lateral_sigma_range_px=(2 * sig, 2 * sig),
                              strength_range=(1.0, 1.0), dynamic_range_db=60.0)
        t.set_random_state(3)
        t.randomize(img)
        amp = 10 ** (t.noise_db / 20.0)              # envelope amplitude, unit power
        assert abs((amp ** 2).mean() - 1.0) < 1e-6
        assert abs(amp.mean() / amp.std() - 1.91) < 0.1
        sizes[sig] = (_corr_length(amp, 0), _corr_length(amp, 1))
    assert sizes[3.0][0] >= 4 * sizes[0.5][0]               # a coarser grain axially
    assert sizes[3.0][1] > sizes[3.0][0]                     # and laterally twice the axial


def test_layer_contrast_moves_each_layer_by_its_own_offset():
    lab = np.repeat(np.array([0, 1, 2, 3, 4, 5, 6, 7])[:, None], 6, axis=0)
    lab = np.repeat(lab, 10, axis=1)[None]                       # (1, 48, 10) bands
    img = np.full(lab.shape, 0.5, np.float32)
    t = T.RandLayerContrast(prob=1.0, offset_range_db=(-9.0, 9.0), blur_px=0.0,
                            dynamic_range_db=60.0)
    t.set_random_state(11)
    out = t(img, lab)
    for k in range(8):
        got = (out[lab == k] - 0.5) * 60.0
        np.testing.assert_allclose(got, t.offsets_db[k], atol=1e-4)
    assert np.all(t.offsets_db[:2] == 0) and np.ptp(t.offsets_db[2:]) > 1.0
    # the ranking of the layers changes between draws
    ranks = set()
    for seed in range(10):
        t.set_random_state(seed)
        t.randomize()
        ranks.add(tuple(np.argsort(t.offsets_db[2:])))
    assert len(ranks) > 5
    # blurred: smooth across a boundary, no step sharper than the blur
    tb = T.RandLayerContrast(prob=1.0, offset_range_db=(-9.0, 9.0), blur_px=1.5,
                             dynamic_range_db=60.0)
    tb.set_random_state(11)
    col = tb(img, lab)[0, :, 5]
    assert np.abs(np.diff(col)).max() < np.abs(np.diff(out[0, :, 5])).max()
    # dictionary form: the same draw, the label read from the sample, the label untouched
    d = T.RandLayerContrastd("image", prob=1.0, offset_range_db=(-9.0, 9.0), blur_px=0.0)
    d.set_random_state(11)
    res = d({"image": img, "label": lab})
    np.testing.assert_array_equal(res["image"], out)
    np.testing.assert_array_equal(res["label"], lab)
    np.testing.assert_array_equal(T.RandLayerContrast(prob=0.0)(img, lab), img)


def test_layer_texture_keeps_each_layer_brightness_and_drops_its_texture():
    # two layers: horizontal stripes (a fibre texture, mean 0.55) over a flat layer at 0.3
    rows, cols = 120, 160
    lab = np.zeros((1, rows, cols), np.int64)
    lab[0, :60], lab[0, 60:] = 6, 4
    r = np.arange(rows)[:, None]
    stripes = 0.55 + 0.15 * np.sign(np.sin(2 * np.pi * r / 6.0)) * np.ones((1, cols))
    img = np.where(lab[0] == 6, stripes, 0.3)[None].astype(np.float32)
    t = T.RandLayerTexture(prob=1.0, dynamic_range_db=60.0)
    t.set_random_state(3)
    out = t(img, lab)
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    for k, want in ((6, 0.55), (4, 0.3)):
        # mean brightness kept (the speckle's log-domain mean is taken out): within 0.02
        assert abs(float(out[lab == k].mean()) - want) < 0.02
    # the layers do not bleed into each other: the flat layer's rows next to the boundary keep
    # its level (a plain blur would pull them towards 0.55)
    assert abs(float(out[0, 60:63].mean()) - 0.3) < 0.03
    # the stripes are gone: the re-textured layer no longer follows them
    a = (out[0, 5:55] - out[0, 5:55].mean()).ravel()
    b = (img[0, 5:55] - img[0, 5:55].mean()).ravel()
    assert abs(float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))) < 0.2
    # speckle, not a flat fill: log-Rayleigh spread, 3-6 dB at strength 0.6-1
    sd_db = float(out[0, 70:110, 20:140].std()) * 60.0
    assert 2.5 < sd_db < 6.5
    # seeded: the same draw twice; dictionary form reads the label from the sample
    t.set_random_state(3)
    np.testing.assert_array_equal(t(img, lab), out)
    d = T.RandLayerTextured("image", prob=1.0, dynamic_range_db=60.0)
    d.set_random_state(3)
    res = d({"image": img, "label": lab})
    np.testing.assert_array_equal(res["image"], out)
    np.testing.assert_array_equal(res["label"], lab)
    np.testing.assert_array_equal(T.RandLayerTexture(prob=0.0)(img, lab), img)
    # seeded, the speckle draws from the transform's own stream, not from a twin of it: its
    # strength covers its whole range and its grain does not follow the smoothing width
    strengths, sig, grain = [], [], []
    for seed in range(300):
        t.set_random_state(seed)
        assert t.speckle.R is t.R
        t.randomize(None)
        if t._do_transform:
            t.sigma = float(t.R.uniform(*t.smooth_px))
            s_draw = float(t.R.uniform(*t.speckle.strength_range))
            strengths.append(s_draw)
            sig.append(t.sigma)
            grain.append(float(t.R.uniform(*t.speckle.axial_sigma_range_px)))
    assert max(strengths) > 0.9 and abs(np.corrcoef(sig, grain)[0, 1]) < 0.5


def test_spacing_scaling_stretches_layers_from_the_skin_side():
    # stated axial spacing x1.25: after resampling to a fixed spacing, each boundary lies 1.25x
    # deeper, the top edge fixed
    lab = np.zeros((1, 100, 20), np.uint8)
    lab[:, 20:60] = 2
    lab[:, 60:] = 3
    d = {"image": lab.astype(np.float32), "label": lab, "spacing_mm": (0.05, 0.05)}
    s = T.RandSpacingScaled(prob=1.0, axial_range=(1.25, 1.25), lateral_range=(1.0, 1.0))
    out = T.ResampleToSpacingd(["image", "label"], (0.05, 0.05),
                               mode=["linear", "nearest"])(s(d))
    col = out["label"][0, :, 10]
    assert out["label"].shape == (1, 125, 20)
    assert np.argmax(col == 2) == 25 and np.argmax(col == 3) == 75
    assert T.RandSpacingScaled(prob=0.0)(d)["spacing_mm"] == (0.05, 0.05)


def _layered(rows=200, cols=24, seed=0):
    """A label map in layer order with wavy surfaces, and an image that is a smooth function of
    depth inside each layer (so a stretch shows in it)."""
    rng = np.random.default_rng(seed)
    x = np.arange(cols)
    tops = np.array([10, 14, 50, 90, 100, 120, 160])          # epidermis..bone
    wave = np.round(3 * np.sin(x / 5 + rng.uniform(0, 6))).astype(int)
    lab = np.zeros((rows, cols), np.int64)
    for c in range(cols):
        t = tops + wave[c]
        for k in range(7):
            lab[t[k]:(t[k + 1] if k < 6 else rows), c] = k + 1
    img = lab[None].astype(np.float32) * 10.0
    return img, lab[None]


def _thickness(lab, k):
    return (lab[0] == k).sum(axis=0)


def test_layer_thickness_scales_each_layer_by_its_own_factor():
    img, lab = _layered()
    t = T.RandLayerThicknessd("image", prob=1.0, scale_range=(0.5, 2.0))
    t.set_random_state(3)
    out = t({"image": img, "label": lab})
    s = t.stretch
    assert s[0] == s[1] == s[7] == 1.0 and len(set(np.round(s[2:7], 6))) == 5
    for k in range(1, 7):
        before, after = _thickness(lab, k), _thickness(out["label"], k)
        # each layer's new thickness is its old one times its factor, to within a row, where
        # the stretched layer still ends inside the frame (the next layer follows it)
        inside = (out["label"][0] == k + 1).any(axis=0)
        assert inside.sum() >= 5 or k == 6
        assert np.all(np.abs(after - before * s[k])[inside] <= 1.0 + 1e-9), (k, s[k])
    # the layers stay in order, the skin side where it was
    assert np.array_equal(out["label"][0, :14], lab[0, :14])
    col = out["label"][0]
    for c in range(col.shape[1]):
        seq = col[:, c][col[:, c] > 0]
        assert np.all(np.diff(seq) >= 0)
    # image and label moved together: the image (10 x label) agrees away from the boundaries
    edge = np.zeros_like(col, bool)
    edge[1:] |= col[1:] != col[:-1]
    edge[:-1] |= col[1:] != col[:-1]
    inside = (~edge) & (col > 0)
    assert np.allclose(out["image"][0][inside], 10.0 * col[inside])
    # off: unchanged
    t0 = T.RandLayerThicknessd("image", prob=0.0)
    same = t0({"image": img, "label": lab})
    assert np.array_equal(same["image"], img) and np.array_equal(same["label"], lab)


def test_layer_thickness_compression_leaves_zero_rows_and_is_seeded():
    img, lab = _layered()
    t = T.RandLayerThicknessd("image", prob=1.0, scale_range=(0.5, 0.5))
    out = t({"image": img, "label": lab})
    assert (out["label"][0, -20:] == 0).all() and (out["image"][0, -20:] == 0).all()
    a = T.RandLayerThicknessd("image", prob=1.0).set_random_state(7)
    b = T.RandLayerThicknessd("image", prob=1.0).set_random_state(7)
    ra, rb = a({"image": img, "label": lab}), b({"image": img, "label": lab})
    assert np.array_equal(ra["image"], rb["image"])
    with pytest.raises(ValueError, match="scale_range"):
        T.RandLayerThicknessd("image", scale_range=(0.0, 1.0))
