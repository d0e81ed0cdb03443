"""simulate_frame: label maps obey the profile, truth agrees with the labels, determinism."""

import json

import numpy as np
import pytest

from layerseg.errors import ConfigError, ProfileError
from layerseg.frame import Frame
from layerseg.layers import get_profile, labels_to_surfaces, order_violations
from layerseg.simulate import SIM_REGIONS, simulate_frame
from layerseg.simulate.acoustics import C_REF

SMALL = dict(shape=(160, 128), depth_mm=8.0, width_mm=6.4)


@pytest.fixture(scope="module")
def frames():
    out = {}
    for i, reg in enumerate(SIM_REGIONS):
        out[reg] = simulate_frame(i, region=reg, age=30 + 6 * i, sex="FM"[i % 2],
                                  with_elasto=False, standoff_mm=0.3, **SMALL)
    return out


def test_frame_fields(frames):
    s = frames["cheek"]
    f = s.frame
    assert isinstance(f, Frame)
    assert f.shape == (160, 128) and f.intensity == "display"
    assert f.bmode.dtype == np.float32 and 0 <= f.bmode.min() and f.bmode.max() <= 255
    assert f.spacing_mm == pytest.approx((8.0 / 160, 6.4 / 128))
    assert f.dynamic_range_db == s.truth["acoustics"]["dynamic_range_db"]
    assert f.meta.device == "layerseg-sim" and f.meta.calibration == "simulator"
    assert f.meta.region == "cheek" and f.meta.frequency_mhz == 24.0
    assert s.labels.dtype == np.uint8 and s.labels.shape == f.shape
    json.dumps(s.truth)  # JSON-able


@pytest.mark.parametrize("region", SIM_REGIONS)
def test_labels_obey_profile(frames, region):
    s = frames[region]
    assert order_violations(s.labels, region) == 0
    assert s.labels.max() <= 7
    # skin present in every column: entry echo then dermis
    prof = get_profile(region)
    assert np.all((s.labels == 1).any(axis=0)) and np.all((s.labels == 2).any(axis=0))
    assert s.truth["profile"] == list(prof.layers)


@pytest.mark.parametrize("region", SIM_REGIONS)
def test_truth_matches_labels(frames, region):
    s = frames[region]
    dz = s.frame.spacing_mm[0]
    prof = get_profile(region)
    for ly, lab in zip(prof.layers, prof.labels):
        from_map = (s.labels == lab).sum(axis=0).mean() * dz
        t = s.truth["layers"][ly]["thickness_apparent_mm"]
        assert abs(from_map - t) <= dz, (ly, from_map, t)
    # the truth surfaces give back the label map's surfaces within one pixel
    surf = np.asarray(s.truth["surfaces_rows"])
    back = labels_to_surfaces(s.labels, prof)
    assert np.all(np.abs(np.round(surf) - back) <= 1)


@pytest.mark.parametrize("region", SIM_REGIONS)
def test_anatomical_vs_apparent_sound_speed(frames, region):
    """Layers bounded by two anatomical interfaces and not cut by the image bottom or the bone:
    apparent thickness = anatomical x 1540 / c within one pixel."""
    s = frames[region]
    dz = s.frame.spacing_mm[0]
    checked = 0
    for ly in ("fat", "smas", "deep_fat", "muscle"):
        t = s.truth["layers"].get(ly)
        if t is None or t["truncated"] or t["thickness_anatomical_mm"] is None:
            continue
        want = t["thickness_anatomical_mm"] * C_REF / t["sound_speed_m_s"]
        assert abs(t["thickness_apparent_mm"] - want) <= dz, ly
        if t["sound_speed_m_s"] != C_REF and want > 0.3:
            assert abs(t["thickness_apparent_mm"] - t["thickness_anatomical_mm"]) > 1e-3
        checked += 1
    assert checked >= 1


def test_entry_echo_is_thicker_than_epidermis(frames):
    for s in frames.values():
        ep = s.truth["layers"]["epidermis"]
        assert ep["thickness_apparent_mm"] > ep["thickness_anatomical_mm"] * C_REF / 1730 * 0.9
        assert 0.04 < ep["thickness_apparent_mm"] < 0.4


def test_same_seed_same_bytes_and_different_seeds_differ():
    a = simulate_frame(7, region="jaw", **SMALL)
    b = simulate_frame(7, region="jaw", **SMALL)
    c = simulate_frame(8, region="jaw", **SMALL)
    assert a.frame.bmode.tobytes() == b.frame.bmode.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert json.dumps(a.truth, sort_keys=True) == json.dumps(b.truth, sort_keys=True)
    assert a.frame.bmode.tobytes() != c.frame.bmode.tobytes()


def test_elastography_attached():
    s = simulate_frame(3, region="jaw", vary=False, **SMALL)
    f = s.frame
    assert f.elasto is not None and f.elasto_kind == "swe_kpa"
    assert f.elasto.shape == f.shape
    assert all("stiffness_kpa" in v for v in s.truth["layers"].values())
    s2 = simulate_frame(3, region="jaw", vary=False, elasto_kind="strain", **SMALL)
    assert s2.frame.elasto_kind == "strain"


def test_variations_forced():
    s = simulate_frame(4, region="cheek", missing_muscle=True, missing_deep_fat=True, bone=False,
                       vary=False, with_elasto=False, **SMALL)
    assert not np.isin(s.labels, [5, 6, 7]).any()
    s = simulate_frame(4, region="forehead", bone=True, partial_bone=False, vary=False,
                       with_elasto=False, shape=(240, 128), depth_mm=12.0, width_mm=6.4)
    assert (s.labels == 7).any()


def test_rf_and_iq():
    s = simulate_frame(5, region="cheek", vary=False, with_elasto=False, return_iq=True,
                       return_rf=True, **SMALL)
    assert s.iq.dtype == np.complex64 and s.iq.shape[1] == 128
    assert s.rf.dtype == np.float32 and s.rf.shape[1] == 128
    assert s.truth["acoustics"]["rf_fs_mhz"] >= 4 * 24.0


@pytest.mark.parametrize("kw,err", [(dict(region="elbow"), ProfileError),
                                    (dict(sex="X"), ConfigError),
                                    (dict(frequency_mhz=80.0), ConfigError),
                                    (dict(standoff_mm=9.0), ConfigError),
                                    (dict(shape=(4, 4)), ConfigError)])
def test_bad_input(kw, err):
    with pytest.raises(err):
        simulate_frame(0, **{**SMALL, **kw})


def test_bad_seed():
    with pytest.raises(ConfigError):
        simulate_frame("abc", **SMALL)


def test_default_region_and_frequency_range():
    s = simulate_frame(1, region=None, vary=False, with_elasto=False, **SMALL)
    assert s.truth["region"] == "default" and s.frame.meta.region == "default"
    assert order_violations(s.labels, None) == 0
    widths = []
    for f0 in (15.0, 50.0):
        s = simulate_frame(1, region="cheek", frequency_mhz=f0, vary=False, with_elasto=False,
                           **SMALL)
        assert s.frame.meta.frequency_mhz == f0
        widths.append(s.truth["acoustics"]["axial_fwhm_mm"])
    assert widths[1] < widths[0]  # shorter pulse at 50 MHz


@pytest.mark.parametrize("i", range(6))
def test_random_extreme_settings_keep_the_profile(i):
    rng = np.random.default_rng(100 + i)
    reg = [None, *SIM_REGIONS][int(rng.integers(0, len(SIM_REGIONS) + 1))]
    kw = dict(region=reg, age=float(rng.uniform(10, 100)), sex="FM"[i % 2],
              frequency_mhz=float(rng.uniform(15, 50)),
              shape=(int(rng.integers(16, 120)), int(rng.integers(16, 120))),
              depth_mm=float(rng.uniform(2, 20)), width_mm=float(rng.uniform(2, 20)),
              standoff_mm=float(rng.uniform(0, 5)), tilt_deg=float(rng.uniform(-30, 30)))
    s = simulate_frame(i, with_elasto=False, **kw)
    assert order_violations(s.labels, reg) == 0
    assert np.isfinite(s.frame.bmode).all()
    surf = np.asarray(s.truth["surfaces_rows"])
    assert surf.min() >= 0 and surf.max() <= s.labels.shape[0]


DEEP = ("fat", "smas", "deep_fat", "muscle")


@pytest.mark.parametrize("region", SIM_REGIONS)
def test_layers_keep_their_drawn_thickness(region):
    """Many seeds: every layer ending inside the image is labelled as thick as drawn (within one
    pixel), none is labelled thicker than drawn, and one that runs past the bottom says so."""
    prof = get_profile(region)
    n_trunc = n_inside = 0
    for seed in range(6):
        s = simulate_frame(1000 + seed, region=region, age=25 + 10 * seed, sex="FM"[seed % 2],
                           with_elasto=False, shape=(96, 48), depth_mm=12.0, width_mm=4.8)
        dz = s.frame.spacing_mm[0]
        n_cols = s.labels.shape[1]
        # columns with unmodelled tissue under the deepest layer end in background (label 0)
        deep = s.truth["deep_tissue"]["fraction_of_columns"]
        assert abs(np.mean(s.labels[-1] == 0) - deep) <= 2.0 / n_cols
        bone = s.truth["bone"]["in_view_fraction"]
        # (bone may be in view by less than a pixel's centre at the very bottom)
        assert np.mean((s.labels == 7).any(axis=0)) <= bone + 1.0 / n_cols
        assert deep + bone <= 1.0 + 1e-9
        for ly, lab in zip(prof.layers, prof.labels):
            if ly not in DEEP:
                continue
            t = s.truth["layers"][ly]
            from_map = (s.labels == lab).sum(axis=0).mean() * dz
            drawn = t["thickness_apparent_drawn_mm"]
            assert drawn == pytest.approx(t["thickness_anatomical_mm"] * C_REF
                                          / t["sound_speed_m_s"], rel=1e-6)
            assert from_map <= drawn + dz, (seed, ly, from_map, drawn)
            assert t["truncated_by_fov"] == t["truncated"] == (t["truncated_fraction"] > 0)
            if t["truncated"]:
                n_trunc += 1
                # cut by the image bottom: the labelled layer reaches it somewhere
                assert (s.labels[-1] == lab).any() or t["present_fraction"] == 0, ly
                assert from_map < drawn + dz
            else:
                n_inside += 1
                assert abs(from_map - drawn) <= dz, (seed, ly, from_map, drawn)
    assert n_inside > 0
    if region in ("temple", "jaw"):  # temporalis / masseter are thicker than the view
        assert n_trunc > 0


def test_below_the_deepest_layer_is_labelled_background_and_rendered_as_tissue():
    from layerseg.layers import surfaces_to_labels
    from layerseg.simulate.acoustics import AcousticParams
    from layerseg.simulate.anatomy import draw_anatomy
    from layerseg.simulate.phantom import build_phantom
    rng = np.random.default_rng(7)
    an = draw_anatomy("nasolabial", 50, "F", rng, missing_muscle=True, missing_deep_fat=True,
                      bone=False)
    dz, n_rows, n_cols = 0.05, 240, 64
    med, geo = build_phantom(an, AcousticParams(), n_rows, n_cols, (dz, 0.05), rng)
    prof = get_profile("nasolabial")
    labels = surfaces_to_labels(geo.surfaces_rows, prof, n_rows)
    assert geo.deep_tissue_cols.all() and not any(geo.truncated.values())
    # SMAS is the deepest layer: labelled as thick as drawn, per column, background below it
    ks = prof.position("smas")
    smas_rows = (labels == 4).sum(axis=0)
    want = geo.anat_thickness_mm["smas"] * C_REF / 1600.0 / dz
    assert np.all(np.abs(smas_rows - want) <= 1.0)
    bottom = geo.surfaces_rows[ks + 1]
    rows = np.arange(n_rows)[:, None]
    assert np.all(labels[rows >= np.ceil(bottom) + 1] == 0)
    assert (labels[-1] == 0).all()
    # ... and rendered as scattering tissue (unlike the gel above the skin)
    m, up = med.margin, med.up
    dens = med.density[:, m:m + n_cols]
    deep = (np.arange(dens.shape[0])[:, None] + 0.5) * med.dz_f_mm > bottom * dz + 0.1
    assert dens[deep].min() > 0
    gel = (np.arange(dens.shape[0])[:, None] + 0.5) * med.dz_f_mm < geo.echo_top_mm - 0.05
    assert dens[gel].max() == 0


def test_nasolabial_smas_is_not_stretched_to_the_bottom():
    s = simulate_frame(2, region="nasolabial", age=50, with_elasto=False,
                       shape=(128, 64), depth_mm=12.0, width_mm=6.4)
    dz = s.frame.spacing_mm[0]
    t = s.truth["layers"]["smas"]
    assert not t["truncated"] and t["thickness_apparent_mm"] < 1.0
    assert abs((s.labels == 4).sum(axis=0).mean() * dz - t["thickness_apparent_drawn_mm"]) <= dz
    assert 0.0 <= s.truth["deep_tissue"]["fraction_of_columns"] <= 1.0


def test_anatomy_variant_presence_and_thickness():
    """The 'varied' anatomy draws presence from the variant's probabilities in every region
    (the cheek's table has muscle always and bone in 15 %) and scales each listed layer by its
    own factor (log-uniform over the variant's range: the spread of log thickness grows by the
    factor's variance); 'default' draws the table on the same random stream as before."""
    import math

    from layerseg.simulate.anatomy import anatomy_table, draw_anatomy
    var = anatomy_table()["variants"]["varied"]
    a = draw_anatomy("cheek", 40, "F", np.random.default_rng(3))
    b = draw_anatomy("cheek", 40, "F", np.random.default_rng(3), variant="default")
    assert a.thickness_mm == b.thickness_mm and a.bone_present == b.bone_present
    n = 3000
    rng_d, rng_v = np.random.default_rng(11), np.random.default_rng(12)
    dflt = [draw_anatomy("cheek", 40, "F", rng_d) for _ in range(n)]
    vard = [draw_anatomy("cheek", 40, "F", rng_v, variant="varied") for _ in range(n)]
    tol = 4 * math.sqrt(0.25 / n)
    assert all(x.thickness_mm["muscle"] > 0 for x in dflt)
    assert np.mean([x.thickness_mm["muscle"] > 0 for x in vard]) == pytest.approx(
        var["p_present"]["muscle"], abs=tol)
    assert np.mean([x.thickness_mm["deep_fat"] > 0 for x in vard]) == pytest.approx(
        var["p_present"]["deep_fat"], abs=tol)
    assert np.mean([x.bone_present for x in vard]) == pytest.approx(var["bone_p_present"],
                                                                      abs=tol)
    lo, hi = var["thickness_scale"]["low"], var["thickness_scale"]["high"]
    var_log_factor = (math.log(hi) - math.log(lo)) ** 2 / 12.0
    for layer in ("dermis", "fat"):
        ld = np.log([x.thickness_mm[layer] for x in dflt])
        lv = np.log([x.thickness_mm[layer] for x in vard])
        assert lv.var() - ld.var() == pytest.approx(var_log_factor, rel=0.25)
        assert abs(lv.mean() - ld.mean() - (math.log(lo) + math.log(hi)) / 2) < 0.03
    # the entry echo is not scaled
    le = np.log([x.thickness_mm["epidermis"] for x in dflt])
    lve = np.log([x.thickness_mm["epidermis"] for x in vard])
    assert lve.var() == pytest.approx(le.var(), rel=0.15)
    with pytest.raises(ConfigError, match="variant"):
        draw_anatomy("cheek", 40, "F", np.random.default_rng(0), variant="wide")


def test_decoupled_anatomy_draws_thickness_from_one_range_in_every_region():
    """'decoupled': each listed layer's thickness comes from the variant's log-uniform range
    whatever the region (the chin's thin dermis and the cheek's thick one alike: their log
    thickness has the range's mean and variance), with the variant's presence; the entry echo
    still follows the region."""
    import math

    from layerseg.simulate.anatomy import ANATOMY_VARIANTS, anatomy_table, draw_anatomy
    assert "decoupled" in ANATOMY_VARIANTS
    var = anatomy_table()["variants"]["decoupled"]
    n = 2000
    tol = 4 * math.sqrt(0.25 / n)
    draws = {r: [draw_anatomy(r, 70, "M", np.random.default_rng(50 + i), variant="decoupled")
                 for i in range(n)] for r in ("chin", "cheek")}
    for layer in ("dermis", "fat"):
        spec = var["thickness_mm"][layer]
        lo, hi = math.log(spec["low"]), math.log(spec["high"])
        for r, xs in draws.items():
            lt = np.log([x.thickness_mm[layer] for x in xs])
            assert lt.min() >= lo and lt.max() <= hi
            assert lt.mean() == pytest.approx((lo + hi) / 2, abs=0.04)
            assert lt.var() == pytest.approx((hi - lo) ** 2 / 12, rel=0.1)
    for r, xs in draws.items():
        assert np.mean([x.thickness_mm["muscle"] > 0 for x in xs]) == pytest.approx(
            var["p_present"]["muscle"], abs=tol)
        assert np.mean([x.bone_present for x in xs]) == pytest.approx(var["bone_p_present"],
                                                                      abs=tol)
    # the entry echo is the region's, not the variant's
    ch = np.mean([x.thickness_mm["epidermis"] for x in draws["chin"]])
    dflt = np.mean([draw_anatomy("chin", 70, "M", np.random.default_rng(i)).thickness_mm[
        "epidermis"] for i in range(n)])
    assert ch == pytest.approx(dflt, rel=0.05)
