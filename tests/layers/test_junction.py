"""The dermis-fat junction on the image's echo step (layerseg.layers.junction)."""

import numpy as np
import pytest

from layerseg import Frame, FrameMeta
from layerseg.layers import get_profile, surfaces_to_labels
from layerseg.layers.junction import junction_steps_db, refine_dermis_junction
from layerseg.segmentation.pipeline import segment_with

DR = 60.0
SP = (0.025, 0.05)
PARAMS = dict(window_mm=1.0, step_mm=0.4, lateral_sigma_mm=0.4, min_drop_db=3.0, margin_db=3.0,
              median_mm=1.0)


def _steps_plain(grey, dr, spacing, step_mm, sigma_mm):
    """Row by row, column by column: the mean over h rows above minus h rows below, in dB."""
    from scipy import ndimage as ndi
    g = np.asarray(grey, dtype=np.float64) * dr / 255.0
    if sigma_mm > 0:
        g = ndi.gaussian_filter1d(g, sigma_mm / spacing[1], axis=1, mode="nearest")
    rows, cols = g.shape
    h = max(1, int(round(step_mm / spacing[0])))
    out = np.full((rows + 1, cols), -np.inf)
    for z in range(rows + 1):
        if z - h < 0 or z + h > rows:
            continue
        for c in range(cols):
            out[z, c] = sum(g[z - h:z, c]) / h - sum(g[z:z + h, c]) / h
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_steps_against_a_plain_loop(seed):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(8, 60), rng.integers(1, 30)
    grey = rng.uniform(0, 255, (rows, cols)).astype(np.float32)
    spacing = (rng.uniform(0.01, 0.05), rng.uniform(0.02, 0.1))
    step_mm, sigma = rng.uniform(0.0, 0.3), rng.choice([0.0, rng.uniform(0.05, 0.5)])
    got = junction_steps_db(grey, 48.0, spacing, step_mm, sigma)
    want = _steps_plain(grey, 48.0, spacing, step_mm, sigma)
    assert got.shape == (rows + 1, cols)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], atol=1e-9)


def test_a_step_of_known_size_reads_its_size_in_db():
    grey = np.vstack([np.full((40, 5), 200.0), np.full((40, 5), 150.0)])
    st = junction_steps_db(grey, DR, SP, 0.25, 0.0)
    assert np.argmax(st[:, 0]) == 40
    np.testing.assert_allclose(st[40], 50.0 * DR / 255.0)


def _speckle_frame(junction_rows, contrast_db, rows=240, cols=120, seed=0):
    """Log-compressed fully developed speckle (Rayleigh envelope): a bright dermis over a fat
    `contrast_db` darker from the row `junction_rows` (per column) down."""
    rng = np.random.default_rng(seed)
    env = rng.rayleigh(1.0, (rows, cols))
    db = 20 * np.log10(env)
    z = np.arange(rows)[:, None]
    db = db + np.where(z >= np.asarray(junction_rows)[None, :], -contrast_db, 0.0)
    # the dermis at 45 dB in the display's 60 dB
    return np.clip((db + 45.0) * 255.0 / DR, 0, 255).astype(np.float32)


def _surfaces(junction, cols=120):
    """Cheek surfaces (rows): entry echo 8-12, dermis to `junction`, fat to 170, SMAS, deep
    fat, muscle to the bottom (240), no bone."""
    tops = [8, 12, None, 170, 180, 200, 240, 240]
    S = np.array([np.full(cols, float(t)) if t is not None else np.broadcast_to(
        np.asarray(junction, float), (cols,)) for t in tops])
    return S


def test_the_junction_moves_to_the_echo_step_in_speckle():
    prof = get_profile("cheek")
    cols = 120
    true = 100 + np.round(4 * np.sin(np.arange(cols) / 15)).astype(int)
    grey = _speckle_frame(true, contrast_db=4.0)          # less than one speckle SD (5.6 dB)
    S = _surfaces(true - 16)                              # the model: 0.4 mm too shallow
    out, moved = refine_dermis_junction(S, prof, grey, DR, SP, **PARAMS,
                                        dermis_mm=(0.3, 3.5), min_fat_mm=0.1)
    kd = prof.layers.index("dermis")
    err = np.abs(out[kd + 1] - true) * SP[0]
    assert moved > 0.9
    assert np.median(err) <= 0.05 and np.mean(err) <= 0.08        # mm; it was 0.4
    others = [k for k in range(S.shape[0]) if k != kd + 1]
    np.testing.assert_array_equal(out[others], S[others])
    assert (np.diff(out, axis=0) >= 0).all()


def test_no_step_no_move_and_a_junction_on_its_step_stays():
    prof = get_profile("cheek")
    flat = _speckle_frame(np.full(120, 100), contrast_db=0.0)
    out, moved = refine_dermis_junction(_surfaces(84), prof, flat, DR, SP, **PARAMS)
    assert moved == 0.0 and np.array_equal(out, _surfaces(84))
    stepped = _speckle_frame(np.full(120, 100), contrast_db=8.0, seed=3)
    out, _ = refine_dermis_junction(_surfaces(100), prof, stepped, DR, SP, **PARAMS)
    kd = prof.layers.index("dermis")
    assert np.abs(out[kd + 1] - 100).max() <= 2


def test_window_and_thickness_limits_hold():
    prof = get_profile("cheek")
    kd = prof.layers.index("dermis")
    grey = _speckle_frame(np.full(120, 100), contrast_db=8.0, seed=4)
    # the step 1.5 mm below the model's junction: beyond a 1 mm window, not taken
    out, moved = refine_dermis_junction(_surfaces(40), prof, grey, DR, SP, **PARAMS)
    assert moved == 0.0
    # a 2 mm window reaches it, unless the dermis may be at most 2 mm thick (to row 92)
    wide = dict(PARAMS, window_mm=2.0)
    out, _ = refine_dermis_junction(_surfaces(40), prof, grey, DR, SP, **wide)
    assert np.median(out[kd + 1]) == pytest.approx(100, abs=2)
    out, _ = refine_dermis_junction(_surfaces(40), prof, grey, DR, SP, **wide,
                                    dermis_mm=(0.3, 2.0))
    assert (out[kd + 1] - out[kd] <= 2.0 / SP[0] + 1e-9).all()
    # the fat's minimum: fat ends at row 104 and must stay 0.25 mm (10 rows) thick
    S = _surfaces(84)
    S[kd + 2] = 104
    out, _ = refine_dermis_junction(S, prof, grey, DR, SP, **PARAMS, min_fat_mm=0.25)
    assert (out[kd + 2] - out[kd + 1] >= 10 - 1e-9).all()


def test_an_empty_frame_is_left_alone():
    prof = get_profile("cheek")
    S = np.zeros((prof.n_layers + 1, 0))
    out, moved = refine_dermis_junction(S, prof, np.zeros((10, 0)), DR, SP, **PARAMS)
    assert out.shape == S.shape and moved == 0.0


def _log_probs(labels, margin=5.0):
    sc = np.where(np.arange(8)[:, None, None] == labels[None], margin, 0.0)
    return sc - np.log(np.exp(sc).sum(axis=0, keepdims=True))


def test_segment_with_a_model_puts_the_junction_on_the_image_step():
    prof = get_profile("cheek")
    kd = prof.layers.index("dermis")
    true = np.full(120, 100)
    grey = _speckle_frame(true, contrast_db=4.0, seed=5)
    model = surfaces_to_labels(_surfaces(84), prof, 240)   # the model's junction at row 84
    lp = _log_probs(model)
    fr = Frame(grey, spacing_mm=SP, meta=FrameMeta(region="cheek"), intensity="display",
               dynamic_range_db=DR)
    res = segment_with(lambda f, p: lp, fr, log_probabilities=True)
    assert np.median(res.surfaces[kd + 1]) == pytest.approx(100, abs=2)
    assert (res.labels == surfaces_to_labels(res.surfaces, prof, 240)).all()
    off = segment_with(lambda f, p: lp, fr, log_probabilities=True,
                       priors={"dermis_junction": {"enabled": False}})
    assert np.median(off.surfaces[kd + 1]) == pytest.approx(84, abs=1)
    # scores that are not a model's probabilities (the classical segmenter's) are left alone
    plain = segment_with(lambda f, p: lp, fr)
    assert np.median(plain.surfaces[kd + 1]) == pytest.approx(84, abs=1)


def test_a_moved_run_meets_the_unmoved_columns_in_a_ramp_within_the_slope_limit():
    prof = get_profile("cheek")
    kd = prof.layers.index("dermis")
    cols = 120
    # the fat darkens only under the middle columns: a run there moves, its sides do not
    rng = np.random.default_rng(6)
    db = 20 * np.log10(rng.rayleigh(1.0, (240, cols)))
    db[100:, 40:80] -= 8.0
    grey = np.clip((db + 45.0) * 255.0 / DR, 0, 255).astype(np.float32)
    S = _surfaces(np.full(cols, 80.0))
    step, _ = refine_dermis_junction(S, prof, grey, DR, SP, **PARAMS)
    assert np.abs(np.diff(step[kd + 1])).max() >= 15          # without a limit: a step
    out, _ = refine_dermis_junction(S, prof, grey, DR, SP, **PARAMS, max_slope_deg=30.0)
    jump = np.tan(np.radians(30.0)) * SP[1] / SP[0]
    assert np.abs(np.diff(out[kd + 1])).max() <= jump + 1e-9
    assert np.median(out[kd + 1][50:70]) == pytest.approx(100, abs=2)   # the run still moved
    assert (out[kd + 1] <= step[kd + 1] + 1e-9).all()         # lowered, never beyond its move


@pytest.mark.parametrize("seed", [0, 1])
def test_ramp_is_the_largest_lipschitz_function_under_the_moves(seed):
    from layerseg.layers.junction import _ramped
    rng = np.random.default_rng(seed)
    move = np.where(rng.uniform(size=50) < 0.5, 0.0, rng.uniform(0, 30, 50))
    per_col = rng.uniform(0.2, 3.0)
    c = np.arange(50)
    want = (move[None, :] + per_col * np.abs(c[:, None] - c[None, :])).min(axis=1)
    np.testing.assert_allclose(_ramped(move, per_col), want, atol=1e-12)


def _refine_plain(S, prof, grey, dr, spacing, p, dermis_mm, min_fat_mm, slope):
    """Column by column over the whole frame's steps (`_steps_plain`), the rule as documented."""
    from scipy import ndimage as ndi
    ay, ax = spacing
    kd, kf = prof.layers.index("dermis"), prof.layers.index("fat")
    st = _steps_plain(grey, dr, spacing, p["step_mm"], p["lateral_sigma_mm"])
    rows, cols = grey.shape
    s = S[kd + 1].astype(float)
    move = np.zeros(cols)
    lo_all, hi_all = np.zeros(cols), np.zeros(cols)
    for c in range(cols):
        lo = max(s[c] - p["window_mm"] / ay, S[kd, c] + dermis_mm[0] / ay)
        hi = min(s[c] + p["window_mm"] / ay, S[kd, c] + dermis_mm[1] / ay,
                 S[kf + 1, c] - min_fat_mm / ay)
        lo_all[c], hi_all[c] = lo, hi
        best, best_z = -np.inf, None
        for z in range(rows + 1):
            if lo - 1e-9 <= z <= hi + 1e-9 and st[z, c] > best:
                best, best_z = st[z, c], z
        here = st[int(np.clip(np.rint(s[c]), 0, rows)), c]
        here = here if np.isfinite(here) else 0.0
        if best_z is not None and best >= p["min_drop_db"] and best - here >= p["margin_db"]:
            move[c] = best_z - s[c]
    move = ndi.median_filter(move, size=max(1, int(round(p["median_mm"] / ax))) | 1,
                             mode="nearest")
    if slope > 0:
        k = np.tan(np.radians(slope)) * ax / ay
        d = np.abs(np.arange(cols)[:, None] - np.arange(cols)[None, :]) * k
        move = (np.maximum(move, 0)[None] + d).min(1) - (np.maximum(-move, 0)[None] + d).min(1)
    out = S.astype(float).copy()
    out[kd + 1] = np.clip(s + move, np.minimum(lo_all, s), np.maximum(hi_all, s))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_refine_against_a_plain_column_loop(seed):
    rng = np.random.default_rng(seed)
    prof = get_profile("cheek")
    kd = prof.layers.index("dermis")
    cols = int(rng.integers(20, 60))
    true = 100 + np.round(6 * np.sin(np.arange(cols) / 7 + seed)).astype(int)
    grey = _speckle_frame(true, contrast_db=rng.uniform(2, 10), cols=cols, seed=seed)
    S = _surfaces(true + rng.integers(-30, 30), cols=cols)
    S[kd + 1] += rng.uniform(-3, 3, cols)             # sub-pixel depths, a rough junction
    S = np.maximum.accumulate(S, axis=0)
    p = dict(PARAMS, window_mm=rng.uniform(0.3, 1.5), step_mm=rng.uniform(0.05, 0.5),
             min_drop_db=rng.uniform(0, 4), margin_db=rng.uniform(0, 4))
    dermis_mm, min_fat, slope = (0.3, rng.uniform(1.5, 3.5)), rng.uniform(0, 0.5), \
        (0.0, 50.0)[seed % 2]
    got, _ = refine_dermis_junction(S, prof, grey, DR, SP, **p, dermis_mm=dermis_mm,
                                    min_fat_mm=min_fat, max_slope_deg=slope)
    want = _refine_plain(S, prof, grey, DR, SP, p, dermis_mm, min_fat, slope)
    np.testing.assert_allclose(got, want, atol=1e-9)
