"""The one decode: class scores -> ordered answer under the region's priors."""

import json
import math

import numba
import numpy as np
import pytest

import layerseg.segmentation.pipeline as pipeline
from layerseg import Frame, FrameMeta
from layerseg.errors import ConfigError, ScoreMapError
from layerseg.layers import (decode, default_priors, get_profile, load_priors, order_violations,
                             surfaces_to_labels)
from layerseg.layers.decode import thickness_limits_mm, unsupported_runs
from layerseg.layers.profiles import LABEL_NAMES
from layerseg.segmentation import segment
from layerseg.segmentation.pipeline import segment_with

SP = (0.03, 0.06)


def _truth(rows=100, cols=60, region="cheek", seed=0):
    """An ordered label map with gently sloping surfaces (cheek: 7 layers, bone absent)."""
    prof = get_profile(region)
    rng = np.random.default_rng(seed)
    x = np.arange(cols)
    tops = [5, 9, 30, 55, 62, 70, 100, 100]        # epidermis..bone tops, bottom
    wave = np.round(3 * np.sin(x / 9 + rng.uniform(0, 6)))    # one wave: thickness kept
    S = np.array([t + wave if 0 < t < 100 else t + 0 * x for t in tops], dtype=float)
    S = np.maximum.accumulate(np.round(S), axis=0)
    return surfaces_to_labels(S, prof, rows), prof


def _scores_for(labels, rng, margin=4.0, noise=1.0):
    sc = rng.normal(0, noise, (8,) + labels.shape)
    np.put_along_axis(sc, labels[None].astype(np.intp),
                      np.take_along_axis(sc, labels[None].astype(np.intp), 0) + margin, 0)
    return sc


@pytest.mark.parametrize("slope", [0.0, 50.0])
def test_decode_recovers_a_clear_answer(slope):
    lab, prof = _truth()
    sc = _scores_for(lab, np.random.default_rng(1))
    res = decode(sc, prof, SP, priors={"max_slope_deg": slope})
    assert res.labels.dtype == np.uint8
    assert order_violations(res.labels, prof) == 0
    assert (res.labels == lab).mean() > 0.99
    assert res.surfaces.shape == (prof.n_layers + 1, lab.shape[1])


def test_decode_obeys_order_even_when_scores_do_not():
    rng = np.random.default_rng(2)
    sc = rng.normal(0, 1, (8, 80, 50))             # scores with no order at all
    res = decode(sc, "forehead", SP)
    assert order_violations(res.labels, "forehead") == 0
    mn, mx = thickness_limits_mm(load_priors(), res.profile)
    th = np.diff(res.surfaces, axis=0) * SP[0]
    for k, layer in enumerate(res.profile.layers):
        present = th[k] > 0
        assert (th[k][present] <= mx[layer] + 1e-9).all(), layer


def test_bone_runs_to_the_bottom_unless_switched_off():
    prof = get_profile("temple")
    rows, cols = 90, 40
    lab = np.zeros((rows, cols), np.uint8)
    for lo, hi, v in ((5, 8, 1), (8, 30, 2), (30, 45, 3), (45, 50, 4), (50, 60, 5), (60, 75, 6),
                      (75, 85, 7)):
        lab[lo:hi] = v
    sc = _scores_for(lab, np.random.default_rng(3), margin=6.0, noise=0.3)
    on = decode(sc, prof, SP)
    assert (on.labels[75:] == 7).all()
    off = decode(sc, prof, SP, priors={"bone_to_bottom": False})
    assert (off.labels[86:] == 0).mean() > 0.9 and (off.labels[76:84] == 7).all()


def test_fallback_to_per_column_answer_is_flagged():
    lab, prof = _truth(seed=4)
    lab[:, 30:] = np.roll(lab[:, 30:], 25, axis=0)   # a 25-row step the slope limit forbids
    lab[:25, 30:] = 0
    sc = _scores_for(lab, np.random.default_rng(5), margin=20.0, noise=0.1)
    strict = decode(sc, prof, SP, priors={"max_slope_deg": 10.0, "smooth_fallback_per_column": 0.5})
    assert any("per-column answer kept" in f for f in strict.flags)
    free = decode(sc, prof, SP, priors={"max_slope_deg": 0.0})
    np.testing.assert_array_equal(strict.labels, free.labels)
    stuck = decode(sc, prof, SP, priors={"max_slope_deg": 10.0,
                                          "smooth_fallback_per_column": 1e6})
    assert not any("per-column" in f for f in stuck.flags)
    assert not np.array_equal(stuck.labels, free.labels)


@pytest.mark.parametrize("bad", [np.zeros((7, 10, 10)), np.zeros((8, 10)),
                                 np.full((8, 10, 10), np.nan)])
def test_bad_scores_refused(bad):
    with pytest.raises(ScoreMapError):
        decode(bad, "cheek", SP)


def test_every_segmenter_ends_in_the_same_decode(monkeypatch):
    """The classical segmenter and a network-like scorer both reach layers.decode through the
    shared pipeline, and give what decode gives on their scores."""
    calls = []
    real = pipeline.decode

    def spy(scores, prof, spacing, **kw):
        calls.append((scores.shape, prof.region, kw.get("model")))
        return real(scores, prof, spacing, **kw)

    monkeypatch.setattr(pipeline, "decode", spy)
    lab, prof = _truth(rows=120, cols=80)
    grey = np.choose(lab, [5, 200, 150, 40, 180, 50, 90, 230]).astype(np.float32)
    grey += np.random.default_rng(6).normal(0, 6, grey.shape).astype(np.float32)
    frame = Frame(np.clip(grey, 0, 255), spacing_mm=SP, meta=FrameMeta(region="cheek"))

    logp = np.log(np.clip(np.eye(8)[lab].transpose(2, 0, 1) * 0.9 + 0.0125, 1e-12, 1))
    net = segment_with(lambda f, p: logp, frame, model="toy-net", return_scores=True)
    direct = decode(logp, prof, SP, model="toy-net")
    np.testing.assert_array_equal(net.labels, direct.labels)
    classical = segment(frame, return_scores=True)
    assert [c[2] for c in calls] == ["toy-net", "classical"]
    assert all(c[0] == (8, 120, 80) and c[1] == "cheek" for c in calls)
    assert classical.model == "classical" and net.model == "toy-net"
    assert order_violations(classical.labels, "cheek") == 0


def test_numbers_given_as_text_are_taken_as_numbers():
    # a priors file may hold "13" for 13: validated and kept as a number, so the decode works
    pri = load_priors({"bone_echo": {"min_line_db": "13", "min_shadow_db": "2"},
                       "max_slope_deg": "45", "absent_evidence": {"min_probability": "0.5"}})
    assert pri["bone_echo"]["min_line_db"] == 13.0 and pri["max_slope_deg"] == 45.0
    assert isinstance(pri["absent_evidence"]["min_probability"], float)
    lp, prof = _bone_case(0.7)
    img = _bone_image(*lp.shape[1:], np.random.default_rng(5), range(0, 16))
    res = decode(lp, prof, SP, log_probabilities=True, image=(img, 60.0), priors=pri)
    assert not (res.labels[:, 24:] == 7).any()


def test_priors_override_and_file(tmp_path):
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"max_slope_deg": 30, "thickness_mm": {"cheek": {"fat": [0.2, 5]}}}))
    pri = load_priors(p)
    assert pri["max_slope_deg"] == 30 and pri["thickness_mm"]["cheek"]["fat"] == [0.2, 5]
    assert pri["thickness_mm"]["default"] == default_priors()["thickness_mm"]["default"]
    assert load_priors()["max_slope_deg"] == default_priors()["max_slope_deg"]


@pytest.mark.parametrize("over, words", [
    ({"thickness_mm": {"default": {"dermis": [2.0, 1.0]}}}, "exceeds"),
    ({"thickness_mm": {"cheek": {"skin": [0, 1]}}}, "unknown layer 'skin'"),
    ({"max_slope_deg": 95}, "max_slope_deg"),
    ({"bone_to_bottom": "yes"}, "bone_to_bottom"),
    ({"absent_evidence": {"min_probability": 1.5}}, "absent_evidence.min_probability"),
    ({"absent_evidence": {"min_p": 0.5}}, "absent_evidence"),
    ({"slope": 3}, "unknown configuration key 'slope'"),
    ({"bone_echo": {"enabled": "yes"}}, "bone_echo.enabled"),
    ({"bone_echo": {"min_line_db": "x"}}, "bone_echo.min_line_db"),
    ({"bone_echo": {"min_db": 3}}, "min_db"),
    ({"dermis_junction": {"enabled": 1}}, "dermis_junction.enabled"),
    ({"dermis_junction": {"window_mm": -1}}, "dermis_junction.window_mm"),
    ({"dermis_junction": {"step_mm": 0}}, "dermis_junction.step_mm"),
    ({"dermis_junction": {"window": 1}}, "window"),
])
def test_bad_priors_named(over, words):
    with pytest.raises(ConfigError, match=words):
        load_priors(over)


def test_thickness_limits_region_and_frequency():
    cfg = load_priors({"thickness_mm": {"default": {"epidermis": [0.06, 0.24]},
                                        "chin": {"deep_fat": [0.0, 1.0]},
                                        "newregion": {"fat": [0.5, 1.0]}}})
    mn, mx = thickness_limits_mm(cfg, get_profile("chin"), frequency_mhz=None)
    assert (mn["deep_fat"], mx["deep_fat"]) == (0.0, 1.0)
    assert mx["epidermis"] == pytest.approx(0.24)
    mn48, mx48 = thickness_limits_mm(cfg, get_profile("chin"), frequency_mhz=48.0)
    assert mn48["epidermis"] == pytest.approx(0.03) and mx48["epidermis"] == pytest.approx(0.12)
    assert mx48["dermis"] == mx["dermis"]          # only the entry echo scales
    mn_d, mx_d = thickness_limits_mm(cfg, get_profile("cheek"))
    assert mx_d["deep_fat"] == default_priors()["thickness_mm"]["cheek"]["deep_fat"][1]
    assert set(mn_d) == set(get_profile("cheek").layers)
    assert all(math.isfinite(v) for v in mn_d.values())


def test_column_confidence_against_a_plain_loop(rng):
    from layerseg.layers.decode import column_confidence

    logits = rng.normal(0, 2, (8, 23, 17))
    lp = logits - np.log(np.exp(logits).sum(0, keepdims=True))
    lab = np.sort(rng.integers(0, 8, (23, 17)), axis=0).astype(np.uint8)
    lab[:, 3] = 0                          # a column without tissue
    lab[:4, 5] = 0
    lab[4:9, 5] = 2
    lab[9:, 5] = 0                         # background under the tissue is left out
    got = column_confidence(lp, lab)
    for j in range(17):
        rows = [i for i in range(23) if lab[i, j] > 0]
        if not rows:
            assert got[j] == 0.0
            continue
        span = range(min(rows), max(rows) + 1)
        ref = sum(math.exp(lp[lab[i, j], i, j]) for i in span) / len(span)
        assert got[j] == pytest.approx(ref, rel=1e-12)
    assert got.shape == (17,)


def test_confidence_flag_thresholds_and_priors():
    from layerseg.layers.decode import confidence_flag

    pri = load_priors()["confidence"]
    lo, frac = pri["column_min"], pri["max_low_fraction"]
    n = 100
    k = int(frac * n)                      # exactly the allowed share of low columns: no flag
    conf = np.r_[np.full(k, lo - 0.1), np.full(n - k, min(1.0, lo + 0.1))]
    assert confidence_flag(conf) is None
    conf[k] = lo - 0.1                     # one more: flagged, with the share named
    msg = confidence_flag(conf)
    assert msg and f"{100 * (k + 1) / n:.0f} %" in msg and "uncertain" in msg
    assert confidence_flag(conf, {"confidence": {"max_low_fraction": 1.0}}) is None
    for bad in ({"confidence": {"column_min": 1.5}},
                {"confidence": {"max_low_fraction": -0.1}},
                {"confidence": {"threshold": 0.5}}):
        with pytest.raises(ConfigError):
            load_priors(bad)


def test_probabilistic_scores_carry_confidence_into_the_flags():
    # a segmenter whose log-probabilities agree with a clean layered answer: confident, no flag;
    # the same with flat probabilities: flagged
    prof = get_profile("forehead")
    rows, cols = 120, 40
    lab = np.zeros((rows, cols), np.intp)
    bounds = [10, 12, 40, 70, 80, 100]
    for k, (a, b) in enumerate(zip(bounds, bounds[1:] + [rows])):
        lab[a:b] = prof.labels[k] if k < len(prof.labels) else prof.labels[-1]
    frame = Frame(np.random.default_rng(0).integers(0, 255, (rows, cols)).astype(np.uint8),
                  spacing_mm=(0.05, 0.05), meta=FrameMeta(region="forehead"))

    def sharp(f, p):
        lp = np.full((8, rows, cols), np.log(0.02 / 7))
        np.put_along_axis(lp, lab[None], np.log(0.98), axis=0)
        return lp

    def flat(f, p):
        return np.full((8, rows, cols), np.log(1 / 8))

    ok = segment_with(sharp, frame, log_probabilities=True)
    assert ok.column_confidence is not None and ok.column_confidence.min() > 0.9
    assert not [x for x in ok.flags if "uncertain" in x]
    bad = segment_with(flat, frame, log_probabilities=True)
    assert bad.column_confidence.max() < 0.2
    assert [x for x in bad.flags if "uncertain" in x]
    # scores that are not probabilities (the classical segmenter's) carry none
    assert segment_with(sharp, frame).column_confidence is None


@pytest.mark.parametrize("fallback", [40.0, 0.0])   # 0: the per-column answer is kept
def test_decode_solves_the_columns_once_with_the_same_answer(fallback):
    """The slope-limited decode takes the per-column optimum from the smooth search's own first
    step instead of a second search; the answer is the one two searches gave."""
    from layerseg.layers import ordered_search
    from layerseg.layers.decode import thickness_limits_mm

    lab, prof = _truth(seed=3)
    sc = _scores_for(lab, np.random.default_rng(4), margin=1.5, noise=1.5)
    pri = load_priors({"smooth_fallback_per_column": fallback})
    got = decode(sc, prof, SP, priors={"smooth_fallback_per_column": fallback})
    # the decode as it was: a per-column search, then a jump-limited one, compared
    mn, mx = thickness_limits_mm(pri, prof, None)
    kw = dict(spacing_mm=SP, min_thickness_mm=mn, max_thickness_mm=mx,
              absent_ok=[ly for ly in pri["thickness_mm"].get("may_be_absent", ())
                         if ly in prof.layers])
    per_col = ordered_search(sc, prof, **kw)
    jump = [int(math.ceil(math.tan(math.radians(pri["max_slope_deg"])) * SP[1] / SP[0]))] * \
        (prof.n_layers + 1)
    jump[-1] = sc.shape[1]
    smooth = ordered_search(sc, prof, max_jump_px=jump, **kw)
    gap = (per_col.score - smooth.score) / sc.shape[2]
    ref = smooth if gap <= fallback else per_col
    assert (ref is per_col) == (fallback == 0.0)   # both branches are exercised
    np.testing.assert_array_equal(got.surfaces, ref.surfaces)
    np.testing.assert_array_equal(got.labels, ref.labels)
    assert got.flags[:len(ref.flags)] == ref.flags
    assert any("per-column answer kept" in f for f in got.flags) == (ref is per_col)


def _logistic_log_probs(prof, depths, rows, cols, width=0.7):
    """Log-probabilities of a layered column model: softmax over the profile's layers (and
    background above / below) of -(distance outside each layer) / width, boundaries at the
    given sub-pixel edge depths (one per surface, each an array over columns)."""
    centre = np.arange(rows)[:, None] + 0.5
    logits = np.full((8, rows, cols), -60.0)
    edges = [np.zeros(cols)] + list(depths) + [np.full(cols, float(rows))]
    labs = [0] + list(prof.labels) + [0]
    bg = np.full((rows, cols), -np.inf)
    for k, lab in enumerate(labs):
        top, bot = edges[k], edges[k + 1]
        val = -(np.maximum(top - centre, 0) + np.maximum(centre - bot, 0)) / width
        if lab == 0:
            bg = np.maximum(bg, val)
        else:
            logits[lab] = val
    logits[0] = bg
    return logits - np.log(np.exp(logits).sum(0, keepdims=True))


def test_refine_surfaces_finds_the_sub_pixel_crossing():
    from layerseg.layers.decode import refine_surfaces

    prof = get_profile("forehead")
    rows, cols = 90, 12
    rng = np.random.default_rng(2)
    base = np.cumsum(rng.uniform(6, 14, prof.n_layers + 1)) + 3
    depths = [np.full(cols, b) + rng.uniform(-0.45, 0.45, cols) for b in base]
    depths[-1] = np.minimum(depths[-1], rows - 2)
    lp = _logistic_log_probs(prof, depths, rows, cols)
    res = decode(lp, prof, (0.05, 0.05), priors={"thickness_mm": {"default": {
        "epidermis": [0.0, 5.0]}}, "max_slope_deg": 0, "bone_to_bottom": False})
    np.testing.assert_array_equal(res.surfaces, np.rint(np.asarray(depths)))   # integer answer
    fine = refine_surfaces(res.surfaces, lp, res.labels)
    # between the two row centres either side, the crossing of a linear log-odds is exact
    np.testing.assert_allclose(fine, np.asarray(depths), atol=1e-6)
    assert np.all(np.diff(fine, axis=0) >= 0)
    # where the model disagrees with the decode (no sign change), the integer depth stays
    flat = np.full_like(lp, np.log(1 / 8))
    np.testing.assert_array_equal(refine_surfaces(res.surfaces, flat, res.labels), res.surfaces)


def test_resample_surfaces_keeps_depth_order_and_empty_columns():
    from layerseg.layers import resample_surfaces

    s = np.array([[2.0, 4.0, 40.0, 6.0], [10.0, 12.0, 40.0, 14.0], [20.0, 22.0, 40.0, 30.0]])
    same = resample_surfaces(s, 40, (40, 4))
    np.testing.assert_allclose(same, s)
    up = resample_surfaces(s, 40, (64, 8))
    assert up.shape == (3, 8) and np.all(np.diff(up, axis=0) >= 0)
    # depths scale with the rows exactly (top edges coincide); centres map to centres
    np.testing.assert_allclose(up[:, 0], s[:, 0] * 64 / 40)
    np.testing.assert_allclose(up[:, 2], s[:, 1] * 64 / 40 * 0.75 + s[:, 0] * 64 / 40 * 0.25)
    # the empty source column (every depth at the bottom) stays empty, never half-interpolated
    assert np.all(up[:, 4:6] == 64)


def test_probabilistic_scores_on_a_coarser_grid_decode_to_sub_pixel_depths():
    # a model answering at 0.04 mm on a frame of 0.025 mm pixels: the answer on the frame grid
    # matches the truth far better than the coarse rows would allow (0.04 mm / sqrt(12) rms)
    prof = get_profile("cheek")
    rows_f, cols_f = 320, 96
    rows_c, cols_c = 200, 60                    # same 8 mm x 2.4 mm field at 0.04 mm
    rng = np.random.default_rng(4)
    base = np.cumsum(rng.uniform(8, 30, prof.n_layers + 1)) + 5
    base = base / base[-1] * (rows_c - 10)
    x = np.arange(cols_c)
    depths = [b + 1.5 * np.sin(x / 9.0 + k) for k, b in enumerate(base)]
    lp = _logistic_log_probs(prof, depths, rows_c, cols_c)
    frame = Frame(np.random.default_rng(0).integers(0, 255, (rows_f, cols_f)).astype(np.uint8),
                  spacing_mm=(0.025, 0.025), meta=FrameMeta(region="cheek"))
    res = segment_with(lambda f, p: lp, frame, log_probabilities=True, return_scores=True,
                       priors={"thickness_mm": {"default": {"epidermis": [0.0, 5.0]}},
                               "bone_to_bottom": False,
                               # the grey levels are noise, no B-mode: no echo step to read
                               "dermis_junction": {"enabled": False}})
    assert res.labels.shape == (rows_f, cols_f) and order_violations(res.labels, "cheek") == 0
    assert res.scores.shape == (8, rows_f, cols_f)
    assert res.column_confidence.shape == (cols_f,)
    from layerseg.layers import resample_surfaces
    truth = resample_surfaces(np.asarray(depths), rows_c, (rows_f, cols_f))
    err_mm = np.abs(res.surfaces - truth) * 0.025
    assert err_mm.mean() < 0.004 and err_mm.max() < 0.03
    # scores that are not probabilities may not come on another grid
    with pytest.raises(ScoreMapError, match="another grid"):
        segment_with(lambda f, p: lp, frame)


def _runs_reference(log_probs, labels, layers, min_p):
    """Plain loop twin of `unsupported_runs`: walk the columns, close a run when the layer
    stops, average the layer's probability over the run's pixels of it."""
    out = {}
    rows, cols = labels.shape
    for layer in layers:
        k = LABEL_NAMES.index(layer)
        weak = [False] * cols
        c = 0
        while c < cols:
            if not any(labels[r, c] == k for r in range(rows)):
                c += 1
                continue
            start, total, n = c, 0.0, 0
            while c < cols and any(labels[r, c] == k for r in range(rows)):
                for r in range(rows):
                    if labels[r, c] == k:
                        total += math.exp(log_probs[k, r, c])
                        n += 1
                c += 1
            if total / n < min_p:
                for j in range(start, c):
                    weak[j] = True
        if any(weak):
            out[layer] = np.array(weak)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_unsupported_runs_against_a_plain_loop(seed):
    rng = np.random.default_rng(seed)
    rows, cols = 30, 25
    lab = rng.integers(0, 8, (rows, cols))
    lab[:, rng.random(cols) < 0.3] = 0                     # columns without some layers
    lp = np.log(rng.dirichlet(np.ones(8) * 0.7, (rows, cols)).transpose(2, 0, 1))
    layers = ["deep_fat", "muscle", "bone"]
    p = float(rng.uniform(0.1, 0.3))
    got = unsupported_runs(lp, lab, get_profile("temple"), layers, p)
    want = _runs_reference(lp, lab, layers, p)
    assert got.keys() == want.keys()
    for k in got:
        np.testing.assert_array_equal(got[k], want[k])


def test_unsupported_runs_sums_only_the_layers_rows():
    """The column sums over the rows a layer occupies are those over the whole frame bit for
    bit (the other rows add exact zeros), so the runs do not change at a threshold set to a
    run's own mean probability."""
    rng = np.random.default_rng(11)
    rows, cols = 200, 60
    lab = np.zeros((rows, cols), np.intp)
    top = 120 + rng.integers(-10, 10, cols)
    for c in range(cols):
        lab[top[c]:top[c] + 30, c] = LABEL_NAMES.index("muscle")
        lab[top[c] + 30:, c] = LABEL_NAMES.index("bone")
    lab[:, 20:25] = 0
    lp = np.log(rng.dirichlet(np.ones(8) * 0.5, (rows, cols)).transpose(2, 0, 1))
    for layer in ("muscle", "bone"):
        k = LABEL_NAMES.index(layer)
        mask = lab == k
        p = np.exp(lp[k])
        psum, n = (p * mask).sum(axis=0), mask.sum(axis=0)
        run = slice(0, 20)                                   # the first run's own mean
        thr = psum[run].sum() / n[run].sum()
        for t, weak in ((thr, False), (np.nextafter(thr, 1.0), True)):
            got = unsupported_runs(lp, lab, get_profile("temple"), [layer], t)
            assert bool(got.get(layer, np.zeros(cols, bool))[0]) is weak


def _bone_case(p_bone_weak):
    """Temple columns: bone under muscle, believed (p 0.98) on the left and barely
    (`p_bone_weak`) on the right, the two runs parted by eight columns of muscle to the bottom."""
    prof = get_profile("temple")
    rows, cols = 90, 40
    lab = np.zeros((rows, cols), np.intp)
    for lo, hi, v in ((5, 8, 1), (8, 30, 2), (30, 45, 3), (45, 50, 4), (50, 60, 5), (60, 75, 6),
                      (75, 90, 7)):
        lab[lo:hi] = v
    lab[75:, 16:24] = 6
    prob = np.full((8, rows, cols), 0.02 / 7)
    np.put_along_axis(prob, lab[None], 0.98, axis=0)
    right = np.s_[75:, 24:]
    # the right half's deep rows: bone at p_bone_weak, the rest spread over the other labels
    # (bone is still each pixel's most likely label)
    prob[(slice(None),) + right] = (1 - p_bone_weak) / 7
    prob[(7,) + right] = p_bone_weak
    return np.log(prob), prof


def test_decode_takes_out_a_layer_the_model_barely_believes_in():
    lp, prof = _bone_case(0.4)                     # right half: argmax bone, mean p 0.4 < 0.5
    plain = decode(lp, prof, SP)                   # scores that are not probabilities: kept
    assert (plain.labels[80:, -5:] == 7).all()
    res = decode(lp, prof, SP, log_probabilities=True)
    assert (res.labels[80:, :12] == 7).all()       # the believed run stays
    assert not (res.labels[:, 24:] == 7).any()     # the weak run is gone: background below
    assert (res.labels[86:, 26:] == 0).all() and (res.labels[65, 24:] == 6).all()
    assert order_violations(res.labels, prof) == 0
    # switched off, or a model that believes it: kept
    off = decode(lp, prof, SP, log_probabilities=True,
                 priors={"absent_evidence": {"min_probability": 0.0}})
    assert (off.labels[80:, -5:] == 7).all()
    lp2, _ = _bone_case(0.7)
    assert (decode(lp2, prof, SP, log_probabilities=True).labels[80:, -5:] == 7).all()


def _deep_tissue_case():
    """Temple columns over a frame twice as deep as the anatomy: muscle believed (p 0.98) from
    row 60 to 75; under it, unmodelled deep tissue that the model calls bone (p 0.6), with
    muscle (p 0.25) before the background (p 0.1). The image is flat speckle: no periosteal
    echo, no shadow."""
    prof = get_profile("temple")
    rows, cols = 120, 40
    lab = np.zeros((rows, cols), np.intp)
    for lo, hi, v in ((5, 8, 1), (8, 30, 2), (30, 45, 3), (45, 50, 4), (50, 60, 5),
                      (60, 120, 6)):
        lab[lo:hi] = v
    prob = np.full((8, rows, cols), 0.02 / 7)
    np.put_along_axis(prob, lab[None], 0.98, axis=0)
    deep = np.s_[75:, :]
    prob[(slice(None),) + deep] = 0.05 / 5
    prob[(7,) + deep], prob[(6,) + deep], prob[(0,) + deep] = 0.6, 0.25, 0.1
    grey = np.random.default_rng(5).uniform(90, 110, (rows, cols))
    return np.log(prob), prof, (grey, 60.0)


def test_deep_tissue_taken_for_bone_ends_as_background():
    """Bone that the image does not show is taken out, and its probability read as background
    (`rejected_bone_to_background`): the deep tissue is label 0, not muscle, and the muscle
    ends where the model's muscle ends; switched off, the muscle runs on to the frame bottom
    (the model's next most likely label there)."""
    lp, prof, image = _deep_tissue_case()
    first = decode(lp, prof, SP, log_probabilities=True, priors={"bone_echo": {
        "enabled": False, "min_line_db": 13.0, "min_shadow_db": 2.0}})
    assert (first.labels[76:] == 7).all()                    # the model's answer: bone
    res = decode(lp, prof, SP, log_probabilities=True, image=image)
    assert (res.labels[60:75] == 6).all() and (res.labels[75:] == 0).all()
    assert order_violations(res.labels, prof) == 0
    off = decode(lp, prof, SP, log_probabilities=True, image=image,
                 priors={"rejected_bone_to_background": False})
    assert (off.labels[60:] == 6).all()
    with pytest.raises(ConfigError, match="rejected_bone_to_background"):
        decode(lp, prof, SP, priors={"rejected_bone_to_background": "yes"})


@pytest.mark.parametrize("seed", range(3))
def test_float32_log_probabilities_decode_as_their_float64_values(seed):
    """A network's float32 log-probabilities are decoded as they are (half the memory
    traffic): surfaces, labels, flags, confidence and sub-pixel depths equal those of the same
    values in float64, on noisy frames whose weak deep layers trigger the evidence rule."""
    from layerseg.layers.decode import column_confidence, refine_surfaces
    rng = np.random.default_rng(seed)
    lab, prof = _truth(rows=120, cols=70, seed=seed)
    lp, _ = _bone_case(0.4) if seed == 2 else (None, None)
    if lp is None:
        sc = _scores_for(lab, rng, margin=1.0, noise=1.5)
        sc[6][:, : 30] += 1.0                    # deep fat: argmax in places, weakly
        lp = sc - np.log(np.exp(sc).sum(axis=0, keepdims=True))
    else:
        prof = get_profile("temple")
    lp32 = lp.astype(np.float32)
    lp64 = lp32.astype(np.float64)
    a = decode(lp32, prof, SP, log_probabilities=True, keep_scores=True)
    b = decode(lp64, prof, SP, log_probabilities=True, keep_scores=True)
    np.testing.assert_array_equal(a.surfaces, b.surfaces)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.flags == b.flags
    assert a.scores.dtype == np.float64
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(column_confidence(lp32, a.labels),
                                  column_confidence(lp64, b.labels))
    np.testing.assert_array_equal(refine_surfaces(a.surfaces, lp32, a.labels),
                                  refine_surfaces(b.surfaces, lp64, b.labels))


def _weak_deep_fat_case(seed):
    """Temple columns whose deep fat is weak (p 0.3-0.45) right of a random column: the
    evidence rule takes it out there and the frame is decoded a second time."""
    rng = np.random.default_rng(seed)
    prof = get_profile("temple")
    rows, cols = 90, int(rng.integers(30, 60))
    x = np.arange(cols)
    dft = int(rng.integers(8, 25))
    tops = np.array([3, 6, 20, 40, 45, 45 + dft, 45 + dft + 10, rows], float)
    S = np.repeat(tops[:, None], cols, 1)
    a = int(rng.integers(0, cols // 2))
    S[5, :a] = S[4, :a]
    S[5:7, :] += np.round(2 * np.sin(x / 7))[None]
    S = np.clip(np.maximum.accumulate(S, 0), 0, rows)
    lab = surfaces_to_labels(S, prof, rows)
    pr = np.full((8, rows, cols), 0.03)
    np.put_along_axis(pr, lab[None], 0.79, 0)
    weak = (lab == 5) & (x[None] >= a)
    pw = rng.uniform(0.3, 0.45)
    pr[:, weak] = (1 - pw) / 7
    pr[5][weak] = pw
    pr = pr * np.exp(rng.normal(0, 0.6, pr.shape))
    pr /= pr.sum(0, keepdims=True)
    return np.log(pr).astype(np.float32), prof


@pytest.mark.parametrize("seed", range(8))
def test_second_decode_reusing_the_first_is_no_worse_than_a_fresh_one(seed, monkeypatch):
    """The second search after the evidence rule reuses the first (`search._Warm`); closing a
    layer from the first answer alone can stick (two coincident surfaces), so it also starts
    from the guided start: its score is at least that of the fresh decode's guided ascent, and
    on these frames at least the fresh decode's within 0.5 per column."""
    import sys
    dec = sys.modules["layerseg.layers.decode"]
    lp, prof = _weak_deep_fat_case(seed)
    got = []
    real = dec._decode_once

    def spy(*a, **k):
        r = real(*a, **k)
        got.append(r[0])
        return r

    monkeypatch.setattr(dec, "_decode_once", spy)
    warm = decode(lp, prof, SP, log_probabilities=True)
    assert len(got) == 2                           # the evidence rule did decode again
    warm_score = got[-1].score
    monkeypatch.setattr(dec, "_Warm", lambda *a, **k: None)
    got.clear()
    cold = decode(lp, prof, SP, log_probabilities=True)
    assert got[-1].score - warm_score <= 0.5 * lp.shape[2]
    assert order_violations(warm.labels, prof) == 0
    assert np.mean(warm.labels == cold.labels) > 0.95


def _echo_plain(grey, dr, spacing, bone, top):
    """Plain loop twin of `bone_run_echoes`: walk the columns, close a run when bone stops,
    read each column's bands in the grey image's own rows."""
    rows_g, cols_g = grey.shape
    rows, cols = bone.shape
    ay = spacing[0]
    out, run = [], []

    def close(a, b):
        vals = {"above": [], "below": [], "line": []}
        for j in run:
            c = min(max(int(np.rint((j + 0.5) * cols_g / cols - 0.5)), 0), cols_g - 1)
            t = top[j] * rows_g / rows
            for key, (lo, hi) in (("above", (-1.3, -0.3)), ("below", (0.3, 1.3)),
                                  ("line", (-0.15, 0.15))):
                r0 = min(max(int(np.rint(t + lo / ay)), 0), rows_g)
                r1 = min(max(int(np.rint(t + hi / ay)), 0), rows_g)
                if r1 > r0:
                    band = grey[r0:r1, c]
                    vals[key].append(band.max() if key == "line" else band.mean())
        m = {k: np.mean(v) if v else np.nan for k, v in vals.items()}
        out.append((a, b, (m["line"] - m["above"]) * dr / 255,
                    (m["above"] - m["below"]) * dr / 255))

    for j in range(cols + 1):
        if j < cols and bone[:, j].any():
            run.append(j)
        elif run:
            close(run[0], run[-1] + 1)
            run = []
    return out


@pytest.mark.parametrize("seed", range(4))
def test_bone_run_echoes_against_a_plain_loop(seed):
    from layerseg.layers.decode import bone_run_echoes
    rng = np.random.default_rng(seed)
    rows, cols = 60, 50
    scale = (1, 1) if seed == 0 else (2, 3) if seed == 1 else (1.5, 0.5) if seed == 2 else (3, 1)
    rows_g, cols_g = int(rows * scale[0]), int(cols * scale[1])
    grey = rng.uniform(0, 255, (rows_g, cols_g))
    top = rng.integers(0, rows + 1, cols).astype(float)
    top[rng.random(cols) < 0.1] = rows                   # bone at the very bottom: no band below
    bone = np.zeros((rows, cols), bool)
    for j in range(cols):
        if rng.random() < 0.6:
            bone[int(min(top[j], rows - 1)):, j] = True
    spacing = (0.05 / scale[0], 0.1)
    got = bone_run_echoes(grey, 57.0, spacing, bone, top)
    want = _echo_plain(grey, 57.0, spacing, bone, top)
    assert [g[:2] for g in got] == [w[:2] for w in want] and len(got) > 2
    np.testing.assert_allclose([g[2:] for g in got], [w[2:] for w in want], rtol=1e-12,
                               atol=1e-12)


def test_bone_echo_in_db_from_grey_levels():
    # tissue at grey 100 above a periosteal line at 200, shadow at 50 under it, 60 dB mapped
    # on 0-255: the line stands 100 * 60 / 255 dB over the tissue, the shadow 50 * 60 / 255 dB
    from layerseg.layers.decode import bone_run_echoes, unechoic_bone_runs
    rows, cols = 200, 20
    grey = np.full((rows, cols), 100.0)
    grey[120] = 200.0
    grey[121:] = 50.0
    bone = np.zeros((rows, cols), bool)
    bone[120:, 5:15] = True
    top = np.full(cols, 120.0)
    (a, b, line_db, shadow_db), = bone_run_echoes(grey, 60.0, (0.03, 0.05), bone, top)
    assert (a, b) == (5, 15)
    assert line_db == pytest.approx(100 * 60 / 255) and shadow_db == pytest.approx(50 * 60 / 255)
    # either sign of bone keeps the run; neither takes it out; the thresholds decide
    assert not unechoic_bone_runs(grey, 60.0, (0.03, 0.05), bone, top, 13.0, 2.0).any()
    flat = np.full((rows, cols), 100.0)
    assert unechoic_bone_runs(flat, 60.0, (0.03, 0.05), bone, top, 13.0, 2.0)[5:15].all()
    line_only = flat.copy()
    line_only[120] = 200.0
    assert not unechoic_bone_runs(line_only, 60.0, (0.03, 0.05), bone, top, 13.0, 2.0).any()
    assert unechoic_bone_runs(line_only, 60.0, (0.03, 0.05), bone, top, 24.0, 2.0).any()
    shadow_only = flat.copy()
    shadow_only[121:] = 80.0                             # 20 grey levels: 4.7 dB
    assert not unechoic_bone_runs(shadow_only, 60.0, (0.03, 0.05), bone, top, 13.0, 2.0).any()
    assert unechoic_bone_runs(shadow_only, 60.0, (0.03, 0.05), bone, top, 13.0, 5.0).any()
    # a run whose bands all leave the frame is kept (nothing to judge by)
    edge = np.zeros((rows, cols), bool)
    edge[-1:, :4] = True
    assert not unechoic_bone_runs(flat, 60.0, (0.03, 0.05), edge, np.full(cols, 0.0), 13.0,
                                  2.0).any()


def _bone_image(rows, cols, rng, echo_cols, fine=1):
    """Grey image (`fine` times the rows and columns) of the `_bone_case` frame: speckle-like
    tissue at grey 110 +- 12; in `echo_cols` (decode-grid columns) a periosteal line at the bone
    surface (row 75) and a shadow under it, elsewhere the same tissue on down."""
    g = rng.normal(110, 12, (rows * fine, cols * fine))
    for j in echo_cols:
        cs = slice(j * fine, (j + 1) * fine)
        g[75 * fine:75 * fine + fine, cs] = 235
        g[75 * fine + fine:, cs] = rng.normal(45, 8, (rows * fine - 75 * fine - fine, fine))
    return np.clip(g, 0, 255)


@pytest.mark.parametrize("fine", [1, 2])
def test_decode_takes_out_bone_the_image_does_not_show(fine):
    lp, prof = _bone_case(0.7)                     # both runs believed: the evidence rule keeps
    rows, cols = lp.shape[1:]
    rng = np.random.default_rng(5)
    img = _bone_image(rows, cols, rng, range(0, 16), fine)    # echo under the left run only
    sp = SP
    kept = decode(lp, prof, sp, log_probabilities=True)
    assert (kept.labels[80:, :12] == 7).all() and (kept.labels[80:, -5:] == 7).all()
    res = decode(lp, prof, sp, log_probabilities=True, image=(img, 60.0))
    assert (res.labels[80:, :12] == 7).all()       # a bone surface with its echo stays
    assert not (res.labels[:, 24:] == 7).any()     # deep tissue without one is not bone
    assert order_violations(res.labels, prof) == 0
    # switched off in the priors, or an image with the echo under both: kept
    off = decode(lp, prof, sp, log_probabilities=True, image=(img, 60.0),
                 priors={"bone_echo": {"enabled": False}})
    np.testing.assert_array_equal(off.labels, kept.labels)
    both = _bone_image(rows, cols, rng, list(range(0, 16)) + list(range(24, cols)), fine)
    res2 = decode(lp, prof, sp, log_probabilities=True, image=(both, 60.0))
    assert (res2.labels[80:, -5:] == 7).all()


def test_segment_with_a_model_reads_the_frame_for_the_bone_echo(monkeypatch):
    # the pipeline hands the decode the frame's display grey and its dynamic range
    seen = {}
    real = pipeline.decode

    def spy(*a, **k):
        seen["image"] = k.get("image")
        return real(*a, **k)

    monkeypatch.setattr(pipeline, "decode", spy)
    lp, prof = _bone_case(0.7)
    grey = np.random.default_rng(0).uniform(0, 255, lp.shape[1:]).astype(np.float32)
    fr = Frame(grey, spacing_mm=SP, meta=FrameMeta(region="temple"), intensity="display",
               dynamic_range_db=48.0)
    segment_with(lambda f, p: lp, fr, log_probabilities=True)
    g, dr = seen["image"]
    assert dr == 48.0 and np.array_equal(g, grey)
    segment_with(lambda f, p: lp, Frame(grey, spacing_mm=SP, meta=FrameMeta(region="temple")),
                 log_probabilities=True)
    assert seen["image"][1] == 60.0                # unknown range: the documented default
    segment_with(lambda f, p: lp, fr)              # not probabilities: no image rule
    assert seen["image"] is None


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_below_plane_is_numpys_logaddexp_bit_for_bit(dtype):
    # the second search's background-below plane: NumPy's logaddexp in the chosen columns
    # (ties, infinities and NaN included), the background's own scores elsewhere
    from layerseg.layers.decode import _below_plane
    rng = np.random.default_rng(11)
    for _ in range(3):
        scale = rng.choice([1e-3, 1.0, 40.0], size=(23, 31))
        a = (rng.normal(size=(23, 31)) * scale).astype(dtype)
        b = (rng.normal(size=(23, 31)) * 10).astype(dtype)
        b[::4] = a[::4]
        a[0, :3] = [np.inf, -np.inf, np.nan]
        b[1, :3] = [np.inf, -np.inf, np.nan]
        cols = rng.random(31) < 0.6
        out = np.full_like(a, 123.0)
        _below_plane(a, b, cols, out)
        ref = a.copy()
        with np.errstate(all="ignore"):
            ref[:, cols] = np.logaddexp(a[:, cols], b[:, cols])
        assert out.dtype == dtype
        if numba.config.DISABLE_JIT:
            # as plain Python the scalar exp/log1p are NumPy's own vector loops, which may
            # round the last bit differently from the C library's that logaddexp calls
            eps = np.finfo(dtype).eps
            np.testing.assert_allclose(out, ref, rtol=4 * eps, atol=4 * eps, equal_nan=True)
        else:
            assert np.array_equal(out, ref, equal_nan=True)
