"""Accuracy per frame against hand-worked cases, the dataset loop, and `layerseg bench` end to end.

Dice / HD95 / ASSD themselves are `layerseg.metrics` (tests/test_metrics.py: hand-worked cases and
equality with MONAI); here they are checked as `frame_metrics` reports them.
"""

import csv
import json

import numpy as np
import pytest

from layerseg.bench.accuracy import (CSV_METRICS, LAYER_NAMES, evaluate_dataset, frame_metrics,
                                     mean_thickness_mm, summarise)
from layerseg.cli import main
from layerseg.errors import SpacingRequiredError
from layerseg.frame import Frame
from layerseg.io.dataset import DatasetWriter

SP = (0.02, 0.05)


def layered(rows=60, cols=40, tops=(5, 8, 20, 35, 40, 48, 50)):
    """A label map obeying the default profile: background, then layers 1-7 from `tops`."""
    lab = np.zeros((rows, cols), dtype=np.uint8)
    edges = list(tops) + [rows]
    for k in range(7):
        lab[edges[k]:edges[k + 1]] = k + 1
    return lab


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
    # MONAI's border convention (layerseg.metrics): the image border is background, so the
    # frame's first and last columns belong to each layer's surface. Dermis rows 8-19 against
    # 8-21 of a 60 x 40 frame: truth -> answer 100 edge px, 38 inner bottom ones at 2 rows;
    # answer -> truth 104 px, 40 bottom ones at 2 rows and 2 side ones (row 20) at 1 row.
    # ASSD = (78 x 0.04 + 2 x 0.02) / 204 mm (it was 0.02 mm while the border was not surface)
    assert m["layers"]["dermis"]["assd_mm"] == pytest.approx((78 * 0.04 + 2 * 0.02) / 204)
    with pytest.raises(SpacingRequiredError):
        frame_metrics(t, p, None)
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
    # per frame: a layer in neither map is not scored; one missed has Dice 0 (MONAI's
    # ignore_empty=False) and non-finite distances, left out of the means
    assert np.isnan(f1["layers"]["bone"]["dice"]) and np.isnan(f1["layers"]["bone"]["hd95_mm"])
    dfat = f2["layers"]["deep_fat"]
    assert dfat["present_truth"] and not dfat["present_pred"] and dfat["dice"] == 0.0
    assert not np.isfinite(dfat["hd95_mm"]) and not np.isfinite(dfat["assd_mm"])
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
    assert set(s) == {"frames", "order_violations", "layers", "segmenter"}
    assert s["segmenter"] == {"model": "classical"}
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
    s = json.loads((tmp_path / "b.json").read_text())
    assert s["frames"] == 0 and "is not available" in s["segmenter"]["error"]


def test_cli_speed_quick(tmp_path):
    out = tmp_path / "speed.json"
    main(["bench", "speed", "--quick", "--json", str(out)])
    d = json.loads(out.read_text())
    assert d["quick"] is True
    assert d["suites"]["search"]["status"] == "ok"
    assert d["suites"]["search"]["results"][0]["rows"] == 128
    assert d["suites"]["growth"]["status"] == "ok"      # with the default model's cases
    assert "growth.infer_default_field.linearity.ratio" in d["ratios"]


def test_bench_figures_equal_monai_metrics(tmp_path):
    """Every per-frame Dice / HD95 / ASSD that `bench accuracy` reports equals monai.metrics'
    figure on the same masks and spacing (include_background, symmetric ASSD, 95th percentile)
    within 1e-6 (HD95: plus MONAI's own float32 quantile rounding, at most a few 1e-7 here)."""
    import warnings

    import torch
    from monai import metrics as mm

    t = layered()
    rng = np.random.default_rng(3)
    preds = {}
    with DatasetWriter(tmp_path / "ds") as w:
        for i in range(3):
            w.add(Frame((t * 30).astype(np.uint8), spacing_mm=SP), f"f{i}", label=t,
                  region="cheek")
            p = t.copy()
            shift = rng.integers(1, 4)
            p[shift:] = t[:-shift]                      # the answer sits `shift` rows deep
            p[:, rng.integers(0, t.shape[1]):] = np.roll(p, 1, axis=0)[:, :1]  # and a step
            preds[f"f{i}"] = p
    order = iter(sorted(preds))
    _, rows = evaluate_dataset(tmp_path / "ds", predict=lambda f: preds[next(order)])
    checked = 0
    for r in rows:
        p, tt = preds[r["id"]], t
        for lab, name in enumerate(LAYER_NAMES, start=1):
            a, b = (p == lab), (tt == lab)
            if not (a.any() and b.any()):
                continue
            yp = torch.as_tensor(a[None, None].astype(np.float32))
            y = torch.as_tensor(b[None, None].astype(np.float32))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                d = float(mm.DiceMetric(include_background=True)(yp, y).item())
                hd = float(mm.compute_hausdorff_distance(yp, y, include_background=True,
                                                         percentile=95, spacing=SP).item())
                asd = float(mm.compute_average_surface_distance(
                    yp, y, include_background=True, symmetric=True, spacing=SP).item())
            assert abs(r[f"{name}_dice"] - d) < 1e-6, (r["id"], name)
            assert abs(r[f"{name}_hd95_mm"] - hd) < 2e-6, (r["id"], name)
            assert abs(r[f"{name}_assd_mm"] - asd) < 1e-6, (r["id"], name)
            checked += 1
    assert checked >= 9
