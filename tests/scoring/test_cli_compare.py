"""``layerseg compare`` end to end on two `layerseg infer` outputs of simulated DICOM exams, and
``layerseg repeatability`` on a user's test-retest table; bad inputs give a layerseg error."""

from __future__ import annotations

import base64
import io
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from layerseg.cli import main
from layerseg.scoring.followup import simulate_repeat_scan


def _exam(path, subject_seed, scan, patient_id):
    from layerseg.simulate.dicom_export import write_exam_dicom
    sim = simulate_repeat_scan(subject_seed, scan, region="cheek", shape=(192, 192))
    write_exam_dicom(path, [sim.frame], patient_name="Test^Subject", patient_id=patient_id)


@pytest.fixture(scope="module")
def visits(tmp_path_factory):
    root = tmp_path_factory.mktemp("visits")
    _exam(root / "in0" / "a.dcm", 5, 0, "PID-A")
    _exam(root / "in1" / "a.dcm", 5, 1, "PID-A")
    _exam(root / "in1" / "b.dcm", 6, 1, "PID-B")            # no baseline: must be listed
    for v in ("0", "1"):
        rc = main(["infer", str(root / f"in{v}"), "--out", str(root / f"out{v}"), "--region",
                   "cheek", "--no-progress"])
        assert rc == 0
    return root


def test_compare_two_infer_outputs(visits, tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = main(["compare", str(visits / "out0"), str(visits / "out1"), "--out", str(out)])
    assert rc == 1                                           # one subject unmatched
    ch = pd.read_csv(out / "changes.csv")
    assert len(pd.read_parquet(out / "changes.parquet")) == len(ch)
    assert ch["subject_id"].nunique() == 1 and ch["subject_id"].iloc[0] != "PID-A"
    assert {"dermis", "fat"} <= set(ch["layer"])
    assert set(ch["marker"]) == {"thickness_mean_mm", "echo_mean_grey", "roughness_ra_um"}
    assert set(ch["verdict"]) <= {"increase", "decrease", "within measurement noise",
                                  "not assessed"}
    ok = ch[ch["verdict"] != "not assessed"]
    assert len(ok) >= 9
    assert ((ok["change"] - (ok["followup"] - ok["baseline"])).abs() < 1e-9).all()
    assert ((ok["change_sdc"] - ok["change"] / ok["sdc"]).abs() < 1e-9).all()
    un = pd.read_csv(out / "unmatched.csv")
    assert len(un) == 1 and un["found_in"].iloc[0] == "follow-up"
    page = (out / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 2         # the two overlays side by side
    assert "Not matched" in page and "PID-A" not in page and "Test^Subject" not in page
    assert "1 unmatched" in capsys.readouterr().err


def test_compare_score_tables_and_bad_inputs(visits, tmp_path, capsys):
    t0 = pd.read_csv(visits / "out0" / "scores.csv")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    t0.to_csv(a, index=False)
    t0.to_csv(b, index=False)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c")]) == 0
    ch = pd.read_csv(tmp_path / "c" / "changes.csv")
    ok = ch[ch["verdict"] != "not assessed"]
    assert len(ok) and (ok["verdict"] == "within measurement noise").all()
    assert (ok["change"] == 0).all()
    # missing folder
    assert main(["compare", str(tmp_path / "nope"), str(b), "--out", str(tmp_path / "d")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    # a folder that is not an infer output
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), str(b), "--out", str(tmp_path / "d")]) == 2
    assert "not a `layerseg infer` output folder" in capsys.readouterr().err
    # a table without the needed columns
    t0.drop(columns=["subject_id"]).to_csv(a, index=False)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "d")]) == 2
    assert "lacks the column(s) ['subject_id']" in capsys.readouterr().err
    assert not list((tmp_path / "d").glob("*"))            # nothing written


def test_compare_uses_the_sdc_table_of_the_segmenter_that_measured(visits, tmp_path, capsys):
    from layerseg.scoring.followup import SDC_TABLES, load_repeatability
    t0 = pd.read_csv(visits / "out0" / "scores.csv")
    assert set(t0["model"]) == {"default"}                  # infer's default segmenter
    sdc = {m: load_repeatability(model=m) for m in SDC_TABLES}

    def used(model_b, model_f, out):
        a, b = tmp_path / f"a_{out}.csv", tmp_path / f"b_{out}.csv"
        t0.assign(model=model_b).to_csv(a, index=False)
        t0.assign(model=model_f).to_csv(b, index=False)
        return main(["compare", str(a), str(b), "--out", str(tmp_path / out)])

    for m, table in sdc.items():
        assert used(m, m, m) == 0
        ch = pd.read_csv(tmp_path / m / "changes.csv")
        row = ch[(ch.layer == "dermis") & (ch.marker == "echo_mean_grey")].iloc[0]
        want = table[(table.region == row["region"]) & (table.layer == "dermis")
                     & (table.marker == "echo_mean_grey")]["sdc"].iloc[0]
        assert row["sdc"] == pytest.approx(want)
    # the two shipped segmenters' noise differs, so the choice matters
    assert not sdc["classical"]["sdc"].equals(sdc["default"]["sdc"])
    # visits measured with different segmenters: refused, nothing written
    assert used("classical", "default", "mixed") == 2
    assert "different segmenters" in capsys.readouterr().err
    assert not (tmp_path / "mixed").exists() or not list((tmp_path / "mixed").glob("*"))
    # a checkpoint of one's own has no packaged table: say how to make one
    assert used("my.ckpt", "my.ckpt", "own") == 2
    assert "layerseg repeatability --model my.ckpt" in capsys.readouterr().err


def test_repeatability_from_user_scores(tmp_path, capsys):
    rows = [{"id": f"s{i}_{k}", "subject_id": f"s{i}", "region": "cheek", "layer": "dermis",
             "thickness_mean_mm": 1.0 + 0.1 * i + 0.01 * k} for i in range(6) for k in range(2)]
    src = tmp_path / "retest.csv"
    pd.DataFrame(rows).to_csv(src, index=False)
    out = tmp_path / "sdc.csv"
    assert main(["repeatability", "--scores", str(src), "--out", str(out), "--markers",
                 "thickness_mean_mm"]) == 0
    r = pd.read_csv(out).iloc[0]
    assert r["within_sd"] == pytest.approx((0.01 ** 2 / 2) ** 0.5)
    assert r["n_subjects"] == 6
    assert main(["repeatability", "--scores", str(src), "--out", str(src)]) == 2
    assert main(["repeatability", "--scores", str(src), "--out", str(out), "--markers",
                 "nope_mm"]) == 2
    assert "nope_mm" in capsys.readouterr().err


def test_follow_up_section_in_headless_browser(visits, tmp_path, browser):
    # the follow-up page as a reader sees it: Chromium builds the DOM and takes a screenshot
    out = tmp_path / "cmp"
    main(["compare", str(visits / "out0"), str(visits / "out1"), "--out", str(out)])
    page = out / "compare.html"
    shot = tmp_path / "shot.png"
    dom = browser(page, shot, (1200, 1600))
    # the two visits' overlays side by side, decodable, and the change table with verdicts
    assert "<h3>Baseline</h3>" in dom and "<h3>Follow-up</h3>" in dom
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', dom)
    assert len(uris) == 2
    for u in uris:
        Image.open(io.BytesIO(base64.b64decode(u))).load()
    ch = pd.read_csv(out / "changes.csv")
    cells = re.findall(r"<td>(increase|decrease|within measurement noise|not assessed)</td>",
                       dom)
    assert len(cells) == len(ch)
    assert "Not matched" in dom and "PID-A" not in dom
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert img.shape[:2] == (1600, 1200)
    assert img.std() > 20 and (img.mean(axis=2) < 60).mean() > 0.02
    shutil.copy(shot, tmp_path.parent / "compare_screenshot.png")   # kept to look at
