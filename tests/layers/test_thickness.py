import numpy as np
import pytest

from layerseg.errors import SpacingRequiredError
from layerseg.layers import thickness_normal_mm, thickness_vertical_mm

SPACINGS = [(0.05, 0.05), (0.02, 0.05)]   # (axial, lateral) mm: square and 0.02 x 0.05

# also run with NUMBA_DISABLE_JIT=1 (scripts/test.sh): the kernels' bodies as plain Python
pytestmark = pytest.mark.nojit


def tilted_layer(angle_deg, thickness_mm, spacing, n_cols=120, top_mm=1.0):
    """A flat layer tilted by angle_deg (in mm space) of perpendicular thickness_mm, as surfaces
    in rows."""
    ay, ax = spacing
    x = np.arange(n_cols) * ax
    slope = np.tan(np.radians(angle_deg))
    top = top_mm + slope * x
    bottom = top + thickness_mm / np.cos(np.radians(angle_deg))
    return np.vstack([top, bottom]) / ay


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("angle", [0.0, 15.0, 30.0, -30.0])
def test_tilted_flat_layer(angle, spacing):
    T = 0.8
    s = tilted_layer(angle, T, spacing)
    tn = thickness_normal_mm(s, spacing)
    tv = thickness_vertical_mm(s, spacing)
    assert tn.shape == tv.shape == (1, s.shape[1])
    # hand-worked: perpendicular thickness T, vertical T / cos(angle), at every column whose
    # normal ray meets the bottom inside the image
    ok = np.isfinite(tn[0])
    assert ok[10:-10].all()
    np.testing.assert_allclose(tn[0, ok], T, rtol=1e-9)
    np.testing.assert_allclose(tv[0], T / np.cos(np.radians(angle)), rtol=1e-9)


def test_nonsquare_pixels_matter():
    # one row per column on 0.02 x 0.05 mm pixels is atan(0.4) = 21.8 degrees, not 45
    spacing = (0.02, 0.05)
    cols = np.arange(100.0)
    s = np.vstack([10 + cols, 60 + cols])          # vertical thickness 50 rows = 1.0 mm
    tn = thickness_normal_mm(s, spacing)[0, 10:60]   # the first rays leave the image sideways
    np.testing.assert_allclose(tn, 1.0 * np.cos(np.arctan(0.02 / 0.05)), rtol=1e-9)


def brute_force_normal_thickness(x0, top_f, dtop_f, bottom_f):
    """Distance from (x0, top(x0)) along the downward normal of the analytic top curve to the
    first crossing with the analytic bottom curve, by dense sampling and bisection."""
    slope = dtop_f(x0)
    n = np.array([-slope, 1.0]) / np.hypot(slope, 1.0)
    y0 = top_f(x0)
    g = lambda t: (y0 + t * n[1]) - bottom_f(x0 + t * n[0])  # < 0 above the bottom curve
    ts = np.linspace(0, 5, 50001)
    vals = g(ts)
    i = np.flatnonzero((vals[:-1] < 0) & (vals[1:] >= 0))[0]
    a, b = ts[i], ts[i + 1]
    for _ in range(60):
        m = 0.5 * (a + b)
        a, b = (m, b) if g(m) < 0 else (a, m)
    return 0.5 * (a + b)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_sinusoidal_layer_against_brute_force(spacing):
    ay, ax = spacing
    A, lam, D, y0 = 0.3, 5.0, 0.8, 1.5                      # mm
    k = 2 * np.pi / lam
    top_f = lambda x: y0 + A * np.sin(k * x)
    dtop_f = lambda x: A * k * np.cos(k * x)
    bottom_f = lambda x: top_f(x) + D
    n_cols = 300
    x = np.arange(n_cols) * ax
    s = np.vstack([top_f(x), bottom_f(x)]) / ay
    tn = thickness_normal_mm(s, spacing)[0]
    for c in range(20, n_cols - 20, 7):
        want = brute_force_normal_thickness(x[c], top_f, dtop_f, bottom_f)
        assert abs(tn[c] - want) < 2e-3, (c, tn[c], want)
    # the normal thickness of this layer is below its vertical thickness wherever it is sloped
    tv = thickness_vertical_mm(s, spacing)[0]
    np.testing.assert_allclose(tv, D, rtol=1e-9)
    slope = np.abs(dtop_f(x[20:-20]))
    assert (tn[20:-20][slope > 0.3] < D - 0.01).all()


def test_absent_layers_and_vertical_option():
    s = np.array([[0.0, 0.0, 1.0], [3.0, 0.0, 1.0], [3.0, 4.0, 1.0]])   # column 2 empty
    tv = thickness_vertical_mm(s, (0.1, 0.1))
    np.testing.assert_allclose(tv, [[0.3, np.nan, np.nan], [np.nan, 0.4, np.nan]])
    tv0 = thickness_vertical_mm(s, (0.1, 0.1), absent=0.0)
    np.testing.assert_allclose(tv0, [[0.3, 0.0, 0.0], [0.0, 0.4, 0.0]])
    tn = thickness_normal_mm(s, (0.1, 0.1))
    assert np.isnan(tn[0, 1:]).all() and np.isnan(tn[1, [0, 2]]).all()
    np.testing.assert_allclose(tn[0, 0], 0.3)
    # layer 1 at column 1: top tangent from (0, 0.3) to (0.2, 0.1) mm, normal (1, 1)/sqrt(2);
    # the bottom segment y = 0.4 - 3 (x - 0.1) is met where t / sqrt(2) = 0.1
    np.testing.assert_allclose(tn[1, 1], 0.1 * np.sqrt(2))


def test_thickness_needs_spacing():
    s = np.zeros((2, 3))
    with pytest.raises(SpacingRequiredError):
        thickness_vertical_mm(s, None)
    with pytest.raises(SpacingRequiredError):
        thickness_normal_mm(s, None)


def test_lenient_nan_columns_and_single_column():
    from layerseg.layers import labels_to_surfaces, layer_presence, smooth_surfaces
    lab = np.zeros((20, 30), np.uint8)
    lab[2:6] = 1
    lab[6:15] = 2
    lab[:, 10] = 0
    lab[8, 10] = 2
    lab[9, 10] = 1          # column 10 breaks the order
    s = labels_to_surfaces(lab, "default", strict=False)
    assert np.isnan(s[:, 10]).all()
    tn = thickness_normal_mm(s, (0.05, 0.05))
    tv = thickness_vertical_mm(s, (0.05, 0.05))
    assert np.isnan(tn[:, 10]).all() and np.isnan(tv[:, 10]).all()
    # flat layers: neighbours of the NaN column use one-sided tangents and stay exact
    np.testing.assert_allclose(tn[0, np.r_[0:10, 11:30]], 0.2)
    np.testing.assert_allclose(tn[1, np.r_[0:10, 11:30]], 0.45)
    assert not layer_presence(s)[:, 10].any()
    sm = smooth_surfaces(s, 0.2, (0.05, 0.05))
    assert np.isnan(sm[:, 10]).all()
    np.testing.assert_allclose(sm[:, np.r_[0:10, 11:30]], s[:, np.r_[0:10, 11:30]])
    # a single column has no lateral geometry: normal thickness is the vertical one
    one = np.array([[2.0], [5.0]])
    np.testing.assert_allclose(thickness_normal_mm(one, (0.1, 0.2)), [[0.3]])
