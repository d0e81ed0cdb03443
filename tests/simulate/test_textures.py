"""Wide-range textures: diffuse septa, vessels, follicles, uneven fascia, bone penetration and
edge taper, specular spots, side-lobe clutter (layerseg.simulate.textures)."""

import json
import math

import numpy as np
import pytest

from layerseg.errors import ConfigError
from layerseg.simulate import simulate_frame
from layerseg.simulate.acoustics import (FWHM_PER_SIGMA, AcousticParams, Medium, SpecularPoints,
                                         form_iq, lateral_fwhm_mm)
from layerseg.simulate.anatomy import draw_anatomy, layer_acoustics
from layerseg.simulate.phantom import build_phantom
from layerseg.simulate.ranges import ranges_table
from layerseg.simulate.textures import (BLOOD_ATTEN_DB_CM_MHZ, Textures, band_pixels,
                                        bone_edge_factor)


def _band_plain(px, pz, width, along, dzf, dx, margin, shape):
    """Plain twin of band_pixels: loop over path points and cross-section offsets (sampled
    half a fine pixel apart along the band's mean normal)."""
    mz, mx = pz[-1] - pz[0], px[-1] - px[0]
    m = math.hypot(mz, mx) or 1.0
    step = 0.5 * min(dzf / max(abs(mx / m), 1e-9), dx / max(abs(mz / m), 1e-9))
    offs = np.arange(-1.2 * width, 1.2 * width + 1e-12, step)
    tz, tx = np.gradient(pz), np.gradient(px)
    best = {}
    for i in range(px.size):
        n = math.hypot(tz[i], tx[i]) or 1.0
        for o in offs:
            w = along[i] * math.exp(-4 * math.log(2) * (o / width) ** 2)
            j = math.floor((pz[i] + o * tx[i] / n) / dzf)
            c = math.floor((px[i] - o * tz[i] / n) / dx + margin)
            if 0 <= j < shape[0] and 0 <= c < shape[1] and w > 0.02:
                best[(j, c)] = max(best.get((j, c), 0.0), w)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_band_pixels_matches_plain_twin(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(0, rng.uniform(0.3, 1.5), 0.005)
    ang = rng.uniform(-1.2, 1.2)
    px = 1.0 + t * math.sin(ang) + 0.05 * np.sin(7 * t)
    pz = 0.5 + t * math.cos(ang)
    along = rng.uniform(0, 1, t.size)
    shape, margin = (200, 180), 7
    width = (0.02, 0.05, 0.1)[seed]
    r, c, w = band_pixels(px, pz, width, along, 0.01, 0.012, margin, shape)
    ref = _band_plain(px, pz, width, along, 0.01, 0.012, margin, shape)
    got = {(int(a), int(b)): float(v) for a, b, v in zip(r, c, w)}
    assert got.keys() == ref.keys()
    assert all(abs(got[k] - ref[k]) < 1e-12 for k in ref)
    assert len(got) == r.size                        # distinct pixels


def _phantom(tex=None, seed=3, region="cheek", rows=300, cols=128, spacing=(0.03, 0.05),
             p=None, **kw):
    p = p or AcousticParams(focus_mm=3.0)
    an = draw_anatomy(region, 50, "F", np.random.default_rng(seed), **kw)
    return build_phantom(an, p, rows, cols, spacing, np.random.default_rng(seed + 1),
                         textures=tex,
                         texture_rng=None if tex is None else np.random.default_rng(seed + 2))


def test_zero_textures_leave_the_medium_as_it_was():
    med0, geo0 = _phantom(None)
    med1, geo1 = _phantom(Textures())
    for a in ("density", "amplitude", "atten_db_cm_mhz"):
        np.testing.assert_array_equal(getattr(med0, a), getattr(med1, a))
    for a, b in zip(med0.specular.arrays(), med1.specular.arrays()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(geo0.surfaces_rows, geo1.surfaces_rows)
    assert geo1.extras["diffuse_septa"] == [] and geo1.extras["vessels"] == []


def test_diffuse_septa_add_power_inside_the_fat_only():
    tex = Textures(septa_per_mm=2.0, septa_width_mm=0.06, septa_db=0.0, septa_gap_fraction=0.2,
                   crisp_septa_per_mm2=0.0)
    med0, _ = _phantom(Textures(crisp_septa_per_mm2=0.0))
    med1, geo = _phantom(tex)
    assert len(geo.extras["diffuse_septa"]) > 3
    p0 = med0.density * med0.amplitude.astype(np.float64) ** 2
    p1 = med1.density * med1.amplitude.astype(np.float64) ** 2
    changed = np.abs(p1 - p0) > 1e-9 * p0.max()
    assert changed.any()
    assert np.all(p1[changed] > p0[changed])          # septa only add scattering power
    # every changed pixel is fat or deep fat (their scatterer density; dermis, SMAS and muscle
    # have others) and gained the septum's density
    from layerseg.simulate.phantom import TISSUE_RESOLUTION_CELL_MM2
    fat_dens = layer_acoustics("fat")["per_cell"] / TISSUE_RESOLUTION_CELL_MM2
    assert layer_acoustics("deep_fat")["per_cell"] == layer_acoustics("fat")["per_cell"]
    np.testing.assert_allclose(med0.density[changed], fat_dens, rtol=1e-5)
    sep_dens = 2 * layer_acoustics("smas")["per_cell"] / TISSUE_RESOLUTION_CELL_MM2
    np.testing.assert_allclose(med1.density[changed], sep_dens, rtol=1e-5)


def test_vessels_are_anechoic_ellipses_with_blood_attenuation():
    tex = Textures(vessels_per_cm=40.0, vessel_diameter_mm=0.4, crisp_septa_per_mm2=0.0)
    med0, _ = _phantom(Textures(crisp_septa_per_mm2=0.0))
    med1, geo = _phantom(tex)
    ves = geo.extras["vessels"]
    assert len(ves) >= 5
    dz, dx, m = med1.dz_f_mm, med1.dx_mm, med1.margin
    for v in ves:
        j = int(v["z_mm"] / dz)
        c = int(round(v["x_mm"] / dx - 0.5 + m))
        # centre: 35 dB less backscatter, blood's attenuation
        assert med1.amplitude[j, c] == pytest.approx(med0.amplitude[j, c] * 10 ** (-35 / 20),
                                                     rel=1e-5)
        assert med1.atten_db_cm_mhz[j, c] == pytest.approx(BLOOD_ATTEN_DB_CM_MHZ)
        assert v["rx_mm"] >= v["rz_mm"] > 0
        # outside the ellipse, untouched
        jo = int((v["z_mm"] + 1.3 * v["rz_mm"]) / dz)
        if jo < med1.shape[0] and med1.atten_db_cm_mhz[jo, c] != np.float32(
                BLOOD_ATTEN_DB_CM_MHZ):                      # (not inside another vessel)
            assert med1.amplitude[jo, c] == med0.amplitude[jo, c]


def test_vessels_image_dark():
    """Imaged (noise off), the centre of a 0.3-0.6 mm vessel is at least 12 dB darker than the
    same layer around it: the blood's 35 dB, less the pulse and beam blur."""
    p = AcousticParams(focus_mm=3.0)
    tex = Textures(vessels_per_cm=20.0, vessel_diameter_mm=0.45, crisp_septa_per_mm2=0.0)
    med, geo = _phantom(tex, p=p, rows=200, spacing=(0.03, 0.03), cols=256)
    r = form_iq(med, p, np.random.default_rng(9), noise=False)
    inten = np.abs(r.iq.astype(np.complex128)) ** 2
    dz, dx = med.dz_f_mm, med.dx_mm
    zz = (np.arange(inten.shape[0]) + 0.5)[:, None] * dz
    xx = (np.arange(inten.shape[1]) + 0.5)[None, :] * dx
    dens = med.density[:, med.margin:med.margin + inten.shape[1]]
    checked = 0
    for v in geo.extras["vessels"]:
        if v["rz_mm"] < 0.15:
            continue
        r2 = ((zz - v["z_mm"]) / v["rz_mm"]) ** 2 + ((xx - v["x_mm"]) / v["rx_mm"]) ** 2
        j = int(v["z_mm"] / dz)
        c = int(v["x_mm"] / dx)
        same = dens == dens[j, c]
        inner, ring = (r2 < 0.2) & same, (r2 > 3.0) & (r2 < 6.0) & same
        if inner.sum() < 4 or ring.sum() < 50:
            continue
        checked += 1
        assert 10 * np.log10(inten[ring].mean() / inten[inner].mean()) > 12.0, v
    assert checked >= 1


def test_uneven_lines_wander_by_their_sd_and_spare_the_skin():
    p = AcousticParams(focus_mm=3.0)
    med0, _ = _phantom(Textures(), p=p)
    med1, _ = _phantom(Textures(line_unevenness_db=6.0), p=p)
    z0, c0, a0 = med0.specular.arrays()
    z1, c1, a1 = med1.specular.arrays()
    np.testing.assert_array_equal(z0, z1)
    r = 20 * np.log10(np.abs(a1) / np.abs(a0))
    n_skin = 2 * np.unique(c0).size                   # skin and DEJ lines come first
    assert np.allclose(r[:n_skin], 0.0)
    assert np.std(r[n_skin:]) == pytest.approx(6.0, rel=0.3)


def test_bone_penetration_and_edge_taper():
    kw = dict(bone=True, partial_bone=True, region="zygoma", rows=400)
    med0, geo0 = _phantom(Textures(), **kw)
    tex = Textures(bone_atten_scale=0.1, bone_edge_taper_mm=1.0)
    med1, geo1 = _phantom(tex, **kw)
    edge = geo1.extras["bone_edge_mm"]
    bone_att = layer_acoustics("bone")["atten_db_cm_mhz"] * layer_acoustics("bone")[
        "sound_speed_m_s"] / 1540.0
    deep = med0.atten_db_cm_mhz[-1]
    cols = np.nonzero(np.isclose(deep, bone_att, rtol=1e-5))[0]
    assert cols.size > 5
    x = (np.arange(med1.shape[1]) - med1.margin + 0.5) * med1.dx_mm
    f = bone_edge_factor(x, edge, 1.0 if x[cols].mean() < edge else -1.0, 1.0)
    np.testing.assert_allclose(med1.atten_db_cm_mhz[-1, cols], bone_att * 0.1 * f[cols],
                               rtol=1e-5)
    # the factor: 0.05 at the edge, 1 a taper inside it, monotone, 1 everywhere without taper
    xs = np.linspace(0, 10, 201)
    g = bone_edge_factor(xs, 5.0, -1.0, 1.0)           # bone right of 5 mm
    assert g[xs <= 5.0].max() == pytest.approx(0.05) and g[xs >= 6.0].min() == pytest.approx(1)
    assert np.all(np.diff(g) >= 0)
    assert np.all(bone_edge_factor(xs, 5.0, -1.0, 0.0) == 1.0)


def test_sidelobe_pedestal_level_and_width_match_the_beam_model():
    """A lone point images with the main lobe plus a pedestal `sidelobe_db` down and
    `sidelobe_width` times wider: measured at 4 main-lobe FWHMs off axis, where the main lobe is
    gone, the level is the pedestal's Gaussian at that distance."""
    nz, nx, dz, dx = 64, 512, 0.005, 0.005
    for db, wdt in ((-30.0, 5.0), (-40.0, 8.0)):
        p = AcousticParams(focus_mm=0.16, sidelobe_db=db, sidelobe_width=wdt, tgc=False, up=1)
        sp = SpecularPoints()
        sp.add(0.16, nx // 2, 1.0)
        med = Medium(np.zeros((nz, nx), np.float32), np.zeros((nz, nx), np.float32),
                     np.zeros((nz, nx), np.float32), sp, dz, dx, 0, 1, nx)
        r = form_iq(med, p, np.random.default_rng(0), noise=False)
        row = np.abs(r.iq[int(0.16 / dz)]).astype(float)
        peak = row[nx // 2]
        sig = float(lateral_fwhm_mm(0.16, p)) / FWHM_PER_SIGMA
        for k in (4.0, 6.0):
            off = int(round(k * FWHM_PER_SIGMA * sig / dx))
            d_mm = off * dx
            expect = db - 20 * np.log10(math.e) * d_mm ** 2 / (2 * (wdt * sig) ** 2)
            got = 20 * np.log10(row[nx // 2 + off] / peak)
            assert got == pytest.approx(expect, abs=0.3), (db, wdt, k)
    with pytest.raises(ConfigError):
        AcousticParams(sidelobe_db=-5.0)


def test_specular_spots_counted_and_added():
    med0, _ = _phantom(Textures())
    med1, geo = _phantom(Textures(specular_spots_per_cm2=400.0, specular_spot_db=15.0))
    n = geo.extras["specular_spots"]
    assert n > 3
    assert med1.specular.arrays()[0].size - med0.specular.arrays()[0].size >= n


def test_textures_validation():
    with pytest.raises(ConfigError):
        Textures(septa_gap_fraction=1.5)
    with pytest.raises(ConfigError):
        Textures(bone_atten_scale=0.0)
    with pytest.raises(ConfigError, match="unknown"):
        Textures.from_drawn({"septa_per_mmm": 1.0})
    with pytest.raises(ConfigError, match="texture_rng"):
        an = draw_anatomy("cheek", 50, "F", np.random.default_rng(0))
        build_phantom(an, AcousticParams(), 64, 32, (0.05, 0.05), np.random.default_rng(0),
                      textures=Textures())


def test_wide_frames_draw_and_record_their_textures():
    spec = {k: v for k, v in ranges_table()["ranges"]["wide"]["textures"].items()
            if isinstance(v, dict)}
    s = simulate_frame(8, shape=(128, 96), ranges="wide", with_elasto=False)
    t = json.loads(json.dumps(s.truth))
    drawn = t["ranges"]["drawn"]["textures"]
    assert set(drawn) == set(spec)
    for k, v in drawn.items():
        assert spec[k]["low"] - 1e-9 <= v <= spec[k]["high"] + 1e-9, k
    assert t["phantom"]["textures"] == pytest.approx(drawn)
    assert t["acoustics"]["sidelobe_db"] == pytest.approx(drawn["sidelobe_db"])
    assert simulate_frame(8, shape=(64, 48), with_elasto=False).truth["acoustics"][
        "sidelobe_db"] is None
