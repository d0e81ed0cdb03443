"""The classical segmenter on simulated frames, its score model, and bad input."""

import subprocess
import sys

import numpy as np
import pytest

import layerseg
from layerseg.errors import ConfigError, InvalidImageError, ProfileError, SpacingRequiredError
from layerseg.frame import Frame, FrameMeta
from layerseg.layers import get_profile, order_violations, search_limits_rows
from layerseg.segmentation import (frame_features, label_scores, load_config, segment,
                                   thickness_limits_mm)
from layerseg.simulate import simulate_frame

SHAPE = (256, 256)      # 12 mm x 12.8 mm: 0.047 x 0.05 mm pixels


def dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def frames():
    return {region: simulate_frame(seed, region=region, shape=SHAPE, with_elasto=False,
                                   vary=False)
            for seed, region in ((11, "cheek"), (12, "forehead"), (13, "temple"))}


@pytest.mark.parametrize("region", ["cheek", "forehead", "temple"])
def test_simulated_frames_ordered_and_sane(frames, region):
    sf = frames[region]
    res = segment(sf.frame, return_scores=True)
    assert res.labels.dtype == np.uint8 and res.labels.shape == SHAPE
    assert res.profile.region == region
    assert order_violations(res.labels, region) == 0
    for name in ("dermis", "fat"):
        lab = layerseg.layers.LABEL_INDEX[name]
        assert dice(res.labels == lab, sf.labels == lab) > 0.85, name
    assert res.scores.shape == (8,) + SHAPE and np.isfinite(res.scores).all()
    # the top-level call gives the same labels
    assert np.array_equal(layerseg.segment(sf.frame), res.labels)


def test_thickness_limits_hold(frames):
    sf = frames["cheek"]
    cfg = load_config()
    res = segment(sf.frame, return_scores=True)
    prof = res.profile
    mn, mx = thickness_limits_mm(cfg, prof, sf.frame.meta.frequency_mhz)
    absent_ok = [ly for ly in cfg["thickness_mm"]["may_be_absent"] if ly in prof.layers]
    lo, hi, absent, _ = search_limits_rows(prof, SHAPE[0], sf.frame.spacing_mm, mn, mx,
                                           absent_ok)
    th = np.diff(res.surfaces, axis=0)
    for k in range(prof.n_layers):
        ok = (th[k] >= lo[k]) & (th[k] <= hi[k]) | ((th[k] == 0) & absent[k])
        assert ok.all(), prof.layers[k]


def test_standoff_pad_found(frames):
    sf = simulate_frame(21, region="cheek", shape=SHAPE, with_elasto=False, vary=False,
                        standoff_mm=4.0)
    res = segment(sf.frame, return_scores=True)
    truth_top = np.asarray(sf.truth["surfaces_rows"])[0]
    err_mm = np.abs(res.surfaces[0] - truth_top) * sf.frame.spacing_mm[0]
    assert np.median(err_mm) < 0.1
    assert dice(res.labels == 2, sf.labels == 2) > 0.85


def test_gain_and_envelope_invariance(frames):
    f = frames["cheek"].frame
    base = segment(f)
    brighter = Frame(np.clip(f.bmode * 0.8 + 30, 0, 255), spacing_mm=f.spacing_mm,
                     dynamic_range_db=f.dynamic_range_db, meta=f.meta)
    dr = f.dynamic_range_db
    env = Frame(10 ** ((f.bmode / 255.0 - 1.0) * dr / 20.0), spacing_mm=f.spacing_mm,
                intensity="envelope", dynamic_range_db=dr, meta=f.meta)
    for other in (segment(brighter), segment(env)):
        assert order_violations(other, "cheek") == 0
        assert dice(other == 2, base == 2) > 0.95


def test_edge_term_telescopes(frames):
    # with only the edge term, a label's scores over rows [a, b) sum to w_k (E(b) - E(a))
    f = frames["temple"].frame
    cfg = load_config({"appearance": {"weight": 0.0}, "ridge": {"w": {"epidermis": 0, "smas": 0,
                                                                       "bone": 0}},
                       "texture": {"weight": 0.0}, "bone_cost": 0.0,
                       "background_depth_penalty_per_mm": 0.0})
    feats = frame_features(f, cfg)
    sc = label_scores(f, feats, cfg)
    E = feats["edge"]
    we = cfg["edges"]["weight"]
    rng = np.random.default_rng(0)
    for lab, name in enumerate(layerseg.layers.LABEL_NAMES):
        for _ in range(5):
            a, b = sorted(rng.integers(0, SHAPE[0] + 1, size=2))
            c = int(rng.integers(0, SHAPE[1]))
            w = cfg["edges"]["w"][name]
            expect = we * w * (E[b, c] - E[a, c])
            assert sc[lab, a:b, c].sum() == pytest.approx(expect, abs=1e-9)


def test_features_normalised(frames):
    f = frames["forehead"].frame
    feats = frame_features(f)
    n = feats["n"]
    assert n.shape == SHAPE and np.isfinite(n).all()
    # 1 % of the frame at or below 0 (the dark reference), most of it below the bright one
    assert np.mean(n <= 1e-9) >= 0.009
    assert np.mean(n > 1.2) < 0.05
    assert feats["edge"].shape == (SHAPE[0] + 1, SHAPE[1])
    assert (feats["edge"][0] == 0).all() and (feats["edge"][-1] == 0).all()


def test_bad_input(frames):
    f = frames["cheek"].frame
    with pytest.raises(InvalidImageError, match="layerseg.Frame"):
        segment(f.bmode)
    with pytest.raises(SpacingRequiredError, match="spacing"):
        segment(Frame(f.bmode))
    with pytest.raises(ProfileError):
        segment(f, region="elbow")
    with pytest.raises(ConfigError, match="not yet available"):
        segment(f, model="unet")
    with pytest.raises(ConfigError, match="unknown configuration key"):
        segment(f, config={"thickness": {}})


def test_missing_region_uses_default_profile(frames):
    f = frames["cheek"].frame
    bare = Frame(f.bmode, spacing_mm=f.spacing_mm, meta=FrameMeta())
    res = segment(bare, return_scores=True)
    assert res.profile == get_profile(None)
    assert order_violations(res.labels, None) == 0


def test_no_torch_import():
    code = ("import sys, layerseg, layerseg.segmentation, layerseg.bench.accuracy, "
            "layerseg.cli.bench; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
