"""Accuracy metrics against hand-worked cases, the dataset loop, and `layerseg bench` end to end."""

import csv
import json

import numpy as np
import pytest

from layerseg.bench.accuracy import (CSV_METRICS, LAYER_NAMES, assd_mm, dice, evaluate_dataset,
                                     frame_metrics, hd95_mm, mean_thickness_mm,
                                     surface_distances_mm, summarise)
from layerseg.cli import main
from layerseg.errors import SpacingRequiredError
from layerseg.frame import Frame
from layerseg.io.dataset import DatasetWriter

SP = (0.02, 0.05)


def band(rows, cols, top, bottom):
    m = np.zeros((rows, cols), dtype=bool)
    m[top:bottom] = True
    return m


def layered(rows=60, cols=40, tops=(5, 8, 20, 35, 40, 48, 50)):
    """A label map obeying the default profile: background, then layers 1-7 from `tops`."""
    lab = np.zeros((rows, cols), dtype=np.uint8)
    edges = list(tops) + [rows]
    for k in range(7):
        lab[edges[k]:edges[k + 1]] = k + 1
    return lab


def test_dice_hand_worked():
    a = band(30, 20, 5, 15)
    assert dice(a, a) == 1.0
    assert dice(a, band(30, 20, 20, 25)) == 0.0
    # 10 rows against 5 of them: 2 * 5 / (10 + 5)
    assert dice(a, band(30, 20, 5, 10)) == pytest.approx(2 * 5 / 15)
    assert np.isnan(dice(np.zeros((4, 4), bool), np.zeros((4, 4), bool)))


def test_identical_masks_distance_zero():
    a = band(40, 30, 10, 22)
    assert hd95_mm(a, a, SP) == 0.0
    assert assd_mm(a, a, SP) == 0.0


@pytest.mark.parametrize("k", [1, 3, 7])
def test_band_shifted_by_k_rows(k):
    # a full-width band shifted down by k rows: every surface pixel is k rows from the other's
    a = band(60, 25, 10, 30)
    b = band(60, 25, 10 + k, 30 + k)
    assert hd95_mm(a, b, SP) == pytest.approx(k * SP[0])
    assert assd_mm(a, b, SP) == pytest.approx(k * SP[0])


def test_bottom_moved_only():
    # top surfaces agree (0), bottom surfaces 5 rows apart: HD95 5 rows, ASSD half of it
    a = band(50, 20, 10, 20)
    b = band(50, 20, 10, 25)
    d_ab, d_ba = surface_distances_mm(a, b, SP)
    assert sorted(set(np.round(d_ab / SP[0], 9))) == [0.0, 5.0]
    assert hd95_mm(a, b, SP) == pytest.approx(5 * SP[0])
    assert assd_mm(a, b, SP) == pytest.approx(2.5 * SP[0])


def test_lateral_shift_uses_lateral_spacing():
    a = np.zeros((30, 40), bool)
    a[:, 10:20] = True
    b = np.zeros((30, 40), bool)
    b[:, 13:23] = True
    assert hd95_mm(a, b, SP) == pytest.approx(3 * SP[1])


def test_distance_undefined_or_refused():
    a = band(20, 10, 5, 10)
    empty = np.zeros_like(a)
    assert np.isnan(hd95_mm(a, empty, SP))
    assert surface_distances_mm(a, empty, SP) is None
    with pytest.raises(SpacingRequiredError):
        hd95_mm(a, a, None)


def test_mean_thickness_flat_layers():
    lab = layered()
    th = mean_thickness_mm(lab, None, SP)
    # default profile: epidermis rows 5-8, dermis 8-20, fat 20-35 ...
    assert th["epidermis"] == pytest.approx(3 * SP[0])
    assert th["dermis"] == pytest.approx(12 * SP[0])
    assert th["fat"] == pytest.approx(15 * SP[0])


def test_frame_metrics_identical_and_shifted():
    t = layered()
    m = frame_metrics(t, t, SP)
    assert m["order_violations"] == 0
    for name in LAYER_NAMES:
        d = m["layers"][name]
        assert d["dice"] == 1.0 and d["hd95_mm"] == 0.0 and d["thickness_abs_err_mm"] == 0.0
    p = layered(tops=(5, 8, 22, 35, 40, 48, 50))        # dermis 2 rows thicker
    m = frame_metrics(t, p, SP)
    assert m["layers"]["dermis"]["thickness_abs_err_mm"] == pytest.approx(2 * SP[0])
    assert m["layers"]["fat"]["thickness_abs_err_mm"] == pytest.approx(2 * SP[0])
    assert m["layers"]["dermis"]["hd95_mm"] == pytest.approx(2 * SP[0])
    assert m["layers"]["smas"]["dice"] == 1.0


def test_order_violations_counted():
    t = layered()
    p = t.copy()
    p[9, :7] = 3          # fat inside the dermis in 7 columns
    p[21, :] = 2          # dermis under fat in every column
    assert frame_metrics(t, p, SP)["order_violations"] == t.shape[1]


def test_summarise_leaves_out_absent_layers():
    t = layered()
    t[t == 7] = 6         # no bone anywhere
    f1 = frame_metrics(t, t, SP)
    p = t.copy()
    p[t == 5] = 4         # deep fat missed: Dice 0, distances undefined
    f2 = frame_metrics(t, p, SP)
    s = summarise([f1, f2])
    assert set(s) == {"frames", "order_violations", "layers"}
    assert s["frames"] == 2 and s["order_violations"] == 0
    assert "bone" not in s["layers"]
    assert set(s["layers"]["dermis"]) == {"dice", "hd95_mm", "assd_mm", "thickness_mae_mm"}
    assert s["layers"]["deep_fat"]["dice"] == pytest.approx(0.5)
    assert s["layers"]["deep_fat"]["hd95_mm"] == 0.0     # defined only in frame 1


def _tiny_dataset(root, with_bad=False):
    t = layered()
    with DatasetWriter(root) as w:
        for i in range(2):
            img = (t * 30).astype(np.uint8)
            w.add(Frame(img, spacing_mm=SP), f"f{i}", label=t, region="cheek")
        if with_bad:
            w.add(Frame(np.zeros_like(t, dtype=np.uint8), spacing_mm=SP), "nolabel")
    return t


def test_evaluate_dataset_loop_and_failures(tmp_path):
    t = _tiny_dataset(tmp_path / "ds", with_bad=True)
    summary, rows = evaluate_dataset(tmp_path / "ds", predict=lambda f: t)
    assert summary["frames"] == 2
    assert summary["layers"]["dermis"]["dice"] == 1.0
    bad = [r for r in rows if r["status"] == "failed"]
    assert [r["id"] for r in bad] == ["nolabel"] and "label" in bad[0]["error"]


def test_cli_accuracy_end_to_end(tmp_path):
    from layerseg.simulate import simulate_dataset
    ds = simulate_dataset(tmp_path / "sim", 2, seed=5, progress=False, shape=(192, 160),
                          with_elasto=False)
    out = tmp_path / "res" / "acc.json"
    assert main(["bench", "accuracy", "--data", str(ds), "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert set(s) == {"frames", "order_violations", "layers"}
    assert s["frames"] == 2 and s["order_violations"] == 0
    assert s["layers"]["dermis"]["dice"] > 0.7
    for v in s["layers"].values():
        assert set(v) == {"dice", "hd95_mm", "assd_mm", "thickness_mae_mm"}
    with open(out.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert f"dermis_{CSV_METRICS[0]}" in rows[0]


def test_cli_accuracy_bad_input(tmp_path, capsys):
    assert main(["bench", "accuracy", "--data", str(tmp_path / "nothing"), "--json",
                 str(tmp_path / "a.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    _tiny_dataset(tmp_path / "ds")
    assert main(["bench", "accuracy", "--data", str(tmp_path / "ds"), "--model", "unet",
                 "--json", str(tmp_path / "b.json")]) == 1
    rows = list(csv.DictReader(open(tmp_path / "b.csv")))
    assert all("is not available" in r["error"] for r in rows)


def test_cli_speed_quick(tmp_path):
    out = tmp_path / "speed.json"
    main(["bench", "speed", "--quick", "--json", str(out)])
    d = json.loads(out.read_text())
    assert d["quick"] is True
    assert d["suites"]["search"]["status"] == "ok"
    assert d["suites"]["search"]["results"][0]["rows"] == 128
