"""layerseg.metrics: hand-worked cases, and equality with monai.metrics on seeded random masks.

MONAI (and torch) are imported here only, never by layerseg.metrics itself.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import ndimage as ndi

from layerseg.checks import LabelMapError
from layerseg.errors import CalibrationError, InvalidImageError, SpacingRequiredError
from layerseg.metrics import (HD_PERCENTILE, assd_mm, dice, hausdorff95_mm, layer_metrics,
                              mask_edges, surface_distances_mm)

torch = pytest.importorskip("torch")
monai_metrics = pytest.importorskip("monai.metrics")
from monai.metrics.utils import get_edge_surface_distance, get_mask_edges  # noqa: E402

SP = (0.02, 0.05)
SPACINGS = [(0.02, 0.05), (0.03, 0.03), (0.05, 0.02)]
SIZES = [(7, 9), (40, 33), (64, 128), (150, 97)]
TOL = 1e-6


# --------------------------------------------------------------------------- MONAI reference

def _t(m):
    """(rows, cols) mask -> (batch 1, channel 1, rows, cols) float tensor, as MONAI takes it."""
    return torch.as_tensor(np.asarray(m, dtype=np.float32)[None, None])


def monai_figures(pred, truth, spacing, ignore_empty=True):
    """Dice, HD95, ASSD of two masks by monai.metrics (include_background=True: one channel)."""
    yp, y = _t(pred), _t(truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # MONAI warns on empty masks; we compare the values
        d = monai_metrics.DiceMetric(include_background=True, ignore_empty=ignore_empty)(yp, y)
        hd = monai_metrics.compute_hausdorff_distance(yp, y, include_background=True,
                                                      percentile=95, spacing=spacing)
        asd = monai_metrics.compute_average_surface_distance(yp, y, include_background=True,
                                                             symmetric=True, spacing=spacing)
    return float(d.item()), float(hd.item()), float(asd.item())


def monai_directed(pred, truth, spacing):
    """MONAI's two directed distance arrays (pred -> truth, truth -> pred), float64."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, (d_pt, d_tp), _ = get_edge_surface_distance(torch.as_tensor(pred), torch.as_tensor(truth),
                                                       spacing=spacing, symmetric=True)
    return d_pt.double().numpy(), d_tp.double().numpy()


def quantile32_slack(d):
    """Bound of MONAI's own rounding in its HD95: ``torch.quantile`` runs in float32, so its
    interpolation rank ``0.95 (n - 1)`` is off by up to a few float32 ulps, which moves the figure
    by that much times the gap between the two distances it interpolates."""
    if len(d) < 2 or not np.isfinite(d).all():
        return 0.0
    s = np.sort(d)
    r = HD_PERCENTILE / 100 * (len(s) - 1)
    gap = s[min(int(np.floor(r)) + 1, len(s) - 1)] - s[int(np.floor(r))]
    return 4 * np.finfo(np.float32).eps * r * gap


def assert_equal_monai(pred, truth, spacing):
    if not (pred.any() and truth.any()):        # empty masks: NaN / inf, as MONAI's
        for ie in (True, False):
            np.testing.assert_array_equal(
                [dice(pred, truth, ignore_empty=ie), hausdorff95_mm(pred, truth, spacing),
                 assd_mm(pred, truth, spacing)],
                monai_figures(pred, truth, spacing, ignore_empty=ie))
        return
    ours = surface_distances_mm(pred, truth, spacing)
    ref = monai_directed(pred, truth, spacing)
    for a, b in zip(ours, ref):             # same edge pixels, same (row-major) order
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL)
    for ie in (True, False):
        d, hd, asd = monai_figures(pred, truth, spacing, ignore_empty=ie)
        np.testing.assert_allclose(dice(pred, truth, ignore_empty=ie), d, rtol=0, atol=TOL)
    np.testing.assert_allclose(assd_mm(pred, truth, spacing), asd, rtol=0, atol=TOL)
    h = hausdorff95_mm(pred, truth, spacing)
    # the same figure in exact arithmetic from MONAI's own distances ...
    exact = max(np.percentile(ref[0], HD_PERCENTILE), np.percentile(ref[1], HD_PERCENTILE))
    np.testing.assert_allclose(h, exact, rtol=0, atol=TOL)
    # ... and MONAI's public figure, up to its float32 quantile rounding
    slack = max(quantile32_slack(ref[0]), quantile32_slack(ref[1]))
    np.testing.assert_allclose(h, hd, rtol=0, atol=TOL + slack)


# --------------------------------------------------------------------------- random masks

def blob(rng, shape, sigma=None, level=None):
    """Random blobs: smoothed white noise above a random level (they often touch the border)."""
    sigma = rng.uniform(1.0, 4.0) if sigma is None else sigma
    level = rng.normal(0.0, 0.15) if level is None else level
    n = ndi.gaussian_filter(rng.normal(size=shape), sigma)
    return n > level * n.std()


def thin(rng, shape):
    """One-pixel structures: a row, a column, a diagonal and scattered single pixels."""
    m = np.zeros(shape, bool)
    r, c = shape
    m[rng.integers(r), :] = True
    m[:, rng.integers(c)] = True
    k = np.arange(min(r, c))
    m[k, k[::-1]] = True
    m |= rng.random(shape) < 0.01
    return m


@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("spacing", SPACINGS)
def test_random_blobs_equal_monai(shape, spacing):
    rng = np.random.default_rng([shape[0], shape[1], int(spacing[0] * 100)])
    for _ in range(4):
        assert_equal_monai(blob(rng, shape), blob(rng, shape), spacing)


@pytest.mark.parametrize("shape", SIZES)
def test_thin_structures_equal_monai(shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    for spacing in SPACINGS:
        a, b = thin(rng, shape), thin(rng, shape)
        assert_equal_monai(a, b, spacing)
        assert_equal_monai(a, blob(rng, shape), spacing)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_border_touching_masks_equal_monai(spacing):
    rng = np.random.default_rng(11)
    shape = (48, 64)
    full = np.ones(shape, bool)
    band = np.zeros(shape, bool)
    band[10:30] = True                               # spans the width: touches left and right
    corner_a = np.zeros(shape, bool)
    corner_a[:15, :20] = True                        # top-left corner
    corner_b = np.zeros(shape, bool)
    corner_b[5:, 12:] = True                         # bottom-right corner
    cases = [(full, full), (full, band), (band, np.roll(band, 3, axis=0)),
             (corner_a, corner_b), (band, corner_b),
             (blob(rng, shape, level=-0.8), blob(rng, shape, level=-0.8))]   # mostly foreground
    for a, b in cases:
        assert (a[:, 0].any() or a[0].any()) and (b[:, -1].any() or b[-1].any())
        assert_equal_monai(a, b, spacing)


def test_mask_edges_equal_monai():
    rng = np.random.default_rng(3)
    for shape in SIZES:
        for m in (blob(rng, shape), thin(rng, shape), np.ones(shape, bool)):
            e_monai, _ = get_mask_edges(m, m, crop=False)
            np.testing.assert_array_equal(mask_edges(m), e_monai)
            e_crop, _ = get_mask_edges(m, m, crop=True)
            assert e_crop.sum() == mask_edges(m).sum()


def random_label_maps(rng, shape):
    """A layered label map (every column 0 then 1..7 with random absences) and a perturbed
    copy with blobs of other labels, so labels are present in one, both or neither map."""
    rows, cols = shape
    x = np.arange(cols)
    tops = np.sort(rng.uniform(0, rows, 7))
    truth = np.zeros(shape, np.int64)
    r = np.arange(rows)[:, None]
    present = rng.random(7) < 0.8
    for k in range(7):
        if present[k]:
            s = tops[k] + 3 * np.sin(x / rng.uniform(5, 20) + rng.uniform(0, 6))
            truth[r >= s[None, :]] = k + 1
    pred = np.roll(truth, int(rng.integers(-3, 4)), axis=0)
    for _ in range(3):
        pred[blob(rng, shape, level=1.2)] = rng.integers(0, 8)
    return pred, truth


@pytest.mark.parametrize("shape", [(40, 30), (96, 80), (130, 140)])
def test_layer_metrics_equal_monai_one_hot(shape):
    rng = np.random.default_rng(shape[0])
    for spacing in SPACINGS:
        pred, truth = random_label_maps(rng, shape)
        yp = torch.as_tensor(np.eye(8, dtype=np.float32)[pred].transpose(2, 0, 1)[None])
        y = torch.as_tensor(np.eye(8, dtype=np.float32)[truth].transpose(2, 0, 1)[None])
        for ie in (True, False):
            res = layer_metrics(pred, truth, spacing, ignore_empty=ie)
            assert sorted(res) == list(range(1, 8))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                d = monai_metrics.DiceMetric(include_background=False, ignore_empty=ie)(yp, y)[0]
                hd = monai_metrics.compute_hausdorff_distance(yp, y, percentile=95,
                                                              spacing=spacing)[0]
                asd = monai_metrics.compute_average_surface_distance(yp, y, symmetric=True,
                                                                     spacing=spacing)[0]
            for lab in range(1, 8):
                r = res[lab]
                assert r["present_pred"] == bool((pred == lab).any())
                assert r["present_truth"] == bool((truth == lab).any())
                np.testing.assert_allclose(r["dice"], d[lab - 1].item(), rtol=0, atol=TOL)
                np.testing.assert_allclose(r["assd_mm"], asd[lab - 1].item(), rtol=0, atol=TOL)
                slack = max(map(quantile32_slack, monai_directed(pred == lab, truth == lab,
                                                                 spacing)))
                np.testing.assert_allclose(r["hd95_mm"], hd[lab - 1].item(), rtol=0,
                                           atol=TOL + slack)
                # and each label equals the mask functions
                a, b = pred == lab, truth == lab
                np.testing.assert_array_equal(
                    [r["dice"], r["hd95_mm"], r["assd_mm"]],
                    [dice(a, b, ignore_empty=ie), hausdorff95_mm(a, b, spacing),
                     assd_mm(a, b, spacing)])


def test_layer_metrics_labels_argument():
    rng = np.random.default_rng(5)
    pred, truth = random_label_maps(rng, (50, 40))
    res = layer_metrics(pred, truth, SP, labels=[0, 3])
    assert sorted(res) == [0, 3]
    assert res[0]["dice"] == dice(pred == 0, truth == 0, ignore_empty=False)


# --------------------------------------------------------------------------- empty masks

@pytest.mark.parametrize("which", ["both", "pred", "truth"])
def test_empty_masks_as_monai(which):
    shape = (30, 20)
    a = blob(np.random.default_rng(2), shape)
    z = np.zeros(shape, bool)
    pred, truth = {"both": (z, z), "pred": (z, a), "truth": (a, z)}[which]
    for ie in (True, False):
        d, hd, asd = monai_figures(pred, truth, SP, ignore_empty=ie)
        np.testing.assert_array_equal(
            [dice(pred, truth, ignore_empty=ie), hausdorff95_mm(pred, truth, SP),
             assd_mm(pred, truth, SP)], [d, hd, asd])
    # the conventions the module docstring states, pinned
    expect = {"both": (np.nan, 1.0, np.nan, np.nan), "pred": (0.0, 0.0, np.nan, np.inf),
              "truth": (np.nan, 0.0, np.nan, np.inf)}[which]
    np.testing.assert_array_equal(
        [dice(pred, truth), dice(pred, truth, ignore_empty=False),
         hausdorff95_mm(pred, truth, SP), assd_mm(pred, truth, SP)], expect)
    d_pt, d_tp = surface_distances_mm(pred, truth, SP)
    assert len(d_pt) == mask_edges(pred).sum() and len(d_tp) == mask_edges(truth).sum()
    assert np.isinf(np.concatenate([d_pt, d_tp])).all()


# --------------------------------------------------------------------------- hand-worked

def test_mask_edges_image_border_is_background():
    full = np.ones((3, 4), bool)
    np.testing.assert_array_equal(mask_edges(full), [[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]])
    band = np.zeros((5, 4), bool)
    band[1:4] = True                                 # full width: left and right columns count
    np.testing.assert_array_equal(mask_edges(band).astype(int),
                                  [[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1],
                                   [0, 0, 0, 0]])
    plus = np.zeros((5, 5), bool)
    plus[1:4, 2] = plus[2, 1:4] = True               # 4-connectivity: only the centre is inner
    assert mask_edges(plus).sum() == 4 and not mask_edges(plus)[2, 2]


def test_dice_hand_worked():
    a = np.zeros((30, 20), bool)
    a[5:15] = True
    b = np.zeros_like(a)
    b[5:10] = True
    assert dice(a, a) == 1.0
    assert dice(a, np.roll(a, 15, axis=0)) == 0.0
    assert dice(b, a) == pytest.approx(2 * 5 / 15)   # 10 rows against 5 of them
    assert dice(np.zeros_like(a), a) == 0.0


def test_identical_masks_distance_zero():
    a = np.zeros((40, 30), bool)
    a[10:22, 3:17] = True
    assert hausdorff95_mm(a, a, SP) == 0.0 and assd_mm(a, a, SP) == 0.0


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("axis", [0, 1])
def test_squares_offset_by_k(k, axis):
    # every edge pixel of one square has the other's at k pixels (its translate), and a whole
    # side is at exactly k: HD95 = k * spacing along the offset
    a = np.zeros((40, 40), bool)
    a[10:20, 10:20] = True
    b = np.roll(a, k, axis=axis)
    assert hausdorff95_mm(a, b, SP) == pytest.approx(k * SP[axis])
    assert hausdorff95_mm(b, a, SP) == pytest.approx(k * SP[axis])


def test_squares_offset_by_one_row_assd():
    # 10 x 10 squares one row apart, 36 edge pixels each. Square a to b: its top row (10 px) and
    # the 8 inner pixels of its bottom row are 1 row from b's edge, the other 18 are on it; b to
    # a alike. ASSD = 36 rows / 72 = half a row
    a = np.zeros((40, 40), bool)
    a[10:20, 10:20] = True
    b = np.roll(a, 1, axis=0)
    d_ab, d_ba = surface_distances_mm(a, b, SP)
    assert len(d_ab) == len(d_ba) == 36
    assert sorted(np.round(d_ab / SP[0], 9)) == [0.0] * 18 + [1.0] * 18
    assert assd_mm(a, b, SP) == pytest.approx(0.5 * SP[0])
    assert hausdorff95_mm(a, b, SP) == pytest.approx(SP[0])


@pytest.mark.parametrize("dr,dc", [(0, 4), (3, 0), (3, 4), (5, 1)])
def test_single_pixels_anisotropic(dr, dc):
    a = np.zeros((12, 12), bool)
    b = np.zeros_like(a)
    a[2, 3] = True
    b[2 + dr, 3 + dc] = True
    d = np.hypot(dr * SP[0], dc * SP[1])
    assert hausdorff95_mm(a, b, SP) == pytest.approx(d)
    assert assd_mm(a, b, SP) == pytest.approx(d)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_full_width_band_shifted_by_k_rows(k):
    # rows 10-29 of a 60 x 25 frame against rows 10+k to 29+k. Each top and each inner bottom
    # pixel is k rows from the other band's edge (or 1 column, 0.05 mm, where that is nearer),
    # so HD95 stays k rows; but the border columns are edge too (86 px per band), and most of
    # them lie on the other band's, which pulls ASSD below k rows.
    a = np.zeros((60, 25), bool)
    a[10:30] = True
    b = np.roll(a, k, axis=0)
    assert hausdorff95_mm(a, b, SP) == pytest.approx(k * SP[0])
    assd = assd_mm(a, b, SP)
    assert assd < k * SP[0]
    if k == 1:      # 25 top + 23 inner bottom pixels at 1 row, the other 38 at 0, both ways
        assert assd == pytest.approx(48 * SP[0] / 86)


def test_full_width_band_bottom_moved_border_convention():
    # a: rows 10-19, b: rows 10-24 of a 50 x 20 frame, spacing 0.02 x 0.05 mm. The image border
    # is background, so columns 0 and 19 are edge too. a -> b (56 px): 38 at 0, the inner
    # bottom row 5 rows (0.1 mm) below b's bottom except its end pixels 1 column (0.05 mm) from
    # b's sides: 2 x 0.05 + 16 x 0.1. b -> a (66 px): 38 at 0, b's sides at rows 20-23 are
    # 1-4 rows from a's corners (2 x 0.02, 0.04, 0.06, 0.08), its bottom row 20 x 0.1.
    # HD95 0.1 mm; ASSD (0.1 + 1.6 + 0.4 + 2.0) / 122. (Without the border as edge, as the
    # pre-MONAI bench had it, ASSD was 2.5 rows = 0.05 mm.)
    a = np.zeros((50, 20), bool)
    a[10:20] = True
    b = np.zeros_like(a)
    b[10:25] = True
    d_ab, d_ba = surface_distances_mm(a, b, SP)
    assert sorted(np.round(d_ab, 9)) == [0.0] * 38 + [0.05] * 2 + [0.1] * 16
    assert sorted(np.round(d_ba, 9)) == ([0.0] * 38 + [0.02] * 2 + [0.04] * 2 + [0.06] * 2
                                         + [0.08] * 2 + [0.1] * 20)
    assert hausdorff95_mm(a, b, SP) == pytest.approx(0.1)
    assert assd_mm(a, b, SP) == pytest.approx(4.1 / 122)


# --------------------------------------------------------------------------- checks, imports

def test_inputs_checked():
    a = np.zeros((10, 10), bool)
    a[2:5] = True
    with pytest.raises(SpacingRequiredError):
        hausdorff95_mm(a, a, None)
    with pytest.raises(CalibrationError):
        assd_mm(a, a, (0.0, 0.05))
    with pytest.raises(InvalidImageError):
        dice(a, a[:, :5])
    with pytest.raises(InvalidImageError):
        surface_distances_mm(a[None], a[None], SP)
    with pytest.raises(LabelMapError):
        layer_metrics(a.astype(int) * 9, a.astype(int), SP)
    with pytest.raises(LabelMapError):
        layer_metrics(a.astype(int), a[:, :5].astype(int), SP)


def test_import_pulls_no_torch_or_monai():
    code = ("import sys, layerseg.metrics, layerseg.bench.accuracy; "
            "bad = [m for m in ('torch', 'monai') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
