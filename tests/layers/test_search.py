import itertools

import numpy as np
import pytest

from layerseg.bench.search import ordered_search_plain
from layerseg.errors import (ConfigError, MissingDependencyError, ProfileError, ScoreMapError,
                             SpacingRequiredError)
from layerseg.layers import (Profile, get_profile, labels_to_surfaces, labelling_score,
                             order_violations, ordered_search)

SMALL = Profile("test", ("dermis", "fat", "muscle"), (2, 3, 6))

# also run with NUMBA_DISABLE_JIT=1 (scripts/test.sh): the kernels' bodies as plain Python
pytestmark = pytest.mark.nojit


def brute_force_column(col_scores, profile, mn=None, mx=None, absent=None):
    """Best total over every ordered labelling of one column (all ordered integer surfaces)."""
    n = col_scores.shape[1]
    K = profile.n_layers
    mn = [0] * K if mn is None else mn
    mx = [n] * K if mx is None else mx
    absent = [True] * K if absent is None else absent
    labs = (0,) + profile.labels
    best = -np.inf
    for s in itertools.combinations_with_replacement(range(n + 1), K + 1):
        t = np.diff(s)
        if any(not ((t[k] == 0 and (absent[k] or mn[k] == 0)) or mn[k] <= t[k] <= mx[k])
               for k in range(K)):
            continue
        lab = np.zeros(n, int)
        for k in range(K):
            lab[s[k]:s[k + 1]] = labs[k + 1]
        best = max(best, col_scores[lab, np.arange(n)].sum())
    return best


def test_per_column_matches_brute_force_default_profile(rng):
    p = get_profile()
    sc = rng.normal(size=(8, 5, 12))
    r = ordered_search(sc, p)
    assert r.labels.dtype == np.uint8 and r.labels.shape == (5, 12)
    assert r.surfaces.shape == (8, 12)
    assert order_violations(r.labels, p) == 0
    for c in range(12):
        got = labelling_score(sc[:, :, c:c + 1], r.surfaces[:, c:c + 1], p)
        assert got == pytest.approx(brute_force_column(sc[:, :, c], p), abs=1e-9)
    assert r.score == pytest.approx(labelling_score(sc, r.surfaces, p))
    np.testing.assert_array_equal(labels_to_surfaces(r.labels, p), r.surfaces)


def test_per_column_with_thickness_limits_matches_brute_force(rng):
    # spacing 0.5 mm axial: limits in mm are half the rows
    mn, mx, absent = [2, 1, 3], [4, 9, 5], [False, True, True]
    for trial in range(15):
        sc = rng.normal(size=(8, 9, 3)) + rng.normal(size=(8, 1, 1))
        r = ordered_search(sc, SMALL, spacing_mm=(0.5, 0.1),
                           min_thickness_mm=[1.0, 0.5, 1.5], max_thickness_mm=[2.0, 4.5, 2.5],
                           absent_ok=["fat", "muscle"])
        assert r.flags == []
        t = np.diff(r.surfaces, axis=0)
        for k in range(3):
            assert (((t[k] == 0) & absent[k]) | ((t[k] >= mn[k]) & (t[k] <= mx[k]))).all()
        for c in range(3):
            want = brute_force_column(sc[:, :, c], SMALL, mn, mx, absent)
            got = labelling_score(sc[:, :, c:c + 1], r.surfaces[:, c:c + 1], SMALL)
            assert got == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("region", ["default", "forehead"])
def test_kernel_matches_plain_implementation(rng, region):
    sc = rng.normal(size=(8, 60, 25)).astype(np.float32)
    kw = dict(spacing_mm=(0.05, 0.1), min_thickness_mm={"dermis": 0.5, "smas": 0.2},
              max_thickness_mm={"epidermis": 0.3, "dermis": 1.5, "fat": 1.0},
              absent_ok=["smas"])
    r = ordered_search(sc, region, **kw)
    np.testing.assert_array_equal(r.surfaces, ordered_search_plain(sc, region, **kw))
    # float32 and float64 give the same answer
    r64 = ordered_search(sc.astype(np.float64), region, **kw)
    np.testing.assert_array_equal(r.surfaces, r64.surfaces)


@pytest.mark.parametrize("n_cols", [1, 7, 75, 200])
def test_per_column_tiles_give_the_plain_answer_at_every_width(rng, n_cols):
    # the per-column solve runs in tiles of 8-64 columns (32 of float64 scores, 64 of float32;
    # fewer when there are few columns); every width, a last tile cut short included, gives
    # the plain implementation's answer, for float64 and float32 scores
    from layerseg.layers import search
    from layerseg.layers.search import search_limits_rows
    p = get_profile("forehead")
    sc = rng.normal(size=(8, 40, n_cols))
    kw = dict(spacing_mm=(0.05, 0.1), min_thickness_mm={"dermis": 0.5},
              max_thickness_mm={"epidermis": 0.3, "dermis": 1.0}, absent_ok=None)
    want = ordered_search_plain(sc, p, **kw)
    mn, mx, absent, _ = search_limits_rows(p, 40, **kw)
    labs = np.array((0,) + p.labels + (0,), dtype=np.int64)
    for tile, dtype in [(8, np.float64), (16, np.float64), (32, np.float64), (64, np.float64),
                        (64, np.float32)]:
        if dtype == np.float32:
            sc = sc.astype(np.float32)
            want = ordered_search_plain(sc.astype(np.float64), p, **kw)
        s = np.empty((p.n_layers + 1, n_cols))
        tot = np.empty(n_cols)
        bad = np.ones(n_cols, dtype=np.bool_)
        search._per_column_tiles(sc, labs, mn, mx, absent, s, tot, bad, tile, 0, -1,
                                 np.empty((0, 0)), np.empty((0, 0, 0), np.int32))
        np.testing.assert_array_equal(s, want)
        assert not bad.any()
        sc64 = sc.astype(np.float64)           # float32 scores are summed in float64
        np.testing.assert_allclose(tot, [labelling_score(sc64[:, :, c:c + 1], s[:, c:c + 1], p)
                                         for c in range(n_cols)], rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(ordered_search(sc, p, **kw).surfaces, want)
    np.testing.assert_array_equal(ordered_search(sc.astype(np.float64), p, **kw).surfaces, want)


def smooth_truth(rng, n_rows, n_cols, K):
    """Smooth, ordered true surfaces (sines of random phase), layers 6-16 rows thick."""
    x = np.arange(n_cols)
    top = 8 + 4 * np.sin(2 * np.pi * x / n_cols + rng.uniform(0, 6))
    s = [top]
    for k in range(K):
        th = rng.uniform(6, 10) + 3 * np.sin(2 * np.pi * x / (n_cols / 2) + rng.uniform(0, 6))
        s.append(s[-1] + th)
    s = np.round(np.array(s))
    assert s[-1].max() < n_rows
    return s


def noisy_scores(rng, s, profile, n_rows, noise):
    from layerseg.layers import surfaces_to_labels
    lab = surfaces_to_labels(s, profile, n_rows)
    sc = rng.normal(0, noise, size=(8,) + lab.shape)
    sc[lab, np.arange(n_rows)[:, None], np.arange(lab.shape[1])] += 1.0
    return sc


def test_smoothness_lowers_surface_error(rng):
    p = SMALL
    n_rows, n_cols = 60, 120
    errs_col, errs_smooth = [], []
    for _ in range(3):
        truth = smooth_truth(rng, n_rows, n_cols, p.n_layers)
        sc = noisy_scores(rng, truth, p, n_rows, noise=2.0)
        r0 = ordered_search(sc, p)
        r1 = ordered_search(sc, p, max_jump_px=1)
        assert r1.flags == []
        assert np.abs(np.diff(r1.surfaces, axis=1)).max() <= 1
        errs_col.append(np.abs(r0.surfaces - truth).mean())
        errs_smooth.append(np.abs(r1.surfaces - truth).mean())
        # the smooth answer is a feasible labelling, so it cannot beat the unconstrained optimum
        assert r1.score <= r0.score + 1e-9
    assert np.mean(errs_smooth) < 0.5 * np.mean(errs_col)
    assert np.mean(errs_smooth) < 1.5


@pytest.mark.parametrize("jump", [0, 1, 3])
def test_smooth_search_never_breaks_limits(rng, jump):
    p = get_profile("forehead")
    mn = {"epidermis": 0.1, "dermis": 0.3, "smas": 0.1}
    mx = {"epidermis": 0.2, "dermis": 0.8, "fat": 0.6, "muscle": 0.5}
    for _ in range(3):
        sc = rng.normal(size=(8, 50, 40))
        r = ordered_search(sc, p, spacing_mm=(0.05, 0.1), min_thickness_mm=mn,
                           max_thickness_mm=mx, max_jump_px=jump, absent_ok=["smas"])
        s = r.surfaces
        assert np.abs(np.diff(s, axis=1)).max() <= jump
        assert order_violations(r.labels, p) == 0
        t = np.diff(s, axis=0)
        assert (t >= 0).all()
        for name, lo in mn.items():
            tk = t[p.position(name)]
            ok = (tk >= round(lo / 0.05)) | ((tk == 0) & (name == "smas"))
            assert ok.all(), name
        for name, hi in mx.items():
            assert (t[p.position(name)] <= round(hi / 0.05)).all(), name
        assert r.score == pytest.approx(labelling_score(sc, s, p))
        # coordinate ascent starts from the best flat answer and never loses score
        flat = ordered_search(sc.sum(axis=2, keepdims=True), p, spacing_mm=(0.05, 0.1),
                              min_thickness_mm=mn, max_thickness_mm=mx, absent_ok=["smas"])
        assert r.score >= labelling_score(sc, np.repeat(flat.surfaces, 40, axis=1), p) - 1e-9


def test_impossible_limits_drop_deepest_minimum_with_flag(rng):
    sc = rng.normal(size=(8, 20, 6))
    r = ordered_search(sc, SMALL, spacing_mm=(0.1, 0.1),
                       min_thickness_mm={"dermis": 0.8, "fat": 0.8, "muscle": 0.8})
    assert len(r.flags) == 1 and "min_thickness_mm[muscle] dropped" in r.flags[0]
    t = np.diff(r.surfaces, axis=0)
    assert (t[0] >= 8).all() and (t[1] >= 8).all()
    # still the exact optimum under the limits that remain
    for c in range(6):
        want = brute_force_column(sc[:, :, c], SMALL, [8, 8, 0], None, [False, False, True])
        got = labelling_score(sc[:, :, c:c + 1], r.surfaces[:, c:c + 1], SMALL)
        assert got == pytest.approx(want, abs=1e-9)


def test_unroundable_limit_is_flagged(rng):
    r = ordered_search(rng.normal(size=(8, 10, 3)), SMALL, spacing_mm=(0.1, 0.1),
                       min_thickness_mm={"fat": 0.21}, max_thickness_mm={"fat": 0.29})
    assert any("max_thickness_mm[fat] dropped" in f for f in r.flags)
    assert (np.diff(r.surfaces, axis=0)[1] >= 3).all()


def test_bad_input(rng):
    good = rng.normal(size=(8, 10, 4))
    with pytest.raises(ScoreMapError, match=r"\(8, rows, cols\)"):
        ordered_search(good[:7])
    with pytest.raises(ScoreMapError, match=r"\(8, rows, cols\)"):
        ordered_search(good[:, :, 0])
    bad = good.copy()
    bad[3, 5, 2] = np.nan
    with pytest.raises(ScoreMapError, match="NaN or infinite values in 1 column"):
        ordered_search(bad)
    bad[3, 5, 2] = -np.inf
    with pytest.raises(ScoreMapError, match="first column 2"):
        ordered_search(bad)
    with pytest.raises(ProfileError, match="unknown facial region"):
        ordered_search(good, "elbow")
    with pytest.raises(SpacingRequiredError):
        ordered_search(good, min_thickness_mm={"dermis": 0.1})
    with pytest.raises(ConfigError, match="exceeds"):
        ordered_search(good, spacing_mm=(0.1, 0.1), min_thickness_mm={"dermis": 0.5},
                       max_thickness_mm={"dermis": 0.2})
    with pytest.raises(ConfigError, match="unknown layer"):
        ordered_search(good, spacing_mm=(0.1, 0.1), min_thickness_mm={"skin": 0.5})
    with pytest.raises(ConfigError, match="one value per layer"):
        ordered_search(good, spacing_mm=(0.1, 0.1), min_thickness_mm=[0.1, 0.2])
    with pytest.raises(ConfigError, match="max_jump_px"):
        ordered_search(good, max_jump_px=-1)
    with pytest.raises(ConfigError, match="absent_ok"):
        ordered_search(good, absent_ok=["cartilage"])


def test_smoothness_on_tilted_frame_with_limits(rng):
    # seven tilted layers (one absent) moving 60 rows across the frame; the smooth answer must
    # follow them despite heavy noise, and stay within the limits
    p = get_profile()
    n_rows, n_cols = 160, 200
    top = 10 + 0.3 * np.arange(n_cols)
    depth = np.concatenate([[0], np.cumsum([3, 15, 12, 4, 0, 10, 5])])
    truth = np.round(top[None, :] + depth[:, None])
    sc = noisy_scores(rng, truth, p, n_rows, noise=2.0)
    r0 = ordered_search(sc, p)
    r1 = ordered_search(sc, p, spacing_mm=(0.05, 0.1), max_jump_px=1,
                        min_thickness_mm={"epidermis": 0.1, "dermis": 0.3},
                        max_thickness_mm={"epidermis": 0.25})
    err0 = np.abs(r0.surfaces - truth).mean()
    err1 = np.abs(r1.surfaces - truth).mean()
    assert err1 < 0.3 * err0 and err1 < 1.5
    assert np.abs(np.diff(r1.surfaces, axis=1)).max() <= 1
    t = np.diff(r1.surfaces, axis=0)
    assert (t[0] >= 2).all() and (t[0] <= 5).all() and (t[1] >= 6).all()


def test_per_surface_jump_limits(rng):
    sc = rng.normal(size=(8, 40, 50))
    jumps = [0, 3, 1, 2]
    r = ordered_search(sc, SMALL, max_jump_px=jumps)
    d = np.abs(np.diff(r.surfaces, axis=1)).max(axis=1)
    assert (d <= jumps).all()
    assert order_violations(r.labels, SMALL) == 0
    for bad in ([1, 2], 1.5, "x", [1, -1, 1, 1], np.nan):
        with pytest.raises(ConfigError, match="max_jump_px"):
            ordered_search(sc, SMALL, max_jump_px=bad)


@pytest.mark.parametrize("profile", [SMALL, get_profile("forehead")])
def test_mincut_without_binding_jumps_is_the_per_column_optimum(rng, profile):
    pytest.importorskip("maxflow")          # PyMaxflow, the optional 'mincut' extra
    kw = dict(spacing_mm=(0.1, 0.1), min_thickness_mm={"dermis": 0.2},
              max_thickness_mm={"fat": 0.4})
    for _ in range(3):
        sc = rng.normal(size=(8, 12, 9))
        r0 = ordered_search(sc, profile, **kw)
        r1 = ordered_search(sc, profile, max_jump_px=12, smooth_method="mincut", **kw)
        assert r1.method == "smooth exact min-cut"
        assert r1.score == pytest.approx(r0.score, abs=1e-9)


def test_ascent_close_to_exact_mincut(rng):
    pytest.importorskip("maxflow")          # PyMaxflow, the optional 'mincut' extra
    kw = dict(spacing_mm=(0.1, 0.1), min_thickness_mm={"dermis": 0.3},
              max_thickness_mm={"fat": 1.5})
    gaps = []
    for _ in range(4):
        truth = smooth_truth(rng, 60, 60, SMALL.n_layers)
        sc = noisy_scores(rng, truth, SMALL, 60, noise=2.0)
        ra = ordered_search(sc, SMALL, max_jump_px=1, **kw)
        rm = ordered_search(sc, SMALL, max_jump_px=1, smooth_method="mincut", **kw)
        flat = ordered_search(sc.sum(axis=2, keepdims=True), SMALL, **kw)
        flat_score = labelling_score(sc, np.repeat(flat.surfaces, 60, axis=1), SMALL)
        s = rm.surfaces
        assert np.abs(np.diff(s, axis=1)).max() <= 1
        t = np.diff(s, axis=0)
        assert (t >= 0).all() and (t[0] >= 3).all() and (t[1] <= 15).all()
        assert rm.score >= ra.score - 1e-9          # the min-cut is the exact optimum
        gaps.append((rm.score - ra.score) / (rm.score - flat_score))
    # the coordinate ascent recovers nearly all of the exact optimum's gain over the flat answer
    assert max(gaps) < 0.02


def test_mincut_rejects_what_it_cannot_express(rng):
    sc = rng.normal(size=(8, 10, 4))
    with pytest.raises(ConfigError, match="absent_ok"):
        ordered_search(sc, SMALL, spacing_mm=(0.1, 0.1), min_thickness_mm={"fat": 0.2},
                       absent_ok=["fat"], max_jump_px=1, smooth_method="mincut")
    with pytest.raises(ConfigError, match="smooth_method"):
        ordered_search(sc, SMALL, max_jump_px=1, smooth_method="graphcut")


def test_mincut_without_pymaxflow_names_the_extra(rng, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "maxflow", None)      # 'import maxflow' now fails
    with pytest.raises(MissingDependencyError, match=r"PyMaxflow.*layerseg\[mincut\]") as e:
        ordered_search(rng.normal(size=(8, 10, 4)), SMALL, max_jump_px=1, smooth_method="mincut")
    assert e.value.extra == "mincut"
    # the default smooth method needs no optional package
    assert ordered_search(rng.normal(size=(8, 10, 4)), SMALL, max_jump_px=1).flags == []


def _sweeps(S, K, solve, most=50):
    """The coordinate ascent as plain sweeps: every surface re-solved every pass (`solve(S, j)`
    returns the gain), top-down then bottom-up, until a pass gains nothing or `most` passes;
    ``(S, passes, converged)`` as `search._ascend`."""
    passes = 0
    while passes < most:
        gain = 0.0
        for j in (range(K + 1) if passes % 2 == 0 else range(K, -1, -1)):
            gain += solve(S, j)
        passes += 1
        if gain == 0.0:
            return S, passes, True
    return S, passes, False


def test_shared_gain_tables_equal_recomputed_ones(rng):
    """The ascent computes each surface's gain table once for both starts and every pass
    (`_gain_tables`); they equal the table `_gain_table` computes afresh, and the search answer
    is the one recomputing them every pass gave."""
    from layerseg.layers import search

    p = get_profile("forehead")
    sc = np.log(rng.dirichlet(np.ones(8), size=(40, 30)).transpose(2, 0, 1))
    labs = np.array((0,) + p.labels + (0,), dtype=np.int64)
    K = p.n_layers
    U = search._gain_tables(sc, labs, K)
    one = np.empty((30, 41))
    for j in range(K + 1):
        search._gain_table(sc, labs[j], labs[j + 1], one)
        np.testing.assert_array_equal(U[j], one)
        # U[c, d]: the sum down column c of (above - below) over the rows above d
        above, below = sc[labs[j]], sc[labs[j + 1]]
        np.testing.assert_allclose(U[j][:, 1:], np.cumsum(above - below, axis=0).T)

    kw = dict(spacing_mm=(0.05, 0.05), min_thickness_mm=0.1, max_thickness_mm=1.0,
              max_jump_px=2)
    res = ordered_search(sc, p, **kw)
    mn, mx, absent, _ = search.search_limits_rows(p, 40, (0.05, 0.05), 0.1, 1.0, None)
    jump = search._check_jump(2, K)

    def solve_recomputing(S, j):   # each table recomputed every pass
        search._gain_table(sc, labs[j], labs[j + 1], one)
        return search._surface_pass(one, mn, mx, absent, S, j, int(jump[j]),
                                    np.empty((30, 41)), np.empty((30, 41), np.int64),
                                    np.empty(41, np.bool_), np.empty(41, np.int64))

    def ascend_recomputing(S, most=50):
        return _sweeps(S, K, solve_recomputing, most)

    guide = ordered_search(sc, p, spacing_mm=(0.05, 0.05), min_thickness_mm=0.1,
                           max_thickness_mm=1.0).surfaces
    # the two starts as `_smooth_search` runs them: the guided one to convergence, the flat one
    # (ascended on column blocks) for a budget of passes, on to convergence only when ahead
    guided, _, _ = ascend_recomputing(np.ascontiguousarray(
        search._guided_start(guide, 40, mn, mx, absent, jump)))
    second, passes, done = ascend_recomputing(np.ascontiguousarray(
        search._coarse_flat_start(sc, labs, mn, mx, absent, jump, 50)),
        search._SECOND_START_PASSES)
    ahead = search._total_score(sc, labs, second) > search._total_score(sc, labs, guided)
    if ahead and not done:
        second, _, _ = ascend_recomputing(second, 50 - passes)
    totals = [search._total_score(sc, labs, S) for S in (guided, second)]
    np.testing.assert_array_equal(res.surfaces, (guided, second)[int(np.argmax(totals))])


def _fit_surface_plain(f, lo, hi, alt, jump, trunc):
    """`search._fit_surface` as plain loops: every predecessor of the window scanned, the
    shallowest kept among equals."""
    n_cols, n1 = f.shape[0], int(max(hi.max(), alt.max())) + 1
    V = np.full((n_cols, n1), -np.inf)
    arg = np.full((n_cols, n1), -1)
    for c in range(n_cols):
        for d in range(n1):
            if not (lo[c] <= d <= hi[c] or d == alt[c]):
                continue
            u = -min(abs(d - f[c]), trunc)
            if c == 0:
                V[c, d] = u
                continue
            best, ba = -np.inf, -1
            for a in range(max(0, d - jump), min(n1 - 1, d + jump) + 1):
                if V[c - 1, a] > best:
                    best, ba = V[c - 1, a], a
            if ba >= 0:
                V[c, d], arg[c, d] = u + best, ba
    d = int(np.argmax(V[-1]))
    out = np.empty(n_cols, dtype=np.int64)
    for c in range(n_cols - 1, -1, -1):
        out[c] = d
        d = arg[c, d]
    return out, V



@pytest.mark.parametrize("seed", range(12))
def test_fit_surface_equals_plain_viterbi(seed):
    """The monotone-queue Viterbi of the guided start gives the plain scan's path and table
    (over each column's span of allowed depths, the only depths it visits), for small and free
    (jump >= rows) jumps, integer targets (ties), forced alternatives and empty ranges."""
    from layerseg.layers import search
    rng = np.random.default_rng(seed)
    n_cols, n = int(rng.integers(1, 30)), int(rng.integers(2, 40))
    jump = int(rng.choice([0, 1, 2, 5, n, 3 * n]))
    f = rng.integers(0, n, n_cols).astype(np.float64)
    if seed % 2:
        f += rng.random(n_cols)
    lo = rng.integers(0, n // 2 + 1, n_cols)
    hi = np.minimum(lo + rng.integers(0, n, n_cols), n - 1)
    alt = np.where(rng.random(n_cols) < 0.3, rng.integers(0, n, n_cols), -1)
    hi[0] = max(hi[0], 0)
    if seed >= 8:  # free surface, some columns allowing their alternative only (lo > hi)
        jump = max(jump, n)
        only_alt = alt >= 0
        hi[only_alt] = lo[only_alt] - 1
    if jump < n:   # keep a feasible path: every column allows the depth the first allows
        lo[:] = np.minimum(lo, lo[0])
        hi[:] = np.maximum(hi, lo[0])
    trunc = float(rng.choice([2.0, 5.0, 1e9]))
    want, Vp = _fit_surface_plain(f, lo, hi, alt, jump, trunc)
    n1 = Vp.shape[1]
    for arg_type in (np.int32, np.int64):
        V = np.empty((2, n1))          # the previous and the current column's rows in turn
        arg = np.empty((n_cols, n1), dtype=arg_type)
        out = np.empty(n_cols, dtype=np.int64)
        # written and read only in each column's span of allowed depths: a huge value outside
        # it would win any comparison that read it
        V[:] = 1e300
        arg[:] = 12345
        search._fit_surface(f, lo.astype(np.int64), hi.astype(np.int64), alt.astype(np.int64),
                            jump, trunc, V, arg, out)
        d = np.arange(n1)
        for c in range(n_cols):
            allowed = ((d >= lo[c]) & (d <= hi[c])) | (d == alt[c])
            span = (d >= d[allowed].min()) & (d <= d[allowed].max())
            assert (arg[c, ~span] == 12345).all()
            if c >= n_cols - 2:        # the rows left in V: the last two columns'
                np.testing.assert_array_equal(V[c & 1, span], Vp[c, span])
        np.testing.assert_array_equal(out, want)


def test_fit_surface_without_a_path_gives_minus_one():
    """No path under the jump limit (the last column's only depth out of reach): -1 in every
    column, nothing read outside the spans (whatever the buffers held)."""
    from layerseg.layers import search
    lo = np.array([2, 2, 1])
    V = np.full((2, 3), 1e300)
    arg = np.full((3, 3), 7, dtype=np.int32)
    out = np.empty(3, dtype=np.int64)
    search._fit_surface(np.zeros(3), lo, lo.copy(), np.full(3, -1), 0, 5.0, V, arg, out)
    np.testing.assert_array_equal(out, [-1, -1, -1])


def test_smooth_search_when_the_guided_start_has_no_path():
    """A free top surface over surfaces of fixed thickness and jump 0: the guided start, placing
    the top surface alone first, leaves the next one no path; the flat start takes its place and
    the answer keeps every limit."""
    rng = np.random.default_rng(0)
    rows, cols = 60, 40
    sc = rng.standard_normal((8, rows, cols)) * 3
    from layerseg.layers import search
    res = search.ordered_search(sc, None, spacing_mm=(1.0, 1.0), min_thickness_mm=2.0,
                                max_thickness_mm=2.0, max_jump_px=[rows] + [0] * 7)
    S = res.surfaces
    assert (S >= 0).all() and (S <= rows).all()
    np.testing.assert_array_equal(np.diff(S, axis=0), 2.0)     # every layer 2 rows thick
    assert (np.abs(np.diff(S[1:], axis=1)) == 0).all()         # jump 0 below the top
    flat = search.ordered_search(sc.sum(axis=2, keepdims=True), None, spacing_mm=(1.0, 1.0),
                                 min_thickness_mm=2.0, max_thickness_mm=2.0)
    assert res.score >= flat.score - 1e-9   # at least the best flat answer


def _surface_pass_whole_column(U, mn, mx, absent, S, j, jump):
    """`search._surface_pass` as it was before its boxes: every column's Viterbi over all n + 1
    depths, each predecessor window scanned in full (plain loops)."""
    from layerseg.layers.search import _GAIN_RTOL, _NEG, _thick_ok
    n_cols, n1 = U.shape
    n = n1 - 1
    K = mn.shape[0]
    cur = sum(U[c, int(S[j, c])] for c in range(n_cols))
    V = np.full((n_cols, n1), _NEG)
    arg = np.full((n_cols, n1), -1)
    for c in range(n_cols):
        for d in range(n1):
            ok = True
            if j > 0:
                ok = _thick_ok(d - int(S[j - 1, c]), mn[j - 1], mx[j - 1], absent[j - 1])
            if ok and j < K:
                ok = _thick_ok(int(S[j + 1, c]) - d, mn[j], mx[j], absent[j])
            if not ok:
                continue
            if c == 0:
                V[0, d] = U[0, d]
                continue
            best, bi = _NEG, -1
            for e in range(max(0, d - jump), min(n, d + jump) + 1):
                if V[c - 1, e] > _NEG and V[c - 1, e] >= best:   # ties: the deepest
                    best, bi = V[c - 1, e], e
            if bi >= 0:
                V[c, d] = U[c, d] + best
                arg[c, d] = bi
    bd = int(np.argmax(V[-1])) if V[-1].max() > _NEG else -1      # ties: the shallowest
    gain = V[-1, bd] - cur if bd >= 0 else 0.0
    if bd < 0 or not gain > _GAIN_RTOL * (1.0 + abs(cur)):
        return 0.0, S
    S = S.copy()
    d = bd
    for c in range(n_cols - 1, -1, -1):
        S[j, c] = d
        d = arg[c, d]
    return gain, S


def _random_pass_limits(rng, max_rows, max_cols, max_extra):
    """A random surface-pass problem's size and limits: K layers (1-5), n rows, n_cols columns,
    minima 0-3 rows, maxima the minimum plus up to `max_extra` rows (or free, 30 %), absent
    layers (40 %)."""
    K = int(rng.integers(1, 6))
    n, n_cols = int(rng.integers(4, max_rows)), int(rng.integers(1, max_cols))
    mn = rng.integers(0, 4, K).astype(np.int64)
    mx = np.where(rng.random(K) < 0.3, n, mn + rng.integers(0, max_extra, K)).astype(np.int64)
    absent = rng.random(K) < 0.4
    return K, n, n_cols, mn, mx, absent


@pytest.mark.parametrize("seed", range(12))
def test_surface_pass_boxes_match_the_whole_column_pass(seed):
    """The pass solves each column over the depths its neighbours leave open only; on random
    gain tables, limits (absent layers, zero minima, tight and free maxima), jumps, ties and
    infeasible columns, it gives the whole-column pass's surface and gain."""
    from layerseg.layers import search
    rng = np.random.default_rng(seed)
    K, n, n_cols, mn, mx, absent = _random_pass_limits(rng, 30, 25, 8)
    for _ in range(6):
        # neighbours: any non-decreasing surfaces (some columns infeasible for surface j)
        S = np.sort(rng.integers(0, n + 1, (K + 1, n_cols)), axis=0).astype(np.float64)
        j = int(rng.integers(0, K + 1))
        U = rng.integers(-3, 4, (n_cols, n + 1)).astype(np.float64)   # integer: many ties
        if seed % 3 == 0:
            U = rng.standard_normal((n_cols, n + 1))
        jump = int(rng.integers(0, n + 1))
        want_gain, want = _surface_pass_whole_column(U, mn, mx, absent, S, j, jump)
        got = S.copy()
        gain = search._surface_pass(U, mn, mx, absent, got, j, jump,
                                    np.empty((n_cols, n + 1)),
                                    np.empty((n_cols, n + 1), np.int64),
                                    np.empty(n + 1, np.bool_), np.empty(n + 1, np.int64))
        assert gain == pytest.approx(want_gain, abs=1e-9)
        np.testing.assert_array_equal(got, want)
        # 16-bit back-pointers (what `_ascend` gives it below 32,767 rows): the same
        got16 = S.copy()
        gain16 = search._surface_pass(U, mn, mx, absent, got16, j, jump,
                                      np.empty((2, n + 1)), np.empty((n_cols, n + 1), np.int16),
                                      np.empty(n + 1, np.bool_), np.empty(n + 1, np.int32))
        assert gain16 == gain
        np.testing.assert_array_equal(got16, got)


@pytest.mark.parametrize("seed", range(16))
def test_free_surface_pass_is_the_viterbi_pass(seed):
    """A surface free of the jump limit (the decode's bottom surface) is solved column by
    column (`_free_surface_pass`): on random gain tables with ties (integer tables, and large
    values whose float sums round alike), limits, absent layers and infeasible columns, the
    same surface and the same gain, bit for bit, as the Viterbi pass."""
    from layerseg.layers import search
    rng = np.random.default_rng(100 + seed)
    K, n, n_cols, mn, mx, absent = _random_pass_limits(rng, 40, 30, 10)
    for _ in range(8):
        S = np.sort(rng.integers(0, n + 1, (K + 1, n_cols)), axis=0).astype(np.float64)
        j = int(rng.integers(0, K + 1))
        if seed % 3 == 0:
            U = rng.standard_normal((n_cols, n + 1))
        elif seed % 3 == 1:
            U = rng.integers(-3, 4, (n_cols, n + 1)).astype(np.float64)
        else:                       # big values: U + M rounds distinct U's onto one float
            U = 1e17 + rng.integers(-3, 4, (n_cols, n + 1)).astype(np.float64) * 8.0
        for jump in (n, n + 5):
            want, got = S.copy(), S.copy()
            g_want = search._surface_pass(U, mn, mx, absent, want, j, jump,
                                          np.empty((2, n + 1)),
                                          np.empty((n_cols, n + 1), np.int32),
                                          np.empty(n + 1, np.bool_), np.empty(n + 1, np.int32))
            g_got = search._free_surface_pass(U, mn, mx, absent, got, j)
            assert g_got == g_want
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(6))
def test_ascent_skipping_settled_surfaces_matches_full_sweeps(seed):
    """`_ascend` skips a surface whose neighbours have not moved since it was last solved; from
    both starts, on random scores and limits, it ends where sweeping every surface every pass
    ends, after as many passes."""
    from layerseg.layers import search
    rng = np.random.default_rng(seed)
    p = get_profile(["cheek", "forehead", "jaw"][seed % 3])
    rows, cols = int(rng.integers(20, 60)), int(rng.integers(5, 40))
    sc = np.log(rng.dirichlet(np.full(8, 0.3), size=(rows, cols)).transpose(2, 0, 1))
    labs = np.array((0,) + p.labels + (0,), dtype=np.int64)
    K = p.n_layers
    mn, mx, absent, _ = search.search_limits_rows(p, rows, (0.05, 0.05), 0.1, 1.0, None)
    jump = search._check_jump(int(rng.integers(1, 4)), K)
    U = search._gain_tables(sc, labs, K)

    V, arg = np.empty((cols, rows + 1)), np.empty((cols, rows + 1), np.int64)
    allowed, dq = np.empty(rows + 1, np.bool_), np.empty(rows + 1, np.int64)

    def full_sweeps(S, max_passes=50):
        return _sweeps(S, K, lambda S, j: search._surface_pass(
            U[j], mn, mx, absent, S, j, int(jump[j]), V, arg, allowed, dq), max_passes)

    guide = ordered_search(sc, p, spacing_mm=(0.05, 0.05), min_thickness_mm=0.1,
                           max_thickness_mm=1.0).surfaces
    flat = np.ascontiguousarray(sc.sum(axis=2)[:, :, None])
    s0 = np.empty((K + 1, 1))
    search._per_column(flat, labs, mn, mx, absent, s0, np.empty(1), np.zeros(1, np.bool_))
    for start in (search._guided_start(guide, rows, mn, mx, absent, jump),
                  np.repeat(s0, cols, axis=1)):
        want = full_sweeps(np.ascontiguousarray(start.copy()))
        got = search._ascend(U, mn, mx, absent, np.ascontiguousarray(start.copy()), jump, 50)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1:] == want[1:]


def _feasible(S, mn, mx, absent, jump):
    """Every limit of the search on surfaces S (K+1, cols): order, thickness, jump."""
    t = np.diff(S, axis=0)
    for k in range(t.shape[0]):
        ok = ((t[k] == 0) & (absent[k] | (mn[k] == 0))) | ((t[k] >= mn[k]) & (t[k] <= mx[k]))
        if not ok.all():
            return False
    return bool((np.abs(np.diff(S, axis=1)) <= np.asarray(jump)[:, None]).all())


def _search_case(seed):
    from layerseg.layers import search
    rng = np.random.default_rng(seed)
    p = get_profile(["cheek", "forehead", "jaw"][seed % 3])
    rows, cols = int(rng.integers(20, 50)), int(rng.integers(9, 45))
    sc = np.log(rng.dirichlet(np.full(8, 0.3), size=(rows, cols)).transpose(2, 0, 1))
    labs = np.array((0,) + p.labels + (0,), dtype=np.int64)
    mn, mx, absent, _ = search.search_limits_rows(p, rows, (0.05, 0.05), 0.1, 1.0,
                                                  list(p.layers[-2:]))
    jump = search._check_jump(int(rng.integers(1, 4)), p.n_layers)
    return rng, p, sc, labs, mn, mx, absent, jump


@pytest.mark.parametrize("seed", range(6))
def test_coarse_flat_start_is_a_feasible_block_answer_above_the_flat_one(seed):
    """The flat start ascended on blocks of columns (`_coarse_flat_start`): constant over each
    block, within every limit, scoring at least the flat answer; its block gains are the sums
    of the columns' (the coarse problem is the full one restricted to block-constant
    surfaces)."""
    from layerseg.layers import search
    _, p, sc, labs, mn, mx, absent, jump = _search_case(seed)
    K, cols = p.n_layers, sc.shape[2]
    b = search._COARSE_BLOCK
    S = search._coarse_flat_start(sc, labs, mn, mx, absent, jump, 50)
    assert S.shape == (K + 1, cols)
    for c0 in range(0, cols, b):
        assert (S[:, c0:c0 + b] == S[:, c0:c0 + 1]).all()
    assert _feasible(S, mn, mx, absent, jump)
    flat = np.empty((K + 1, 1))
    search._per_column(np.ascontiguousarray(sc.sum(axis=2)[:, :, None]), labs, mn, mx, absent,
                       flat, np.empty(1), np.zeros(1, np.bool_))
    assert search._total_score(sc, labs, S) >= \
        search._total_score(sc, labs, np.repeat(flat, cols, axis=1)) - 1e-9
    blocks = np.add.reduceat(sc, np.arange(0, cols, b), axis=2)
    Ub, U = search._gain_tables(blocks, labs, K), search._gain_tables(sc, labs, K)
    np.testing.assert_allclose(Ub, np.add.reduceat(U, np.arange(0, cols, b), axis=1),
                               atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_gain_table_in_some_columns_equals_the_whole_table_there(seed):
    from layerseg.layers import search
    rng, p, sc, labs, *_ = _search_case(seed)
    cols = np.flatnonzero(rng.random(sc.shape[2]) < 0.4)
    U = rng.normal(size=(sc.shape[2], sc.shape[1] + 1))
    before = U.copy()
    search._gain_table_cols(sc, labs[2], labs[3], cols, U)
    whole = np.empty_like(U)
    search._gain_table(sc, labs[2], labs[3], whole)
    np.testing.assert_array_equal(U[cols], whole[cols])
    rest = np.setdiff1d(np.arange(sc.shape[2]), cols)
    np.testing.assert_array_equal(U[rest], before[rest])


@pytest.mark.parametrize("seed", range(8))
def test_warm_second_search_after_lowering_a_layer(seed):
    """The decode's second search (`_Warm`): a layer's scores lowered in some columns, the
    search reuses the first one's gain tables (updated where they changed: equal to fresh ones)
    and per-column answer (the changed columns solved again: equal to solving all of them),
    keeps every limit, and ends on the better of the ascents from the guided start and from
    the first answer, so never below either and never below the first answer's score."""
    from layerseg.layers import search
    rng, p, sc, labs, mn, mx, absent, jump = _search_case(seed)
    kw = dict(spacing_mm=(0.05, 0.05), min_thickness_mm=0.1, max_thickness_mm=1.0,
              absent_ok=list(p.layers[-2:]))
    first, pc = search._search(sc, p, max_jump_px=jump, **kw)
    layer = p.layers[-2]
    # seeds 6 and 7: every column changed (the tables are then made whole, by column tiles)
    changed = rng.random(sc.shape[2]) < (0.5 if seed < 6 else 2.0)
    sc2 = sc.copy()
    sc2[p.labels[-2]][:, changed] = sc.min() - 1e4
    warm = search._Warm(first.surfaces, pc.surfaces, pc.totals, pc.gains, changed, (layer,))
    second, pc2 = search._search(sc2, p, max_jump_px=jump, warm=warm, **kw)
    fresh = search._gain_tables(sc2, labs, p.n_layers)
    np.testing.assert_array_equal(pc2.gains, fresh)
    exact = ordered_search(sc2, p, **kw)
    np.testing.assert_array_equal(pc2.surfaces, exact.surfaces)
    assert pc2.score == pytest.approx(exact.score)
    assert _feasible(second.surfaces, mn, mx, absent, jump)
    assert order_violations(second.labels, p) == 0
    assert second.score == pytest.approx(labelling_score(sc2, second.surfaces, p))
    ends = [search._ascend(fresh, mn, mx, absent, np.ascontiguousarray(start), jump,
                           search.MAX_PASSES)[0]
            for start in (search._guided_start(exact.surfaces, sc.shape[1], mn, mx, absent,
                                               jump), first.surfaces.copy())]
    scores = [labelling_score(sc2, S, p) for S in ends]
    np.testing.assert_array_equal(second.surfaces, ends[int(np.argmax(scores))])
    assert second.score >= max(scores) - 1e-9
    assert second.score >= labelling_score(sc2, first.surfaces, p) - 1e-9



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_cols", [1, 7, 8, 9, 61, 64])
@pytest.mark.parametrize("block", [1, 3, 8])
def test_block_sums_are_numpy_reduceat_bit_for_bit(rng, dtype, n_cols, block):
    """`_block_sums` (the coarse start's column blocks) gives np.add.reduceat's float64 sums
    bit for bit, the last block cut short included, on values of many magnitudes."""
    from layerseg.layers import search
    sc = (rng.normal(size=(8, 13, n_cols)) *
          10.0 ** rng.uniform(-4, 4, size=(8, 13, n_cols))).astype(dtype)
    want = np.add.reduceat(sc, np.arange(0, n_cols, block), axis=2, dtype=np.float64)
    got = search._block_sums(sc, block)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(6))
def test_per_column_resumed_at_a_kept_surface_gives_the_whole_solve(seed):
    """A per-column solve keeps each column's DP row of surface k and its back-pointers above
    (`_Kept`); after the scores of layer k and deeper change, a solve resumed there (every
    column, or some columns in another order) gives the whole solve's surfaces and totals bit
    for bit."""
    from layerseg.layers import search
    rng, p, sc, labs, mn, mx, absent, jump = _search_case(seed)
    K, rows, cols = p.n_layers, sc.shape[1], sc.shape[2]
    k = int(rng.integers(1, K))
    s1, t1, b1 = np.empty((K + 1, cols)), np.empty(cols), np.zeros(cols, np.bool_)
    kept = search._per_column(sc, labs, mn, mx, absent, s1, t1, b1, keep_from=k)
    assert kept.k == k and kept.g.shape == (cols, rows + 1)
    assert kept.arg.shape == (cols, k, rows + 1)
    plain = search._per_column(sc, labs, mn, mx, absent, s2 := np.empty((K + 1, cols)),
                               t2 := np.empty(cols), np.zeros(cols, np.bool_))
    assert plain is None
    np.testing.assert_array_equal(s1, s2)          # keeping changes nothing
    np.testing.assert_array_equal(t1, t2)
    sc2 = sc.copy()
    deep = labs[k + 1:-1]                            # layers k.. (labels) and not background
    sc2[deep] += rng.normal(0.0, 3.0, size=sc2[deep].shape)
    want_s, want_t = np.empty((K + 1, cols)), np.empty(cols)
    search._per_column(sc2, labs, mn, mx, absent, want_s, want_t, np.zeros(cols, np.bool_))
    got_s, got_t = np.empty((K + 1, cols)), np.empty(cols)
    search._per_column(sc2, labs, mn, mx, absent, got_s, got_t, np.zeros(cols, np.bool_),
                       resume=kept)
    np.testing.assert_array_equal(got_s, want_s)
    np.testing.assert_array_equal(got_t, want_t)
    sub = rng.permutation(cols)[:max(1, cols // 3)]
    ss, ts = np.empty((K + 1, sub.size)), np.empty(sub.size)
    search._per_column(np.ascontiguousarray(sc2[:, :, sub]), labs, mn, mx, absent, ss, ts,
                       np.zeros(sub.size, np.bool_),
                       resume=search._Kept(k, kept.g[sub], kept.arg[sub]))
    np.testing.assert_array_equal(ss, want_s[:, sub])
    np.testing.assert_array_equal(ts, want_t[sub])
    with pytest.raises(ValueError, match="do not match"):
        search._per_column(sc2, labs, mn, mx, absent, got_s, got_t, np.zeros(cols, np.bool_),
                           resume=search._Kept(k, kept.g[:-1], kept.arg[:-1]))


@pytest.mark.parametrize("seed", range(6))
def test_guided_start_reuses_the_surfaces_above_the_first_changed_guide(seed):
    """`_guided_start` with an earlier call's (start, guide): the surfaces above the first one
    whose guide changed are taken over, the rest fitted; the answer is the fresh one's."""
    from layerseg.layers import search
    rng, p, sc, labs, mn, mx, absent, jump = _search_case(seed)
    K, rows, cols = p.n_layers, sc.shape[1], sc.shape[2]
    guide = search.ordered_search(sc, p, spacing_mm=(0.05, 0.05), min_thickness_mm=0.1,
                                  max_thickness_mm=1.0,
                                  absent_ok=list(p.layers[-2:])).surfaces
    first = search._guided_start(guide, rows, mn, mx, absent, jump)
    for j in (0, K // 2, K):
        g2 = guide.copy()
        c = rng.integers(0, cols, size=max(1, cols // 4))
        g2[j:, c] = np.clip(g2[j:, c] + rng.integers(-3, 4, size=(K + 1 - j, c.size)), 0, rows)
        g2[j:] = np.maximum.accumulate(g2[j:], axis=0)
        fresh = search._guided_start(g2, rows, mn, mx, absent, jump)
        np.testing.assert_array_equal(
            search._guided_start(g2, rows, mn, mx, absent, jump, earlier=(first, guide)), fresh)
    # the earlier start is only read
    np.testing.assert_array_equal(first, search._guided_start(guide, rows, mn, mx, absent,
                                                              jump))
    np.testing.assert_array_equal(
        search._guided_start(guide, rows, mn, mx, absent, jump, earlier=(first, guide)), first)


@pytest.mark.parametrize("seed", range(6))
def test_warm_second_search_with_kept_rows_and_start_gives_the_same_answer(seed):
    """The decode's second search given the first one's kept DP rows and guided start (what
    `layerseg.layers.decode` passes) ends where the second search without them ends, bit for
    bit; the first search's `start` is its guided start as `_guided_start` makes it (not the
    ascended one); a lowered layer above the kept surface makes the second search solve its
    columns whole (same answer again)."""
    from layerseg.layers import search
    rng, p, sc, labs, mn, mx, absent, jump = _search_case(seed)
    kw = dict(spacing_mm=(0.05, 0.05), min_thickness_mm=0.1, max_thickness_mm=1.0,
              absent_ok=list(p.layers[-2:]))
    k_a = p.n_layers - 2
    first, pc = search._search(sc, p, max_jump_px=jump, keep_from=k_a, **kw)
    plain_first, plain_pc = search._search(sc, p, max_jump_px=jump, **kw)
    np.testing.assert_array_equal(first.surfaces, plain_first.surfaces)
    assert pc.kept is not None and pc.kept.k == k_a and plain_pc.kept is None
    np.testing.assert_array_equal(
        pc.start, search._guided_start(pc.surfaces, sc.shape[1], mn, mx, absent, jump))
    for layer in (p.layers[-1], p.layers[-2], p.layers[1]):
        changed = rng.random(sc.shape[2]) < rng.choice([0.3, 1.0])
        sc2 = sc.copy()
        sc2[p.labels[p.layers.index(layer)]][:, changed] = sc.min() - 1e4
        args = (first.surfaces, pc.surfaces, pc.totals)
        bare = search._Warm(*args, pc.gains.copy(), changed, (layer,))
        full = search._Warm(*args, pc.gains.copy(), changed, (layer,), pc.kept, pc.start)
        a, pa = search._search(sc2, p, max_jump_px=jump, warm=bare, **kw)
        b, pb = search._search(sc2, p, max_jump_px=jump, warm=full, **kw)
        np.testing.assert_array_equal(b.surfaces, a.surfaces)
        np.testing.assert_array_equal(pb.surfaces, pa.surfaces)
        np.testing.assert_array_equal(pb.totals, pa.totals)
        assert b.score == a.score


def _below_reference(sc9, profile, surfaces):
    """Total of a labelling when rows under the deepest layer score the ninth plane: the label
    map's own scores, the background's replaced there (plain NumPy)."""
    rows = sc9.shape[1]
    from layerseg.layers import surfaces_to_labels
    lab = surfaces_to_labels(surfaces, profile, rows).astype(int)
    under = np.arange(rows)[:, None] >= surfaces[-1][None, :]
    lab = np.where(under, 8, lab)
    return float(np.take_along_axis(sc9, lab[None], axis=0).sum())


@pytest.mark.parametrize("seed", range(6))
def test_background_below_plane_scores_only_the_rows_under_the_deepest_layer(seed):
    """A ninth score plane (`_search`): the background below the deepest layer scored apart
    from the one above the skin. Per column the answer is the brute-force optimum of that
    scoring; the smooth answer's score is its total under it; with plane 8 equal to plane 0
    everything is the eight-plane answer bit for bit."""
    from layerseg.layers import search
    rng = np.random.default_rng(seed)
    p = SMALL
    sc = rng.normal(size=(8, 7, 6))
    sc9 = np.concatenate([sc, rng.normal(size=(1, 7, 6)) + 1.0])
    r, _ = search._search(sc9, p)
    for c in range(6):
        col = sc9[:, :, c]
        want = -np.inf
        n = col.shape[1]
        for srf in itertools.combinations_with_replacement(range(n + 1), p.n_layers + 1):
            want = max(want, _below_reference(sc9[:, :, c:c + 1], p,
                                               np.array(srf, float)[:, None]))
        assert _below_reference(sc9[:, :, c:c + 1], p, r.surfaces[:, c:c + 1]) == \
            pytest.approx(want, abs=1e-9)
    assert r.score == pytest.approx(_below_reference(sc9, p, r.surfaces), abs=1e-9)
    kw = dict(spacing_mm=(0.05, 0.05), max_jump_px=1)
    sm, _ = search._search(sc9, p, **kw)
    assert sm.score == pytest.approx(_below_reference(sc9, p, sm.surfaces), abs=1e-9)
    same = np.concatenate([sc, sc[:1]])
    for extra in ({}, kw):
        a, _ = search._search(same, p, **extra)
        b, _ = search._search(sc, p, **extra)
        np.testing.assert_array_equal(a.surfaces, b.surfaces)
        assert a.score == b.score
    with pytest.raises(ScoreMapError):
        ordered_search(sc9, p)                      # the public search takes eight planes


@pytest.mark.parametrize("seed", range(6))
def test_warm_search_with_background_below_changed_resumes_from_the_kept_rows(seed, monkeypatch):
    """The decode's rule for rejected bone: bone floored in some columns and the background
    below the deepest layer given a ninth plane. The warm second search resumes from the first
    one's kept DP rows (the background above is unchanged) and ends where a search of the same
    nine planes from scratch with the same warm start ends, bit for bit; its per-column
    answer is the exact one of the nine planes."""
    from layerseg.layers import search
    rng, p, sc, labs, mn, mx, absent, jump = _search_case(seed)
    kw = dict(spacing_mm=(0.05, 0.05), min_thickness_mm=0.1, max_thickness_mm=1.0,
              absent_ok=list(p.layers[-2:]))
    k_a = p.n_layers - 2
    first, pc = search._search(sc, p, max_jump_px=jump, keep_from=k_a, **kw)
    deepest = p.layers[-1]
    changed = rng.random(sc.shape[2]) < rng.choice([0.4, 1.0])
    sc9 = np.concatenate([sc, sc[:1]])
    kd = p.labels[-1]
    sc9[8][:, changed] = np.logaddexp(sc[0][:, changed], sc[kd][:, changed])
    sc9[kd][:, changed] = sc.min() - 1e4
    labels = (deepest, "background_below")
    args = (first.surfaces, pc.surfaces, pc.totals)
    calls = []
    real = search._per_column

    def spy(*a, **k):
        calls.append(k.get("resume"))
        return real(*a, **k)

    with monkeypatch.context() as m:
        m.setattr(search, "_per_column", spy)
        a, pa = search._search(sc9, p, max_jump_px=jump, warm=search._Warm(
            *args, pc.gains.copy(), changed, labels, pc.kept, pc.start), **kw)
    assert calls and calls[0] is not None and calls[0].k == k_a     # resumed
    b, pb = search._search(sc9, p, max_jump_px=jump, warm=search._Warm(
        *args, pc.gains.copy(), changed, labels), **kw)
    np.testing.assert_array_equal(a.surfaces, b.surfaces)
    np.testing.assert_array_equal(pa.surfaces, pb.surfaces)
    np.testing.assert_array_equal(pa.gains, search._gain_tables(
        sc9, np.array((0,) + p.labels + (8,), dtype=np.int64), p.n_layers))
    exact, _ = search._search(sc9, p, **kw)
    np.testing.assert_array_equal(pa.surfaces, exact.surfaces)
    assert a.score == pytest.approx(_below_reference(sc9, p, a.surfaces))
    # the background above changed too: no resume, same answer as from scratch
    sc9b = sc9.copy()
    sc9b[0][:, changed] += 0.5
    c9, _ = search._search(sc9b, p, max_jump_px=jump, warm=search._Warm(
        *args, pc.gains.copy(), changed, labels + ("background",), pc.kept, pc.start), **kw)
    d9, _ = search._search(sc9b, p, max_jump_px=jump, warm=search._Warm(
        *args, pc.gains.copy(), changed, labels + ("background",)), **kw)
    np.testing.assert_array_equal(c9.surfaces, d9.surfaces)


def test_float32_scores_give_the_float64_tables_and_answers():
    """Float32 scores (a network's log-probabilities) are summed and differenced in float64:
    per-column answers and totals, gain tables (whole and in some columns), block sums and the
    smooth answer equal those of the same values as float64, bit for bit."""
    from layerseg.layers import search
    rng, p, sc, labs, mn, mx, absent, jump = _search_case(3)
    sc32 = (sc * rng.uniform(0.5, 40.0)).astype(np.float32)
    sc64 = sc32.astype(np.float64)
    K = p.n_layers
    np.testing.assert_array_equal(search._gain_tables(sc32, labs, K),
                                  search._gain_tables(sc64, labs, K))
    cols = np.arange(0, sc.shape[2], 3)
    U32, U64 = np.zeros((sc.shape[2], sc.shape[1] + 1)), np.zeros((sc.shape[2], sc.shape[1] + 1))
    search._gain_table_cols(sc32, labs[1], labs[2], cols, U32)
    search._gain_table_cols(sc64, labs[1], labs[2], cols, U64)
    np.testing.assert_array_equal(U32, U64)
    np.testing.assert_array_equal(search._coarse_flat_start(sc32, labs, mn, mx, absent, jump, 50),
                                  search._coarse_flat_start(sc64, labs, mn, mx, absent, jump, 50))
    kw = dict(spacing_mm=(0.05, 0.05), min_thickness_mm=0.1, max_thickness_mm=1.0)
    for extra in ({}, {"max_jump_px": 2}):
        a, b = ordered_search(sc32, p, **kw, **extra), ordered_search(sc64, p, **kw, **extra)
        np.testing.assert_array_equal(a.surfaces, b.surfaces)
        assert a.score == b.score


@pytest.mark.parametrize("seed", range(4))
def test_total_from_gain_tables_equals_the_pixel_sum(seed):
    """`_gain_total` (base + one gain look-up per surface and column) equals the labelling's
    score summed pixel by pixel, for random feasible and infeasible-looking surfaces alike."""
    from layerseg.layers import search
    rng, p, sc, labs, mn, mx, absent, jump = _search_case(seed)
    U = search._gain_tables(sc, labs, p.n_layers)
    base = sc[labs[0]].sum(axis=0)
    for _ in range(5):
        S = np.sort(rng.integers(0, sc.shape[1] + 1, size=(p.n_layers + 1, sc.shape[2])),
                    axis=0).astype(np.float64)
        assert search._gain_total(U, S, base) == pytest.approx(labelling_score(sc, S, p),
                                                               rel=1e-12, abs=1e-9)
