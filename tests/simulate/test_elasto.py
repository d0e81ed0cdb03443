import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from layerseg.errors import (CalibrationError, ConfigError, LayersegError, ProfileError,
                             SpacingRequiredError)
from layerseg.simulate.elasto import (STIFFNESS_LAYERS, draw_colour_bar, draw_layer_stiffness,
                                      modulus_map, render_elasto_overlay,
                                      random_valid_box, series_strain, simulate_strain,
                                      simulate_swe, stiffness_table)

KPA = {"epidermis": 20.0, "dermis": 12.0, "fat": 4.0, "smas": 10.0, "deep_fat": 5.0,
       "muscle": 9.0, "bone": 1000.0}


def layered(rows=120, cols=80, bounds=((5, 1), (10, 2), (50, 3), (55, 4), (90, 6), (110, 7))):
    """Horizontal layers: each (top_row, label); background above the first."""
    lab = np.zeros((rows, cols), np.int64)
    for top, label in bounds:
        lab[top:] = label
    return lab


# ---------------------------------------------------------------------------------- stiffness
def _population(region, sexes, ages, seed=7):
    rng = np.random.default_rng(seed)
    return np.array([[draw_layer_stiffness(region, s, a, rng)[k] for k in STIFFNESS_LAYERS]
                     for s, a in zip(sexes, ages)])


def test_stiffness_table_cites_every_value():
    t = stiffness_table()
    for name in STIFFNESS_LAYERS:
        assert t["layers"][name]["source"].strip()
    for reg, layers in t["regions"].items():
        for name, d in layers.items():
            assert name in STIFFNESS_LAYERS and d["source"].strip(), (reg, name)


def test_masseter_matches_published_means_and_age_trend():
    # IJERPH 2021;18:9371: masseter 9.48 kPa (women), 11.73 kPa (men), rising with age r ~ 0.3
    n = 3000
    rng = np.random.default_rng(1)
    ages = rng.uniform(20, 80, n)
    sexes = np.where(rng.random(n) < 0.5, "F", "M")
    e = _population("masseter", sexes, ages)[:, STIFFNESS_LAYERS.index("muscle")]
    near50 = np.abs(ages - 50) < 10
    for sex, ref in (("F", 9.48), ("M", 11.73)):
        m = e[(sexes == sex) & near50].mean()
        assert abs(m - ref) / ref < 0.04, (sex, m)
    r = np.corrcoef(ages, e)[0, 1]
    assert 0.2 < r < 0.4
    assert 9.0 < e.mean() < 12.5  # 10.67 +/- 1.77 kPa overall


def test_temporalis_and_deep_fat_age_law():
    n = 2000
    rng = np.random.default_rng(2)
    ages = rng.uniform(18, 63, n)
    sexes = ["F"] * n
    e = _population("temple", [None] * n, np.full(n, 38.0))
    assert abs(np.median(e[:, STIFFNESS_LAYERS.index("muscle")]) - 8.84) < 0.3
    # Paluch 2020: deep medial cheek fat SWE vs age, R = -0.838 in women 18-63 y
    e = _population("cheek", sexes, ages)
    r = np.corrcoef(ages, e[:, STIFFNESS_LAYERS.index("deep_fat")])[0, 1]
    assert -0.9 < r < -0.78
    # facial skin SWE inversely correlated with age; superficial fat softening with age
    for layer in ("dermis", "fat"):
        assert np.corrcoef(ages, e[:, STIFFNESS_LAYERS.index(layer)])[0, 1] < -0.1


def test_stiffness_follows_formula_for_one_draw():
    t = stiffness_table()
    rng = np.random.default_rng(3)
    z = np.random.default_rng(3).standard_normal(len(STIFFNESS_LAYERS))
    d = draw_layer_stiffness("forehead", "M", 61.0, rng)
    p = t["layers"]["dermis"]
    i = STIFFNESS_LAYERS.index("dermis")
    want = (p["e_ref_kpa"] * p["sex_factor"]["M"]
            * math.exp(p["age_slope_per_year"] * (61.0 - p["ref_age_years"]))
            * math.exp(p["cv"] * z[i] - p["cv"] ** 2 / 2))
    assert d["dermis"] == pytest.approx(want, rel=1e-12)
    assert set(d) == set(STIFFNESS_LAYERS) and all(v > 0 for v in d.values())


def test_stiffness_seeded_and_validated():
    a = draw_layer_stiffness("cheek", "F", 40, np.random.default_rng(5))
    b = draw_layer_stiffness("cheek", "F", 40, np.random.default_rng(5))
    c = draw_layer_stiffness("cheek", "F", 40, np.random.default_rng(6))
    assert a == b and a != c
    with pytest.raises(ProfileError):
        draw_layer_stiffness("elbow", "F", 40, np.random.default_rng(0))
    with pytest.raises(ConfigError):
        draw_layer_stiffness("cheek", "Q", 40, np.random.default_rng(0))
    with pytest.raises(ConfigError):
        draw_layer_stiffness("cheek", "F", -3, np.random.default_rng(0))


# ---------------------------------------------------------------------------------- SWE
def test_swe_without_blur_or_noise_is_the_true_modulus():
    lab = layered()
    full = (0, lab.shape[0], 0, lab.shape[1])
    kpa, info = simulate_swe(lab, (0.03, 0.05), KPA, np.random.default_rng(0), resolution_mm=0,
                             noise_frac=0, valid_box=full)
    true = modulus_map(lab, KPA)
    tissue = (lab >= 1) & (lab <= 6)
    np.testing.assert_allclose(kpa[tissue], true[tissue], rtol=1e-6)
    assert np.isnan(kpa[~tissue]).all()  # gel and bone carry no value
    assert kpa.dtype == np.float32
    json.dumps(info)


def test_swe_edge_spread_matches_fwhm_in_mm_both_axes():
    # axial step: dermis above fat, deep inside a tissue block; spacing differs per axis
    spacing = (0.02, 0.05)
    res = 1.0
    lab = np.full((400, 60), 2)
    lab[200:] = 3
    kpa, info = simulate_swe(lab, spacing, KPA, np.random.default_rng(0), resolution_mm=res,
                             noise_frac=0, valid_box=(0, 400, 0, 60))
    sigma_mm = res / (2 * math.sqrt(2 * math.log(2)))
    depth_mm = (np.arange(400) + 0.5 - 200) * spacing[0]   # pixel centres relative to the edge
    # discrete step at the pixel boundary: value = E1 + (E2 - E1) * Phi(x / sigma)
    want = KPA["dermis"] + (KPA["fat"] - KPA["dermis"]) * norm.cdf(depth_mm / sigma_mm)
    sel = slice(120, 280)
    np.testing.assert_allclose(kpa[sel, 30], want[sel], atol=0.03 * KPA["dermis"])
    # lateral step
    lab = np.full((60, 300), 2)
    lab[:, 150:] = 6
    kpa, _ = simulate_swe(lab, spacing, KPA, np.random.default_rng(0), resolution_mm=res,
                          noise_frac=0, valid_box=(0, 60, 0, 300))
    x_mm = (np.arange(300) + 0.5 - 150) * spacing[1]
    want = KPA["dermis"] + (KPA["muscle"] - KPA["dermis"]) * norm.cdf(x_mm / sigma_mm)
    np.testing.assert_allclose(kpa[30, 100:200], want[100:200], atol=0.03 * KPA["dermis"])


def test_swe_thin_layer_blurred_and_flagged():
    lab = layered(rows=300, bounds=((5, 1), (15, 2), (100, 4), (110, 3), (250, 6)))
    spacing = (0.02, 0.05)  # smas 10 px = 0.2 mm, epidermis 0.2 mm, dermis 1.7 mm
    kpa, info = simulate_swe(lab, spacing, KPA, np.random.default_rng(0), resolution_mm=1.0,
                             noise_frac=0, valid_box=(0, 300, 0, 80))
    L = info["layers"]
    assert L["smas"]["thinner_than_resolution"] and L["epidermis"]["thinner_than_resolution"]
    assert not L["dermis"]["thinner_than_resolution"] and not L["fat"]["thinner_than_resolution"]
    assert L["smas"]["median_thickness_mm"] == pytest.approx(0.2)
    # the profile is the layered modulus convolved with the Gaussian: sum_k E_k * (Phi((b_k+1 -
    # x) / s) - Phi((b_k - x) / s)) over layer bounds b_k (mm), checked away from the tissue edges
    s_mm = 1.0 / (2 * math.sqrt(2 * math.log(2)))
    x = (np.arange(300) + 0.5) * spacing[0]
    bounds = [(15, 100, "dermis"), (100, 110, "smas"), (110, 250, "fat"), (250, 300, "muscle")]
    want = sum(KPA[n] * (norm.cdf((b1 * spacing[0] - x) / s_mm) - norm.cdf((b0 * spacing[0] - x)
                                                                          / s_mm))
               for b0, b1, n in bounds)
    np.testing.assert_allclose(kpa[80:200, 40], want[80:200], rtol=0.01)
    # so the thin stiff SMAS never reaches its true value; a thick layer's interior does
    assert np.nanmax(kpa[lab == 4]) < 0.95 * KPA["smas"]
    assert kpa[180, 40] == pytest.approx(KPA["fat"], rel=0.01)


def test_swe_noise_is_multiplicative_with_set_sd_and_mean_one():
    lab = np.full((300, 300), 3)
    kpa, _ = simulate_swe(lab, (0.03, 0.03), KPA, np.random.default_rng(1), resolution_mm=0.3,
                          noise_frac=0.1, valid_box=(0, 300, 0, 300))
    ratio = kpa / KPA["fat"]
    assert abs(ratio.mean() - 1) < 0.02
    assert abs(ratio.std() - 0.1) < 0.015


def test_swe_box_seed_and_errors():
    lab = layered()
    a, ia = simulate_swe(lab, (0.03, 0.05), KPA, np.random.default_rng(9))
    b, ib = simulate_swe(lab, (0.03, 0.05), KPA, np.random.default_rng(9))
    c, _ = simulate_swe(lab, (0.03, 0.05), KPA, np.random.default_rng(10))
    np.testing.assert_array_equal(a, b)
    assert ia == ib and not np.array_equal(a, c, equal_nan=True)
    r0, r1, c0, c1 = ia["valid_box"]
    outside = np.ones(lab.shape, bool)
    outside[r0:r1, c0:c1] = False
    assert np.isnan(a[outside]).all()
    inside = ~outside & (lab >= 1) & (lab <= 6)
    assert np.isfinite(a[inside]).all() and (a[inside] > 0).all()
    with pytest.raises(ConfigError):
        simulate_swe(lab, (0.03, 0.05), {"dermis": 1.0}, np.random.default_rng(0))
    with pytest.raises(CalibrationError, match="pixel spacing"):
        simulate_swe(lab, (0, 0.05), KPA, np.random.default_rng(0))
    with pytest.raises(SpacingRequiredError):
        simulate_swe(lab, None, KPA, np.random.default_rng(0))
    with pytest.raises(ConfigError):
        simulate_swe(lab, (0.03, 0.05), KPA, np.random.default_rng(0), valid_box=(0, 500, 0, 5))
    with pytest.raises(ProfileError):
        simulate_swe(lab + 8, (0.03, 0.05), KPA, np.random.default_rng(0))
    assert issubclass(ConfigError, LayersegError)


def test_random_valid_box_fits():
    rng = np.random.default_rng(0)
    for _ in range(200):
        shape = tuple(rng.integers(2, 300, 2))
        r0, r1, c0, c1 = random_valid_box(shape, rng)
        assert 0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]


# ---------------------------------------------------------------------------------- strain
def test_series_spring_law_two_layer_column():
    rng = np.random.default_rng(4)
    for _ in range(5):
        n1, n2 = (int(v) for v in rng.integers(3, 60, 2))
        e1, e2 = (float(v) for v in rng.uniform(1, 50, 2))
        c = float(rng.uniform(0.002, 0.05))
        lab = np.zeros((n1 + n2 + 4, 3), np.int64)
        lab[2:2 + n1] = 2
        lab[2 + n1:2 + n1 + n2] = 3
        kpa = {"dermis": e1, "fat": e2}
        h = 0.03  # mm per pixel; the law is independent of it
        h1, h2 = n1 * h, n2 * h
        sigma = c * (h1 + h2) / (h1 / e1 + h2 / e2)
        strain, info = simulate_strain(lab, (h, 0.05), kpa, np.random.default_rng(0),
                                       compression=c, resolution_mm=0, noise_std=0,
                                       valid_box=(0, lab.shape[0], 0, 3))
        np.testing.assert_allclose(strain[lab == 2], sigma / e1, rtol=1e-5)
        np.testing.assert_allclose(strain[lab == 3], sigma / e2, rtol=1e-5)
        total = np.nansum(strain[:, 0]) * h
        assert total == pytest.approx(c * (h1 + h2), rel=1e-5)
        assert np.isnan(strain[lab == 0]).all()
        assert info["layers"]["fat"]["strain_mean"] == pytest.approx(sigma / e2)
        assert info["stress_median_kpa"] == pytest.approx(sigma)


def test_series_strain_per_column_with_varying_layers():
    rng = np.random.default_rng(8)
    lab = np.zeros((50, 20), np.int64)
    for j in range(20):
        b = np.sort(rng.integers(0, 50, 3))
        lab[b[0]:b[1], j] = 2
        lab[b[1]:b[2], j] = 6
        lab[b[2]:, j] = 7
    strain, stress = series_strain(lab, KPA, 0.02)
    for j in range(20):
        col = lab[:, j]
        e = np.array([KPA[n] for n in ("dermis", "muscle", "bone")])
        counts = np.array([(col == 2).sum(), (col == 6).sum(), (col == 7).sum()])
        if counts.sum() == 0:
            assert stress[j] == 0
            continue
        sig = 0.02 * counts.sum() / (counts / e).sum()  # loop-free reference by layer counts
        assert stress[j] == pytest.approx(sig)
        assert (strain[col == 6, j] == pytest.approx(sig / KPA["muscle"]))
        assert (strain[:, j] * 1.0).sum() == pytest.approx(0.02 * counts.sum())


def test_strain_noise_and_blur_and_seed():
    lab = layered(rows=200, cols=200, bounds=((5, 1), (10, 2), (50, 3), (100, 4), (110, 6),
                                              (180, 7)))
    a, ia = simulate_strain(lab, (0.03, 0.05), KPA, np.random.default_rng(2),
                            valid_box=(0, 200, 0, 200))
    b, _ = simulate_strain(lab, (0.03, 0.05), KPA, np.random.default_rng(2),
                           valid_box=(0, 200, 0, 200))
    np.testing.assert_array_equal(a, b)
    exact, _ = series_strain(lab, KPA, 0.01)
    inner = (lab == 3) & (np.arange(200)[:, None] > 65) & (np.arange(200)[:, None] < 85)
    resid = a[inner] - exact[inner]
    assert abs(resid.mean()) < 0.3 * ia["noise_std"]
    assert abs(resid.std() - ia["noise_std"]) < 0.3 * ia["noise_std"]
    assert ia["noise_std"] == pytest.approx(0.001)
    # softer fat strains more than the dermis above it
    assert np.nanmean(a[lab == 3]) > 2 * np.nanmean(a[lab == 2])
    with pytest.raises(ConfigError):
        simulate_strain(lab, (0.03, 0.05), KPA, np.random.default_rng(0), compression=1.5)


# ---------------------------------------------------------------------------------- colour
def _overlay_case(seed=0):
    rng = np.random.default_rng(seed)
    lab = layered(rows=90, cols=70)
    kpa, _ = simulate_swe(lab, (0.03, 0.05), KPA, rng, resolution_mm=0.5, noise_frac=0.2,
                          valid_box=(8, 80, 10, 60))
    grey = rng.uniform(0, 255, lab.shape)
    return grey, kpa


def test_overlay_round_trip_through_decode_colour():
    from layerseg.io.colour import decode_colour, default_colour_bar

    bar = default_colour_bar(0.0, 40.0)
    grey, kpa = _overlay_case()
    valid = np.isfinite(kpa)
    rgb = render_elasto_overlay(grey, kpa, valid, bar)
    assert rgb.dtype == np.uint8 and rgb.shape == kpa.shape + (3,)
    # grey shows through unchanged wherever there is no value
    np.testing.assert_array_equal(rgb[~valid], np.repeat(np.rint(grey[~valid])[:, None], 3, 1))
    vals, ok = decode_colour(rgb, bar, bleed_px=0)
    np.testing.assert_array_equal(ok, valid)
    truth = np.clip(kpa[valid], bar.vmin, bar.vmax)
    assert np.abs(vals[valid] - truth).max() <= bar.step


def test_drawn_colour_bar_is_sampled_back():
    from layerseg.io.colour import decode_colour, default_colour_bar, sample_colour_bar

    bar = default_colour_bar(0.0, 40.0)
    img = draw_colour_bar(120, 9, bar)
    assert img.shape == (120, 9, 3) and img.dtype == np.uint8
    assert (img == img[:, :1]).all()  # one colour per row
    sampled = sample_colour_bar(img, (0, 0, 120, 9), bar.vmin, bar.vmax)
    grey, kpa = _overlay_case(1)
    rgb = render_elasto_overlay(grey, kpa, None, bar)
    vals, ok = decode_colour(rgb, sampled, bleed_px=0)
    valid = np.isfinite(kpa)
    np.testing.assert_array_equal(ok, valid)
    row_step = (bar.vmax - bar.vmin) / 119
    assert np.abs(vals[valid] - np.clip(kpa[valid], 0, 40)).max() <= row_step + bar.step


def test_overlay_alpha_and_errors():
    from layerseg.io.colour import default_colour_bar, encode_colour

    bar = default_colour_bar(0.0, 40.0)
    grey, kpa = _overlay_case(2)
    valid = np.isfinite(kpa)
    half = render_elasto_overlay(grey, kpa, valid, bar, alpha=0.5)
    want = 0.5 * encode_colour(kpa, bar)[valid] + 0.5 * np.rint(grey[valid])[:, None]
    assert np.abs(half[valid].astype(float) - want).max() <= 1.0
    with pytest.raises(ConfigError):
        render_elasto_overlay(grey, kpa[:5], None, bar)
    with pytest.raises(ConfigError):
        render_elasto_overlay(grey, kpa, None, bar, alpha=0)


def test_swe_noise_correlated_over_the_resolution_cell():
    # white noise filtered by a Gaussian of SD s has autocorrelation exp(-lag^2 / (4 s^2))
    lab = np.full((400, 400), 3)
    spacing = (0.02, 0.04)
    kpa, info = simulate_swe(lab, spacing, KPA, np.random.default_rng(11), resolution_mm=0.4,
                             noise_frac=0.02, valid_box=(0, 400, 0, 400))
    n = np.log(kpa / KPA["fat"])
    n = (n - n.mean()) / n.std()
    for axis, s in enumerate(info["sigma_px"]):
        lag = int(round(s))
        a = np.moveaxis(n, axis, 0)
        r = (a[:-lag] * a[lag:]).mean()
        assert r == pytest.approx(math.exp(-lag ** 2 / (4 * s ** 2)), abs=0.06)


@pytest.mark.parametrize("fn", [simulate_swe, simulate_strain])
def test_dropout_holes(fn):
    lab = np.full((200, 200), 2)
    full = (0, 200, 0, 200)
    a, ia = fn(lab, (0.03, 0.05), KPA, np.random.default_rng(1), valid_box=full,
               dropout_frac=0.1)
    b, ib = fn(lab, (0.03, 0.05), KPA, np.random.default_rng(1), valid_box=full)
    lost = np.isnan(a).mean()
    assert lost == pytest.approx(0.1, abs=0.01) and ia["dropout_frac"] == 0.1
    assert np.isfinite(b).all() and ib["dropout_frac"] == 0
    ok = np.isfinite(a)
    np.testing.assert_array_equal(a[ok], b[ok])  # holes only blank pixels, values unchanged
    # holes are blobs of the resolution cell, not salt-and-pepper
    from scipy import ndimage
    _, n_blobs = ndimage.label(~ok)
    assert n_blobs < 0.02 * (~ok).sum()
    with pytest.raises(ConfigError):
        fn(lab, (0.03, 0.05), KPA, np.random.default_rng(1), dropout_frac=1.0)
