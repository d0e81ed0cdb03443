"""Echogenicity (dB only where the compression is known), low-echo fraction, CV, and the masked
GLCM against a plain loop implementation."""

import numpy as np
import pytest

from layerseg import Frame
from layerseg.scoring import score
from layerseg.scoring.echo import echo_stats, glcm_features


def test_db_only_with_known_dynamic_range():
    lab = np.zeros((50, 40), np.uint8)
    lab[5:25] = 2
    lab[25:] = 3
    grey = np.where(lab == 2, 127.5, 51.0)
    known = {r["layer"]: r for r in score(Frame(grey, (0.02, 0.05), dynamic_range_db=60.0),
                                          lab).layers}
    assert known["dermis"]["echo_mean_db"] == pytest.approx(-30.0)
    assert known["fat"]["echo_median_db"] == pytest.approx((51 / 255 - 1) * 60)
    assert known["fat"]["echo_ratio_to_dermis"] == pytest.approx(51 / 127.5)
    unknown = {r["layer"]: r for r in score(Frame(grey, (0.02, 0.05)), lab).layers}
    assert unknown["dermis"]["echo_mean_db"] is None
    assert "grey" in unknown["dermis"]["echo_db_reason"]
    assert unknown["dermis"]["echo_mean_grey"] == pytest.approx(127.5)


def test_envelope_frame_is_in_db():
    lab = np.zeros((50, 40), np.uint8)
    lab[5:] = 2
    env = np.where(np.arange(50)[:, None] < 25, 1.0, 0.1) * np.ones((1, 40))
    frame = Frame(env, (0.02, 0.05), intensity="envelope", dynamic_range_db=60.0)
    d = {r["layer"]: r for r in score(frame, lab).layers}["dermis"]
    # rows 5-24 at 0 dB, rows 25-49 at -20 dB (reference: 99.9th percentile = 1)
    assert d["echo_mean_db"] == pytest.approx((20 * 0 + 25 * -20) / 45, abs=1e-3)


def test_low_echo_fraction_and_cv():
    grey = np.zeros((10, 10))
    mask = np.zeros((10, 10), bool)
    mask[2:6] = True
    grey[2:4] = 10.0
    grey[4:6] = 100.0
    out = echo_stats(grey, mask, dynamic_range_db=None, dermis_mean_grey=55.0,
                     low_echo_threshold=30)
    assert out["low_echo_fraction"] == 0.5
    assert out["echo_cv"] == pytest.approx(45.0 / 55.0)
    assert out["echo_ratio_to_dermis"] == pytest.approx(1.0)


def naive_glcm(q, mask, dr, dc, levels):
    P = np.zeros((levels, levels))
    R, C = q.shape
    for r in range(R):
        for c in range(C):
            r2, c2 = r + dr, c + dc
            if 0 <= r2 < R and 0 <= c2 < C and mask[r, c] and mask[r2, c2]:
                P[q[r, c], q[r2, c2]] += 1
                P[q[r2, c2], q[r, c]] += 1
    P /= P.sum()
    i, j = np.indices(P.shape)
    mi, mj = (i * P).sum(), (j * P).sum()
    si, sj = np.sqrt(((i - mi) ** 2 * P).sum()), np.sqrt(((j - mj) ** 2 * P).sum())
    return {"contrast": (P * (i - j) ** 2).sum(), "homogeneity": (P / (1 + (i - j) ** 2)).sum(),
            "energy": np.sqrt((P ** 2).sum()),
            "correlation": ((i - mi) * (j - mj) * P).sum() / (si * sj)}


def test_masked_glcm_matches_plain_loops(rng):
    grey = rng.uniform(0, 255, (30, 25))
    mask = np.zeros((30, 25), bool)
    mask[4:20, 3:22] = True
    mask[10:14, 8:12] = False  # a hole
    levels = 16
    out = glcm_features(grey, mask, (0.02, 0.05), distance_mm=0.1, levels=levels, min_pairs=10)
    q = np.clip((grey * levels / 256).astype(int), 0, levels - 1)
    lat = naive_glcm(q, mask, 0, 2, levels)     # 0.1 mm / 0.05 mm = 2 columns
    ax = naive_glcm(q, mask, 5, 0, levels)      # 0.1 mm / 0.02 mm = 5 rows
    for p in ("contrast", "homogeneity", "energy", "correlation"):
        assert out[f"glcm_{p}"] == pytest.approx((lat[p] + ax[p]) / 2, rel=1e-9)
    assert out["glcm_distance_mm"] == 0.1 and out["glcm_reason"] is None
