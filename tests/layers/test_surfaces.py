import numpy as np
import pytest

from layerseg.errors import CalibrationError, ProfileError, SpacingRequiredError
from layerseg.layers import (get_profile, labels_to_surfaces, layer_presence, order_violation_mask,
                             order_violations, region_names, smooth_surfaces, surfaces_to_labels)

# also run with NUMBA_DISABLE_JIT=1 (scripts/test.sh): the kernels' bodies as plain Python
pytestmark = pytest.mark.nojit


def random_integer_surfaces(rng, k, n_rows, n_cols, p_absent=0.3, p_empty=0.1):
    """Ordered integer surfaces with absent layers, following the zero-thickness convention."""
    s = np.sort(rng.integers(0, n_rows + 1, size=(k + 1, n_cols)), axis=0).astype(float)
    for c in range(n_cols):
        if rng.random() < p_empty:
            s[:, c] = n_rows
            continue
        for j in range(k):
            if rng.random() < p_absent:  # make layer j absent: its top drops to the next top
                s[j, c] = s[j + 1, c]
        if s[-1, c] == s[0, c]:
            s[:, c] = n_rows
    s = np.minimum.accumulate(s[::-1], axis=0)[::-1]  # re-establish order after the drops
    return s


def naive_labels(s, layer_labels, n_rows):
    out = np.zeros((n_rows, s.shape[1]), np.uint8)
    for c in range(s.shape[1]):
        for r in range(n_rows):
            for k in range(len(layer_labels)):
                if s[k, c] <= r + 0.5 < s[k + 1, c]:
                    out[r, c] = layer_labels[k]
    return out


def naive_violation(col, profile):
    runs = [int(v) for i, v in enumerate(col) if i == 0 or col[i - 1] != v]
    while runs and runs[0] == 0:
        runs.pop(0)
    while runs and runs[-1] == 0:
        runs.pop()
    if 0 in runs:
        return True
    pos = [profile.labels.index(v) for v in runs]
    return any(b <= a for a, b in zip(pos, pos[1:]))


@pytest.mark.parametrize("region", ["default", "forehead"])
def test_roundtrips_on_random_ordered_maps(rng, region):
    p = get_profile(region)
    for trial in range(20):
        n_rows, n_cols = rng.integers(1, 40), rng.integers(1, 30)
        s = random_integer_surfaces(rng, p.n_layers, n_rows, n_cols)
        lab = surfaces_to_labels(s, p, n_rows)
        assert lab.dtype == np.uint8 and lab.shape == (n_rows, n_cols)
        np.testing.assert_array_equal(lab, naive_labels(s, p.labels, n_rows))
        assert order_violations(lab, p) == 0
        back = labels_to_surfaces(lab, p)
        assert back.dtype == np.float64
        np.testing.assert_array_equal(back, s)          # integer surfaces -> map -> surfaces
        np.testing.assert_array_equal(surfaces_to_labels(back, p, n_rows), lab)  # map round trip


def test_subpixel_surfaces_follow_pixel_centres(rng):
    p = get_profile()
    for _ in range(10):
        n_rows, n_cols = 30, 12
        s = np.sort(rng.uniform(0, n_rows, size=(p.n_layers + 1, n_cols)), axis=0)
        lab = surfaces_to_labels(s, p, n_rows)
        np.testing.assert_array_equal(lab, naive_labels(s, p.labels, n_rows))
        # the map is ordered, and converting it back gives a map-equivalent integer form
        s2 = labels_to_surfaces(lab, p)
        np.testing.assert_array_equal(surfaces_to_labels(s2, p, n_rows), lab)


def test_hand_worked_column_conventions():
    p = get_profile()  # epidermis dermis fat smas deep_fat muscle bone
    lab = np.zeros((10, 3), np.uint8)
    lab[2:4, 0] = 1      # epidermis rows 2-3
    lab[4:7, 0] = 3      # fat rows 4-6, dermis absent, everything below absent
    lab[0:10, 2] = 7     # only bone, to the last row
    s = labels_to_surfaces(lab, p)
    np.testing.assert_array_equal(s[:, 0], [2, 4, 4, 7, 7, 7, 7, 7])
    np.testing.assert_array_equal(s[:, 1], [10] * 8)   # empty column
    np.testing.assert_array_equal(s[:, 2], [0, 0, 0, 0, 0, 0, 0, 10])
    np.testing.assert_array_equal(layer_presence(s)[:, 0], [1, 0, 1, 0, 0, 0, 0])
    assert not layer_presence(s)[:, 1].any()


def test_order_violations_match_naive_on_random_maps(rng):
    for region in region_names():
        p = get_profile(region)
        lab = rng.integers(0, 8, size=(6, 400)).astype(np.uint8)
        # mix in ordered columns so both outcomes occur
        s = random_integer_surfaces(rng, p.n_layers, 6, 400)
        ordered = surfaces_to_labels(s, p, 6)
        pick = rng.random(400) < 0.5
        lab[:, pick] = ordered[:, pick]
        want = np.array([naive_violation(lab[:, c], p) for c in range(400)])
        np.testing.assert_array_equal(order_violation_mask(lab, p), want)
        assert order_violations(lab, p) == want.sum() > 0
        assert not want[pick].any()


def test_forehead_order_differs_from_default():
    col = np.array([[1], [2], [3], [4], [6], [5], [7]], np.uint8)   # muscle above deep fat
    assert order_violations(col, "forehead") == 0
    assert order_violations(col, "default") == 1


def test_strict_and_lenient_conversion():
    lab = np.array([[1, 1], [0, 2], [2, 2]], np.uint8)   # column 0: background between layers
    with pytest.raises(ProfileError, match="1 column"):
        labels_to_surfaces(lab, "default")
    s = labels_to_surfaces(lab, "default", strict=False)
    assert np.isnan(s[:, 0]).all()
    np.testing.assert_array_equal(s[:, 1], [0, 1, 3, 3, 3, 3, 3, 3])


@pytest.mark.parametrize("bad, msg", [
    (np.full((3, 3), 8), "outside 0-7"),
    (np.full((3, 3), -1), "outside 0-7"),
    (np.full((3, 3), 1.5), "integers"),
    (np.zeros(5, int), "2-D"),
])
def test_bad_label_maps(bad, msg):
    with pytest.raises(ProfileError, match=msg):
        labels_to_surfaces(bad, "default")


def test_unknown_region_and_bad_surfaces():
    with pytest.raises(ProfileError, match="unknown facial region"):
        order_violations(np.zeros((2, 2), np.uint8), "elbow")
    p = get_profile()
    with pytest.raises(ProfileError, match="8 rows"):
        surfaces_to_labels(np.zeros((3, 4)), p, 5)
    s = np.zeros((8, 2))
    s[3, 1] = 2.0   # a top below the next one
    with pytest.raises(ProfileError, match="out of order"):
        surfaces_to_labels(s, p, 5)
    with pytest.raises(ProfileError, match=r"\[0, 5\]"):
        surfaces_to_labels(np.full((8, 2), 6.0), p, 5)
    with pytest.raises(ProfileError, match="NaN"):
        surfaces_to_labels(np.full((8, 2), np.nan), p, 5)


def test_smooth_surfaces_keeps_order_and_empty_columns(rng):
    p = get_profile()
    s = random_integer_surfaces(rng, p.n_layers, 60, 80)
    out = smooth_surfaces(s, 0.3, (0.02, 0.05))
    assert out.shape == s.shape and out.dtype == np.float64
    assert (np.diff(out, axis=0) >= 0).all()
    empty = s[-1] == s[0]
    assert empty.any()
    np.testing.assert_array_equal(out[:, empty], s[:, empty])
    assert out.min() >= 0 and out.max() <= 60
    # a constant surface stack is unchanged; sigma 0 is the identity
    flat = np.tile(np.arange(8.0)[:, None] * 3, (1, 50))
    np.testing.assert_allclose(smooth_surfaces(flat, 1.0, (0.02, 0.05)), flat)
    np.testing.assert_array_equal(smooth_surfaces(s, 0.0, (0.02, 0.05)), s)


def test_smooth_surfaces_reduces_noise_in_mm(rng):
    cols = 400
    truth = 20 + 5 * np.sin(np.arange(cols) * 0.05 * 2 * np.pi / 8.0)   # 8 mm period
    noisy = truth + rng.normal(0, 1.0, cols)
    s = np.vstack([noisy, noisy + 10])
    sm = smooth_surfaces(s, 0.3, (0.02, 0.05))   # sigma 6 columns
    assert np.abs(sm[0] - truth).mean() < 0.5 * np.abs(noisy - truth).mean()
    # sigma in mm, not pixels: the same sigma on twice the lateral spacing is half as many columns
    a = smooth_surfaces(s, 0.3, (0.02, 0.10))
    b = smooth_surfaces(s, 0.6, (0.02, 0.05))
    np.testing.assert_allclose(a, smooth_surfaces(s, 0.15, (0.02, 0.05)))
    assert not np.allclose(a, b)


def test_smooth_surfaces_needs_spacing():
    s = np.zeros((2, 5))
    with pytest.raises(SpacingRequiredError):
        smooth_surfaces(s, 0.1, None)
    with pytest.raises(CalibrationError):
        smooth_surfaces(s, 0.1, (0.0, 0.05))
    with pytest.raises(CalibrationError):
        smooth_surfaces(s, -1, (0.02, 0.05))


@pytest.mark.nojit
def test_surfaces_to_labels_equals_the_pixel_rule_on_random_surfaces():
    # row r is layer k where s_k <= r + 0.5 < s_k+1, else 0: sub-pixel, whole-row and
    # half-row depths, coincident surfaces (absent layers), surfaces at 0 and at the bottom
    rng = np.random.default_rng(5)
    p = get_profile("cheek")
    for n_rows, n_cols in ((1, 3), (17, 9), (40, 33)):
        for _ in range(5):
            d = rng.choice([0.0, 0.5, 0.25, 1.0], size=(p.n_layers + 1, n_cols)) * \
                rng.integers(0, 8, size=(p.n_layers + 1, n_cols))
            d[rng.random(d.shape) < 0.2] = 0.0
            s = np.minimum(np.cumsum(d, axis=0) + rng.choice([0.0, 0.5, 2.3]), n_rows)
            got = surfaces_to_labels(s, p, n_rows)
            centre = np.arange(n_rows)[:, None] + 0.5
            want = np.zeros((n_rows, n_cols), np.uint8)
            for k, lab in enumerate(p.labels):
                want[(s[k] <= centre) & (centre < s[k + 1])] = lab
            np.testing.assert_array_equal(got, want)
