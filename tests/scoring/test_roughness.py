"""Roughness: Ra = 2A/pi and Rq = A/sqrt(2) of a sinusoidal boundary (hand-worked), with the
large-scale curve removed, from a label map (whole rows) and from sub-pixel surfaces."""

import math

import numpy as np
import pytest

from layerseg import Frame
from layerseg.errors import ProfileError
from layerseg.layers import get_profile
from layerseg.layers.surfaces import surfaces_to_labels
from layerseg.scoring import score
from layerseg.scoring.roughness import gaussian_sigma_for_cutoff, roughness_ra_rq

DEFAULT = get_profile("default")


def sinus_boundary(spacing, amp_px, wavelength_mm, width_mm=8.0, curve_px=0.0, tilt_deg=0.0,
                   phase=0.3):
    ay, ax = spacing
    cols = int(round(width_mm / ax))
    x = np.arange(cols) * ax
    u = (x - x.mean()) / x.max()
    z = (60.0 + amp_px * np.sin(2 * np.pi * x / wavelength_mm + phase)
         + curve_px * u ** 2 + np.tan(np.radians(tilt_deg)) * x / ay)
    return z, cols


def test_sigma_gives_half_transmission_at_cutoff():
    # the Gaussian filter's gain at the cutoff wavelength is 1/2 (ISO 16610-21)
    s = gaussian_sigma_for_cutoff(2.5)
    gain = math.exp(-2 * math.pi ** 2 * s ** 2 / 2.5 ** 2)
    assert gain == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize("spacing,wavelength", [((0.02, 0.02), 0.5), ((0.02, 0.05), 1.0),
                                                ((0.03, 0.03), 0.6)])
@pytest.mark.parametrize("amp_px", [3.0, 6.0])
def test_sinusoid_from_label_map(spacing, wavelength, amp_px):
    """Label map built from an analytic boundary (pixel centre rule), scored through score():
    the boundary is the dermis' lower surface under a gently curved and tilted skin."""
    ay, ax = spacing
    z, cols = sinus_boundary(spacing, amp_px, wavelength, curve_px=25.0, tilt_deg=3.0)
    rows = int(z.max() + 80)
    S = np.vstack([z - 45.0, z - 40.0, z, z + 30.0, z + 30, z + 30, z + 30, z + 30])
    lab = surfaces_to_labels(S, DEFAULT, rows)
    frame = Frame(np.choose(lab, [0, 200, 140, 40, 180, 60, 90, 230]).astype(float), spacing)
    derm = {r["layer"]: r for r in score(frame, lab, roughness_cutoff_mm=2.5).layers}["dermis"]
    amp_um = amp_px * ay * 1000
    assert derm["roughness_ra_um"] == pytest.approx(2 * amp_um / np.pi, rel=0.05)
    assert derm["roughness_rq_um"] == pytest.approx(amp_um / np.sqrt(2), rel=0.05)
    assert derm["roughness_cutoff_mm"] == 2.5


def test_subpixel_surfaces_are_nearly_exact_and_curve_removed():
    spacing = (0.02, 0.02)
    z, _ = sinus_boundary(spacing, 2.0, 0.4, curve_px=40.0, tilt_deg=5.0)
    out = roughness_ra_rq(z, spacing, cutoff_mm=2.5)
    amp_um = 2.0 * 20
    assert out["roughness_ra_um"] == pytest.approx(2 * amp_um / np.pi, rel=0.01)
    assert out["roughness_rq_um"] == pytest.approx(amp_um / np.sqrt(2), rel=0.01)
    # the curve and tilt alone give (almost) no roughness
    flat, _ = sinus_boundary(spacing, 0.0, 0.4, curve_px=40.0, tilt_deg=5.0)
    assert roughness_ra_rq(flat, spacing, cutoff_mm=2.5)["roughness_rq_um"] < 0.02 * amp_um


def test_too_short_profile_is_empty_with_reason():
    z = 50 + np.sin(np.arange(100))
    out = roughness_ra_rq(z, (0.02, 0.02), cutoff_mm=2.5)   # 2 mm wide < 2 x cutoff
    assert out["roughness_ra_um"] is None and "too short" in out["roughness_reason"]
    # validity mask: longest run used
    valid = np.ones(400, bool)
    valid[150] = False
    out = roughness_ra_rq(np.full(400, 10.0), (0.02, 0.02), valid, cutoff_mm=1.0)
    assert out["roughness_ra_um"] == pytest.approx(0.0, abs=1e-9)
    assert out["roughness_length_mm"] == pytest.approx((249 - 2 * 25) * 0.02)


def test_score_uses_given_subpixel_surfaces():
    spacing = (0.02, 0.02)
    z, cols = sinus_boundary(spacing, 1.5, 0.5)      # 1.5 px: quantisation would matter more
    rows = int(z.max() + 80)
    S = np.vstack([z - 45.0, z - 40.0, z, z + 30.0, z + 30, z + 30, z + 30, z + 30])
    lab = surfaces_to_labels(S, DEFAULT, rows)
    frame = Frame(np.full(lab.shape, 100.0), spacing)
    derm = {r["layer"]: r for r in score(frame, lab, surfaces=S).layers}["dermis"]
    amp_um = 1.5 * 20
    assert derm["roughness_rq_um"] == pytest.approx(amp_um / np.sqrt(2), rel=0.01)
    with pytest.raises(ProfileError):
        score(frame, lab, surfaces=S[:-1])
