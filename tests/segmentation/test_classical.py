"""The classical segmenter on simulated frames, its score model, and bad input."""

import math
import subprocess
import sys

import numba
import numpy as np
import pytest

import layerseg
from layerseg.errors import ConfigError, InvalidImageError, SpacingRequiredError
from layerseg.frame import Frame, FrameMeta
from layerseg.layers import get_profile, load_priors, order_violations, search_limits_rows
from layerseg.segmentation import (frame_features, label_scores, load_config, segment,
                                   thickness_limits_mm)
import layerseg.segmentation.classical as C
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
    cfg = load_priors()
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
                       "background_depth_penalty_per_mm": 0.0,
                       "deep_tissue": {"enabled": False},
                       "bone_surface": {"weight": 0.0, "appearance": "own"}})
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
    res = segment(f, region="elbow", return_scores=True)   # unknown: default profile + QC note
    assert res.profile.region == "default"
    assert any("'elbow' is not a known profile" in x for x in res.flags)
    for blank in (np.zeros_like(f.bmode), np.full_like(f.bmode, 255.0)):
        with pytest.raises(InvalidImageError, match="no usable contrast"):
            segment(Frame(blank, spacing_mm=f.spacing_mm))
    with pytest.raises(ConfigError, match="is not available"):
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


def test_bone_surface_term_telescopes(frames):
    # with only the bone-top term, a bone on rows [a, rows) earns weight * clip(e(a) - offset)
    f = frames["forehead"].frame
    cfg = load_config({"appearance": {"weight": 0.0}, "ridge": {"w": {"epidermis": 0, "smas": 0,
                                                                       "bone": 0}},
                       "edges": {"weight": 0.0}, "texture": {"weight": 0.0}, "bone_cost": 0.0,
                       "background_depth_penalty_per_mm": 0.0,
                       "deep_tissue": {"enabled": False},
                       "bone_surface": {"weight": 7.0, "offset": 0.2, "cap": 0.5,
                                        "pixel_cost": 0.03}})
    feats = frame_features(f, cfg)
    sc = label_scores(f, feats, cfg)
    e = np.clip(feats["bone_surface"] - 0.2, 0.0, 0.5)
    rng = np.random.default_rng(1)
    for _ in range(10):
        a, c = int(rng.integers(0, SHAPE[0])), int(rng.integers(0, SHAPE[1]))
        # plus the per-pixel price of bone over deep tissue (appearance and texture weights 0)
        want = 7.0 * e[a, c] - 0.03 * (SHAPE[0] - a)
        assert sc[7, a:, c].sum() == pytest.approx(want, abs=1e-9)


def _tissue_frame(rows=240, cols=200, line_row=None, streaky=False, seed=0):
    rng = np.random.default_rng(seed)
    ay, ax = 0.02, 0.05
    # speckle: Rayleigh envelope, log-compressed over 50 dB onto 0-255
    if streaky:
        # laterally long bright fibres on the speckle (muscle)
        env = rng.rayleigh(1.0, (rows, cols))
        fib = rng.random(rows) < 0.12
        env[fib] *= 3.0
    else:
        env = rng.rayleigh(1.0, (rows, cols))
    img = np.clip(255 * (1 + 20 * np.log10(env / 8.0) / 50), 0, 255)
    img[:20] = 0.0                                   # gel
    img[20:26] = 250.0                               # entry echo / dermis stand-in
    if line_row is not None:
        img[line_row:line_row + 3] = 255.0           # periosteal line
        img[line_row + 3:] = 0.0                     # acoustic shadow
    return Frame(img, spacing_mm=(ay, ax))


def test_bone_surface_evidence_peaks_at_the_line():
    line = 150
    f = _tissue_frame(line_row=line)
    ev = frame_features(f)["bone_surface"]
    col_best = ev.argmax(axis=0)
    look = int(round(load_config()["bone_surface"]["look_mm"] / 0.02))
    # the best bone top lies where the line begins: within the look-ahead window above it, or
    # a row into the (3-row, lightly smoothed) line
    assert np.all((col_best >= line - look) & (col_best <= line + 1))
    assert np.median(ev[line - 2]) > 0.6
    # in speckled tissue with no bone, the evidence stays low
    ev0 = frame_features(_tissue_frame())["bone_surface"]
    assert np.percentile(ev0[40:200], 99) < np.median(ev[line - 2]) - 0.4


def test_streakiness_sees_fibres_not_speckle_or_shadow():
    streaky = frame_features(_tissue_frame(streaky=True, seed=1))["streak"][60:200, 30:170]
    speckle = frame_features(_tissue_frame(seed=2))["streak"][60:200, 30:170]
    shadow = frame_features(_tissue_frame(line_row=100, seed=3))["streak"][140:220, 30:170]
    assert np.median(streaky) > np.median(speckle) + 0.15
    assert np.median(shadow) < np.median(speckle)


def test_deep_tissue_below_muscle_is_background():
    # simulated cheek frames have unmodelled deep tissue (label 0) under the muscle in some
    # columns; the segmenter must end the layers there rather than stretch the muscle down
    sf = simulate_frame(8, region="cheek", shape=(512, 512), with_elasto=False)
    deep = (sf.labels == 0) & (np.arange(512)[:, None] > 200)
    assert deep.sum() > 20000
    labels = segment(sf.frame)
    assert (labels[deep] == 0).mean() > 0.6
    assert order_violations(labels, "cheek") == 0


def test_deep_tissue_switch_changes_only_deep_background_scores(frames):
    """deep_tissue.enabled scores label 0 below start_mm under the skin guess with the deep-tissue
    model (deep_tissue.cost shifts exactly those scores); switched off, label 0 keeps the gel and
    depth-penalty model there, and no other label's scores depend on the switch."""
    f = frames["cheek"].frame
    on = load_config()
    off = load_config({"deep_tissue": {"enabled": False}})
    costly = load_config({"deep_tissue": {"cost": on["deep_tissue"]["cost"] + 0.7}})
    feats = frame_features(f, on)
    s_on, s_off, s_cost = (label_scores(f, feats, c) for c in (on, off, costly))
    np.testing.assert_array_equal(s_on[1:], s_off[1:])
    depth_mm = (np.arange(SHAPE[0])[:, None] - feats["skin_row"][None, :]) * f.spacing_mm[0]
    deep = depth_mm > on["deep_tissue"]["start_mm"]
    assert 0.2 < deep.mean() < 0.95
    np.testing.assert_array_equal(s_on[0][~deep], s_off[0][~deep])
    assert (s_on[0][deep] != s_off[0][deep]).mean() > 0.99
    np.testing.assert_allclose(s_on[0][deep] - s_cost[0][deep], 0.7, atol=1e-9)
    np.testing.assert_array_equal(s_on[0][~deep], s_cost[0][~deep])


def _depth_compensate_plain(n, skin, ay, dc):
    """`classical._depth_compensate` as first written: one full-frame mask per depth bin."""
    from scipy.stats import theilslopes
    rows, cols = n.shape
    depth = (np.arange(rows, dtype=np.float64)[:, None] - skin[None, :]) * ay
    start = float(dc["start_mm"])
    step = max(1, int(round(0.05 / ay)))
    zs, qs = [], []
    for z in np.arange(start, depth.max(), step * ay):
        sel = np.abs(depth - z) < 0.5 * step * ay
        if sel.sum() >= max(8, cols // 4):
            zs.append(z)
            qs.append(np.percentile(n[sel], dc["quantile"]))
    if len(zs) < 10:
        return n
    slope = theilslopes(qs, zs)[0]
    if not slope < 0:
        return n
    return n + np.clip(-slope * (depth - start), 0.0, float(dc["max_gain"]))


def test_depth_compensation_equals_one_mask_per_bin():
    """The one-pass binning gives the per-bin masks' answer exactly, on random frames with a
    depth loss, fractional skin lines, odd spacings and bins that are too sparse; most of them
    are compensated (the answers are not both the input)."""
    changed = sum(_depth_compensation_case(seed) for seed in range(8))
    assert changed >= 6


def _depth_compensation_case(seed):
    from layerseg.segmentation.classical import _depth_compensate
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(60, 400)), int(rng.integers(8, 200))
    ay = float(rng.choice([0.0117, 0.02, 0.025, 0.05, 0.0371]))
    z = np.arange(rows)[:, None] * ay
    n = rng.normal(size=(rows, cols)) - rng.uniform(0, 0.2) * z
    skin = rng.uniform(0, rows / 3, cols)
    if seed % 2:
        skin = np.round(skin)
    dc = {"enabled": True, "start_mm": float(rng.choice([0.5, 1.0, 3.0])),
          "quantile": float(rng.choice([50, 75, 90])), "max_gain": 0.5}
    got = _depth_compensate(n, skin, ay, dc)
    np.testing.assert_array_equal(got, _depth_compensate_plain(n, skin, ay, dc))
    return not np.array_equal(got, n)


def test_working_grid_leaves_coarse_frames_alone_and_resamples_fine_ones(frames):
    """Frames at the working spacing or coarser are segmented on their own grid; a finer one is
    resampled over the same extent to the nearest grid no finer than the working spacing."""
    from layerseg.segmentation.classical import working_frame
    f = frames["cheek"].frame                         # 0.047 x 0.05 mm: coarser than 0.02
    assert working_frame(f) is f
    fine = Frame(np.random.default_rng(0).uniform(0, 255, (300, 250)).astype(np.float32),
                 spacing_mm=(0.01, 0.015), intensity="display")
    w = working_frame(fine)
    assert w.shape == (150, 187)
    assert w.spacing_mm[0] >= 0.02 and w.spacing_mm[1] >= 0.02
    assert w.spacing_mm[0] * 150 == pytest.approx(3.0) and w.spacing_mm[1] * 187 == \
        pytest.approx(3.75)
    assert working_frame(fine, {"working_spacing_mm": [0.005, 0.005]}) is fine
    for bad in ([0.0, 0.02], [0.02], "x"):
        with pytest.raises(ConfigError, match="working_spacing_mm"):
            load_config({"working_spacing_mm": bad})


def test_fine_frame_segmented_on_the_working_grid_like_on_its_own():
    """A frame sampled at half the working spacing: the answer on the working grid comes back on
    the frame's grid, ordered, with the scores there, and agrees with the answer computed on the
    frame's own grid (the working grid switched off)."""
    sim = simulate_frame(21, region="jaw", shape=(400, 320), depth_mm=4.0, width_mm=3.2,
                         with_elasto=False, vary=False)      # 0.01 x 0.01 mm
    res = segment(sim.frame, model="classical", return_scores=True)
    assert res.labels.shape == sim.frame.shape and res.scores.shape == (8, 400, 320)
    assert order_violations(res.labels, "jaw") == 0
    native = segment(sim.frame, model="classical", config={"working_spacing_mm": [0.01, 0.01]})
    for label in (2, 3):                               # dermis, fat
        truth = sim.labels == label
        assert dice(res.labels == label, truth) >= dice(native == label, truth) - 0.02
        assert dice(res.labels == label, native == label) > 0.95


def _label_scores_plain(feats, cfg, appearance=None):
    """The per-label planes of `label_scores` as NumPy expressions, one full-frame array per
    term (the reference); the terms added after them (the background's depth penalty and deep
    tissue, the bone surface and cost) are left out, and switched off where it is compared."""
    n, edge, below = feats["n"], feats["edge"], feats["below"]
    rows, cols = n.shape
    app = cfg["appearance"]
    wa = float(app["weight"])
    sc = np.empty((C.N_LABELS, rows, cols))
    de = edge[1:] - edge[:-1]          # (rows, cols): E(r+1) - E(r)
    we = float(cfg["edges"]["weight"])
    wts = cfg["edges"]["w"]
    sh = cfg["shadow"]
    shadow = np.exp(-0.5 * (below / sh["sd"]) ** 2)
    # unlabelled deep tissue (background under the deepest layer), and bone below its line
    dt = cfg["deep_tissue"]
    ll = np.logaddexp(C._gauss_ll(n, dt["mean"], dt["sd"]),
                      C._gauss_ll(n, dt["dark"], dt["dark_sd"])) - math.log(2.0)
    zc = float(cfg["texture"]["z_cap"])
    z = np.clip((feats["streak"] - dt["texture"][0]) / dt["texture"][1], 0.0, zc)
    deep_score = wa * ll - cfg["texture"]["weight"] * 0.5 * z * z
    bs = cfg["bone_surface"]
    bone_as_deep = bs["appearance"] == "deep_tissue"
    for lab, name in enumerate(C.LABEL_NAMES):
        mean, sd = (appearance or {}).get(name, (app[name]["mean"], app[name]["sd"]))
        tm = cfg["texture"]["models"].get(name)
        if name == "bone" and bone_as_deep:
            # below its line, bone is told from deep tissue by the line alone
            # (a small cost per pixel breaks the tie with background: no line, no bone)
            s = deep_score - float(bs["pixel_cost"])
            tm = None
        elif "bright" in app[name] and (appearance is None or name not in appearance):
            s = wa * C._bone_ll(n, app[name])
        else:
            s = wa * C._gauss_ll(n, mean, sd)
        if tm is not None and cfg["texture"]["weight"]:
            z = (feats["streak"] - tm[0]) / tm[1]
            # robust: a bright horizontal line (SMAS, periosteum) nearby also reads as streaky,
            # so the penalty stops growing at z_cap standard deviations
            z = np.clip(z, 0.0 if name in cfg["texture"]["one_sided"] else -zc, zc)
            s -= cfg["texture"]["weight"] * 0.5 * z * z
        wr = float(cfg["ridge"]["w"].get(name, 0.0))
        if wr:
            s += wr * feats["ridge"]
        w = float(wts.get(name, 0.0))
        if w:
            s += we * w * de
        if name == "bone":
            s += sh["weight"] * shadow
        elif name in C._TISSUE_LABELS:
            s -= sh["weight"] * shadow
        sc[lab] = s
    return sc


@pytest.mark.parametrize("adapted", [False, True])
@pytest.mark.parametrize("deep_bone", [False, True])
def test_label_scores_equal_their_numpy_expressions_bit_for_bit(frames, adapted, deep_bone):
    """The fused per-label kernel (`_label_planes`) against the plain NumPy expressions of
    every term, on simulated frames, the configuration's and an adapted appearance, and both
    bone appearances (the deep-tissue one and the two-mode one)."""
    import copy

    cfg = copy.deepcopy(load_config())
    cfg["bone_surface"]["appearance"] = "deep_tissue" if deep_bone else "own"
    # the terms added after the per-label planes (shared NumPy code, not the kernel's) off:
    # each adds or subtracts exactly zero, or is skipped
    cfg["background_depth_penalty_per_mm"] = 0.0
    cfg["deep_tissue"]["enabled"] = False
    cfg["bone_surface"]["weight"] = 0.0
    cfg["bone_cost"] = 0.0
    rng = np.random.default_rng(int(adapted) * 2 + int(deep_bone))
    for sim in frames.values():
        f = sim.frame
        feats = frame_features(f, cfg)
        app = None
        if adapted:
            app = {name: (float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.05, 0.3)))
                   for name in C.LABEL_NAMES}
        np.testing.assert_array_equal(label_scores(f, feats, cfg, app),
                                      _label_scores_plain(feats, cfg, app))


@pytest.mark.nojit
@pytest.mark.parametrize("seed", range(4))
def test_label_planes_kernel_equals_numpy_on_random_inputs(seed):
    """`_label_planes` against the NumPy expressions on random small arrays: one plane for
    every combination of its terms, all filled in one call (small enough for the
    NUMBA_DISABLE_JIT pass)."""
    rng = np.random.default_rng(seed)
    shape = (7, 5)
    n, base, streak, ridge, de, shadow = (rng.normal(size=shape) for _ in range(6))
    wa, zc, tw, wsh = (float(v) for v in rng.uniform(0.2, 3.0, 4))
    combos = [(b, t, r, e, sign) for b, t, r, e in np.ndindex(2, 2, 2, 2) for sign in (1, -1, 0)]
    L = len(combos)
    mean, sd = rng.uniform(0, 1, L), rng.uniform(0.1, 0.5, L)
    tm0, tm1 = rng.uniform(0.2, 2.0, L), rng.uniform(0.2, 2.0, L)
    wr, wde = rng.normal(size=L), rng.normal(size=L)
    use_base, tex, use_ridge, use_edge, sign = (np.array(v) for v in zip(*combos))
    zlo = np.where(sign != 0, 0.0, -zc)
    out = np.empty((L,) + shape)
    want = np.empty((L,) + shape)
    for i in range(L):
        z0 = (n - mean[i]) / sd[i]
        w = base.copy() if use_base[i] else wa * (-0.5 * z0 * z0 - math.log(sd[i]))
        if tex[i]:
            z = np.clip((streak - tm0[i]) / tm1[i], zlo[i], zc)
            w = w - tw * 0.5 * z * z
        if use_ridge[i]:
            w = w + wr[i] * ridge
        if use_edge[i]:
            w = w + wde[i] * de
        if sign[i]:
            w = w + sign[i] * (wsh * shadow)
        want[i] = w
        out[i] = base if use_base[i] else np.nan
    C._label_planes(out, use_base.astype(bool), n, mean, sd, np.log(sd), wa, tex.astype(bool),
                    streak, tm0, tm1, zlo, zc, tw * 0.5, use_ridge.astype(bool), ridge, wr,
                    use_edge.astype(bool), de, wde, sign.astype(np.int64), shadow, wsh)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.nojit
def test_two_mode_kernel_equals_numpy():
    """`_two_mode` (the deep tissue's and the bone's two-mode appearance) against its NumPy
    expression: bit for bit compiled, within rounding as plain Python."""
    rng = np.random.default_rng(3)
    n = rng.normal(0.5, 0.4, (9, 13))
    for m1, s1, m2, s2 in rng.uniform(0.05, 1.0, (4, 4)):
        got = C._two_mode(n, m1, s1, m2, s2)
        want = np.logaddexp(C._gauss_ll(n, m1, s1), C._gauss_ll(n, m2, s2)) - math.log(2.0)
        if numba.config.DISABLE_JIT:
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
        else:
            np.testing.assert_array_equal(got, want)
