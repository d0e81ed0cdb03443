"""SLEB, upper/lower dermis ratio and fat septa density on frames with known structure."""

import numpy as np
import pytest

from layerseg import Frame
from layerseg.scoring import score
from layerseg.scoring.layer_markers import dermis_upper_lower_ratio, fat_septa_density, \
    sleb_markers


def skin(rng, sleb_rows=0, septa_cols=(), rows=200, cols=256, noise=10.0):
    lab = np.zeros((rows, cols), np.uint8)
    lab[10:18] = 1
    lab[18:78] = 2          # 60 rows = 1.2 mm of dermis at 0.02 mm
    lab[78:160] = 3
    lab[160:] = 4
    grey = np.choose(lab, [5, 220, 150, 35, 180, 60, 90, 230]).astype(float)
    if sleb_rows:
        grey[18:18 + sleb_rows] = 45.0
    for c in septa_cols:
        grey[78:160, c - 1:c + 2] = 170.0
    grey = np.clip(grey + rng.normal(0, noise, grey.shape), 0, 255)
    return grey, lab


@pytest.mark.parametrize("sleb_rows", [5, 10, 20, 35])
def test_sleb_present_with_known_thickness(rng, sleb_rows):
    grey, lab = skin(rng, sleb_rows)
    out = sleb_markers(grey, lab, (0.02, 0.05))
    assert out["sleb_present"] is True
    # within one axial pixel
    assert out["sleb_thickness_mm"] == pytest.approx(sleb_rows * 0.02, abs=0.02)
    assert out["sleb_fraction_of_dermis"] == pytest.approx(sleb_rows / 60, abs=1 / 60)
    assert out["sleb_coverage"] > 0.9


def test_no_sleb_is_a_zero_measurement(rng):
    grey, lab = skin(rng, 0)
    out = sleb_markers(grey, lab, (0.02, 0.05))
    assert out["sleb_present"] is False
    assert out["sleb_thickness_mm"] == 0.0 and out["sleb_reason"] is None


def test_upper_lower_ratio(rng):
    grey, lab = skin(rng, 0, noise=0)
    grey[18:48] = 100.0                       # upper half of the dermis darker
    assert dermis_upper_lower_ratio(grey, lab)["dermis_echo_ratio_upper_lower"] == \
        pytest.approx(100 / 150)


@pytest.mark.parametrize("spacing", [(0.02, 0.05), (0.025, 0.025)])
def test_septa_count_and_density(rng, spacing):
    septa = (30, 70, 110, 150, 190, 230)
    grey, lab = skin(rng, 0, septa, noise=15.0)
    out = fat_septa_density(grey, lab, spacing)
    assert out["fat_septa_count"] == len(septa)
    assert out["fat_septa_per_mm"] == pytest.approx(len(septa) / (256 * spacing[1]))
    none = fat_septa_density(*skin(rng, 0, (), noise=15.0), spacing)
    assert none["fat_septa_count"] == 0      # speckle-like noise and the fat borders: no septa
    assert fat_septa_density(grey, lab, None)["fat_septa_reason"] == "no pixel spacing"


def test_frame_level_markers_in_wide_table(rng):
    grey, lab = skin(rng, 15, (40, 120, 200))
    w = score(Frame(grey, (0.02, 0.05)), lab, frame_id="w").to_wide().iloc[0]
    assert bool(w["sleb_present"]) and w["fat_septa_count"] == 3
    assert w["smas_coverage_fraction"] == 1.0       # SMAS continuity
    assert w["skin_thickness_mean_mm"] == pytest.approx(68 * 0.02, abs=0.02)


def test_sleb_on_tilted_skin_measured_along_the_normal(rng):
    """A 0.3 mm band under a dermis tilted by 20 degrees (0.02 x 0.05 mm pixels)."""
    import math

    from layerseg.layers import get_profile
    from layerseg.layers.surfaces import surfaces_to_labels
    ay, ax = 0.02, 0.05
    cols, rows = 256, 700
    x = np.arange(cols) * ax
    th = math.radians(20)
    top = (0.3 + np.tan(th) * x) / ay
    S = np.vstack([top, top + 0.15 / math.cos(th) / ay, top + 1.35 / math.cos(th) / ay,
                   top + 3.0 / math.cos(th) / ay])
    S = np.vstack([S, np.repeat(S[-1:], 4, axis=0)])
    lab = surfaces_to_labels(S, get_profile("default"), rows)
    grey = np.choose(lab, [5, 220, 150, 35, 180, 60, 90, 230]).astype(float)
    rr = np.arange(rows)[:, None] + 0.5
    band = (lab == 2) & (rr < S[1] + 0.3 / math.cos(th) / ay)
    grey[band] = 45.0
    grey = np.clip(grey + rng.normal(0, 8, grey.shape), 0, 255)
    out = sleb_markers(grey, lab, (ay, ax))
    assert out["sleb_present"]
    assert out["sleb_thickness_mm"] == pytest.approx(0.3, abs=ay)
