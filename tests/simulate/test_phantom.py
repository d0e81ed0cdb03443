"""Phantom: penetration depth, entry-echo definition, aging markers, artefacts."""

import numpy as np
import pytest
from scipy.ndimage import uniform_filter1d

from layerseg.simulate.acoustics import AcousticParams, form_iq, pulse_sigma_z_mm
from layerseg.simulate.anatomy import draw_anatomy, sleb_probability
from layerseg.simulate.phantom import Artefacts, build_phantom, entry_echo_extent


def _penetration_mm(f0, seed=0):
    p = AcousticParams(frequency_mhz=f0, focus_mm=3.3)
    rng = np.random.default_rng(seed)
    an = draw_anatomy("cheek", 45, "F", rng, bone=False)
    med, _ = build_phantom(an, p, 400, 64, (0.04, 0.05), rng)
    r = form_iq(med, p, rng, noise=False)
    inten = (np.abs(r.iq) ** 2).reshape(400, med.up, -1).mean(axis=(1, 2))
    level = 10 * np.log10(uniform_filter1d(inten, 25))
    below = np.nonzero(level < p.noise_db)[0]
    return below[0] * 0.04 if below.size else 16.0


def test_penetration_depth_at_24mhz_and_falls_with_frequency():
    p24 = _penetration_mm(24.0)
    assert 9.5 <= p24 <= 15.0
    assert _penetration_mm(40.0) < p24 < _penetration_mm(18.0)


def test_entry_echo_extent_matches_pulse_for_a_lone_specular():
    p = AcousticParams()
    top, bot = entry_echo_extent(np.array([1e-6]), p, surface_db=30.0, dej_db=-100.0,
                                 epi_db=-100.0)
    s = pulse_sigma_z_mm(p)
    # -6 dB of a Gaussian envelope exp(-u^2 / 2 s^2): |u| = s sqrt(2 ln 2)
    assert -top[0] == pytest.approx(s * np.sqrt(2 * np.log(2)), rel=0.02)
    assert bot[0] == pytest.approx(s * np.sqrt(2 * np.log(2)), rel=0.02)
    # a thick bright epidermis widens the echo
    top2, bot2 = entry_echo_extent(np.array([0.1]), p, surface_db=10.0, dej_db=4.0, epi_db=9.0)
    assert bot2[0] > 0.1


def test_aging_markers():
    assert sleb_probability(25) == 0 and sleb_probability(45) > 0.3 and sleb_probability(70) > 0.5
    rng = np.random.default_rng(0)
    young = [draw_anatomy("zygoma", 25, "F", rng) for _ in range(200)]
    old = [draw_anatomy("zygoma", 75, "F", rng) for _ in range(200)]
    mean = lambda xs, k: np.mean([a.thickness_mm[k] for a in xs if a.thickness_mm[k] > 0])  # noqa
    assert mean(old, "deep_fat") / mean(young, "deep_fat") == pytest.approx(0.64, abs=0.08)
    assert mean(old, "dermis") < mean(young, "dermis")
    assert mean(old, "smas") < mean(young, "smas")
    assert np.mean([a.sleb_mm > 0 for a in old]) > 0.5 > np.mean([a.sleb_mm > 0 for a in young])
    assert old[0].upper_lower_dermis_db < young[0].upper_lower_dermis_db <= 0


def test_artefacts_add_reflectors_and_shadow():
    p = AcousticParams()
    an = draw_anatomy("cheek", 40, "F", np.random.default_rng(1))
    kw = dict(standoff_mm=2.0)
    med0, _ = build_phantom(an, p, 200, 64, (0.05, 0.05), np.random.default_rng(2), **kw)
    med1, geo = build_phantom(an, p, 200, 64, (0.05, 0.05), np.random.default_rng(2),
                              artefacts=Artefacts(lens_reverb=2, skin_reverb=True, hairs=1,
                                                  bubbles=1), **kw)
    assert med1.specular.arrays()[0].size > med0.specular.arrays()[0].size
    assert med1.atten_db_cm_mhz.max() > med0.atten_db_cm_mhz.max()
    assert geo.extras["hairs"] == 1 and geo.extras["lens_reverb"] == 2


def test_upper_lower_dermis_ratio_and_sleb_in_the_scatterer_map():
    p = AcousticParams()
    an = draw_anatomy("forehead", 80, "F", np.random.default_rng(3))
    an.sleb_mm = 0.0
    an.upper_lower_dermis_db = -6.0
    dz = 0.025
    med, geo = build_phantom(an, p, 200, 64, (dz, 0.05), np.random.default_rng(4))
    z = (np.arange(med.shape[0]) + 0.5) * med.dz_f_mm
    m = med.margin
    amp_db = 20 * np.log10(np.maximum(med.amplitude[:, m:m + 64], 1e-12))
    # anatomical dermis in image space: from the epidermis bottom to the dermis label's bottom
    d_top = geo.skin_mm + geo.anat_thickness_mm["epidermis"] * 1540 / 1730
    d_bot = geo.surfaces_rows[2] * dz
    up_db, lo_db = [], []
    for c in range(64):
        mid = 0.5 * (d_top[c] + d_bot[c])
        up_db.append(amp_db[(z > d_top[c] + 0.03) & (z < mid), c].mean())
        lo_db.append(amp_db[(z > mid) & (z < d_bot[c] - 0.03), c].mean())
    assert np.mean(up_db) - np.mean(lo_db) == pytest.approx(-6.0, abs=1.0)
    # a SLEB darkens the top of the dermis by the table's -18 dB, nothing else changes
    an.sleb_mm = 0.2
    med2, _ = build_phantom(an, p, 200, 64, (dz, 0.05), np.random.default_rng(4))
    a1, a2 = med.amplitude[:, m:m + 64], med2.amplitude[:, m:m + 64]
    diff = 20 * np.log10(a2[a1 > 0] / a1[a1 > 0])
    assert diff.min() == pytest.approx(-18.0, abs=0.01)
    assert set(np.round(np.unique(diff), 2)) <= {0.0, -18.0}
