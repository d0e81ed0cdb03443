"""simulate_dataset / plan_dataset / the `layerseg simulate` command."""

import filecmp
import json

import numpy as np
import pytest

from layerseg.cli import main
from layerseg.errors import ConfigError, DatasetError
from layerseg.io import read_dataset
from layerseg.layers import order_violations
from layerseg.simulate import plan_dataset, simulate_dataset

SMALL = dict(shape=(96, 64), depth_mm=6.0, width_mm=3.2)


def _same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files, cmp.report()
    for sub in cmp.common_dirs:
        _same_tree(a / sub, b / sub)
    for name in cmp.common_files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_plan_subjects_and_splits():
    exams = plan_dataset(40, seed=3)
    idx = [i for e in exams for i in e.indices]
    assert idx == list(range(40))
    ids = [f for e in exams for f in e.frame_ids]
    assert len(set(ids)) == 40
    by_subject = {}
    for e in exams:
        by_subject.setdefault(e.subject_id, set()).add((e.split, e.sex, e.age))
        assert 20 <= e.age <= 80
    assert all(len(v) == 1 for v in by_subject.values())  # one split/sex/age per subject
    assert len(by_subject) >= 3
    assert len({e.region for e in exams}) >= 3
    assert plan_dataset(40, seed=3) == exams and plan_dataset(40, seed=4) != exams
    assert {e.region for e in plan_dataset(10, seed=0, region="malar")} == {"zygoma"}


def test_dataset_layout_and_worker_independence(tmp_path):
    a = simulate_dataset(tmp_path / "a", 4, seed=5, progress=False, **SMALL)
    b = simulate_dataset(tmp_path / "b", 4, seed=5, workers=2, progress=False, **SMALL)
    _same_tree(a, b)
    ds = read_dataset(a, check_values=True)
    assert len(ds) == 4
    for item in ds:
        assert item.frame.spacing_mm == pytest.approx((6.0 / 96, 3.2 / 64))
        assert item.frame.elasto is not None
        lab = np.asarray(item.label)
        assert order_violations(lab, item.row["region"]) == 0
        truth = json.loads((a / item.row["truth"]).read_text())
        assert truth["subject_id"] == item.row["subject_id"]
    import csv
    rows = list(csv.DictReader(open(a / "manifest.csv")))
    for col in ("region", "age", "sex", "split", "frequency_mhz", "device", "dynamic_range_db",
                "subject_id"):
        assert all(r[col] != "" for r in rows), col
    c = simulate_dataset(tmp_path / "c", 4, seed=6, progress=False, **SMALL)
    assert len(list((a / "images").iterdir())) == 4 and not filecmp.cmp(
        sorted((a / "images").iterdir())[0], sorted((c / "images").iterdir())[0], shallow=False)
    with pytest.raises(DatasetError):
        simulate_dataset(a, 2, progress=False, **SMALL)


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError):
        simulate_dataset(tmp_path / "x", 0, progress=False)
    with pytest.raises(ConfigError):
        simulate_dataset(tmp_path / "x", 2, fmt="tiff", progress=False)
    with pytest.raises(ConfigError):
        simulate_dataset(tmp_path / "x", 2, age_range=(80, 20), progress=False)


def test_cli(tmp_path, capsys):
    rc = main(["simulate", "--n", "2", "--out", str(tmp_path / "d"), "--seed", "2",
               "--region", "cheek", "--age-range", "30", "40", "--no-progress"])
    assert rc == 0
    ds = read_dataset(tmp_path / "d")
    assert len(ds) == 2 and all(it.row["region"] == "cheek" for it in ds)
    assert all(30 <= float(it.row["age"]) <= 40 for it in ds)
    rc = main(["simulate", "--n", "2", "--out", str(tmp_path / "d"), "--no-progress"])
    assert rc == 2  # refuses to overwrite


def test_cli_field_of_view(tmp_path, capsys):
    """--shape / --depth-mm / --width-mm set each frame's size and spacing; a field out of
    range is refused before any folder is made."""
    rc = main(["simulate", "--n", "2", "--out", str(tmp_path / "d"), "--seed", "3",
               "--shape", "192", "48", "--depth-mm", "15", "--width-mm", "2.4",
               "--no-progress"])
    assert rc == 0
    ds = read_dataset(tmp_path / "d")
    for it in ds:
        assert it.frame.shape == (192, 48) and it.label.shape == (192, 48)
        assert it.frame.spacing_mm == pytest.approx((15 / 192, 2.4 / 48))
    # the same frames as the library call with the same field
    b = simulate_dataset(tmp_path / "b", 2, seed=3, progress=False, shape=(192, 48),
                         depth_mm=15.0, width_mm=2.4)
    _same_tree(tmp_path / "d" / "images", b / "images")
    for bad in (["--depth-mm", "55"], ["--width-mm", "1"], ["--shape", "8", "512"]):
        out = tmp_path / ("bad" + bad[0] + bad[1])
        rc = main(["simulate", "--n", "1", "--out", str(out), "--no-progress"] + bad)
        assert rc == 2 and not out.exists()
        err = capsys.readouterr().err
        assert ("depth_mm" in err or "shape" in err), err


def test_dicom_exams_read_back(tmp_path):
    import layerseg
    out = simulate_dataset(tmp_path / "dc", 3, seed=1, fmt="dicom", progress=False, **SMALL)
    import csv
    exams = list(csv.DictReader(open(out / "exams.csv")))
    assert sum(int(e["n_frames"]) for e in exams) == 3
    from layerseg.simulate.dicom_export import default_exam_bar
    truth = {it.id: it for it in read_dataset(out / "truth_frames")}
    for e in exams:
        series = layerseg.read(out / e["dicom"], colour_bar=default_exam_bar(e["elasto_kind"]),
                               elasto_kind=e["elasto_kind"])
        assert len(series) == int(e["n_frames"])
        for k, fid in enumerate(e["frame_ids"].split()):
            f = series[k]
            assert f.spacing_mm == pytest.approx((6.0 / 96, 3.2 / 64), rel=1e-3)
            want = truth[fid].frame.elasto
            assert f.elasto is not None and f.elasto_kind == e["elasto_kind"]
            v = np.isfinite(want) & np.isfinite(f.elasto)
            assert v.sum() > 0.8 * np.isfinite(want).sum()
            scale = np.nanmax(np.abs(want))
            assert np.median(np.abs(f.elasto[v] - want[v])) < 0.05 * scale


@pytest.mark.parametrize("kind", ["rf", "iq"])
def test_rf_written_and_read_back(tmp_path, kind):
    from layerseg.io import read
    out = simulate_dataset(tmp_path / kind, 1, seed=2, progress=False, write_rf=kind,
                           with_elasto=False, **SMALL)
    ds = read_dataset(out)
    item = next(iter(ds))
    series = read(out / item.row["rf"])
    f = series[0]
    assert f.spacing_mm == pytest.approx(item.frame.spacing_mm, rel=1e-6)
    n = min(f.shape[0], item.frame.shape[0])
    # the RF/IQ reader's B-mode follows the simulator's B-mode (same echoes)
    a = f.bmode[:n].ravel()
    b = item.frame.bmode[:n].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.6


def test_cli_anatomy_varied(tmp_path):
    """--anatomy varied: the library call's frames, recorded in truth; the default anatomy
    writes the same frames as a call without the argument; an unknown variant is refused."""
    rc = main(["simulate", "--n", "3", "--out", str(tmp_path / "v"), "--seed", "4",
               "--anatomy", "varied", "--shape", "96", "64", "--depth-mm", "6",
               "--width-mm", "3.2", "--no-progress"])
    assert rc == 0
    b = simulate_dataset(tmp_path / "b", 3, seed=4, progress=False, anatomy="varied", **SMALL)
    _same_tree(tmp_path / "v" / "labels", b / "labels")
    for it in read_dataset(b):
        assert it.truth["anatomy_variant"] == "varied"
    d = simulate_dataset(tmp_path / "d", 2, seed=4, progress=False, anatomy="default", **SMALL)
    e = simulate_dataset(tmp_path / "e", 2, seed=4, progress=False, **SMALL)
    _same_tree(d, e)
    assert "anatomy_variant" not in next(iter(read_dataset(d))).truth
    with pytest.raises(ConfigError, match="anatomy"):
        simulate_dataset(tmp_path / "x", 1, seed=4, progress=False, anatomy="odd", **SMALL)
    assert not (tmp_path / "x").exists()


def test_cli_decoupled_anatomy_and_faint_ranges(tmp_path):
    """--anatomy decoupled --ranges wide_faint: the library call's frames, both recorded in
    each frame's truth (the fat's drawn backscatter inside the faint range)."""
    from layerseg.simulate.ranges import range_spec
    rc = main(["simulate", "--n", "2", "--out", str(tmp_path / "c"), "--seed", "5",
               "--anatomy", "decoupled", "--ranges", "wide_faint", "--shape", "96", "64",
               "--depth-mm", "6", "--width-mm", "3.2", "--no-progress"])
    assert rc == 0
    b = simulate_dataset(tmp_path / "b", 2, seed=5, progress=False, anatomy="decoupled",
                         ranges="wide_faint", **SMALL)
    _same_tree(tmp_path / "c" / "images", b / "images")
    _same_tree(tmp_path / "c" / "labels", b / "labels")
    spec = range_spec("wide_faint")["layers"]["fat"]["backscatter_db"]
    for it in read_dataset(b):
        assert it.truth["anatomy_variant"] == "decoupled"
        assert it.truth["ranges"]["name"] == "wide_faint"
        fb = it.truth["ranges"]["drawn"]["layers"]["fat"]["backscatter_db"]
        assert spec["low"] <= fb <= spec["high"]


def test_cli_choices_are_the_simulators_names():
    """`layerseg simulate --ranges/--anatomy` list their choices without importing the
    simulator (a second import of numba would slow every command's start): they must be the
    simulator's own names (`RANGES`, `ANATOMY_VARIANTS`)."""
    from layerseg.cli import build_parser
    from layerseg.simulate.anatomy import ANATOMY_VARIANTS
    from layerseg.simulate.ranges import RANGES
    sub = next(a for a in build_parser()._actions if a.choices and "simulate" in a.choices)
    opts = {a.dest: a.choices for a in sub.choices["simulate"]._actions}
    assert tuple(opts["ranges"]) == RANGES
    assert tuple(opts["anatomy"]) == ANATOMY_VARIANTS
