"""The one owner of spacing, label-map and contrast checks (layerseg.checks)."""

from pathlib import Path

import numpy as np
import pytest

from layerseg import Frame
from layerseg.checks import LabelMapError, check_label_map, check_spacing, contrast_problem
from layerseg.errors import CalibrationError, InvalidImageError, ProfileError, SpacingRequiredError
from layerseg.layers import check_spacing as layers_check_spacing
from layerseg.layers import labels_to_surfaces
from layerseg.scoring import score
from layerseg.simulate.elasto import simulate_swe


@pytest.mark.parametrize("bad", [(20.0, 0.05), (0.02, 15), (0, 0.05), (-1, 1), (np.nan, 1),
                                 (3.1e-5, 3.1e-5), (0.02, 1e-300), "ab", (1,), None])
def test_every_spacing_caller_agrees(bad):
    """Frame, layers and the checks module accept and refuse the same spacings."""
    errors = (SpacingRequiredError,) if bad is None else (CalibrationError,)
    with pytest.raises(errors):
        check_spacing(bad)
    with pytest.raises(errors):
        layers_check_spacing(bad)
    if bad is not None:
        with pytest.raises(CalibrationError):
            Frame(np.zeros((4, 4)), spacing_mm=bad)


def test_spacing_returns_floats_and_names_file():
    assert check_spacing([0.02, 0.05]) == (0.02, 0.05)
    with pytest.raises(CalibrationError, match="scan.png"):
        check_spacing((0.02, 50), source="scan.png")
    # metres read as mm: 31 um pixels written as 3.1e-5
    with pytest.raises(CalibrationError, match=r"scan.png.*under 1 um.*in m instead of mm"):
        check_spacing((3.1e-5, 3.1e-5), source="scan.png")
    assert check_spacing((0.001, 0.0077)) == (0.001, 0.0077)     # RF samples at 100 MHz


@pytest.mark.parametrize("bad, msg", [
    (np.full((4, 4), 8), "outside 0-7"), (np.full((4, 4), -1), "outside 0-7"),
    (np.full((4, 4), 1.5), "non-integer"), (np.zeros(4, int), "2-D"),
    (np.array([["a", "b"], ["c", "d"]]), "dtype"),
])
def test_label_map_errors_are_one_class_everywhere(bad, msg):
    """The layers core, the scorer and the elastography simulator refuse a bad map alike."""
    with pytest.raises(LabelMapError, match=msg):
        check_label_map(bad)
    with pytest.raises(LabelMapError, match=msg):
        labels_to_surfaces(bad)
    if bad.ndim == 2 and bad.dtype.kind != "U":
        frame = Frame(np.random.default_rng(0).uniform(0, 255, bad.shape), spacing_mm=(0.02, 0.05))
        with pytest.raises(LabelMapError, match=msg):
            score(frame, bad)
        with pytest.raises(LabelMapError, match=msg):
            simulate_swe(bad, (0.02, 0.05), {}, np.random.default_rng(0))


def test_label_map_error_keeps_old_classes_and_shape_check():
    assert issubclass(LabelMapError, InvalidImageError) and issubclass(LabelMapError, ProfileError)
    with pytest.raises(LabelMapError, match=r"differs from the image shape \(4, 5\)"):
        check_label_map(np.zeros((4, 4), int), (4, 5))
    out = check_label_map(np.array([[0.0, 7.0]]), dtype=np.uint8)
    assert out.dtype == np.uint8 and out.tolist() == [[0, 7]]


def test_contrast_problem():
    rng = np.random.default_rng(1)
    assert contrast_problem(rng.uniform(0, 255, (32, 32))) is None
    for blank in (np.zeros((32, 32)), np.full((32, 32), 255.0), np.full((32, 32), 80.0)):
        assert "no usable contrast" in contrast_problem(blank)


def test_contrast_shortcut_never_passes_a_frame_np_percentile_would_refuse():
    # the histogram shortcut only ever says "enough contrast" when np.percentile's 1st-99th
    # spread really is at least the minimum; random, narrow, quantised, two-level and
    # out-of-range grey levels
    from layerseg.checks import _spread_at_least
    rng = np.random.default_rng(7)
    said = 0
    for t in range(1500):
        n = int(rng.integers(2, 400))
        g = [rng.uniform(0, 255, n), rng.normal(rng.uniform(0, 255), rng.uniform(0, 5), n),
             np.round(rng.normal(100, rng.uniform(0, 3), n)),
             rng.choice([0.0, 255.0], n, p=[0.985, 0.015]), rng.uniform(-50, 300, n)][t % 5]
        g = g.astype(np.float32)
        lo, hi = np.percentile(g, [1.0, 99.0])
        for m in (0.5, 2.0, 5.0):
            if _spread_at_least(g, m):
                said += 1
                assert hi - lo >= m
    assert said > 1000                                   # and it does answer most frames
    assert not _spread_at_least(np.array([[1.0, np.nan], [3.0, 4.0]], np.float32), 0.5)


def test_contrast_uint8_frames_counted_as_they_are():
    # uint8 frames skip the float copy: the same answer as the same grey levels in float32
    from layerseg.checks import _spread_at_least
    rng = np.random.default_rng(8)
    for t in range(400):
        n = int(rng.integers(2, 400))
        g = np.clip(np.round(rng.normal(rng.uniform(0, 255), rng.uniform(0, 8), n)), 0, 255)
        u = g.astype(np.uint8).reshape(1, -1)
        for m in (0.5, 2.0, 5.0):
            assert _spread_at_least(u, m) == _spread_at_least(u.astype(np.float32), m)
        assert contrast_problem(u) == contrast_problem(u.astype(np.float32))
    assert "no usable contrast" in contrast_problem(np.full((32, 32), 7, np.uint8))


def _no_echo_reference(g, tol, min_fraction, min_margin):
    """Plain loops: a column is flat when few of its pixels leave its median; margins are the
    flat runs from either side at least min_margin * cols wide."""
    rows, cols = g.shape
    flat = []
    for c in range(cols):
        med = float(np.median(g[:, c]))
        away = sum(1 for r in range(rows) if abs(float(g[r, c]) - med) > tol)
        flat.append(away / rows < min_fraction)
    out = [False] * cols
    least = max(1, int(np.ceil(min_margin * cols)))
    n = 0
    while n < cols and flat[n]:
        n += 1
    if n >= least:
        out[:n] = [True] * n
    n = 0
    while n < cols and flat[cols - 1 - n]:
        n += 1
    if n >= least:
        out[cols - n:] = [True] * n
    return np.array(out)


def test_no_echo_columns_against_plain_loops():
    from layerseg.checks import no_echo_columns
    rng = np.random.default_rng(3)
    for trial in range(40):
        rows, cols = rng.integers(5, 40), rng.integers(1, 60)
        g = rng.uniform(0, 255, (rows, cols)).astype(np.float32)
        flat = rng.random(cols) < rng.uniform(0, 1)
        # runs at the sides, sometimes
        if rng.random() < 0.6:
            flat[:rng.integers(0, cols + 1)] = True
        if rng.random() < 0.6:
            flat[cols - rng.integers(0, cols + 1):] = True
        for c in np.nonzero(flat)[0]:
            g[:, c] = rng.choice([0.0, 40.0, 128.0]) + rng.uniform(-3, 3, rows)
            marks = rng.random(rows) < rng.uniform(0, 0.2)     # text, ticks
            g[marks, c] = 255.0
        tol, mf, mm = float(rng.uniform(2, 6)), float(rng.uniform(0.05, 0.2)), \
            float(rng.uniform(0.0, 0.3))
        got = no_echo_columns(g, tol, mf, mm)
        assert np.array_equal(got, _no_echo_reference(g, tol, mf, mm)), trial


def test_no_echo_columns_finds_screen_margins_not_tissue():
    from PIL import Image

    from layerseg.checks import no_echo_columns
    root = Path(__file__).resolve().parents[1] / "data" / "samples" / "sim"
    for png in sorted(root.glob("*.png")):
        g = np.asarray(Image.open(png), dtype=np.float32)
        assert not no_echo_columns(g).any(), png.name
        # the frame in a screen capture: black margin with a line of white text on the left,
        # a grey panel on the right
        left = np.zeros((g.shape[0], 80), np.float32)
        left[10:18, 5:70:3] = 255.0
        right = np.full((g.shape[0], 60), 90.0, np.float32)
        cap = np.hstack([left, g, right])
        m = no_echo_columns(cap)
        assert m[:80].all() and m[-60:].all() and not m[80:-60].any(), png.name
    # a few flat columns inside the image or at its edge are tissue (a shadow), not a margin
    g = np.asarray(Image.open(root / "cheek_f32.png"), dtype=np.float32).copy()
    g[:, 100:130] = 0.0
    g[:, :10] = 0.0
    assert not no_echo_columns(g).any()
    with pytest.raises(ValueError, match="2-D"):
        no_echo_columns(np.zeros(5))
