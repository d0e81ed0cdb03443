"""Stiffness over valid elastography pixels only; strain ratio; empty measures with reasons."""

import numpy as np
import pytest

from layerseg import Frame
from layerseg.scoring import score
from layerseg.scoring.stiffness import elasto_stats


def layered(rows=120, cols=100):
    lab = np.zeros((rows, cols), np.uint8)
    lab[10:15] = 1
    lab[15:60] = 2
    lab[60:110] = 3
    lab[110:] = 4
    return lab


def test_median_of_valid_pixels_only(rng):
    lab = layered()
    kpa = rng.uniform(5, 40, lab.shape).astype(np.float32)
    invalid = rng.random(lab.shape) < 0.3
    kpa[invalid] = np.nan
    # invalid pixels also flagged by a separate mask with huge values under it
    mask_invalid = rng.random(lab.shape) < 0.1
    kpa[mask_invalid & ~invalid] = 1e6
    frame = Frame(np.full(lab.shape, 100.0), (0.02, 0.05), elasto=kpa, elasto_kind="swe_kpa",
                  elasto_valid=~mask_invalid)
    rows = {r["layer"]: r for r in score(frame, lab).layers}
    for name, val in (("dermis", 2), ("fat", 3)):
        m = (lab == val) & ~invalid & ~mask_invalid
        assert rows[name]["stiffness_median_kpa"] == pytest.approx(float(np.median(kpa[m])),
                                                                   rel=1e-6)
        assert rows[name]["elasto_valid_fraction"] == pytest.approx(m.sum() / (lab == val).sum())
        assert rows[name]["strain_mean"] is None and "swe_kpa" in rows[name]["strain_reason"]


def test_hand_worked_median():
    lab = np.zeros((4, 4), np.uint8)
    lab[1:3, :] = 2
    e = np.full((4, 4), np.nan, np.float32)
    e[1] = [1, 2, np.nan, 100]
    e[2] = [3, np.nan, 7, np.nan]
    out = elasto_stats(e, np.isfinite(e), "swe_kpa", lab == 2, min_pixels=1)
    assert out["stiffness_median_kpa"] == 3.0          # median of 1, 2, 3, 7, 100
    assert out["stiffness_mean_kpa"] == pytest.approx(113 / 5)


def test_no_valid_pixels_empty_with_reason_rest_scored():
    lab = layered()
    e = np.full(lab.shape, np.nan, np.float32)
    frame = Frame(np.full(lab.shape, 100.0), (0.02, 0.05), elasto=e, elasto_kind="swe_kpa")
    rows = {r["layer"]: r for r in score(frame, lab).layers}
    d = rows["dermis"]
    assert d["stiffness_median_kpa"] is None and "valid" in d["stiffness_reason"]
    assert d["thickness_mean_mm"] == pytest.approx(45 * 0.02)


def test_strain_ratio_to_reference_layer_and_thin_flag():
    lab = layered()
    e = np.zeros(lab.shape, np.float32)
    e[lab == 2] = 0.01
    e[lab == 3] = 0.04
    e[lab == 4] = 0.02
    e[lab == 1] = 0.03
    frame = Frame(np.full(lab.shape, 100.0), (0.02, 0.05), elasto=e, elasto_kind="strain")
    rows = {r["layer"]: r for r in score(frame, lab, reference_layer="fat",
                                         elasto_resolution_mm=0.5).layers}
    assert rows["dermis"]["strain_mean"] == pytest.approx(0.01)
    assert rows["dermis"]["strain_ratio"] == pytest.approx(4.0)    # dermis 4x stiffer than fat
    assert rows["fat"]["strain_ratio"] == pytest.approx(1.0)
    assert rows["epidermis"]["elasto_below_resolution"] is True    # 0.1 mm < 0.5 mm
    assert rows["dermis"]["elasto_below_resolution"] is False      # 0.9 mm
    assert rows["dermis"]["stiffness_median_kpa"] is None
    # no reference layer -> ratio empty with reason
    rows = {r["layer"]: r for r in score(frame, lab, reference_layer="deep_fat").layers}
    assert rows["dermis"]["strain_ratio"] is None
    assert "deep_fat" in rows["dermis"]["strain_reason"]


def test_no_elastography():
    lab = layered()
    rows = score(Frame(np.full(lab.shape, 100.0), (0.02, 0.05)), lab).layers
    assert all(r["stiffness_median_kpa"] is None and "no elastography" in r["stiffness_reason"]
               for r in rows)
